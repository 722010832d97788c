/*
 * sockopt.c — vnet SDK: setsockopt and getsockopt.
 *
 * Options WASIX has travel through its typed calls (sock_set/get_opt_flag,
 * _size, _time and sock_join/leave_multicast_v4/v6); the value layouts are
 * converted here (int <-> bool/u64, struct linger / struct timeval <->
 * option_timestamp, ip_mreq / ipv6_mreq <-> addr_ip4 / addr_ip6). Every other
 * option goes unchanged to vnet_v1.sock_setsockopt / sock_getsockopt, which
 * take Linux's levels, numbers and layouts (IP_MULTICAST_IF, IP_TOS,
 * IPV6_MULTICAST_IF/HOPS, TCP_KEEPIDLE/INTVL/CNT, SO_BINDTODEVICE …).
 *
 * Value-length rules follow Linux: an int option needs optlen >= 4 (the
 * IPPROTO_IP ones also take a single byte), getsockopt copies at most
 * *optlen bytes and sets *optlen to what it wrote.
 *
 * Replaces wasi-libc's getsockopt (SO_TYPE only, preview1 numbering).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the GNU/BSD declarations, whatever the program's flags */
#endif
#include <limits.h>
#include <string.h>
#include <sys/time.h>
#include <netinet/tcp.h>

#include <vnet/netlink_sdk.h>
#include <vnet/sdk_internal.h>

enum kind {
    K_FLAG,       /* int, zero or not            <-> sock_*_opt_flag */
    K_SIZE,       /* int                         <-> sock_*_opt_size */
    K_BYTE_FLAG,  /* int or one byte (IPPROTO_IP) <-> flag */
    K_BYTE_SIZE,  /* int or one byte (IPPROTO_IP) <-> size */
    K_LINGER,     /* struct linger               <-> sock_*_opt_time */
    K_TIMEVAL,    /* struct timeval              <-> sock_*_opt_time */
    K_RO_FLAG,    /* read-only flag (SO_ACCEPTCONN) */
    K_RO_SIZE,    /* read-only int (SO_ERROR, SO_PROTOCOL) */
    K_RO_TYPE,    /* SO_TYPE: WASIX sock_type -> SOCK_* */
    K_RO_DOMAIN,  /* SO_DOMAIN: the family of the socket's own address */
    K_JOIN4,      /* struct ip_mreq / ip_mreqn, write-only */
    K_LEAVE4,
    K_JOIN6,      /* struct ipv6_mreq, write-only */
    K_LEAVE6,
};

struct row {
    int level;
    int name;
    uint8_t option;   /* WASIX sock_option */
    uint8_t kind;
};

