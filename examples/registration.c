/* registration server PORT | registration client ADDRESS PORT NAME — a deliberate race.
 *
 * A deliberately racy pair, for schedule exploration (vnet sweep): the
 * server accepts two TCP connections and hands out the roles "A" and "B" in
 * the order the connections arrived, assuming that client A, which is
 * started first, always connects first. Nothing promises that: two clients
 * started at the same instant may reach the server in either order. Each
 * client sends "register NAME", reads the role it was given and exits 0 if
 * that role is its own NAME, 1 if the server mixed the clients up (2 on bad
 * usage or a network error). The server exits 0 once it has answered both.
 *
 *   gcc -O2 -Wall examples/registration.c -o registration
 *   vnet build examples/registration.c -o registration.wasm
 *   ./registration server 7100 &
 *   ./registration client 127.0.0.1 7100 A & ./registration client 127.0.0.1 7100 B
 *
 * examples/race.toml runs it under vnet: it passes for every seed with
 * `--schedule fifo` and fails for some seeds of `vnet sweep` (which explores).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Read one line (without its newline) into buf; returns its length, -1 on error or EOF. */
static int read_line(int fd, char *buf, size_t size) {
    size_t got = 0;
    while (got + 1 < size) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        if (c == '\n') break;
        buf[got++] = c;
    }
    buf[got] = '\0';
    return (int)got;
}

static int write_all(int fd, const char *text) {
    size_t len = strlen(text), sent = 0;
    while (sent < len) {
        ssize_t n = write(fd, text + sent, len - sent);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        sent += (size_t)n;
    }
    return 0;
}

static int serve(int port) {
    static const char *const roles[2] = {"A", "B"};
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(listener, 8) != 0) {
        perror("registration: server");
        return 2;
    }
    printf("registration: listening on port %d\n", port);
    int clients[2];
    for (int i = 0; i < 2; i++) { /* the bug: the first to arrive is taken to be A */
        clients[i] = accept(listener, NULL, NULL);
        if (clients[i] < 0) {
            perror("registration: accept");
            return 2;
        }
    }
    for (int i = 0; i < 2; i++) {
        char line[128], reply[64];
        if (read_line(clients[i], line, sizeof line) < 0) {
            fprintf(stderr, "registration: connection %d closed early\n", i + 1);
            return 2;
        }
        printf("registration: connection %d said \"%s\": role %s\n", i + 1, line, roles[i]);
        snprintf(reply, sizeof reply, "role %s\n", roles[i]);
        if (write_all(clients[i], reply) != 0) return 2;
        close(clients[i]);
    }
    close(listener);
    return 0;
}

static int register_as(const char *address, int port, const char *name) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, address, &addr.sin_addr) != 1) {
        fprintf(stderr, "registration: %s: not an IPv4 address\n", address);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("registration: connect");
        return 2;
    }
    char request[128], line[128], expected[64];
    snprintf(request, sizeof request, "register %s\n", name);
    if (write_all(fd, request) != 0 || read_line(fd, line, sizeof line) < 0) {
        fprintf(stderr, "registration: %s: no answer\n", name);
        return 2;
    }
    close(fd);
    snprintf(expected, sizeof expected, "role %s", name);
    if (strcmp(line, expected) != 0) {
        printf("registration: %s was given \"%s\": the server mixed the clients up\n", name,
               line);
        return 1;
    }
    printf("registration: %s was given \"%s\"\n", name, line);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "server") == 0) return serve(atoi(argv[2]));
    if (argc == 5 && strcmp(argv[1], "client") == 0)
        return register_as(argv[2], atoi(argv[3]), argv[4]);
    fprintf(stderr, "usage: registration server PORT | registration client ADDRESS PORT NAME\n");
    return 2;
}
