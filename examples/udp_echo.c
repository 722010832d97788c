/* udp_echo — a UDP echo server and client in one program.
 *
 *   udp_echo server PORT [COUNT]          echo every datagram back to its sender;
 *                                         exit after COUNT datagrams (default: never)
 *   udp_echo client HOST PORT MSG COUNT   send "MSG 1" … "MSG COUNT", one at a time,
 *                                         waiting up to a second for each echo
 *
 * The server listens on IPv6 and IPv4 at once (a dual-stack socket). The
 * client looks HOST up with getaddrinfo, uses the first address and
 * connect()s its socket, so the kernel (or vnet) reports an ICMP "port
 * unreachable" as ECONNREFUSED instead of a silent timeout. It exits 0 when
 * every echo came back intact.
 *
 *   gcc -O2 -Wall examples/udp_echo.c -o udp_echo
 *   vnet build examples/udp_echo.c -o udp_echo.wasm
 *   ./udp_echo server 9000 &  ./udp_echo client localhost 9000 ping 3
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* An address as text; IPv4-mapped IPv6 addresses are shown as plain IPv4. */
static const char *addr_text(const struct sockaddr_storage *ss, char *buf, size_t len) {
    if (ss->ss_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, len);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
        return inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, len);
    return inet_ntop(AF_INET6, &in6->sin6_addr, buf, len);
}

static int server(int port, int count) {
    int zero = 0;
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("udp_echo: socket");
        return 1;
    }
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    struct sockaddr_in6 addr;
    memset(&addr, 0, sizeof addr);
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("udp_echo: bind");
        return 1;
    }
    printf("udp_echo: listening on port %d\n", port);
    for (int seen = 0; count == 0 || seen < count;) {
        char buf[65536];
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &peer_len);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("udp_echo: recvfrom");
            return 1;
        }
        seen++;
        char who[INET6_ADDRSTRLEN];
        printf("udp_echo: %zd bytes from %s: \"%.*s\"\n", n, addr_text(&peer, who, sizeof who),
               (int)n, buf);
        if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, peer_len) < 0)
            perror("udp_echo: sendto");
    }
    close(fd);
    printf("udp_echo: echoed %d datagram(s), bye\n", count);
    return 0;
}

static int client(const char *host, const char *port, const char *msg, int count) {
    struct addrinfo hints, *found;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    int rc = getaddrinfo(host, port, &hints, &found);
    if (rc != 0) {
        fprintf(stderr, "udp_echo: %s: %s\n", host, gai_strerror(rc));
        return 2;
    }
    int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    if (fd < 0 || connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
        perror("udp_echo: connect");
        freeaddrinfo(found);
        return 2;
    }
    freeaddrinfo(found);

    int echoed = 0;
    for (int i = 1; i <= count; i++) {
        char out[512], in[1024];
        int len = snprintf(out, sizeof out, "%s %d", msg, i);
        if (send(fd, out, (size_t)len, 0) < 0) {
            printf("udp_echo: send %d: %s\n", i, strerror(errno));
            continue;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 1000) <= 0) {
            printf("udp_echo: no echo for \"%s\" within 1 s\n", out);
            continue;
        }
        ssize_t n = recv(fd, in, sizeof in, 0);
        if (n < 0) { /* e.g. ECONNREFUSED: nobody listens on that port */
            printf("udp_echo: recv %d: %s\n", i, strerror(errno));
            continue;
        }
        int same = n == len && memcmp(in, out, (size_t)len) == 0;
        printf("udp_echo: echo %s \"%.*s\"\n", same ? "ok" : "MISMATCH", (int)n, in);
        echoed += same;
    }
    close(fd);
    printf("udp_echo: %d of %d echoed\n", echoed, count);
    return echoed == count ? 0 : 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[1], "server") == 0)
        return server(atoi(argv[2]), argc > 3 ? atoi(argv[3]) : 0);
    if (argc == 6 && strcmp(argv[1], "client") == 0)
        return client(argv[2], argv[3], argv[4], atoi(argv[5]));
    fprintf(stderr, "usage: udp_echo server PORT [COUNT]\n"
                    "       udp_echo client HOST PORT MSG COUNT\n");
    return 2;
}
