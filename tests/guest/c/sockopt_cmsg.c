/*
 * sockopt_cmsg.c — the Linux socket options that programs set to learn about
 * each datagram (IP_PKTINFO, IP_RECVTTL, IP_RECVTOS, IPV6_RECVPKTINFO,
 * IPV6_RECVHOPLIMIT, IPV6_RECVTCLASS, SO_TIMESTAMP, SO_TIMESTAMPNS) and the
 * ones that mark what it sends (IP_TOS, IPV6_TCLASS, IP_TTL,
 * IPV6_UNICAST_HOPS), with the control messages recvmsg returns for datagrams
 * sent to loopback, the host's own address, broadcast and a joined multicast
 * group.
 *
 * Portable C: compiled with gcc and run in a network namespace (lo, eth0
 * 10.0.0.1/24 and fd00::1/64), and built with `vnet build` and run on a
 * virtual host with the same addresses. It prints what it observes — `val`
 * lines (getsockopt values, errnos) and `cmsg` lines (level, type, data
 * length without the header, decoded data) — which must be the same both
 * ways, plus `ok`/`FAIL` checks and a summary. Lengths are printed as
 * cmsg_len - CMSG_LEN(0): wasm32's struct cmsghdr is 12 bytes, x86-64's 16.
 *
 * Arguments: v4=10.0.0.1 v6=fd00::1 bcast=10.0.0.255 (the host's addresses);
 * peer4=ADDR peer6=ADDR (optional): also send one datagram to port 9 of each
 * with IP_TOS 0xb9 / IPV6_TCLASS 0x2a, for a capture to show the header bits;
 * print_times=1: also print each SO_TIMESTAMP(NS) value (`timestamp` lines).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

static void result(int good, const char *name, const char *fmt, ...) {
    if (good) {
        printf("ok %s\n", name);
        passed++;
        return;
    }
    va_list ap;
    printf("FAIL %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    failed++;
}

static const char *v4 = "10.0.0.1", *v6 = "fd00::1", *bcast = "10.0.0.255";
static const char *peer4, *peer6;
static int print_times;

static int getint(int fd, int level, int name) {
    int v = -12345;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len) < 0)
        return -errno;
    return v;
}

static int setint(int fd, int level, int name, int v) {
    return setsockopt(fd, level, name, &v, sizeof v) < 0 ? -errno : 0;
}

static const char *errname(int e) {
    switch (e) {
    case 0: return "0";
    case -EINVAL: return "EINVAL";
    case -ENOPROTOOPT: return "ENOPROTOOPT";
    case -EOPNOTSUPP: return "EOPNOTSUPP";
    default: return strerror(-e);
    }
}

#define VAL(label, expr) printf("val %s %d\n", label, (expr))
#define ERR(label, expr) printf("val %s %s\n", label, errname(expr))

static int bound_udp(int family, const char *addr, int *port) {
    int fd = socket(family, SOCK_DGRAM, 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, addr, &a->sin_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, addr, &a->sin6_addr);
        len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        printf("FAIL bind %s: %s\n", addr, strerror(errno));
        failed++;
    }
    len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static void send_to(int fd, const char *addr, int port, const char *payload) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)port);
        inet_pton(AF_INET6, addr, &a->sin6_addr);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)port);
        inet_pton(AF_INET, addr, &a->sin_addr);
        len = sizeof *a;
    }
    if (sendto(fd, payload, strlen(payload), 0, (struct sockaddr *)&ss, len) < 0) {
        printf("FAIL sendto %s: %s\n", addr, strerror(errno));
        failed++;
    }
}

static double now_s(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* recvmsg with `room` bytes of control buffer (-1: none); prints what came. */
static void receive(const char *label, int fd, long room) {
    char data[256];
    union {
        struct cmsghdr align;
        unsigned char buf[512];
    } control;
    memset(&control, 0xee, sizeof control);
    struct iovec iov = {data, sizeof data};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (room >= 0) {
        msg.msg_control = control.buf;
        msg.msg_controllen = (size_t)room;
    }
    double before = now_s();
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    double after = now_s();
    if (n < 0) {
        printf("cmsg %s recvmsg %s\n", label, strerror(errno));
        return;
    }
    printf("cmsg %s bytes=%zd ctrunc=%d used=%s\n", label, n, !!(msg.msg_flags & MSG_CTRUNC),
           msg.msg_controllen == 0 ? "0" : "some");
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        long datalen = (long)c->cmsg_len - (long)CMSG_LEN(0);
        char line[256];
        int o = snprintf(line, sizeof line, "cmsg %s level=%d type=%d datalen=%ld", label,
                         c->cmsg_level, c->cmsg_type, datalen);
        unsigned char *d = CMSG_DATA(c);
        char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && datalen == 12) {
            struct in_pktinfo pi;
            memcpy(&pi, d, sizeof pi);
            inet_ntop(AF_INET, &pi.ipi_spec_dst, a, sizeof a);
            inet_ntop(AF_INET, &pi.ipi_addr, b, sizeof b);
            snprintf(line + o, sizeof line - (size_t)o, " ifindex=%d spec_dst=%s addr=%s",
                     pi.ipi_ifindex, a, b);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                   datalen == 20) {
            struct in6_pktinfo pi;
            memcpy(&pi, d, sizeof pi);
            inet_ntop(AF_INET6, &pi.ipi6_addr, a, sizeof a);
            snprintf(line + o, sizeof line - (size_t)o, " ifindex=%u addr=%s",
                     pi.ipi6_ifindex, a);
        } else if (c->cmsg_level == SOL_SOCKET &&
                   (c->cmsg_type == SCM_TIMESTAMP || c->cmsg_type == SCM_TIMESTAMPNS) &&
                   datalen == 16) {
            int64_t parts[2];
            memcpy(parts, d, sizeof parts);
            double t = (double)parts[0] +
                       (double)parts[1] / (c->cmsg_type == SCM_TIMESTAMP ? 1e6 : 1e9);
            int sane = t >= before - 2.0 && t <= after + 0.001 &&
                       parts[1] >= 0 && parts[1] < (c->cmsg_type == SCM_TIMESTAMP ? 1000000 : 1000000000);
            snprintf(line + o, sizeof line - (size_t)o, " time=%s", sane ? "sane" : "WRONG");
            if (print_times)
                printf("timestamp %s %lld.%09lld\n", label, (long long)parts[0],
                       (long long)parts[1] * (c->cmsg_type == SCM_TIMESTAMP ? 1000 : 1));
        } else if (datalen == 4) {
            int v;
            memcpy(&v, d, 4);
            snprintf(line + o, sizeof line - (size_t)o, " int=%d", v);
        } else if (datalen == 1) {
            snprintf(line + o, sizeof line - (size_t)o, " byte=0x%02x", d[0]);
        }
        puts(line);
    }
}

