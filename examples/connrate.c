/* connrate — TCP connection rate: connect, accept and close, as fast as it goes.
 *
 *   connrate server PORT [COUNT]       accept COUNT connections (default 0: forever),
 *                                      closing each one at once, then print the rate
 *   connrate client HOST PORT COUNT    open COUNT connections one after another
 *
 * Each connection is one whole TCP lifetime, one after another: the
 * three-way handshake; the server's accept() and a one-byte greeting, which
 * the client waits for (so it never runs ahead of accept()); the client's
 * close(); the server seeing the end of the stream and closing too. The
 * client closes first, so TIME_WAIT stays on the client's side, where
 * connect() knows about it and picks another port. Both sides print how
 * many connections they handled, how long that took and the rate
 * (connections per second).
 *
 *   gcc -O2 -Wall examples/connrate.c -o connrate
 *   vnet build examples/connrate.c -o connrate.wasm
 *   ./connrate server 5003 1000 &  ./connrate client localhost 5003 1000
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void print_rate(const char *what, long long count, double seconds) {
    if (seconds > 0)
        printf("connrate: %s %lld connections in %.3f s (%.1f connections/s)\n", what, count,
               seconds, count / seconds);
    else
        printf("connrate: %s %lld connections in 0.000 s (too fast to time)\n", what, count);
}

/* A dual-stack listener on [::]:port (IPV6_V6ONLY off). */
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
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 128) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int server(int port, long long count) {
    int listener = listen_on(port);
    if (listener < 0) {
        perror("connrate: listen");
        return 1;
    }
    printf("connrate: listening on port %d\n", port);
    long long accepted = 0;
    double start = 0;
    while (count == 0 || accepted < count) {
        int conn = accept(listener, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            perror("connrate: accept");
            return 1;
        }
        if (accepted == 0) start = now_s(); /* timed from the first connection */
        if (write(conn, "!", 1) == 1) { /* the greeting; it fails if the client has gone */
            char byte;
            ssize_t n;
            do
                n = read(conn, &byte, 1); /* 0: the client has closed */
            while (n > 0 || (n < 0 && errno == EINTR));
        }
        close(conn);
        accepted++;
    }
    double took = now_s() - start;
    close(listener);
    print_rate("accepted", accepted, took);
    return 0;
}

static int client(const char *host, const char *port, long long count) {
    struct addrinfo hints, *found;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &found);
    if (rc != 0) {
        fprintf(stderr, "connrate: %s: %s\n", host, gai_strerror(rc));
        return 2;
    }
    long long done = 0, failed = 0;
    double start = now_s();
    for (long long i = 0; i < count; i++) {
        int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
        if (fd < 0) {
            perror("connrate: socket");
            failed++;
            break;
        }
        if (connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
            if (failed++ == 0) perror("connrate: connect");
            close(fd);
            continue;
        }
        char byte;
        ssize_t n;
        do
            n = read(fd, &byte, 1); /* the greeting: the server has accepted */
        while (n < 0 && errno == EINTR);
        close(fd);
        if (n != 1) {
            if (failed++ == 0) fprintf(stderr, "connrate: no greeting from the server\n");
            continue;
        }
        done++;
    }
    double took = now_s() - start;
    freeaddrinfo(found);
    print_rate("opened", done, took);
    if (failed) printf("connrate: %lld connection(s) failed\n", failed);
    return failed ? 1 : 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "server") == 0)
        return server(atoi(argv[2]), argc == 4 ? atoll(argv[3]) : 0);
    if (argc == 5 && strcmp(argv[1], "client") == 0)
        return client(argv[2], argv[3], atoll(argv[4]));
    fprintf(stderr, "usage: connrate server PORT [COUNT]\n"
                    "       connrate client HOST PORT COUNT\n");
    return 2;
}
