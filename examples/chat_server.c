/* chat_server PORT [MAX_CLIENTS] — a line-based chat room built on poll().
 *
 * Every client's first line is its name. After that, each line it sends goes
 * to everyone else as "NAME: line". Joins and leaves are announced to the
 * others as "* NAME joined" / "* NAME left"; a newcomer is greeted with
 * "* welcome NAME, N online". One poll() loop serves the listening socket
 * and up to 32 clients at once — no threads. With MAX_CLIENTS the server
 * exits once that many clients have come and gone (default 0: never).
 *
 *   gcc -O2 -Wall examples/chat_server.c -o chat_server
 *   vnet build examples/chat_server.c -o chat_server.wasm
 *   ./chat_server 6667 &  ./chat_client localhost 6667 alice "hi all"
 *
 * (`nc localhost 6667` works as a client too: type a name, then lines.)
 * A client that stops reading could stall the loop in write(); a real
 * server would buffer per client — kept simple here.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONN 32
#define LINE_MAX_LEN 512

struct client {
    int fd;                   /* -1: a free slot */
    char name[32];            /* empty until the first line arrived */
    char buf[LINE_MAX_LEN];   /* a partial line waiting for its '\n' */
    size_t used;
};

static struct client clients[MAX_CONN];
static int joined_total, left_total;

static int listen_on(int port) {
    int one = 1, zero = 0;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 addr;
    memset(&addr, 0, sizeof addr);
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons((unsigned short)port);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_text(int fd, const char *text) {
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* that client is going away; poll will tell us */
        text += n;
        len -= (size_t)n;
    }
}

/* Send a line to every named client except `from`. */
static void broadcast(const struct client *from, const char *line) {
    for (int i = 0; i < MAX_CONN; i++)
        if (clients[i].fd >= 0 && clients[i].name[0] && &clients[i] != from)
            send_text(clients[i].fd, line);
}

static int online(void) {
    int n = 0;
    for (int i = 0; i < MAX_CONN; i++) n += clients[i].fd >= 0 && clients[i].name[0];
    return n;
}

static void hang_up(struct client *c) {
    char line[LINE_MAX_LEN + 64];
    close(c->fd);
    c->fd = -1;
    if (c->name[0]) {
        snprintf(line, sizeof line, "* %s left\n", c->name);
        broadcast(c, line);
        printf("chat_server: %s left\n", c->name);
        left_total++;
    }
    c->name[0] = '\0';
    c->used = 0;
}

/* One complete line from client c (without its '\n'). */
static void on_line(struct client *c, char *text) {
    char line[LINE_MAX_LEN + 64];
    size_t len = strlen(text);
    if (len > 0 && text[len - 1] == '\r') text[--len] = '\0'; /* telnet/nc send \r\n */
    if (!c->name[0]) {
        snprintf(c->name, sizeof c->name, "%s", len ? text : "anonymous");
        joined_total++;
        printf("chat_server: %s joined\n", c->name);
        snprintf(line, sizeof line, "* welcome %s, %d online\n", c->name, online());
        send_text(c->fd, line);
        snprintf(line, sizeof line, "* %s joined\n", c->name);
        broadcast(c, line);
        return;
    }
    snprintf(line, sizeof line, "%s: %s\n", c->name, text);
    broadcast(c, line);
}

/* Read what a client sent; split it into lines. */
static void on_readable(struct client *c) {
    ssize_t n = read(c->fd, c->buf + c->used, sizeof c->buf - 1 - c->used);
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) {
        hang_up(c);
        return;
    }
    c->used += (size_t)n;
    c->buf[c->used] = '\0';
    char *start = c->buf, *nl;
    while (c->fd >= 0 && (nl = strchr(start, '\n')) != NULL) {
        *nl = '\0';
        on_line(c, start);
        start = nl + 1;
    }
    c->used = strlen(start);
    memmove(c->buf, start, c->used);
    if (c->used == sizeof c->buf - 1) { /* a line too long for us: treat it as complete */
        on_line(c, c->buf);
        c->used = 0;
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: chat_server PORT [MAX_CLIENTS]\n");
        return 2;
    }
    int max_clients = argc > 2 ? atoi(argv[2]) : 0;
    signal(SIGPIPE, SIG_IGN);
    int listener = listen_on(atoi(argv[1]));
    if (listener < 0) {
        perror("chat_server: listen");
        return 1;
    }
    for (int i = 0; i < MAX_CONN; i++) clients[i].fd = -1;
    printf("chat_server: listening on port %d\n", atoi(argv[1]));

    while (max_clients == 0 || left_total < max_clients) {
        /* Slot 0 of the poll set is the listener, then every connected client. */
        struct pollfd fds[MAX_CONN + 1];
        struct client *owner[MAX_CONN + 1];
        int nfds = 0;
        fds[nfds].fd = listener;
        fds[nfds].events = POLLIN;
        owner[nfds++] = NULL;
        for (int i = 0; i < MAX_CONN; i++) {
            if (clients[i].fd < 0) continue;
            fds[nfds].fd = clients[i].fd;
            fds[nfds].events = POLLIN;
            owner[nfds++] = &clients[i];
        }
        if (poll(fds, (nfds_t)nfds, -1) < 0) {
            if (errno == EINTR) continue;
            perror("chat_server: poll");
            return 1;
        }
        if (fds[0].revents & POLLIN) {
            int fd = accept(listener, NULL, NULL);
            int slot = -1;
            for (int i = 0; fd >= 0 && i < MAX_CONN && slot < 0; i++)
                if (clients[i].fd < 0) slot = i;
            if (slot >= 0) {
                clients[slot].fd = fd;
                clients[slot].name[0] = '\0';
                clients[slot].used = 0;
            } else if (fd >= 0) {
                send_text(fd, "* the room is full\n");
                close(fd);
            }
        }
        for (int i = 1; i < nfds; i++)
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) on_readable(owner[i]);
    }
    printf("chat_server: %d joined, %d left, bye\n", joined_total, left_total);
    close(listener);
    return 0;
}