static void ipv4(void) {
    int port;
    int rx = bound_udp(AF_INET, "0.0.0.0", &port);
    int tx = socket(AF_INET, SOCK_DGRAM, 0);
    VAL("ip_pktinfo_default", getint(rx, IPPROTO_IP, IP_PKTINFO));
    VAL("ip_recvtos_default", getint(rx, IPPROTO_IP, IP_RECVTOS));
    VAL("ip_recvttl_default", getint(rx, IPPROTO_IP, IP_RECVTTL));
    VAL("so_timestamp_default", getint(rx, SOL_SOCKET, SO_TIMESTAMP));
    VAL("ip_tos_default", getint(tx, IPPROTO_IP, IP_TOS));
    ERR("ip_tos_set", setint(tx, IPPROTO_IP, IP_TOS, 0xb9));
    VAL("ip_tos_get", getint(tx, IPPROTO_IP, IP_TOS));
    ERR("ip_ttl_set", setint(tx, IPPROTO_IP, IP_TTL, 33));
    ERR("ip_pktinfo_set", setint(rx, IPPROTO_IP, IP_PKTINFO, 7));
    VAL("ip_pktinfo_get", getint(rx, IPPROTO_IP, IP_PKTINFO));
    ERR("ip_recvtos_set", setint(rx, IPPROTO_IP, IP_RECVTOS, 1));
    VAL("ip_recvtos_get", getint(rx, IPPROTO_IP, IP_RECVTOS));
    unsigned char one = 1;
    printf("val ip_recvttl_set_byte %s\n",
           errname(setsockopt(rx, IPPROTO_IP, IP_RECVTTL, &one, 1) < 0 ? -errno : 0));
    VAL("ip_recvttl_get", getint(rx, IPPROTO_IP, IP_RECVTTL));
    ERR("so_timestamp_set", setint(rx, SOL_SOCKET, SO_TIMESTAMP, 1));
    VAL("so_timestamp_get", getint(rx, SOL_SOCKET, SO_TIMESTAMP));
    VAL("so_timestampns_get", getint(rx, SOL_SOCKET, SO_TIMESTAMPNS));
    ERR("ipv6_recvpktinfo_on_inet", setint(rx, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1));
    ERR("ipv6_tclass_on_inet", setint(tx, IPPROTO_IPV6, IPV6_TCLASS, 1));

    send_to(tx, "127.0.0.1", port, "lo");
    receive("v4_loopback", rx, 512);
    send_to(tx, v4, port, "own");
    receive("v4_own_address", rx, 512);
    int yes = 1;
    setsockopt(tx, SOL_SOCKET, SO_BROADCAST, &yes, sizeof yes);
    send_to(tx, bcast, port, "bcast");
    receive("v4_broadcast", rx, 512);
    struct ip_mreq mreq;
    memset(&mreq, 0, sizeof mreq);
    inet_pton(AF_INET, "239.1.2.3", &mreq.imr_multiaddr);
    inet_pton(AF_INET, v4, &mreq.imr_interface);
    ERR("ip_add_membership", setsockopt(rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq)
                                 < 0 ? -errno : 0);
    ERR("ip_multicast_if", setsockopt(tx, IPPROTO_IP, IP_MULTICAST_IF, &mreq.imr_interface,
                                      sizeof mreq.imr_interface) < 0 ? -errno : 0);
    send_to(tx, "239.1.2.3", port, "mcast");
    receive("v4_multicast", rx, 512);

    /* cut control buffers, as put_cmsg cuts them */
    send_to(tx, "127.0.0.1", port, "x");
    receive("v4_room_for_timestamp_only", rx, (long)CMSG_SPACE(sizeof(struct timeval)));
    send_to(tx, "127.0.0.1", port, "x");
    receive("v4_room_for_part_of_timestamp", rx, (long)CMSG_LEN(sizeof(struct timeval)) - 4);
    send_to(tx, "127.0.0.1", port, "x");
    receive("v4_room_for_a_header_only", rx, (long)sizeof(struct cmsghdr));
    send_to(tx, "127.0.0.1", port, "x");
    receive("v4_no_control_buffer", rx, -1);
    send_to(tx, "127.0.0.1", port, "x");
    receive("v4_room_too_small_for_a_header", rx, (long)sizeof(struct cmsghdr) - 1);

    /* SO_TIMESTAMPNS replaces SO_TIMESTAMP; turning options off */
    ERR("so_timestampns_set", setint(rx, SOL_SOCKET, SO_TIMESTAMPNS, 1));
    VAL("so_timestamp_after_ns", getint(rx, SOL_SOCKET, SO_TIMESTAMP));
    VAL("so_timestampns_after_ns", getint(rx, SOL_SOCKET, SO_TIMESTAMPNS));
    ERR("ip_pktinfo_off", setint(rx, IPPROTO_IP, IP_PKTINFO, 0));
    ERR("ip_recvttl_off", setint(rx, IPPROTO_IP, IP_RECVTTL, 0));
    send_to(tx, "127.0.0.1", port, "ns");
    receive("v4_timestampns_and_tos", rx, 512);
    ERR("so_timestamp_off", setint(rx, SOL_SOCKET, SO_TIMESTAMP, 0));
    VAL("so_timestampns_after_off", getint(rx, SOL_SOCKET, SO_TIMESTAMPNS));
    ERR("ip_recvtos_off", setint(rx, IPPROTO_IP, IP_RECVTOS, 0));
    send_to(tx, "127.0.0.1", port, "none");
    receive("v4_nothing_asked", rx, 512);
    close(rx);
    close(tx);
}

