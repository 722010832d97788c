/* tcp_echo_client HOST PORT MESSAGE... — talk to an echo server.
 *
 * Looks HOST up with getaddrinfo (a name, an IPv4 or an IPv6 address), tries
 * each address it gets until one connects, then sends each MESSAGE and reads
 * back as many bytes, printing what came back. Exits 0 if every echo matched,
 * 1 if one did not, 2 on bad usage or when it cannot connect.
 *
 *   gcc -O2 -Wall examples/tcp_echo_client.c -o tcp_echo_client
 *   vnet build examples/tcp_echo_client.c -o tcp_echo_client.wasm
 *   ./tcp_echo_client localhost 7000 hello world
 *
 * Under vnet, HOST may be the name of another virtual host (examples/README.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *addr_text(const struct sockaddr *sa, char *buf, size_t len) {
    if (sa->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, len);
    return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, len);
}

/* Connect to the first address of HOST that answers, as most clients do. */
static int connect_by_name(const char *host, const char *port) {
    struct addrinfo hints, *found;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC; /* IPv6 or IPv4, in the resolver's order */
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &found);
    if (rc != 0) {
        fprintf(stderr, "tcp_echo_client: %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = found; ai != NULL; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN];
        addr_text(ai->ai_addr, text, sizeof text);
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            printf("tcp_echo_client: connected to %s port %s\n", text, port);
            break;
        }
        fprintf(stderr, "tcp_echo_client: %s port %s: %s\n", text, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    return fd;
}

/* Read exactly len bytes unless the stream ends first; returns how many came. */
static size_t read_full(int fd, char *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    return got;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 4) {
        fprintf(stderr, "usage: tcp_echo_client HOST PORT MESSAGE...\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int fd = connect_by_name(argv[1], argv[2]);
    if (fd < 0) return 2;

    int matched = 1;
    for (int i = 3; i < argc; i++) {
        const char *msg = argv[i];
        size_t len = strlen(msg);
        if (write(fd, msg, len) != (ssize_t)len) {
            perror("tcp_echo_client: write");
            return 1;
        }
        char *back = malloc(len + 1);
        if (back == NULL) return 1;
        size_t got = read_full(fd, back, len);
        back[got] = '\0';
        int same = got == len && memcmp(back, msg, len) == 0;
        printf("tcp_echo_client: echo %s \"%s\"\n", same ? "ok" : "MISMATCH", back);
        matched &= same;
        free(back);
    }
    /* Say we are done; a well-behaved echo server then closes its side too. */
    shutdown(fd, SHUT_WR);
    char extra[64];
    size_t left = read_full(fd, extra, sizeof extra);
    if (left > 0) {
        printf("tcp_echo_client: %zu unexpected byte(s) after the echoes\n", left);
        matched = 0;
    }
    close(fd);
    printf("tcp_echo_client: %s\n", matched ? "all echoes matched" : "some echoes did not match");
    return matched ? 0 : 1;
}
