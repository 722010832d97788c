/* chat_client [-w MS] HOST PORT NAME [STEP...] — a scripted client for chat_server.
 *
 * Connects, sends NAME as its first line, then works through the STEPs in
 * order while printing every line it receives as "< line":
 *
 *   TEXT      send TEXT as a line (printed as "> TEXT")
 *   ?TEXT     wait until a received line contains TEXT (up to 5 s or -w MS;
 *             exit 1 if it never comes)
 *   +MS       pause MS milliseconds (still printing what arrives)
 *
 * then closes the connection and exits 0. Waiting for what others say
 * ("?bob: hi") instead of sleeping makes a conversation between several
 * clients come out in the same order on every run.
 *
 *   gcc -O2 -Wall examples/chat_client.c -o chat_client
 *   vnet build examples/chat_client.c -o chat_client.wasm
 *   ./chat_client localhost 6667 alice "?* bob joined" "hi bob" "?bob: hi" +100
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int conn = -1;
static char inbuf[4096];
static size_t inused;
static int closed_by_server;
static int wait_limit_ms = 5000;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int connect_by_name(const char *host, const char *port) {
    struct addrinfo hints, *found;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &found);
    if (rc != 0) {
        fprintf(stderr, "chat_client: %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = found; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(found);
    if (fd < 0) fprintf(stderr, "chat_client: cannot connect to %s port %s\n", host, port);
    return fd;
}

static int send_line(const char *text) {
    char line[600];
    int len = snprintf(line, sizeof line, "%s\n", text);
    if (len >= (int)sizeof line) len = (int)sizeof line - 1;
    for (int off = 0; off < len;) {
        ssize_t n = write(conn, line + off, (size_t)(len - off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        off += (int)n;
    }
    return 0;
}

/* Print the complete lines received so far, up to and including the first
 * one that contains `want` (all of them when `want` is NULL). Returns 1 if
 * `want` was seen; the lines after it stay buffered for the next step. */
static int print_lines(const char *want) {
    char *nl;
    while ((nl = memchr(inbuf, '\n', inused)) != NULL) {
        *nl = '\0';
        printf("< %s\n", inbuf);
        int seen = want != NULL && strstr(inbuf, want) != NULL;
        inused -= (size_t)(nl + 1 - inbuf);
        memmove(inbuf, nl + 1, inused);
        if (seen) return 1;
    }
    return 0;
}

/* Receive and print lines until `deadline` (ms), or until a line contains
 * `want` when it is not NULL. Returns 1 if `want` was seen. */
static int pump(long long deadline, const char *want) {
    for (;;) {
        if (print_lines(want)) return 1; /* it may have come with an earlier read */
        long long left = deadline - now_ms();
        if (left <= 0 || closed_by_server) return 0;
        struct pollfd pfd = {.fd = conn, .events = POLLIN};
        int ready = poll(&pfd, 1, (int)left);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) return 0;
        ssize_t n = read(conn, inbuf + inused, sizeof inbuf - 1 - inused);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            printf("chat_client: the server closed the connection\n");
            closed_by_server = 1;
            return 0;
        }
        inused += (size_t)n;
        if (inused == sizeof inbuf - 1 && memchr(inbuf, '\n', inused) == NULL)
            inused = 0; /* an absurdly long line: drop it */
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "-w") == 0) {
        wait_limit_ms = atoi(argv[2]);
        first = 3;
    }
    if (argc - first < 3) {
        fprintf(stderr, "usage: chat_client [-w MS] HOST PORT NAME [TEXT | ?TEXT | +MS]...\n");
        return 2;
    }
    const char *name = argv[first + 2];
    signal(SIGPIPE, SIG_IGN);
    conn = connect_by_name(argv[first], argv[first + 1]);
    if (conn < 0) return 2;
    printf("chat_client: %s connected\n", name);
    if (send_line(name) != 0) return 1;

    for (int i = first + 3; i < argc; i++) {
        const char *step = argv[i];
        if (step[0] == '?') {
            if (!pump(now_ms() + wait_limit_ms, step + 1)) {
                printf("chat_client: gave up waiting for \"%s\"\n", step + 1);
                close(conn);
                return 1;
            }
        } else if (step[0] == '+') {
            pump(now_ms() + atoi(step + 1), NULL);
        } else {
            printf("> %s\n", step);
            if (send_line(step) != 0) {
                printf("chat_client: cannot send: %s\n", strerror(errno));
                close(conn);
                return 1;
            }
        }
    }
    close(conn);
    printf("chat_client: %s quit\n", name);
    return 0;
}