static void ipv6(void) {
    int port;
    int rx = bound_udp(AF_INET6, "::", &port);
    int tx = socket(AF_INET6, SOCK_DGRAM, 0);
    int tx4 = socket(AF_INET, SOCK_DGRAM, 0);
    VAL("ipv6_recvpktinfo_default", getint(rx, IPPROTO_IPV6, IPV6_RECVPKTINFO));
    VAL("ipv6_tclass_default", getint(tx, IPPROTO_IPV6, IPV6_TCLASS));
    ERR("ipv6_tclass_set", setint(tx, IPPROTO_IPV6, IPV6_TCLASS, 0x2a));
    VAL("ipv6_tclass_get", getint(tx, IPPROTO_IPV6, IPV6_TCLASS));
    ERR("ipv6_tclass_too_big", setint(tx, IPPROTO_IPV6, IPV6_TCLASS, 256));
    ERR("ipv6_unicast_hops_set", setint(tx, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 44));
    ERR("ipv6_recvpktinfo_set", setint(rx, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1));
    VAL("ipv6_recvpktinfo_get", getint(rx, IPPROTO_IPV6, IPV6_RECVPKTINFO));
    ERR("ipv6_recvtclass_set", setint(rx, IPPROTO_IPV6, IPV6_RECVTCLASS, 1));
    ERR("ipv6_recvhoplimit_set", setint(rx, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1));
    VAL("ipv6_recvhoplimit_get", getint(rx, IPPROTO_IPV6, IPV6_RECVHOPLIMIT));
    unsigned char one = 1;
    printf("val ipv6_recvpktinfo_byte %s\n",
           errname(setsockopt(rx, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, 1) < 0 ? -errno : 0));
    ERR("ip_pktinfo_on_inet6", setint(rx, IPPROTO_IP, IP_PKTINFO, 1));
    ERR("ip_recvtos_on_inet6", setint(rx, IPPROTO_IP, IP_RECVTOS, 1));

    send_to(tx, "::1", port, "lo6");
    receive("v6_loopback", rx, 512);
    send_to(tx, v6, port, "own6");
    receive("v6_own_address", rx, 512);
    setint(tx4, IPPROTO_IP, IP_TOS, 0x10);
    send_to(tx4, "127.0.0.1", port, "mapped");
    receive("v6_socket_v4_datagram", rx, 512);
    close(rx);
    close(tx);
    close(tx4);
}