static const struct row table[] = {
    {SOL_SOCKET, SO_REUSEADDR, VNET_OPT_REUSE_ADDR, K_FLAG},
    {SOL_SOCKET, SO_REUSEPORT, VNET_OPT_REUSE_PORT, K_FLAG},
    {SOL_SOCKET, SO_BROADCAST, VNET_OPT_BROADCAST, K_FLAG},
    {SOL_SOCKET, SO_KEEPALIVE, VNET_OPT_KEEP_ALIVE, K_FLAG},
    {SOL_SOCKET, SO_DONTROUTE, VNET_OPT_DONT_ROUTE, K_FLAG},
    {SOL_SOCKET, SO_OOBINLINE, VNET_OPT_OOB_INLINE, K_FLAG},
    {SOL_SOCKET, SO_RCVBUF, VNET_OPT_RECV_BUF_SIZE, K_SIZE},
    {SOL_SOCKET, SO_SNDBUF, VNET_OPT_SEND_BUF_SIZE, K_SIZE},
    {SOL_SOCKET, SO_RCVLOWAT, VNET_OPT_RECV_LOWAT, K_SIZE},
    {SOL_SOCKET, SO_SNDLOWAT, VNET_OPT_SEND_LOWAT, K_SIZE},
    {SOL_SOCKET, SO_LINGER, VNET_OPT_LINGER, K_LINGER},
    {SOL_SOCKET, SO_RCVTIMEO, VNET_OPT_RECV_TIMEOUT, K_TIMEVAL},
    {SOL_SOCKET, SO_SNDTIMEO, VNET_OPT_SEND_TIMEOUT, K_TIMEVAL},
    {SOL_SOCKET, SO_ACCEPTCONN, VNET_OPT_LISTENING, K_RO_FLAG},
    {SOL_SOCKET, SO_ERROR, VNET_OPT_LAST_ERROR, K_RO_SIZE},
    {SOL_SOCKET, SO_PROTOCOL, VNET_OPT_PROTO, K_RO_SIZE},
    {SOL_SOCKET, SO_TYPE, VNET_OPT_TYPE, K_RO_TYPE},
    {SOL_SOCKET, SO_DOMAIN, VNET_OPT_NOOP, K_RO_DOMAIN},
    {IPPROTO_TCP, TCP_NODELAY, VNET_OPT_NO_DELAY, K_FLAG},
    {IPPROTO_IP, IP_TTL, VNET_OPT_TTL, K_BYTE_SIZE},
    {IPPROTO_IP, IP_MULTICAST_TTL, VNET_OPT_MULTICAST_TTL_V4, K_BYTE_SIZE},
    {IPPROTO_IP, IP_MULTICAST_LOOP, VNET_OPT_MULTICAST_LOOP_V4, K_BYTE_FLAG},
    {IPPROTO_IP, IP_ADD_MEMBERSHIP, VNET_OPT_NOOP, K_JOIN4},
    {IPPROTO_IP, IP_DROP_MEMBERSHIP, VNET_OPT_NOOP, K_LEAVE4},
    {IPPROTO_IPV6, IPV6_V6ONLY, VNET_OPT_ONLY_V6, K_FLAG},
    {IPPROTO_IPV6, IPV6_MULTICAST_LOOP, VNET_OPT_MULTICAST_LOOP_V6, K_FLAG},
    {IPPROTO_IPV6, IPV6_JOIN_GROUP, VNET_OPT_NOOP, K_JOIN6},   /* = IPV6_ADD_MEMBERSHIP */
    {IPPROTO_IPV6, IPV6_LEAVE_GROUP, VNET_OPT_NOOP, K_LEAVE6}, /* = IPV6_DROP_MEMBERSHIP */
};

static const struct row *find(int level, int name) {
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].level == level && table[i].name == name)
            return &table[i];
    return NULL;
}

#define NS_PER_SEC 1000000000ull

/* --- setsockopt ---------------------------------------------------------------- */

/* The int an option was given: 4 bytes, or (byte_ok) a single unsigned byte. */
static int read_int(const void *value, socklen_t len, int byte_ok, int *out) {
    if (len >= sizeof(int)) {
        memcpy(out, value, sizeof(int));
        return 0;
    }
    if (byte_ok && len >= 1) {
        *out = *(const unsigned char *)value;
        return 0;
    }
    return EINVAL;
}

static int set_membership4(int fd, const struct row *row, const void *value, socklen_t len) {
    if (len < sizeof(struct ip_mreq))
        return __vnet_fail(EINVAL);
    if (len >= sizeof(struct ip_mreqn)) {
        struct ip_mreqn mreqn;
        memcpy(&mreqn, value, sizeof mreqn);
        if (mreqn.imr_ifindex != 0)   /* by interface index: Linux layout */
            return __vnet_check(__vnet_sock_setsockopt(fd, IPPROTO_IP, row->name, value, len));
    }
    struct ip_mreq mreq;
    memcpy(&mreq, value, sizeof mreq);
    vnet_addr_ip4 group, iface;
    memcpy(group.octets, &mreq.imr_multiaddr, 4);
    memcpy(iface.octets, &mreq.imr_interface, 4);
    if (row->kind == K_JOIN4)
        return __vnet_check(__wasix_sock_join_multicast_v4(fd, &group, &iface));
    return __vnet_check(__wasix_sock_leave_multicast_v4(fd, &group, &iface));
}

