/*
 * sdk_all.c — exercises the vnet C SDK's BSD socket API, one check per line.
 *
 * Portable C: builds natively with gcc (run inside a network namespace) and
 * to wasm with `vnet build` (run as a guest on a virtual host), and must give
 * the same results in both. Each check prints `ok <name>` or
 * `FAIL <name>: <details>`; interface and address listings print as
 * `iface ...` / `ifaddr ...` lines; the last line is
 * `summary: <passed> passed, <failed> failed`, and the exit status is 1 if
 * anything failed.
 *
 * Arguments (key=value, all optional):
 *   ifname=eth0        the host's non-loopback interface
 *   v4=10.0.0.1        its IPv4 address      v6=fd00::1   its IPv6 address
 *   peer=b             a host name the resolver knows
 *   peer_v4=10.0.0.2   its IPv4 address      peer_v6=fd00::2
 *   mcast4=239.1.2.3   mcast6=ff15::4242     multicast groups to use
 *   unreach=203.0.113.1                      an address with no route
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* --- reporting ------------------------------------------------------------------ */

static int passed, failed;

static void ok(const char *name) {
    printf("ok %s\n", name);
    passed++;
}

static void fail(const char *name, const char *fmt, ...) {
    va_list ap;
    printf("FAIL %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    failed++;
}

#define CHECK(name, cond, ...)         \
    do {                               \
        if (cond)                      \
            ok(name);                  \
        else                           \
            fail(name, __VA_ARGS__);   \
    } while (0)

/* Expects `call` to fail with errno `want`. */
#define CHECK_ERRNO(name, call, want)                                                    \
    do {                                                                                 \
        errno = 0;                                                                       \
        long rc_ = (long)(call);                                                         \
        int e_ = errno;                                                                  \
        if (rc_ == -1 && e_ == (want))                                                   \
            ok(name);                                                                    \
        else                                                                             \
            fail(name, "returned %ld, errno %d (%s), wanted %s", rc_, e_, strerror(e_), \
                 #want);                                                                 \
    } while (0)

/* Expects `call` to return 0 (or another non-negative value). */
#define CHECK_OK(name, call)                                                  \
    do {                                                                      \
        errno = 0;                                                            \
        long rc_ = (long)(call);                                              \
        int e_ = errno;                                                       \
        if (rc_ >= 0)                                                         \
            ok(name);                                                         \
        else                                                                  \
            fail(name, "returned %ld, errno %d (%s)", rc_, e_, strerror(e_)); \
    } while (0)

/* --- arguments ------------------------------------------------------------------- */

static const char *ifname = "eth0", *v4 = "10.0.0.1", *v6 = "fd00::1";
static const char *peer = "b", *peer_v4 = "10.0.0.2", *peer_v6 = "fd00::2";
static const char *mcast4 = "239.1.2.3", *mcast6 = "ff15::4242";
static const char *unreach = "203.0.113.1";

static void parse_args(int argc, char **argv) {
    struct { const char *key; const char **value; } keys[] = {
        {"ifname", &ifname}, {"v4", &v4}, {"v6", &v6}, {"peer", &peer},
        {"peer_v4", &peer_v4}, {"peer_v6", &peer_v6}, {"mcast4", &mcast4},
        {"mcast6", &mcast6}, {"unreach", &unreach},
    };
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL)
            continue;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (strncmp(argv[i], keys[k].key, (size_t)(eq - argv[i])) == 0 &&
                strlen(keys[k].key) == (size_t)(eq - argv[i]))
                *keys[k].value = eq + 1;
    }
}

/* --- helpers --------------------------------------------------------------------- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static struct sockaddr_in sin4(const char *addr, int port) {
    struct sockaddr_in s;
    memset(&s, 0, sizeof s);
    s.sin_family = AF_INET;
    s.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, addr, &s.sin_addr);
    return s;
}

static struct sockaddr_in6 sin6(const char *addr, int port) {
    struct sockaddr_in6 s;
    memset(&s, 0, sizeof s);
    s.sin6_family = AF_INET6;
    s.sin6_port = htons((uint16_t)port);
    inet_pton(AF_INET6, addr, &s.sin6_addr);
    return s;
}

static int port_of(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

static const char *addr_text(const struct sockaddr *sa, char *buf, size_t len) {
    if (sa->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    if (sa->sa_family == AF_INET6)
        return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
                         (socklen_t)len);
    snprintf(buf, len, "family %d", sa->sa_family);
    return buf;
}

static int get_int(int fd, int level, int name) {
    int v = -12345;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len) < 0)
        return -12345;
    return v;
}

static int set_int(int fd, int level, int name, int v) {
    return setsockopt(fd, level, name, &v, sizeof v);
}

/* A listening TCP socket on addr (port 0), or -1. */
static int tcp_listener(int family, const char *addr) {
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    int rc;
    if (family == AF_INET) {
        struct sockaddr_in s = sin4(addr, 0);
        rc = bind(fd, (struct sockaddr *)&s, sizeof s);
    } else {
        struct sockaddr_in6 s = sin6(addr, 0);
        rc = bind(fd, (struct sockaddr *)&s, sizeof s);
    }
    if (rc < 0 || listen(fd, 16) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A port on 127.0.0.1 that nothing listens on. */
static int closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in s = sin4("127.0.0.1", 0);
    bind(fd, (struct sockaddr *)&s, sizeof s);
    int port = port_of(fd);
    close(fd);
    return port;
}

static int wait_readable(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms);
}

