/*
 * sockaddr.c — vnet SDK: translation between BSD socket addresses
 * (struct sockaddr_in / sockaddr_in6 / sockaddr_un) and WASIX addr_port,
 * following vnet/sdk/ABI.md: the port travels in network byte order exactly
 * as sin_port holds it, IPv4 bytes in network order, IPv6 as eight numeric
 * 16-bit groups with flow info and scope id split into two halves each.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the GNU/BSD declarations, whatever the program's flags */
#endif
#include <string.h>
#include <sys/un.h>
#include <arpa/inet.h>

#include <vnet/sdk_internal.h>

void __vnet_in6_to_segs(const struct in6_addr *a, uint16_t segs[8]) {
    for (int i = 0; i < 8; i++)
        segs[i] = (uint16_t)(a->s6_addr[2 * i] << 8 | a->s6_addr[2 * i + 1]);
}

void __vnet_segs_to_in6(const uint16_t segs[8], struct in6_addr *a) {
    for (int i = 0; i < 8; i++) {
        a->s6_addr[2 * i] = (uint8_t)(segs[i] >> 8);
        a->s6_addr[2 * i + 1] = (uint8_t)segs[i];
    }
}

int __vnet_sockaddr_to_wasix(const struct sockaddr *sa, socklen_t len, vnet_addr_port *out) {
    memset(out, 0, sizeof *out);
    if (sa == NULL)
        return EFAULT;
    if (len < sizeof(sa_family_t))
        return EINVAL;
    switch (sa->sa_family) {
    case AF_INET: {
        struct sockaddr_in sin;
        if (len < sizeof sin)
            return EINVAL;
        memcpy(&sin, sa, sizeof sin);
        out->tag = VNET_AF_INET4;
        out->u.ip4.port = sin.sin_port;    /* already network order */
        memcpy(out->u.ip4.addr, &sin.sin_addr, 4);
        return 0;
    }
    case AF_INET6: {
        /* Linux accepts the 24-byte RFC 2133 form without sin6_scope_id. */
        struct sockaddr_in6 sin6;
        if (len < offsetof(struct sockaddr_in6, sin6_scope_id))
            return EINVAL;
        memset(&sin6, 0, sizeof sin6);
        memcpy(&sin6, sa, len < sizeof sin6 ? len : sizeof sin6);
        out->tag = VNET_AF_INET6;
        out->u.ip6.port = sin6.sin6_port;
        __vnet_in6_to_segs(&sin6.sin6_addr, out->u.ip6.segs);
        uint32_t flow = ntohl(sin6.sin6_flowinfo);
        out->u.ip6.flow_info1 = (uint16_t)(flow >> 16);
        out->u.ip6.flow_info0 = (uint16_t)flow;
        out->u.ip6.scope_id1 = (uint16_t)(sin6.sin6_scope_id >> 16);
        out->u.ip6.scope_id0 = (uint16_t)sin6.sin6_scope_id;
        return 0;
    }
    case AF_UNIX: {
        size_t n = len - offsetof(struct sockaddr_un, sun_path);
        if (n > sizeof out->u.unix_path)
            n = sizeof out->u.unix_path;
        out->tag = VNET_AF_UNIX;
        memcpy(out->u.unix_path, ((const struct sockaddr_un *)sa)->sun_path, n);
        return 0;
    }
    case AF_UNSPEC: {
        /* connect(AF_UNSPEC) dissolves a UDP association; bind(AF_UNSPEC)
         * with INADDR_ANY is a Linux compatibility case. Pass it through. */
        out->tag = VNET_AF_UNSPEC;
        if (len >= sizeof(struct sockaddr_in)) {
            struct sockaddr_in sin;
            memcpy(&sin, sa, sizeof sin);
            out->u.unspec.port = sin.sin_port;
        }
        return 0;
    }
    default:
        return EAFNOSUPPORT;
    }
}

socklen_t __vnet_wasix_to_sockaddr(const vnet_addr_port *ap, struct sockaddr_storage *out) {
    memset(out, 0, sizeof *out);
    switch (ap->tag) {
    case VNET_AF_INET4: {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        sin->sin_port = ap->u.ip4.port;
        memcpy(&sin->sin_addr, ap->u.ip4.addr, 4);
        return sizeof *sin;
    }
    case VNET_AF_INET6: {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = ap->u.ip6.port;
        __vnet_segs_to_in6(ap->u.ip6.segs, &sin6->sin6_addr);
        sin6->sin6_flowinfo =
            htonl((uint32_t)ap->u.ip6.flow_info1 << 16 | ap->u.ip6.flow_info0);
        sin6->sin6_scope_id = (uint32_t)ap->u.ip6.scope_id1 << 16 | ap->u.ip6.scope_id0;
        return sizeof *sin6;
    }
    case VNET_AF_UNIX: {
        struct sockaddr_un *sun = (struct sockaddr_un *)out;
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, ap->u.unix_path, sizeof sun->sun_path);
        size_t n = strnlen(sun->sun_path, sizeof sun->sun_path);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (n < sizeof sun->sun_path));
    }
    default:
        return 0;
    }
}

void __vnet_copy_out(const struct sockaddr_storage *ss, socklen_t actual,
                     struct sockaddr *addr, socklen_t *len) {
    if (addr == NULL || len == NULL)
        return;
    memcpy(addr, ss, *len < actual ? *len : actual);
    *len = actual;
}