static int set_membership6(int fd, const struct row *row, const void *value, socklen_t len) {
    if (len < sizeof(struct ipv6_mreq))
        return __vnet_fail(EINVAL);
    struct ipv6_mreq mreq;
    memcpy(&mreq, value, sizeof mreq);
    vnet_addr_ip6 group;
    memset(&group, 0, sizeof group);
    __vnet_in6_to_segs(&mreq.ipv6mr_multiaddr, group.segs);
    if (row->kind == K_JOIN6)
        return __vnet_check(__wasix_sock_join_multicast_v6(fd, &group, mreq.ipv6mr_interface));
    return __vnet_check(__wasix_sock_leave_multicast_v6(fd, &group, mreq.ipv6mr_interface));
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    if ((int)len < 0)
        return __vnet_fail(EINVAL);
    if (value == NULL && len > 0)
        return __vnet_fail(EFAULT);
    int nl = __vnet_netlink_setsockopt(fd, level, name, value, len);
    if (nl != VNET_NOT_NETLINK) /* rtnetlink: netlink.c */
        return nl;
    const struct row *row = find(level, name);
    if (row == NULL)
        return __vnet_check(__vnet_sock_setsockopt(fd, level, name, value, len));

    int v = 0;
    switch (row->kind) {
    case K_FLAG:
    case K_BYTE_FLAG:
        if (read_int(value, len, row->kind == K_BYTE_FLAG, &v))
            return __vnet_fail(EINVAL);
        return __vnet_check(__wasix_sock_set_opt_flag(fd, row->option, v != 0));

    case K_SIZE:
    case K_BYTE_SIZE: {
        if (read_int(value, len, row->kind == K_BYTE_SIZE, &v))
            return __vnet_fail(EINVAL);
        int64_t size;
        if (name == IP_TTL || name == IP_MULTICAST_TTL) {
            /* Linux: -1 restores the default (64 / 1); otherwise 0..255
             * (IP_TTL: 1..255). */
            if (v == -1)
                v = name == IP_TTL ? 64 : 1;
            if (v < (name == IP_TTL ? 1 : 0) || v > 255)
                return __vnet_fail(EINVAL);
            size = v;
        } else if (name == SO_RCVLOWAT || name == SO_SNDLOWAT) {
            size = v < 0 ? INT_MAX : v;          /* Linux: negative means INT_MAX */
        } else {
            /* Linux reads buffer sizes as u32 and caps them: a negative size
             * asks for the maximum */
            size = v < 0 ? INT_MAX : v;
        }
        return __vnet_check(__wasix_sock_set_opt_size(fd, row->option, size));
    }

    case K_LINGER: {
        struct linger lg;
        if (len < sizeof lg)
            return __vnet_fail(EINVAL);
        memcpy(&lg, value, sizeof lg);
        vnet_option_timestamp t;
        memset(&t, 0, sizeof t);
        if (lg.l_onoff) {
            t.tag = 1;
            t.ns = (uint64_t)(lg.l_linger < 0 ? 0 : lg.l_linger) * NS_PER_SEC;
        }
        return __vnet_check(__wasix_sock_set_opt_time(fd, row->option, &t));
    }

    case K_TIMEVAL: {
        struct timeval tv;
        if (len < sizeof tv)
            return __vnet_fail(EINVAL);
        memcpy(&tv, value, sizeof tv);
        if (tv.tv_usec < 0 || tv.tv_usec >= 1000000)
            return __vnet_fail(EDOM);
        vnet_option_timestamp t;
        memset(&t, 0, sizeof t);
        if (tv.tv_sec < 0) {
            t.tag = 1;            /* Linux: a negative timeout times out at once */
            t.ns = 1;             /* (some(0) would mean "no timeout" to the host) */
        } else if (tv.tv_sec != 0 || tv.tv_usec != 0) {
            t.tag = 1;
            t.ns = (uint64_t)tv.tv_sec * NS_PER_SEC + (uint64_t)tv.tv_usec * 1000u;
        }
        return __vnet_check(__wasix_sock_set_opt_time(fd, row->option, &t));
    }

    case K_JOIN4:
    case K_LEAVE4:
        return set_membership4(fd, row, value, len);

    case K_JOIN6:
    case K_LEAVE6:
        return set_membership6(fd, row, value, len);

    default:
        /* read-only options: Linux answers ENOPROTOOPT */
        return __vnet_fail(ENOPROTOOPT);
    }
}

/* --- getsockopt ---------------------------------------------------------------- */

/* Copies an int out Linux's way: at most *len bytes; at IPPROTO_IP a short
 * buffer gets one byte when the value fits. */