/* TCP: the marking options keep the ECN bits TCP's own; the per-datagram ones are
 * accepted and reported (a stream delivers no control message for them). */
static void tcp(void) {
    int s4 = socket(AF_INET, SOCK_STREAM, 0);
    int s6 = socket(AF_INET6, SOCK_STREAM, 0);
    ERR("tcp_ip_tos_set", setint(s4, IPPROTO_IP, IP_TOS, 0xb9));
    VAL("tcp_ip_tos_get", getint(s4, IPPROTO_IP, IP_TOS));
    ERR("tcp_ipv6_tclass_set", setint(s6, IPPROTO_IPV6, IPV6_TCLASS, 0x2b));
    VAL("tcp_ipv6_tclass_get", getint(s6, IPPROTO_IPV6, IPV6_TCLASS));
    ERR("tcp_ipv6_tclass_minus_one", setint(s6, IPPROTO_IPV6, IPV6_TCLASS, -1));
    VAL("tcp_ipv6_tclass_after_minus_one", getint(s6, IPPROTO_IPV6, IPV6_TCLASS));
    ERR("tcp_ipv6_tclass_too_big", setint(s6, IPPROTO_IPV6, IPV6_TCLASS, 256));
    ERR("tcp_ipv6_tclass_on_inet", setint(s4, IPPROTO_IPV6, IPV6_TCLASS, 8));
    ERR("tcp_ip_tos_on_inet6", setint(s6, IPPROTO_IP, IP_TOS, 0x20));
    VAL("tcp_ip_tos_on_inet6_get", getint(s6, IPPROTO_IP, IP_TOS));
    ERR("tcp_so_timestamp_set", setint(s4, SOL_SOCKET, SO_TIMESTAMP, 1));
    VAL("tcp_so_timestamp_get", getint(s4, SOL_SOCKET, SO_TIMESTAMP));
    ERR("tcp_ip_pktinfo_set", setint(s4, IPPROTO_IP, IP_PKTINFO, 1));
    VAL("tcp_ip_pktinfo_get", getint(s4, IPPROTO_IP, IP_PKTINFO));
    ERR("tcp_ipv6_recvpktinfo_set", setint(s6, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1));
    VAL("tcp_ipv6_recvpktinfo_get", getint(s6, IPPROTO_IPV6, IPV6_RECVPKTINFO));
    close(s4);
    close(s6);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "v4=", 3) == 0)
            v4 = argv[i] + 3;
        else if (strncmp(argv[i], "v6=", 3) == 0)
            v6 = argv[i] + 3;
        else if (strncmp(argv[i], "bcast=", 6) == 0)
            bcast = argv[i] + 6;
        else if (strncmp(argv[i], "peer4=", 6) == 0)
            peer4 = argv[i] + 6;
        else if (strncmp(argv[i], "peer6=", 6) == 0)
            peer6 = argv[i] + 6;
        else if (strcmp(argv[i], "print_times=1") == 0)
            print_times = 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    ipv4();
    ipv6();
    tcp();
    if (peer4) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        setint(fd, IPPROTO_IP, IP_TOS, 0xb9);
        send_to(fd, peer4, 9, "tos");
        close(fd);
        /* a TCP SYN carries IP_TOS without its ECN bits */
        fd = socket(AF_INET, SOCK_STREAM, 0);
        setint(fd, IPPROTO_IP, IP_TOS, 0xb9);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons(9);
        inet_pton(AF_INET, peer4, &a.sin_addr);
        int flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        connect(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
    }
    if (peer6) {
        int fd = socket(AF_INET6, SOCK_DGRAM, 0);
        setint(fd, IPPROTO_IPV6, IPV6_TCLASS, 0x2a);
        send_to(fd, peer6, 9, "tclass");
        close(fd);
        fd = socket(AF_INET6, SOCK_STREAM, 0);
        setint(fd, IPPROTO_IPV6, IPV6_TCLASS, 0x2b);
        struct sockaddr_in6 a = {0};
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(9);
        inet_pton(AF_INET6, peer6, &a.sin6_addr);
        int flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        connect(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
    }
    result(CMSG_LEN(0) == CMSG_ALIGN(sizeof(struct cmsghdr)), "cmsg_len_macro", "CMSG_LEN(0)");
    result(CMSG_SPACE(1) >= CMSG_LEN(1), "cmsg_space_macro", "CMSG_SPACE");
    printf("summary: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