static int udp_bound(int family, const char *addr) {
    int fd = socket(family, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    if (family == AF_INET) {
        struct sockaddr_in s = sin4(addr, 0);
        if (bind(fd, (struct sockaddr *)&s, sizeof s) < 0)
            return close(fd), -1;
    } else {
        struct sockaddr_in6 s = sin6(addr, 0);
        if (bind(fd, (struct sockaddr *)&s, sizeof s) < 0)
            return close(fd), -1;
    }
    return fd;
}

/* --- checks ---------------------------------------------------------------------- */

static void test_basics(void) {
    CHECK("htons", ntohs(htons(0x1234)) == 0x1234 && ntohl(htonl(0xdeadbeef)) == 0xdeadbeef &&
                       ((unsigned char *)&(uint16_t){htons(0x0102)})[0] == 1,
          "byte order");

    struct in_addr a;
    struct in6_addr b;
    char buf[INET6_ADDRSTRLEN];
    CHECK("inet_pton4", inet_pton(AF_INET, "192.168.1.20", &a) == 1 &&
                            ((unsigned char *)&a)[0] == 192 && ((unsigned char *)&a)[3] == 20,
          "parse");
    CHECK("inet_ntop4", strcmp(inet_ntop(AF_INET, &a, buf, sizeof buf), "192.168.1.20") == 0,
          "got %s", buf);
    CHECK("inet_pton6", inet_pton(AF_INET6, "fd00::1:2", &b) == 1 && b.s6_addr[0] == 0xfd &&
                            b.s6_addr[13] == 1 && b.s6_addr[15] == 2,
          "parse");
    CHECK("inet_ntop6", strcmp(inet_ntop(AF_INET6, &b, buf, sizeof buf), "fd00::1:2") == 0,
          "got %s", buf);
    CHECK("inet_pton_bad", inet_pton(AF_INET, "1.2.3.256", &a) == 0 &&
                               inet_pton(AF_INET6, "fd00:::1", &b) == 0,
          "accepted a bad address");
    CHECK("inet_addr", inet_addr("10.1.2.3") == htonl(0x0a010203) &&
                           inet_addr("nonsense") == INADDR_NONE,
          "got %08x", (unsigned)inet_addr("10.1.2.3"));
    a.s_addr = htonl(0x7f000001);
    CHECK("inet_ntoa", strcmp(inet_ntoa(a), "127.0.0.1") == 0, "got %s", inet_ntoa(a));
    CHECK("inet_aton", inet_aton("127.1", &a) == 1 && a.s_addr == htonl(0x7f000001),
          "short form");

    CHECK("struct_sizes",
          sizeof(struct sockaddr) == 16 && sizeof(struct sockaddr_in) == 16 &&
              sizeof(struct sockaddr_in6) == 28 && sizeof(struct sockaddr_storage) == 128 &&
              offsetof(struct sockaddr_in, sin_port) == 2 &&
              offsetof(struct sockaddr_in, sin_addr) == 4 &&
              offsetof(struct sockaddr_in6, sin6_addr) == 8 &&
              offsetof(struct sockaddr_in6, sin6_scope_id) == 24 &&
              sizeof(((struct sockaddr_in *)0)->sin_zero) == 8 &&
              sizeof(struct ip_mreq) == 8 && sizeof(struct ipv6_mreq) == 20 &&
              sizeof(struct linger) == 8,
          "sockaddr %zu in %zu in6 %zu storage %zu", sizeof(struct sockaddr),
          sizeof(struct sockaddr_in), sizeof(struct sockaddr_in6),
          sizeof(struct sockaddr_storage));
    CHECK("linux_constants",
          SOL_SOCKET == 1 && SO_REUSEADDR == 2 && SO_TYPE == 3 && SO_ERROR == 4 &&
              SO_BROADCAST == 6 && SO_KEEPALIVE == 9 && SO_LINGER == 13 && SO_REUSEPORT == 15 &&
              SO_RCVTIMEO == 20 && IPPROTO_TCP == 6 && IPPROTO_UDP == 17 &&
              IPPROTO_IPV6 == 41 && TCP_NODELAY == 1 && TCP_KEEPIDLE == 4 &&
              IP_TTL == 2 && IP_MULTICAST_IF == 32 && IP_ADD_MEMBERSHIP == 35 &&
              IPV6_V6ONLY == 26 && IPV6_JOIN_GROUP == 20 &&
              IPV6_ADD_MEMBERSHIP == IPV6_JOIN_GROUP && IPV6_MULTICAST_HOPS == 18 &&
              MSG_PEEK == 2 && MSG_DONTWAIT == 0x40 && MSG_WAITALL == 0x100 &&
              MSG_TRUNC == 0x20 && SHUT_RD == 0 && SHUT_WR == 1 && SHUT_RDWR == 2 &&
              SOCK_STREAM == 1 && SOCK_DGRAM == 2 && POLLIN == 1 && POLLPRI == 2 &&
              POLLOUT == 4 && POLLERR == 8 && POLLHUP == 0x10 && POLLNVAL == 0x20,
          "a constant differs from Linux");
    const char *msg = strerror(ECONNREFUSED);
    CHECK("strerror", strcasestr(msg, "refused") != NULL && EWOULDBLOCK == EAGAIN, "got %s", msg);
}

/* A full TCP exchange between two sockets of this program. */
static void test_tcp(int family, const char *addr, const char *tag) {
    char name[64];
#define N(s) (snprintf(name, sizeof name, "%s_%s", tag, s), name)
    int lfd = tcp_listener(family, addr);
    if (lfd < 0) {
        fail(N("listen"), "errno %d (%s)", errno, strerror(errno));
        return;
    }
    ok(N("listen"));
    CHECK(N("so_acceptconn"), get_int(lfd, SOL_SOCKET, SO_ACCEPTCONN) == 1, "not listening");
    CHECK(N("so_reuseaddr"), get_int(lfd, SOL_SOCKET, SO_REUSEADDR) == 1, "got %d",
          get_int(lfd, SOL_SOCKET, SO_REUSEADDR));
    int port = port_of(lfd);
    CHECK(N("getsockname"), port > 0, "port %d", port);

    int cfd = socket(family, SOCK_STREAM, 0);
    CHECK(N("so_type"), get_int(cfd, SOL_SOCKET, SO_TYPE) == SOCK_STREAM, "got %d",
          get_int(cfd, SOL_SOCKET, SO_TYPE));
    CHECK(N("so_protocol"), get_int(cfd, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP, "got %d",
          get_int(cfd, SOL_SOCKET, SO_PROTOCOL));
    CHECK(N("so_domain"), get_int(cfd, SOL_SOCKET, SO_DOMAIN) == family, "got %d",
          get_int(cfd, SOL_SOCKET, SO_DOMAIN));
    CHECK(N("so_error_fresh"), get_int(cfd, SOL_SOCKET, SO_ERROR) == 0, "got %d",
          get_int(cfd, SOL_SOCKET, SO_ERROR));
    struct sockaddr_storage srv;
    socklen_t srvlen = sizeof srv;
    getsockname(lfd, (struct sockaddr *)&srv, &srvlen);
    CHECK_OK(N("connect"), connect(cfd, (struct sockaddr *)&srv, srvlen));

    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    int sfd = accept(lfd, (struct sockaddr *)&from, &fromlen);
    CHECK(N("accept"), sfd >= 0, "errno %d (%s)", errno, strerror(errno));
    if (sfd < 0) {
        close(cfd);
        close(lfd);
        return;
    }
    struct timeval safety = {5, 0};
    setsockopt(sfd, SOL_SOCKET, SO_RCVTIMEO, &safety, sizeof safety);
    setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &safety, sizeof safety);

    struct sockaddr_storage local;
    socklen_t locallen = sizeof local;
    getsockname(cfd, (struct sockaddr *)&local, &locallen);
    CHECK(N("accept_peer"), fromlen == locallen && memcmp(&from, &local, fromlen) == 0,
          "accept's address (len %u) is not the client's name (len %u)", fromlen, locallen);
    struct sockaddr_storage pn;
    socklen_t pnlen = sizeof pn;
    CHECK(N("getpeername"), getpeername(cfd, (struct sockaddr *)&pn, &pnlen) == 0 &&
                                pnlen == srvlen && memcmp(&pn, &srv, pnlen) == 0,
          "errno %d", errno);
    /* a short buffer is filled partly and the real length reported */
    struct sockaddr_storage small;
    socklen_t smalllen = 4;
    getpeername(cfd, (struct sockaddr *)&small, &smalllen);
    CHECK(N("getpeername_truncated"), smalllen == srvlen, "len %u", smalllen);

    /* send/recv echo */
    char buf[256];
    ssize_t n = send(cfd, "hello", 5, 0);
    CHECK(N("send"), n == 5, "sent %zd, errno %d", n, errno);
    n = recv(sfd, buf, 5, MSG_PEEK);
    CHECK(N("recv_peek"), n == 5 && memcmp(buf, "hello", 5) == 0, "got %zd", n);
    n = recv(sfd, buf, sizeof buf, 0);
    CHECK(N("recv"), n == 5 && memcmp(buf, "hello", 5) == 0, "got %zd errno %d", n, errno);
    n = send(sfd, buf, (size_t)n, 0);
    n = recv(cfd, buf, sizeof buf, 0);
    CHECK(N("echo"), n == 5 && memcmp(buf, "hello", 5) == 0, "got %zd", n);

    /* Linux names no source for stream data */
    send(sfd, "src?", 4, 0);
    fromlen = sizeof from;
    n = recvfrom(cfd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fromlen);
    CHECK(N("recvfrom_no_address"), n == 4 && fromlen == 0, "got %zd, address length %u", n,
          fromlen);

    /* read/write on sockets */
    n = write(cfd, "via write", 9);
    CHECK(N("write"), n == 9, "wrote %zd errno %d", n, errno);
    n = read(sfd, buf, sizeof buf);
    CHECK(N("read"), n == 9 && memcmp(buf, "via write", 9) == 0, "read %zd errno %d", n, errno);

    /* nothing to read */
    CHECK_ERRNO(N("recv_dontwait_eagain"), recv(sfd, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);

    /* MSG_WAITALL gathers two sends */
    send(cfd, "abc", 3, 0);
    send(cfd, "defgh", 5, 0);
    n = recv(sfd, buf, 8, MSG_WAITALL);
    CHECK(N("recv_waitall"), n == 8 && memcmp(buf, "abcdefgh", 8) == 0, "got %zd", n);

    /* sendmsg / recvmsg with two iovecs */
    struct iovec out[2] = {{(void *)"scat", 4}, {(void *)"ter", 3}};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = out;
    mh.msg_iovlen = 2;
    n = sendmsg(cfd, &mh, 0);
    CHECK(N("sendmsg"), n == 7, "sent %zd", n);
    char p1[3], p2[16];
    struct iovec in[2] = {{p1, 3}, {p2, 4}};   /* exactly what was sent: MSG_WAITALL */
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = in;
    mh.msg_iovlen = 2;
    n = recvmsg(sfd, &mh, MSG_WAITALL);
    CHECK(N("recvmsg"), n == 7 && memcmp(p1, "sca", 3) == 0 && memcmp(p2, "tter", 4) == 0,
          "got %zd", n);

    /* options on a connected socket */
    CHECK_OK(N("tcp_nodelay_set"), set_int(cfd, IPPROTO_TCP, TCP_NODELAY, 1));
    CHECK(N("tcp_nodelay_get"), get_int(cfd, IPPROTO_TCP, TCP_NODELAY) == 1, "got %d",
          get_int(cfd, IPPROTO_TCP, TCP_NODELAY));
    CHECK_OK(N("so_keepalive_set"), set_int(cfd, SOL_SOCKET, SO_KEEPALIVE, 1));
    CHECK(N("so_keepalive_get"), get_int(cfd, SOL_SOCKET, SO_KEEPALIVE) == 1, "got %d",
          get_int(cfd, SOL_SOCKET, SO_KEEPALIVE));
    CHECK(N("tcp_keepalive_params"),
          set_int(cfd, IPPROTO_TCP, TCP_KEEPIDLE, 30) == 0 &&
              set_int(cfd, IPPROTO_TCP, TCP_KEEPINTVL, 5) == 0 &&
              set_int(cfd, IPPROTO_TCP, TCP_KEEPCNT, 4) == 0 &&
              get_int(cfd, IPPROTO_TCP, TCP_KEEPIDLE) == 30 &&
              get_int(cfd, IPPROTO_TCP, TCP_KEEPINTVL) == 5 &&
              get_int(cfd, IPPROTO_TCP, TCP_KEEPCNT) == 4,
          "idle %d intvl %d cnt %d (errno %d)", get_int(cfd, IPPROTO_TCP, TCP_KEEPIDLE),
          get_int(cfd, IPPROTO_TCP, TCP_KEEPINTVL), get_int(cfd, IPPROTO_TCP, TCP_KEEPCNT),
          errno);
    struct linger lg = {1, 3}, lg2 = {-1, -1};
    socklen_t lglen = sizeof lg2;
    CHECK(N("so_linger"),
          setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0 &&
              getsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg2, &lglen) == 0 && lg2.l_onoff == 1 &&
              lg2.l_linger == 3 && lglen == sizeof lg2,
          "got {%d, %d} len %u", lg2.l_onoff, lg2.l_linger, lglen);
    lg.l_onoff = 0;
    lg.l_linger = 0;
    setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    getsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg2, &lglen);
    CHECK(N("so_linger_off"), lg2.l_onoff == 0, "still on");
    CHECK(N("so_rcvbuf"), set_int(cfd, SOL_SOCKET, SO_RCVBUF, 65536) == 0 &&
                              get_int(cfd, SOL_SOCKET, SO_RCVBUF) >= 65536,
          "got %d", get_int(cfd, SOL_SOCKET, SO_RCVBUF));
    CHECK(N("so_sndbuf"), set_int(cfd, SOL_SOCKET, SO_SNDBUF, 65536) == 0 &&
                              get_int(cfd, SOL_SOCKET, SO_SNDBUF) >= 65536,
          "got %d", get_int(cfd, SOL_SOCKET, SO_SNDBUF));
    CHECK(N("so_priority"), set_int(cfd, SOL_SOCKET, SO_PRIORITY, 6) == 0 &&
                                get_int(cfd, SOL_SOCKET, SO_PRIORITY) == 6,
          "got %d (errno %d)", get_int(cfd, SOL_SOCKET, SO_PRIORITY), errno);
    /* TCP_CONGESTION by Linux's names: "reno" (4 bytes, no NUL) and "cubic" are set
     * and reported; "newreno" is no Linux algorithm (ENOENT) */
    char ca[16];
    socklen_t calen = sizeof ca;
    memset(ca, 'x', sizeof ca);
    CHECK(N("tcp_congestion_reno"),
          setsockopt(cfd, IPPROTO_TCP, TCP_CONGESTION, "reno", 4) == 0 &&
              getsockopt(cfd, IPPROTO_TCP, TCP_CONGESTION, ca, &calen) == 0 &&
              strncmp(ca, "reno", sizeof ca) == 0,
          "got '%.16s' (errno %d)", ca, errno);
    errno = 0;
    CHECK(N("tcp_congestion_newreno_enoent"),
          setsockopt(cfd, IPPROTO_TCP, TCP_CONGESTION, "newreno", 7) == -1 && errno == ENOENT,
          "errno %d", errno);
    calen = sizeof ca;
    CHECK(N("tcp_congestion_cubic"),
          setsockopt(cfd, IPPROTO_TCP, TCP_CONGESTION, "cubic", 6) == 0 &&
              getsockopt(cfd, IPPROTO_TCP, TCP_CONGESTION, ca, &calen) == 0 &&
              strncmp(ca, "cubic", sizeof ca) == 0,
          "got '%.16s' (errno %d)", ca, errno);
    struct timeval tv = {0, 200000}, tv2 = {0, 0};
    socklen_t tvlen = sizeof tv2;
    CHECK(N("so_rcvtimeo"),
          setsockopt(sfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
              getsockopt(sfd, SOL_SOCKET, SO_RCVTIMEO, &tv2, &tvlen) == 0 && tv2.tv_sec == 0 &&
              tv2.tv_usec == 200000,
          "got %lld.%06lld", (long long)tv2.tv_sec, (long long)tv2.tv_usec);
    double t0 = now_ms();
    errno = 0;
    n = recv(sfd, buf, sizeof buf, 0);
    double waited = now_ms() - t0;
    CHECK(N("so_rcvtimeo_expires"), n == -1 && errno == EAGAIN && waited >= 150 && waited < 3000,
          "recv returned %zd errno %d after %.0f ms", n, errno, waited);
    /* read() on a socket is bounded by SO_RCVTIMEO as recv() is */
    t0 = now_ms();
    errno = 0;
    n = read(sfd, buf, sizeof buf);
    waited = now_ms() - t0;
    CHECK(N("so_rcvtimeo_read_expires"),
          n == -1 && errno == EAGAIN && waited >= 150 && waited < 3000,
          "read returned %zd errno %d after %.0f ms", n, errno, waited);
    tv.tv_sec = 7;
    tv.tv_usec = 500000;
    CHECK(N("so_sndtimeo"),
          setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0 &&
              getsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv2, &tvlen) == 0 && tv2.tv_sec == 7 &&
              tv2.tv_usec == 500000,
          "got %lld.%06lld", (long long)tv2.tv_sec, (long long)tv2.tv_usec);
    tv.tv_usec = 1000000;
    CHECK_ERRNO(N("so_rcvtimeo_edom"), setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv),
                EDOM);
    if (family == AF_INET) {
        CHECK(N("ip_tos"), set_int(cfd, IPPROTO_IP, IP_TOS, 0x10) == 0 &&
                               get_int(cfd, IPPROTO_IP, IP_TOS) == 0x10,
              "got %d", get_int(cfd, IPPROTO_IP, IP_TOS));
        CHECK(N("ip_ttl"), set_int(cfd, IPPROTO_IP, IP_TTL, 33) == 0 &&
                               get_int(cfd, IPPROTO_IP, IP_TTL) == 33,
              "got %d", get_int(cfd, IPPROTO_IP, IP_TTL));
        CHECK(N("ip_ttl_default"), set_int(cfd, IPPROTO_IP, IP_TTL, -1) == 0 &&
                                       get_int(cfd, IPPROTO_IP, IP_TTL) == 64,
              "got %d", get_int(cfd, IPPROTO_IP, IP_TTL));
        CHECK_ERRNO(N("ip_ttl_range"), set_int(cfd, IPPROTO_IP, IP_TTL, 256), EINVAL);
    } else {
        CHECK(N("ipv6_unicast_hops"), set_int(cfd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 17) == 0 &&
                                          get_int(cfd, IPPROTO_IPV6, IPV6_UNICAST_HOPS) == 17,
              "got %d", get_int(cfd, IPPROTO_IPV6, IPV6_UNICAST_HOPS));
    }
    CHECK(N("sockatmark"), sockatmark(cfd) == 0, "errno %d", errno);
    CHECK_ERRNO(N("connect_again_eisconn"), connect(cfd, (struct sockaddr *)&srv, srvlen), EISCONN);

    /* half close: the server sees end of stream and can still send */
    CHECK_OK(N("shutdown_wr"), shutdown(cfd, SHUT_WR));
    n = recv(sfd, buf, sizeof buf, 0);
    CHECK(N("recv_eof"), n == 0, "got %zd errno %d", n, errno);
    n = send(sfd, "late", 4, 0);
    n = recv(cfd, buf, sizeof buf, 0);
    CHECK(N("half_close_reverse"), n == 4 && memcmp(buf, "late", 4) == 0, "got %zd errno %d", n,
          errno);
    CHECK_ERRNO(N("shutdown_einval"), shutdown(cfd, 99), EINVAL);
    CHECK_OK(N("close"), close(sfd));
    close(cfd);
    close(lfd);
