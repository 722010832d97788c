/* tcp_echo_server PORT [MAX_CLIENTS] — a TCP echo server.
 *
 * Listens on PORT on every address, IPv6 and IPv4 alike (one dual-stack
 * socket), and serves clients one after another: whatever a client sends
 * comes straight back until the client closes its side. After MAX_CLIENTS
 * clients it exits (default 0: serve forever).
 *
 * PORT "-" means "the listening socket is already open as fd 3", which is how
 * `wasmtime run --tcplisten`, vnet's `tcplisten` and systemd socket
 * activation hand a server its socket.
 *
 *   gcc -O2 -Wall examples/tcp_echo_server.c -o tcp_echo_server
 *   vnet build examples/tcp_echo_server.c -o tcp_echo_server.wasm
 *   ./tcp_echo_server 7000 &  ./tcp_echo_client localhost 7000 hello
 *
 * Under vnet the same program runs on a virtual host (examples/README.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The peer's address as text; IPv4 clients of a dual-stack socket arrive as
 * IPv4-mapped IPv6 addresses (::ffff:10.0.0.2), shown here as plain IPv4. */
static const char *peer_text(const struct sockaddr_storage *ss, char *buf, size_t len) {
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        return inet_ntop(AF_INET, &in->sin_addr, buf, len);
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, len);
        return inet_ntop(AF_INET6, &in6->sin6_addr, buf, len);
    }
    return "?";
}

/* write() until everything is out: a stream socket may take less at a time. */
static int write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A socket on [::]:port that also takes IPv4 (IPV6_V6ONLY off); plain IPv4
 * where the system has no IPv6. */
static int listen_on(int port) {
    int one = 1, zero = 0;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd >= 0) {
        struct sockaddr_in6 addr;
        memset(&addr, 0, sizeof addr); /* sin6_addr all zero: in6addr_any */
        addr.sin6_family = AF_INET6;
        addr.sin6_port = htons((unsigned short)port);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && listen(fd, 16) == 0)
            return fd;
        close(fd);
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr4;
    memset(&addr4, 0, sizeof addr4);
    addr4.sin_family = AF_INET;
    addr4.sin_port = htons((unsigned short)port);
    addr4.sin_addr.s_addr = htonl(INADDR_ANY);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&addr4, sizeof addr4) != 0 || listen(fd, 16) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, even into a pipe */
    if (argc < 2) {
        fprintf(stderr, "usage: tcp_echo_server PORT|- [MAX_CLIENTS]\n");
        return 2;
    }
    int max_clients = argc > 2 ? atoi(argv[2]) : 0;
    signal(SIGPIPE, SIG_IGN); /* a client that vanishes gives EPIPE, not death */

    int listener;
    if (strcmp(argv[1], "-") == 0) {
        listener = 3;
        printf("tcp_echo_server: listening on fd 3\n");
    } else {
        listener = listen_on(atoi(argv[1]));
        if (listener < 0) {
            perror("tcp_echo_server: listen");
            return 1;
        }
        printf("tcp_echo_server: listening on port %d\n", atoi(argv[1]));
    }

    int served = 0;
    while (max_clients == 0 || served < max_clients) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int conn = accept(listener, (struct sockaddr *)&peer, &peer_len);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            perror("tcp_echo_server: accept");
            return 1;
        }
        char who[INET6_ADDRSTRLEN];
        peer_text(&peer, who, sizeof who);
        printf("tcp_echo_server: client %s connected\n", who);

        char buf[4096];
        long long total = 0;
        for (;;) {
            ssize_t n = read(conn, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break; /* 0: the client closed its side; <0: it went away */
            if (write_all(conn, buf, (size_t)n) != 0) break;
            total += n;
        }
        close(conn);
        served++;
        printf("tcp_echo_server: client %s done, %lld bytes echoed\n", who, total);
    }
    printf("tcp_echo_server: served %d client(s), bye\n", served);
    close(listener);
    return 0;
}