static void write_int(int v, int byte_ok, void *value, socklen_t *len) {
    if (byte_ok && *len > 0 && *len < sizeof(int) && v >= 0 && v <= 255) {
        *(unsigned char *)value = (unsigned char)v;
        *len = 1;
        return;
    }
    socklen_t n = *len < sizeof(int) ? *len : sizeof(int);
    memcpy(value, &v, n);
    *len = n;
}

static void write_struct(const void *src, size_t size, void *value, socklen_t *len) {
    socklen_t n = *len < size ? *len : (socklen_t)size;
    memcpy(value, src, n);
    *len = n;
}

static int family_of(int fd, int *out) {
    vnet_addr_port ap;
    memset(&ap, 0, sizeof ap);
    if (__vnet_check(__wasix_sock_addr_local(fd, &ap)) < 0)
        return -1;
    switch (ap.tag) {
    case VNET_AF_INET4: *out = AF_INET; break;
    case VNET_AF_INET6: *out = AF_INET6; break;
    case VNET_AF_UNIX: *out = AF_UNIX; break;
    default: *out = AF_UNSPEC; break;
    }
    return 0;
}

int getsockopt(int fd, int level, int name, void *__restrict value, socklen_t *__restrict len) {
    if (len == NULL || (value == NULL && *len > 0))
        return __vnet_fail(EFAULT);
    if ((int)*len < 0)
        return __vnet_fail(EINVAL);
    int nl = __vnet_netlink_getsockopt(fd, level, name, value, len);
    if (nl != VNET_NOT_NETLINK) /* rtnetlink: netlink.c */
        return nl;
    const struct row *row = find(level, name);
    if (row == NULL) {
        uint32_t n = *len;
        if (__vnet_check(__vnet_sock_getsockopt(fd, level, name, value, &n)) < 0)
            return -1;
        *len = n;
        return 0;
    }

    switch (row->kind) {
    case K_FLAG:
    case K_BYTE_FLAG:
    case K_RO_FLAG: {
        uint8_t flag = 0;
        if (__vnet_check(__wasix_sock_get_opt_flag(fd, row->option, &flag)) < 0)
            return -1;
        write_int(flag != 0, row->kind == K_BYTE_FLAG, value, len);
        return 0;
    }

    case K_SIZE:
    case K_BYTE_SIZE:
    case K_RO_SIZE:
    case K_RO_TYPE: {
        uint64_t size = 0;
        if (__vnet_check(__wasix_sock_get_opt_size(fd, row->option, &size)) < 0)
            return -1;
        int v = size > INT_MAX ? INT_MAX : (int)size;
        if (row->kind == K_RO_TYPE) {
            switch (size) {
            case VNET_SOCK_STREAM: v = SOCK_STREAM; break;
            case VNET_SOCK_DGRAM: v = SOCK_DGRAM; break;
            case VNET_SOCK_RAW: v = SOCK_RAW; break;
            case VNET_SOCK_SEQPACKET: v = SOCK_SEQPACKET; break;
            }
        }
        write_int(v, row->kind == K_BYTE_SIZE, value, len);
        return 0;
    }

    case K_RO_DOMAIN: {
        int family;
        if (family_of(fd, &family) < 0)
            return -1;
        write_int(family, 0, value, len);
        return 0;
    }

    case K_LINGER: {
        vnet_option_timestamp t;
        memset(&t, 0, sizeof t);
        if (__vnet_check(__wasix_sock_get_opt_time(fd, row->option, &t)) < 0)
            return -1;
        struct linger lg = {0, 0};
        if (t.tag) {
            lg.l_onoff = 1;
            lg.l_linger = (int)(t.ns / NS_PER_SEC);
        }
        write_struct(&lg, sizeof lg, value, len);
        return 0;
    }

    case K_TIMEVAL: {
        vnet_option_timestamp t;
        memset(&t, 0, sizeof t);
        if (__vnet_check(__wasix_sock_get_opt_time(fd, row->option, &t)) < 0)
            return -1;
        struct timeval tv = {0, 0};
        if (t.tag) {
            tv.tv_sec = (time_t)(t.ns / NS_PER_SEC);
            tv.tv_usec = (suseconds_t)((t.ns % NS_PER_SEC) / 1000);
        }
        write_struct(&tv, sizeof tv, value, len);
        return 0;
    }

    default:
        /* write-only options (memberships): Linux answers ENOPROTOOPT */
        return __vnet_fail(ENOPROTOOPT);
    }
}