#undef N
}

static void test_nonblocking(void) {
    int lfd = tcp_listener(AF_INET, "127.0.0.1");
    struct sockaddr_in srv = sin4("127.0.0.1", port_of(lfd));

    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    int fl = fcntl(cfd, F_GETFL);
    CHECK_OK("fcntl_setfl_nonblock", fcntl(cfd, F_SETFL, fl | O_NONBLOCK));
    CHECK("fcntl_getfl_nonblock", (fcntl(cfd, F_GETFL) & O_NONBLOCK) != 0, "flag not set");
    CHECK("fcntl_getfl_rdwr", (fcntl(cfd, F_GETFL) & O_ACCMODE) == O_RDWR, "flags 0x%x",
          fcntl(cfd, F_GETFL));
    CHECK_ERRNO("nb_connect_einprogress", connect(cfd, (struct sockaddr *)&srv, sizeof srv),
                EINPROGRESS);
    struct pollfd p = {cfd, POLLOUT, 0};
    int rc = poll(&p, 1, 3000);
    CHECK("nb_connect_poll_writable", rc == 1 && (p.revents & POLLOUT) &&
                                          !(p.revents & (POLLERR | POLLHUP)),
          "poll %d revents 0x%x", rc, p.revents);
    CHECK("nb_connect_so_error", get_int(cfd, SOL_SOCKET, SO_ERROR) == 0, "got %d",
          get_int(cfd, SOL_SOCKET, SO_ERROR));

    rc = wait_readable(lfd, 3000);
    CHECK("listener_poll_readable", rc == 1, "poll %d", rc);
    int sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    CHECK("accept4_nonblock", sfd >= 0 && (fcntl(sfd, F_GETFL) & O_NONBLOCK), "fd %d errno %d",
          sfd, errno);
    char buf[64];
    CHECK_ERRNO("nb_recv_eagain", recv(sfd, buf, sizeof buf, 0), EAGAIN);
    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
    CHECK_ERRNO("nb_accept_eagain", accept(lfd, NULL, NULL), EAGAIN);

    int off = 0, on = 1;
    CHECK("ioctl_fionbio_off", ioctl(cfd, FIONBIO, &off) == 0 && !(fcntl(cfd, F_GETFL) & O_NONBLOCK),
          "errno %d", errno);
    CHECK("ioctl_fionbio_on", ioctl(cfd, FIONBIO, &on) == 0 && (fcntl(cfd, F_GETFL) & O_NONBLOCK),
          "errno %d", errno);

    /* data makes the accepted socket readable */
    send(cfd, "ping", 4, 0);
    struct pollfd q = {sfd, POLLIN | POLLOUT, 0};
    rc = poll(&q, 1, 3000);
    CHECK("poll_in_out", rc == 1 && (q.revents & POLLIN) && (q.revents & POLLOUT),
          "poll %d revents 0x%x", rc, q.revents);
    int avail = -1;
    CHECK("ioctl_fionread", ioctl(sfd, FIONREAD, &avail) == 0 && avail == 4, "avail %d errno %d",
          avail, errno);
    CHECK("nb_recv_data", recv(sfd, buf, sizeof buf, 0) == 4, "errno %d", errno);

    /* the peer closes: readable, then end of stream */
    close(cfd);
    rc = wait_readable(sfd, 3000);
    CHECK("poll_peer_closed", rc == 1, "poll %d", rc);
    CHECK("recv_after_peer_close", recv(sfd, buf, sizeof buf, 0) == 0, "errno %d", errno);
    close(sfd);

    /* a refused non-blocking connect */
    int port = closed_port();
    struct sockaddr_in dead = sin4("127.0.0.1", port);
    cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK("sock_nonblock_flag", (fcntl(cfd, F_GETFL) & O_NONBLOCK) != 0, "flag not set");
    errno = 0;
    rc = connect(cfd, (struct sockaddr *)&dead, sizeof dead);
    int e = errno;
    if (rc == -1 && e == EINPROGRESS) {
        p.fd = cfd;
        p.events = POLLOUT;
        p.revents = 0;
        rc = poll(&p, 1, 3000);
        CHECK("nb_connect_refused_poll", rc == 1 && (p.revents & POLLERR), "poll %d revents 0x%x",
              rc, p.revents);
        int err = get_int(cfd, SOL_SOCKET, SO_ERROR);
        CHECK("nb_connect_refused_so_error", err == ECONNREFUSED, "SO_ERROR %d (%s)", err,
              strerror(err));
        CHECK("so_error_cleared", get_int(cfd, SOL_SOCKET, SO_ERROR) == 0, "not cleared");
    } else {
        CHECK("nb_connect_refused_poll", rc == -1 && e == ECONNREFUSED, "connect %d errno %d", rc,
              e);
        ok("nb_connect_refused_so_error");
        ok("so_error_cleared");
    }
    close(cfd);

    /* the same seen through select(): readable and writable */
    cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(cfd, (struct sockaddr *)&dead, sizeof dead);
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(cfd, &r);
    FD_SET(cfd, &w);
    struct timeval tv = {3, 0};
    rc = select(cfd + 1, &r, &w, NULL, &tv);
    CHECK("select_connect_refused", rc >= 1 && FD_ISSET(cfd, &w), "select %d errno %d", rc, errno);
    close(cfd);
    close(lfd);
}

/* An IPv6 socket also reaches IPv4 (as ::ffff:a.b.c.d) unless IPV6_V6ONLY. */
static void test_dual_stack(void) {
    int lfd = socket(AF_INET6, SOCK_STREAM, 0);
    set_int(lfd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
    struct sockaddr_in6 any = sin6("::", 0);
    bind(lfd, (struct sockaddr *)&any, sizeof any);
    listen(lfd, 4);
    int port = port_of(lfd);
    CHECK("ipv6_v6only_off", get_int(lfd, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "got %d",
          get_int(lfd, IPPROTO_IPV6, IPV6_V6ONLY));
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = sin4("127.0.0.1", port);
    CHECK_OK("dual_stack_connect4", connect(cfd, (struct sockaddr *)&to, sizeof to));
    struct sockaddr_in6 peer;
    socklen_t len = sizeof peer;
    int sfd = accept(lfd, (struct sockaddr *)&peer, &len);
    char text[INET6_ADDRSTRLEN] = "";
    if (sfd >= 0)
        inet_ntop(AF_INET6, &peer.sin6_addr, text, sizeof text);
    CHECK("dual_stack_mapped_peer", sfd >= 0 && len == sizeof peer && peer.sin6_family == AF_INET6 &&
                                        strcmp(text, "::ffff:127.0.0.1") == 0 &&
                                        ntohs(peer.sin6_port) == port_of(cfd),
          "fd %d len %u peer %s", sfd, len, text);
    if (sfd >= 0)
        close(sfd);
    close(cfd);
    close(lfd);

    lfd = socket(AF_INET6, SOCK_STREAM, 0);
    set_int(lfd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    bind(lfd, (struct sockaddr *)&any, sizeof any);
    listen(lfd, 4);
    cfd = socket(AF_INET, SOCK_STREAM, 0);
    to = sin4("127.0.0.1", port_of(lfd));
    CHECK_ERRNO("v6only_refuses_ipv4", connect(cfd, (struct sockaddr *)&to, sizeof to),
                ECONNREFUSED);
    close(cfd);
    close(lfd);
}

static void test_select_and_poll(void) {
    int u1 = udp_bound(AF_INET, "127.0.0.1"), u2 = udp_bound(AF_INET, "127.0.0.1"),
        u3 = udp_bound(AF_INET, "127.0.0.1");
    int tx = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in d1 = sin4("127.0.0.1", port_of(u1)), d3 = sin4("127.0.0.1", port_of(u3));
    sendto(tx, "one", 3, 0, (struct sockaddr *)&d1, sizeof d1);
    sendto(tx, "three", 5, 0, (struct sockaddr *)&d3, sizeof d3);
    wait_readable(u3, 2000);

    fd_set r, w, x;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_ZERO(&x);
    FD_SET(u1, &r);
    FD_SET(u2, &r);
    FD_SET(u3, &r);
    FD_SET(u2, &w);
    FD_SET(u1, &x);
    int maxfd = u1 > u2 ? u1 : u2;
    maxfd = maxfd > u3 ? maxfd : u3;
    struct timeval tv = {2, 0};
    int rc = select(maxfd + 1, &r, &w, &x, &tv);
    CHECK("select_several", rc == 3 && FD_ISSET(u1, &r) && !FD_ISSET(u2, &r) &&
                                FD_ISSET(u3, &r) && FD_ISSET(u2, &w) && !FD_ISSET(u1, &x),
          "select %d r:%d%d%d w:%d x:%d errno %d", rc, FD_ISSET(u1, &r), FD_ISSET(u2, &r),
          FD_ISSET(u3, &r), FD_ISSET(u2, &w), FD_ISSET(u1, &x), errno);

    FD_ZERO(&r);
    FD_SET(u2, &r);
    tv.tv_sec = 0;
    tv.tv_usec = 100000;
    double t0 = now_ms();
    rc = select(u2 + 1, &r, NULL, NULL, &tv);
    double waited = now_ms() - t0;
    CHECK("select_timeout", rc == 0 && !FD_ISSET(u2, &r) && waited >= 80 && waited < 3000,
          "select %d after %.0f ms", rc, waited);

    struct pollfd pf[4] = {{u1, POLLIN, 0}, {-1, POLLIN, 0}, {u2, POLLIN, 0}, {u3, POLLIN, 0}};
    rc = poll(pf, 4, 1000);
    CHECK("poll_several", rc == 2 && (pf[0].revents & POLLIN) && pf[1].revents == 0 &&
                              pf[2].revents == 0 && (pf[3].revents & POLLIN),
          "poll %d revents %x %x %x %x", rc, pf[0].revents, pf[1].revents, pf[2].revents,
          pf[3].revents);
    t0 = now_ms();
    rc = poll(NULL, 0, 50);
    waited = now_ms() - t0;
    CHECK("poll_sleep", rc == 0 && waited >= 40, "poll %d after %.0f ms", rc, waited);
    /* more descriptors than fit the SDK's on-stack buffers */
    enum { MANY = 40 };
    int many[MANY];
    struct pollfd mp[MANY];
    fd_set mw;
    FD_ZERO(&mw);
    int top = 0;
    for (int k = 0; k < MANY; k++) {
        many[k] = socket(AF_INET, SOCK_DGRAM, 0);
        mp[k] = (struct pollfd){many[k], POLLIN | POLLOUT, 0};
        FD_SET(many[k], &mw);
        top = many[k] > top ? many[k] : top;
    }
    rc = poll(mp, MANY, 1000);
    CHECK("poll_many", rc == MANY && (mp[MANY - 1].revents & POLLOUT), "poll %d", rc);
    tv.tv_sec = 1;
    tv.tv_usec = 0;
    rc = select(top + 1, NULL, &mw, NULL, &tv);
    CHECK("select_many", rc == MANY && FD_ISSET(many[0], &mw) && FD_ISSET(many[MANY - 1], &mw),
          "select %d", rc);
    for (int k = 0; k < MANY; k++)
        close(many[k]);

    int dead = socket(AF_INET, SOCK_DGRAM, 0);
    close(dead);
    struct pollfd bad = {dead, POLLIN, 0};
    rc = poll(&bad, 1, 0);
    CHECK("poll_nval", rc == 1 && bad.revents == POLLNVAL, "poll %d revents 0x%x", rc,
          bad.revents);
    close(u1);
    close(u2);
    close(u3);
    close(tx);
}

static void test_udp(int family, const char *addr, const char *tag) {
    char name[64];
#define N(s) (snprintf(name, sizeof name, "%s_%s", tag, s), name)
    int rx = udp_bound(family, addr), tx = udp_bound(family, addr);
    if (rx < 0 || tx < 0) {
        fail(N("bind"), "errno %d (%s)", errno, strerror(errno));
        return;
    }
    ok(N("bind"));
    CHECK(N("so_type"), get_int(rx, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, "got %d",
          get_int(rx, SOL_SOCKET, SO_TYPE));
    struct timeval safety = {5, 0};
    setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &safety, sizeof safety);
    setsockopt(tx, SOL_SOCKET, SO_RCVTIMEO, &safety, sizeof safety);
    struct sockaddr_storage dst, txname;
    socklen_t dstlen = sizeof dst, txlen = sizeof txname;
    getsockname(rx, (struct sockaddr *)&dst, &dstlen);
    getsockname(tx, (struct sockaddr *)&txname, &txlen);

    ssize_t n = sendto(tx, "datagram", 8, 0, (struct sockaddr *)&dst, dstlen);
    CHECK(N("sendto"), n == 8, "sent %zd errno %d", n, errno);
    char buf[128];
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    n = recvfrom(rx, buf, sizeof buf, MSG_PEEK, (struct sockaddr *)&from, &fromlen);
    CHECK(N("recvfrom_peek"), n == 8, "got %zd errno %d", n, errno);
    fromlen = sizeof from;
    n = recvfrom(rx, buf, sizeof buf, 0, (struct sockaddr *)&from, &fromlen);
    CHECK(N("recvfrom"), n == 8 && memcmp(buf, "datagram", 8) == 0, "got %zd errno %d", n, errno);
    CHECK(N("recvfrom_source"), fromlen == txlen && memcmp(&from, &txname, txlen) == 0,
          "source is not the sender (len %u vs %u)", fromlen, txlen);

    /* a datagram larger than the buffer */
    char big[100];
    memset(big, 'x', sizeof big);
    sendto(tx, big, sizeof big, 0, (struct sockaddr *)&dst, dstlen);
    sendto(tx, big, sizeof big, 0, (struct sockaddr *)&dst, dstlen);
    wait_readable(rx, 2000);
    n = recv(rx, buf, 10, MSG_TRUNC);
    CHECK(N("recv_msg_trunc_len"), n == 100, "got %zd errno %d", n, errno);
    struct iovec iov = {buf, 10};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    n = recvmsg(rx, &mh, 0);
    CHECK(N("recvmsg_truncated_flag"), n == 10 && (mh.msg_flags & MSG_TRUNC), "got %zd flags 0x%x",
          n, mh.msg_flags);

    /* sendmsg with an address and two iovecs; recvmsg reports the source */
    struct iovec out[2] = {{(void *)"two ", 4}, {(void *)"parts", 5}};
    memset(&mh, 0, sizeof mh);
    mh.msg_name = &dst;
    mh.msg_namelen = dstlen;
    mh.msg_iov = out;
    mh.msg_iovlen = 2;
    CHECK(N("sendmsg"), sendmsg(tx, &mh, 0) == 9, "errno %d", errno);
    struct sockaddr_storage src;
    memset(&mh, 0, sizeof mh);
    iov.iov_len = sizeof buf;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_name = &src;
    mh.msg_namelen = sizeof src;
    n = recvmsg(rx, &mh, 0);
    CHECK(N("recvmsg"), n == 9 && memcmp(buf, "two parts", 9) == 0 && mh.msg_namelen == txlen &&
                            memcmp(&src, &txname, txlen) == 0 && mh.msg_flags == 0,
          "got %zd namelen %u flags 0x%x", n, mh.msg_namelen, mh.msg_flags);

    /* connected UDP */
    CHECK_OK(N("connect"), connect(tx, (struct sockaddr *)&dst, dstlen));
    CHECK(N("send_connected"), send(tx, "conn", 4, 0) == 4, "errno %d", errno);
    CHECK(N("recv_connected"), recv(rx, buf, sizeof buf, 0) == 4, "errno %d", errno);
    struct sockaddr_storage pn;
    socklen_t pnlen = sizeof pn;
    CHECK(N("getpeername"), getpeername(tx, (struct sockaddr *)&pn, &pnlen) == 0 &&
                                pnlen == dstlen && memcmp(&pn, &dst, dstlen) == 0,
          "errno %d", errno);
    CHECK_ERRNO(N("recv_dontwait_eagain"), recv(rx, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    close(rx);
    close(tx);
#undef N
}

static void test_udp_misc(void) {
    /* SO_REUSEPORT lets two sockets share a port */
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
    set_int(a, SOL_SOCKET, SO_REUSEPORT, 1);
    set_int(b, SOL_SOCKET, SO_REUSEPORT, 1);
    CHECK("so_reuseport_get", get_int(a, SOL_SOCKET, SO_REUSEPORT) == 1, "got %d",
          get_int(a, SOL_SOCKET, SO_REUSEPORT));
    struct sockaddr_in s = sin4("127.0.0.1", 0);
    bind(a, (struct sockaddr *)&s, sizeof s);
    s.sin_port = htons((uint16_t)port_of(a));
    CHECK_OK("so_reuseport_bind", bind(b, (struct sockaddr *)&s, sizeof s));
    close(a);
    close(b);

    /* broadcast needs SO_BROADCAST */
    struct ifaddrs *ifa, *i;
    struct sockaddr_in bcast;
    int have_bcast = 0;
    if (getifaddrs(&ifa) == 0) {
        for (i = ifa; i; i = i->ifa_next)
            if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && strcmp(i->ifa_name, ifname) == 0 &&
                (i->ifa_flags & IFF_BROADCAST) && i->ifa_broadaddr) {
                memcpy(&bcast, i->ifa_broadaddr, sizeof bcast);
                have_bcast = 1;
            }
        freeifaddrs(ifa);
    }
    a = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK("so_broadcast_default", get_int(a, SOL_SOCKET, SO_BROADCAST) == 0, "got %d",
          get_int(a, SOL_SOCKET, SO_BROADCAST));
    if (have_bcast) {
        bcast.sin_port = htons(9);
        CHECK_ERRNO("broadcast_eacces", sendto(a, "b", 1, 0, (struct sockaddr *)&bcast, sizeof bcast),
                    EACCES);
        set_int(a, SOL_SOCKET, SO_BROADCAST, 1);
        CHECK("so_broadcast_get", get_int(a, SOL_SOCKET, SO_BROADCAST) == 1, "got %d",
              get_int(a, SOL_SOCKET, SO_BROADCAST));
        CHECK("broadcast_send", sendto(a, "b", 1, 0, (struct sockaddr *)&bcast, sizeof bcast) == 1,
              "errno %d (%s)", errno, strerror(errno));
    } else {
        fail("broadcast_eacces", "no broadcast address on %s", ifname);
    }
    close(a);
}

static void test_multicast4(void) {
    struct in_addr group, local;
    inet_pton(AF_INET, mcast4, &group);
    inet_pton(AF_INET, v4, &local);

    int rx = socket(AF_INET, SOCK_DGRAM, 0);
    set_int(rx, SOL_SOCKET, SO_REUSEADDR, 1);
    struct sockaddr_in any = sin4("0.0.0.0", 0);
    bind(rx, (struct sockaddr *)&any, sizeof any);
    int port = port_of(rx);
    struct ip_mreq mreq = {group, local};
    CHECK_OK("ip_add_membership", setsockopt(rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq));
    CHECK_ERRNO("ip_add_membership_twice",
                setsockopt(rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq), EADDRINUSE);

    int tx = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_OK("ip_multicast_if", setsockopt(tx, IPPROTO_IP, IP_MULTICAST_IF, &local, sizeof local));
    struct in_addr got = {0};
    socklen_t len = sizeof got;
    getsockopt(tx, IPPROTO_IP, IP_MULTICAST_IF, &got, &len);
    CHECK("ip_multicast_if_get", got.s_addr == local.s_addr, "got %08x", (unsigned)got.s_addr);
    CHECK("ip_multicast_ttl", set_int(tx, IPPROTO_IP, IP_MULTICAST_TTL, 3) == 0 &&
                                  get_int(tx, IPPROTO_IP, IP_MULTICAST_TTL) == 3,
          "got %d", get_int(tx, IPPROTO_IP, IP_MULTICAST_TTL));
    unsigned char ttl1 = 1;
    CHECK_OK("ip_multicast_ttl_byte", setsockopt(tx, IPPROTO_IP, IP_MULTICAST_TTL, &ttl1, 1));
    CHECK("ip_multicast_loop", set_int(tx, IPPROTO_IP, IP_MULTICAST_LOOP, 1) == 0 &&
                                   get_int(tx, IPPROTO_IP, IP_MULTICAST_LOOP) == 1,
          "got %d", get_int(tx, IPPROTO_IP, IP_MULTICAST_LOOP));

    struct sockaddr_in dst = sin4(mcast4, port);
    CHECK("mcast4_send", sendto(tx, "mc4", 3, 0, (struct sockaddr *)&dst, sizeof dst) == 3,
          "errno %d (%s)", errno, strerror(errno));
    char buf[16];
    int rc = wait_readable(rx, 2000);
    CHECK("mcast4_loopback_delivery", rc == 1 && recv(rx, buf, sizeof buf, 0) == 3 &&
                                          memcmp(buf, "mc4", 3) == 0,
          "poll %d", rc);

    set_int(tx, IPPROTO_IP, IP_MULTICAST_LOOP, 0);
    sendto(tx, "nl", 2, 0, (struct sockaddr *)&dst, sizeof dst);
    rc = wait_readable(rx, 300);
    CHECK("mcast4_loop_off", rc == 0, "delivered with IP_MULTICAST_LOOP 0");
    set_int(tx, IPPROTO_IP, IP_MULTICAST_LOOP, 1);

    CHECK_OK("ip_drop_membership",
             setsockopt(rx, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mreq, sizeof mreq));
    sendto(tx, "gone", 4, 0, (struct sockaddr *)&dst, sizeof dst);
    rc = wait_readable(rx, 300);
    CHECK("mcast4_after_drop", rc == 0, "still delivered after IP_DROP_MEMBERSHIP");
    CHECK_ERRNO("ip_drop_membership_again",
                setsockopt(rx, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mreq, sizeof mreq),
                EADDRNOTAVAIL);

    /* joining by interface index (struct ip_mreqn) */
    struct ip_mreqn mreqn;
    memset(&mreqn, 0, sizeof mreqn);
    mreqn.imr_multiaddr = group;
    mreqn.imr_ifindex = (int)if_nametoindex(ifname);
    CHECK_OK("ip_add_membership_mreqn",
             setsockopt(rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreqn, sizeof mreqn));
    sendto(tx, "again", 5, 0, (struct sockaddr *)&dst, sizeof dst);
    rc = wait_readable(rx, 2000);
    CHECK("mcast4_mreqn_delivery", rc == 1, "poll %d", rc);
    close(rx);
    close(tx);
}

static void test_multicast6(void) {
    unsigned ifindex = if_nametoindex(ifname);
    struct ipv6_mreq mreq;
    memset(&mreq, 0, sizeof mreq);
    inet_pton(AF_INET6, mcast6, &mreq.ipv6mr_multiaddr);
    mreq.ipv6mr_interface = ifindex;

    int rx = socket(AF_INET6, SOCK_DGRAM, 0);
    set_int(rx, SOL_SOCKET, SO_REUSEADDR, 1);
    struct sockaddr_in6 any = sin6("::", 0);
    bind(rx, (struct sockaddr *)&any, sizeof any);
    int port = port_of(rx);
    CHECK_OK("ipv6_join_group", setsockopt(rx, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof mreq));

    int tx = socket(AF_INET6, SOCK_DGRAM, 0);
    CHECK("ipv6_multicast_if", set_int(tx, IPPROTO_IPV6, IPV6_MULTICAST_IF, (int)ifindex) == 0 &&
                                   get_int(tx, IPPROTO_IPV6, IPV6_MULTICAST_IF) == (int)ifindex,
          "got %d", get_int(tx, IPPROTO_IPV6, IPV6_MULTICAST_IF));
    CHECK("ipv6_multicast_hops", set_int(tx, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 2) == 0 &&
                                     get_int(tx, IPPROTO_IPV6, IPV6_MULTICAST_HOPS) == 2,
          "got %d", get_int(tx, IPPROTO_IPV6, IPV6_MULTICAST_HOPS));
    CHECK("ipv6_multicast_loop", set_int(tx, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1) == 0 &&
                                     get_int(tx, IPPROTO_IPV6, IPV6_MULTICAST_LOOP) == 1,
          "got %d", get_int(tx, IPPROTO_IPV6, IPV6_MULTICAST_LOOP));

    struct sockaddr_in6 dst = sin6(mcast6, port);
    CHECK("mcast6_send", sendto(tx, "mc6", 3, 0, (struct sockaddr *)&dst, sizeof dst) == 3,
          "errno %d (%s)", errno, strerror(errno));
    char buf[16];
    int rc = wait_readable(rx, 2000);
    CHECK("mcast6_loopback_delivery", rc == 1 && recv(rx, buf, sizeof buf, 0) == 3 &&
                                          memcmp(buf, "mc6", 3) == 0,
          "poll %d", rc);
    CHECK_OK("ipv6_leave_group", setsockopt(rx, IPPROTO_IPV6, IPV6_LEAVE_GROUP, &mreq, sizeof mreq));
    sendto(tx, "gone", 4, 0, (struct sockaddr *)&dst, sizeof dst);
    rc = wait_readable(rx, 300);
    CHECK("mcast6_after_leave", rc == 0, "still delivered after IPV6_LEAVE_GROUP");
    CHECK_OK("ipv6_add_membership_alias",
             setsockopt(rx, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mreq, sizeof mreq));
    CHECK_OK("ipv6_drop_membership_alias",
             setsockopt(rx, IPPROTO_IPV6, IPV6_DROP_MEMBERSHIP, &mreq, sizeof mreq));

    int v6only = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK("ipv6_v6only", set_int(v6only, IPPROTO_IPV6, IPV6_V6ONLY, 1) == 0 &&
                             get_int(v6only, IPPROTO_IPV6, IPV6_V6ONLY) == 1,
          "got %d", get_int(v6only, IPPROTO_IPV6, IPV6_V6ONLY));
    close(v6only);
    close(rx);
    close(tx);
}

static int prefix_len(const struct sockaddr *mask) {
    const unsigned char *b;
    int n, bits = 0;
    if (mask == NULL)
        return -1;
    if (mask->sa_family == AF_INET) {
        b = (const unsigned char *)&((const struct sockaddr_in *)mask)->sin_addr;
        n = 4;
    } else {
        b = ((const struct sockaddr_in6 *)mask)->sin6_addr.s6_addr;
        n = 16;
    }
    for (int i = 0; i < n; i++)
        for (int k = 7; k >= 0; k--)
            bits += (b[i] >> k) & 1;
    return bits;
}

static void test_interfaces(void) {
    struct ifaddrs *list;
    CHECK_OK("getifaddrs", getifaddrs(&list));
    int lo_ok = 0, v4_ok = 0, v6_ok = 0, packet_ok = 0;
    for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
        char text[INET6_ADDRSTRLEN];
        if (i->ifa_addr == NULL)
            continue;
        int family = i->ifa_addr->sa_family;
        if (family == AF_INET || family == AF_INET6) {
            addr_text(i->ifa_addr, text, sizeof text);
            printf("ifaddr %s %s %s/%d flags=0x%x\n", i->ifa_name,
                   family == AF_INET ? "inet" : "inet6", text, prefix_len(i->ifa_netmask),
                   i->ifa_flags & 0xffff);
            if (strcmp(i->ifa_name, "lo") == 0 && family == AF_INET &&
                strcmp(text, "127.0.0.1") == 0 && (i->ifa_flags & IFF_LOOPBACK) &&
                (i->ifa_flags & IFF_UP))
                lo_ok = 1;
            if (strcmp(i->ifa_name, ifname) == 0 && strcmp(text, family == AF_INET ? v4 : v6) == 0) {
                if (family == AF_INET)
                    v4_ok = 1;
                else
                    v6_ok = 1;
            }
        }
        else if (family == AF_PACKET) {
            const unsigned char *mac = ((const struct sockaddr_ll *)i->ifa_addr)->sll_addr;
            printf("iface %u %s flags=0x%x mac=%02x:%02x:%02x:%02x:%02x:%02x\n",
                   if_nametoindex(i->ifa_name), i->ifa_name, i->ifa_flags & 0xffff, mac[0],
                   mac[1], mac[2], mac[3], mac[4], mac[5]);
            if (strcmp(i->ifa_name, ifname) == 0 && (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
                packet_ok = 1;
        }
    }
    freeifaddrs(list);
    CHECK("getifaddrs_lo", lo_ok, "no 127.0.0.1 on lo with IFF_LOOPBACK|IFF_UP");
    CHECK("getifaddrs_v4", v4_ok, "%s not on %s", v4, ifname);
    CHECK("getifaddrs_v6", v6_ok, "%s not on %s", v6, ifname);
    CHECK("getifaddrs_packet", packet_ok, "no AF_PACKET entry with a MAC for %s", ifname);

    unsigned idx = if_nametoindex(ifname);
    char nm[IF_NAMESIZE];
    CHECK("if_nametoindex", idx > 0, "0 for %s", ifname);
    CHECK("if_indextoname", if_indextoname(idx, nm) != NULL && strcmp(nm, ifname) == 0,
          "errno %d", errno);
    CHECK("if_nametoindex_lo", if_nametoindex("lo") == 1, "got %u", if_nametoindex("lo"));
    errno = 0;
    CHECK("if_nametoindex_unknown", if_nametoindex("nosuch0") == 0 && errno == ENODEV, "errno %d",
          errno);
    errno = 0;
    CHECK("if_indextoname_unknown", if_indextoname(9999, nm) == NULL && errno == ENXIO, "errno %d",
          errno);
    struct if_nameindex *ni = if_nameindex();
    int seen_lo = 0, seen_if = 0;
    for (struct if_nameindex *p = ni; p && p->if_index; p++) {
        seen_lo |= strcmp(p->if_name, "lo") == 0 && p->if_index == 1;
        seen_if |= strcmp(p->if_name, ifname) == 0 && p->if_index == idx;
    }
    CHECK("if_nameindex", ni && seen_lo && seen_if, "lo %d %s %d", seen_lo, ifname, seen_if);
    if_freenameindex(ni);
}

/* 1 if `res` has an address equal to text (family from the text). */
static int ai_has(const struct addrinfo *res, const char *text) {
    char buf[INET6_ADDRSTRLEN];
    for (; res != NULL; res = res->ai_next)
        if (strcmp(addr_text(res->ai_addr, buf, sizeof buf), text) == 0)
            return 1;
    return 0;
}

static void test_getaddrinfo(void) {
    struct addrinfo hints, *res = NULL;
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo("127.0.0.1", "8080", &hints, &res);
    CHECK("gai_numeric4", rc == 0 && res && !res->ai_next && res->ai_family == AF_INET &&
                              res->ai_socktype == SOCK_STREAM &&
                              res->ai_protocol == IPPROTO_TCP &&
                              res->ai_addrlen == sizeof(struct sockaddr_in) &&
                              ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port) == 8080 &&
                              ai_has(res, "127.0.0.1"),
          "rc %d (%s)", rc, gai_strerror(rc));
    if (rc == 0)
        freeaddrinfo(res);

    memset(&hints, 0, sizeof hints);
    hints.ai_flags = AI_NUMERICHOST;
    hints.ai_socktype = SOCK_DGRAM;
    rc = getaddrinfo("fd00::7", NULL, &hints, &res);
    CHECK("gai_numeric6", rc == 0 && res->ai_family == AF_INET6 && res->ai_protocol == IPPROTO_UDP &&
                              ai_has(res, "fd00::7"),
          "rc %d (%s)", rc, gai_strerror(rc));
    if (rc == 0)
        freeaddrinfo(res);

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET6;
    hints.ai_flags = AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(NULL, "4242", &hints, &res);
    CHECK("gai_passive6", rc == 0 && ai_has(res, "::") &&
                              ntohs(((struct sockaddr_in6 *)res->ai_addr)->sin6_port) == 4242,
          "rc %d (%s)", rc, gai_strerror(rc));
    if (rc == 0)
        freeaddrinfo(res);
    hints.ai_family = AF_UNSPEC;
    rc = getaddrinfo(NULL, "4242", &hints, &res);
    CHECK("gai_passive_unspec", rc == 0 && res->ai_family == AF_INET && res->ai_next &&
                                    res->ai_next->ai_family == AF_INET6 &&
                                    ai_has(res, "0.0.0.0") && ai_has(res, "::"),
          "rc %d (%s)", rc, gai_strerror(rc));
    if (rc == 0)
        freeaddrinfo(res);
    hints.ai_family = AF_INET;
    hints.ai_flags = 0;
    rc = getaddrinfo(NULL, "4242", &hints, &res);
    CHECK("gai_null_node_loopback", rc == 0 && ai_has(res, "127.0.0.1"), "rc %d (%s)", rc,
          gai_strerror(rc));
    if (rc == 0)
        freeaddrinfo(res);

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo("localhost", "80", &hints, &res);
    CHECK("gai_localhost", rc == 0 && ai_has(res, "127.0.0.1") && ai_has(res, "::1"),
          "rc %d (%s)", rc, gai_strerror(rc));
    if (rc == 0)
        freeaddrinfo(res);
    hints.ai_family = AF_INET;
    rc = getaddrinfo("localhost", NULL, &hints, &res);
    CHECK("gai_localhost4", rc == 0 && ai_has(res, "127.0.0.1") && !ai_has(res, "::1"),
          "rc %d (%s)", rc, gai_strerror(rc));
    if (rc == 0)
        freeaddrinfo(res);

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_CANONNAME;
    rc = getaddrinfo(peer, "53", &hints, &res);
    CHECK("gai_peer", rc == 0 && ai_has(res, peer_v4) && ai_has(res, peer_v6) &&
                          res->ai_canonname != NULL,
          "rc %d (%s)", rc, gai_strerror(rc));
    if (rc == 0) {
        for (struct addrinfo *p = res; p; p = p->ai_next) {
            char t[INET6_ADDRSTRLEN];
            printf("gai %s %s\n", peer, addr_text(p->ai_addr, t, sizeof t));
        }
        freeaddrinfo(res);
    }
    rc = getaddrinfo(peer, "53", NULL, &res);   /* glibc's defaults: AI_V4MAPPED|AI_ADDRCONFIG */
    CHECK("gai_peer_no_hints", rc == 0 && ai_has(res, peer_v4) && ai_has(res, peer_v6),
          "rc %d (%s)", rc, gai_strerror(rc));
    if (rc == 0)
        freeaddrinfo(res);
    hints.ai_family = AF_INET6;
    hints.ai_flags = 0;
    rc = getaddrinfo(peer, NULL, &hints, &res);
    CHECK("gai_peer6", rc == 0 && ai_has(res, peer_v6) && !ai_has(res, peer_v4), "rc %d (%s)", rc,
          gai_strerror(rc));
    if (rc == 0)
        freeaddrinfo(res);

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo("127.0.0.1", "http", &hints, &res);
    CHECK("gai_named_service", rc == 0 && ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port) == 80,
          "rc %d (%s)", rc, gai_strerror(rc));
    if (rc == 0)
        freeaddrinfo(res);
    hints.ai_flags = AI_NUMERICSERV;
    CHECK("gai_numericserv", getaddrinfo("127.0.0.1", "http", &hints, &res) == EAI_NONAME,
          "accepted a service name");
    hints.ai_flags = AI_NUMERICHOST;
    CHECK("gai_numerichost", getaddrinfo("localhost", NULL, &hints, &res) == EAI_NONAME,
          "accepted a host name");
    hints.ai_flags = 0;
    hints.ai_family = AF_INET6;
    CHECK("gai_numeric_family_mismatch",
          getaddrinfo("127.0.0.1", NULL, &hints, &res) == EAI_ADDRFAMILY, "wrong code");
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_RAW;
    CHECK("gai_raw_with_service", getaddrinfo("127.0.0.1", "http", &hints, &res) == EAI_SERVICE,
          "wrong code");
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = 12345;
    CHECK("gai_bad_family", getaddrinfo("127.0.0.1", NULL, &hints, &res) == EAI_FAMILY,
          "wrong code");
    hints.ai_family = AF_UNSPEC;
    rc = getaddrinfo("no-such-host.invalid", NULL, &hints, &res);
    CHECK("gai_unknown_host", rc == EAI_NONAME, "rc %d (%s)", rc, gai_strerror(rc));
    CHECK("gai_strerror", strlen(gai_strerror(EAI_NONAME)) > 0, "empty");
    char scoped[64];
    snprintf(scoped, sizeof scoped, "fe80::1%%%s", ifname);
    hints.ai_flags = AI_NUMERICHOST;
    rc = getaddrinfo(scoped, NULL, &hints, &res);
    CHECK("gai_scope_id", rc == 0 && res->ai_family == AF_INET6 &&
                              ((struct sockaddr_in6 *)res->ai_addr)->sin6_scope_id ==
                                  if_nametoindex(ifname),
          "rc %d (%s)", rc, gai_strerror(rc));
    if (rc == 0)
        freeaddrinfo(res);
    hints.ai_flags = 0;

    /* getnameinfo: numeric forms */
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    struct sockaddr_in a4 = sin4("10.20.30.40", 8080);
    rc = getnameinfo((struct sockaddr *)&a4, sizeof a4, host, sizeof host, serv, sizeof serv,
                     NI_NUMERICHOST | NI_NUMERICSERV);
    CHECK("getnameinfo4", rc == 0 && strcmp(host, "10.20.30.40") == 0 && strcmp(serv, "8080") == 0,
          "rc %d host %s serv %s", rc, host, serv);
    struct sockaddr_in6 a6 = sin6("fd00::1:2", 443);
    rc = getnameinfo((struct sockaddr *)&a6, sizeof a6, host, sizeof host, serv, sizeof serv,
                     NI_NUMERICHOST | NI_NUMERICSERV);
    CHECK("getnameinfo6", rc == 0 && strcmp(host, "fd00::1:2") == 0 && strcmp(serv, "443") == 0,
          "rc %d host %s serv %s", rc, host, serv);
    struct sockaddr_in6 ll = sin6("fe80::1", 0);
    ll.sin6_scope_id = if_nametoindex(ifname);
    char want_ll[64];
    snprintf(want_ll, sizeof want_ll, "fe80::1%%%s", ifname);
    rc = getnameinfo((struct sockaddr *)&ll, sizeof ll, host, sizeof host, NULL, 0, NI_NUMERICHOST);
    CHECK("getnameinfo_scope", rc == 0 && strcmp(host, want_ll) == 0, "rc %d host %s", rc, host);
    rc = getnameinfo((struct sockaddr *)&a6, sizeof a6, NULL, 0, serv, sizeof serv, 0);
    CHECK("getnameinfo_service", rc == 0 && strcmp(serv, "https") == 0, "rc %d serv %s", rc, serv);
    rc = getnameinfo((struct sockaddr *)&a4, sizeof a4, host, 4, NULL, 0, NI_NUMERICHOST);
    CHECK("getnameinfo_overflow", rc == EAI_OVERFLOW, "rc %d", rc);

    struct hostent *he = gethostbyname("localhost");
    CHECK("gethostbyname_localhost", he && he->h_addrtype == AF_INET && he->h_length == 4 &&
                                         memcmp(he->h_addr_list[0], "\x7f\0\0\x01", 4) == 0,
          "h_errno %d", h_errno);
    he = gethostbyname(peer);
    struct in_addr want;
    inet_pton(AF_INET, peer_v4, &want);
    CHECK("gethostbyname_peer", he && memcmp(he->h_addr_list[0], &want, 4) == 0, "h_errno %d",
          h_errno);
    he = gethostbyname("no-such-host.invalid");
    CHECK("gethostbyname_unknown", he == NULL && h_errno == HOST_NOT_FOUND, "h_errno %d", h_errno);
}

/* --- names follow the socket ------------------------------------------------------ */

static int name_errno; /* the errno of name_is's last call, 0 if it succeeded */

/* Does getsockname (peer: getpeername) of fd say addr and port? port -1: any but 0.
 * Fills got with what it said. */
static int name_is(int fd, int peer, const char *addr, int port, char *got, size_t len) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    errno = 0;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
                  : getsockname(fd, (struct sockaddr *)&ss, &sl);
    name_errno = rc < 0 ? errno : 0;
    if (rc < 0) {
        snprintf(got, len, "errno %d (%s)", name_errno, strerror(name_errno));
        return 0;
    }
    char text[INET6_ADDRSTRLEN + 16];
    int p = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                    : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    addr_text((struct sockaddr *)&ss, text, sizeof text);
    snprintf(got, len, "%s port %d", text, p);
    return strcmp(text, addr) == 0 && (port < 0 ? p != 0 : p == port);
}

/* getsockname/getpeername after every bind, connect and disconnect say the
 * socket's name now (vnet encodes each socket's names once and reuses them
 * while they stay the same), as Linux: UDP connect fixes the source address,
 * connect(AF_UNSPEC) gives back what bind did not lock, accept's socket has
 * the listener's port and its own address. */
static void test_names(void) {
    char got[160], got2[160];
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK("names_udp_unbound", name_is(fd, 0, "0.0.0.0", 0, got, sizeof got), "%s", got);
    struct sockaddr_in to = sin4(peer_v4, 9);
    int rc = connect(fd, (struct sockaddr *)&to, sizeof to);
    int port = port_of(fd);
    CHECK("names_udp_connect", rc == 0 && name_is(fd, 0, v4, -1, got, sizeof got) &&
          name_is(fd, 1, peer_v4, 9, got2, sizeof got2) && port_of(fd) == port,
          "rc %d, local %s, peer %s", rc, got, got2);
    struct sockaddr unspec;
    memset(&unspec, 0, sizeof unspec);
    unspec.sa_family = AF_UNSPEC;
    rc = connect(fd, &unspec, sizeof unspec);
    CHECK("names_udp_disconnect", rc == 0 && name_is(fd, 0, "0.0.0.0", 0, got, sizeof got) &&
          !name_is(fd, 1, peer_v4, 9, got2, sizeof got2) && name_errno == ENOTCONN,
          "rc %d, local %s, peer %s", rc, got, got2);
    to = sin4("127.0.0.1", 9);
    rc = connect(fd, (struct sockaddr *)&to, sizeof to);
    CHECK("names_udp_reconnect", rc == 0 && name_is(fd, 0, "127.0.0.1", -1, got, sizeof got) &&
          name_is(fd, 1, "127.0.0.1", 9, got2, sizeof got2),
          "rc %d, local %s, peer %s", rc, got, got2);
    close(fd);

    fd = udp_bound(AF_INET, v4);  /* the address is locked, the port is not */
    port = port_of(fd);
    to = sin4(peer_v4, 9);
    rc = connect(fd, (struct sockaddr *)&to, sizeof to);
    CHECK("names_udp_bound_connect", rc == 0 && port > 0 &&
          name_is(fd, 0, v4, port, got, sizeof got), "rc %d, local %s", rc, got);
    rc = connect(fd, &unspec, sizeof unspec);
    CHECK("names_udp_bound_disconnect", rc == 0 && name_is(fd, 0, v4, 0, got, sizeof got),
          "rc %d, local %s", rc, got);
    close(fd);

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    set_int(lfd, SOL_SOCKET, SO_REUSEADDR, 1);
    struct sockaddr_in any = sin4("0.0.0.0", 0);
    rc = bind(lfd, (struct sockaddr *)&any, sizeof any);
    int lport = port_of(lfd);
    CHECK("names_tcp_bind", rc == 0 && listen(lfd, 4) == 0 &&
          name_is(lfd, 0, "0.0.0.0", lport, got, sizeof got) && lport > 0,
          "rc %d, local %s", rc, got);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    int before = name_is(cfd, 0, "0.0.0.0", 0, got, sizeof got);
    to = sin4("127.0.0.1", lport);
    rc = connect(cfd, (struct sockaddr *)&to, sizeof to);
    int cport = port_of(cfd);
    CHECK("names_tcp_connect", before && rc == 0 &&
          name_is(cfd, 0, "127.0.0.1", cport, got, sizeof got) && cport > 0 &&
          name_is(cfd, 1, "127.0.0.1", lport, got2, sizeof got2),
          "rc %d, local %s, peer %s", rc, got, got2);
    int sfd = accept(lfd, NULL, NULL);
    CHECK("names_tcp_accept", sfd >= 0 && name_is(sfd, 0, "127.0.0.1", lport, got, sizeof got) &&
          name_is(sfd, 1, "127.0.0.1", cport, got2, sizeof got2) &&
          name_is(lfd, 0, "0.0.0.0", lport, got2 + 80, sizeof got2 - 80),
          "accepted %d, local %s, peer %s", sfd, got, got2);
    close(sfd);
    close(cfd);
    close(lfd);

    fd = socket(AF_INET6, SOCK_DGRAM, 0);
    before = name_is(fd, 0, "::", 0, got, sizeof got);
    struct sockaddr_in6 mapped = sin6("::ffff:127.0.0.1", 9);
    rc = connect(fd, (struct sockaddr *)&mapped, sizeof mapped);
    CHECK("names_v6_mapped", before && rc == 0 &&
          name_is(fd, 0, "::ffff:127.0.0.1", -1, got, sizeof got) &&
          name_is(fd, 1, "::ffff:127.0.0.1", 9, got2, sizeof got2),
          "rc %d, local %s, peer %s", rc, got, got2);
    close(fd);
}

static void test_errors(void) {
    char buf[16];
    int lfd = tcp_listener(AF_INET, "127.0.0.1");
    struct sockaddr_in used = sin4("127.0.0.1", port_of(lfd));
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_ERRNO("bind_eaddrinuse", bind(s, (struct sockaddr *)&used, sizeof used), EADDRINUSE);
    struct sockaddr_in any = sin4("127.0.0.1", 0);
    bind(s, (struct sockaddr *)&any, sizeof any);
    CHECK_ERRNO("bind_twice_einval", bind(s, (struct sockaddr *)&any, sizeof any), EINVAL);
    close(s);

    s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in dead = sin4("127.0.0.1", closed_port());
    CHECK_ERRNO("connect_econnrefused", connect(s, (struct sockaddr *)&dead, sizeof dead),
                ECONNREFUSED);
    close(s);

    s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_ERRNO("getpeername_enotconn", getpeername(s, (struct sockaddr *)&any, &(socklen_t){sizeof any}),
                ENOTCONN);
    CHECK_ERRNO("recv_unconnected_enotconn", recv(s, buf, sizeof buf, 0), ENOTCONN);
    CHECK_ERRNO("send_unconnected_epipe", send(s, "x", 1, MSG_NOSIGNAL), EPIPE);
    struct sockaddr_in nowhere = sin4("192.0.2.1", 0);
    CHECK_ERRNO("bind_eaddrnotavail", bind(s, (struct sockaddr *)&nowhere, sizeof nowhere),
                EADDRNOTAVAIL);
    CHECK_ERRNO("bind_short_einval", bind(s, (struct sockaddr *)&any, 8), EINVAL);
    CHECK_ERRNO("setsockopt_short_einval", setsockopt(s, SOL_SOCKET, SO_REUSEADDR, "\1", 1), EINVAL);
    CHECK_ERRNO("getsockopt_enoprotoopt",
                getsockopt(s, SOL_SOCKET, 9999, buf, &(socklen_t){sizeof buf}), ENOPROTOOPT);
    CHECK_ERRNO("accept_not_listening_einval", accept(s, NULL, NULL), EINVAL);
    close(s);

    s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_ERRNO("send_unconnected_udp_edestaddrreq", send(s, "x", 1, 0), EDESTADDRREQ);
    struct sockaddr_in far = sin4(unreach, 9);
    CHECK_ERRNO("connect_enetunreach", connect(s, (struct sockaddr *)&far, sizeof far), ENETUNREACH);
    struct sockaddr_in lo = sin4("127.0.0.1", 9);
    static char huge[70000];
    CHECK_ERRNO("sendto_emsgsize", sendto(s, huge, sizeof huge, 0, (struct sockaddr *)&lo, sizeof lo),
                EMSGSIZE);
    close(s);

    CHECK_ERRNO("socket_eafnosupport", socket(12345, SOCK_STREAM, 0), EAFNOSUPPORT);
    CHECK_ERRNO("socket_bad_type_einval", socket(AF_INET, 999, 0), EINVAL);
    CHECK_ERRNO("socket_eprotonosupport", socket(AF_INET, SOCK_STREAM, IPPROTO_UDP),
                EPROTONOSUPPORT);
    CHECK_ERRNO("socketpair_inet_eopnotsupp", socketpair(AF_INET, SOCK_STREAM, 0, (int[2]){0, 0}),
                EOPNOTSUPP);
    CHECK_ERRNO("send_ebadf", send(9999, "x", 1, 0), EBADF);
    CHECK_ERRNO("send_enotsock", send(1, "x", 1, 0), ENOTSOCK);
    CHECK_ERRNO("getsockname_enotsock",
                getsockname(1, (struct sockaddr *)&any, &(socklen_t){sizeof any}), ENOTSOCK);
    CHECK_ERRNO("setsockopt_ebadf", set_int(9999, SOL_SOCKET, SO_REUSEADDR, 1), EBADF);
    close(lfd);
}

/* ioctl with Linux's request numbers: what FIONREAD counts on each kind of
 * socket, and the errnos for a request the fd does not take and a closed fd. */
static void test_ioctl(void) {
    int rx = udp_bound(AF_INET, "127.0.0.1");
    int tx = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to;
    socklen_t tolen = sizeof to;
    getsockname(rx, (struct sockaddr *)&to, &tolen);
    sendto(tx, "abc", 3, 0, (struct sockaddr *)&to, sizeof to);
    sendto(tx, "0123456789", 10, 0, (struct sockaddr *)&to, sizeof to);
    wait_readable(rx, 2000);
    int avail = -1;
    CHECK("ioctl_fionread_udp_next_datagram", ioctl(rx, FIONREAD, &avail) == 0 && avail == 3,
          "avail %d errno %d", avail, errno);
    char buf[16];
    recv(rx, buf, sizeof buf, 0);
    wait_readable(rx, 2000);
    avail = -1;
    CHECK("ioctl_fionread_udp_second", ioctl(rx, FIONREAD, &avail) == 0 && avail == 10,
          "avail %d errno %d", avail, errno);
    recv(rx, buf, sizeof buf, 0);
    avail = -1;
    CHECK("ioctl_fionread_udp_empty", ioctl(rx, FIONREAD, &avail) == 0 && avail == 0,
          "avail %d errno %d", avail, errno);
    CHECK("ioctl_siocinq_is_fionread", SIOCINQ == FIONREAD, "SIOCINQ %#x", SIOCINQ);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(lfd, (struct sockaddr *)&any, sizeof any);
    listen(lfd, 1);
    CHECK_ERRNO("ioctl_fionread_listening", ioctl(lfd, FIONREAD, &avail), EINVAL);
    CHECK_ERRNO("ioctl_unknown_request", ioctl(tx, 0x5401 /* TCGETS */, buf), ENOTTY);
    close(lfd);
    close(tx);
    close(rx);
    CHECK_ERRNO("ioctl_closed_fd", ioctl(rx, FIONREAD, &avail), EBADF);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    parse_args(argc, argv);
    test_basics();
    test_tcp(AF_INET, "127.0.0.1", "tcp4");
    test_tcp(AF_INET6, "::1", "tcp6");
    test_tcp(AF_INET, v4, "tcp4_eth");
    test_nonblocking();
    test_dual_stack();
    test_select_and_poll();
    test_udp(AF_INET, "127.0.0.1", "udp4");
    test_udp(AF_INET6, "::1", "udp6");
    test_udp(AF_INET6, v6, "udp6_eth");
    test_udp_misc();
    test_multicast4();
    test_multicast6();
    test_interfaces();
    test_getaddrinfo();
    test_names();
    test_errors();
    test_ioctl();
    printf("summary: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
