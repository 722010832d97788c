/*
 * inet.c — vnet SDK: the classic IPv4 helpers wasi-libc leaves out of
 * <arpa/inet.h>: inet_addr, inet_network, inet_ntoa, inet_makeaddr,
 * inet_lnaof and inet_netof. (inet_aton, inet_pton, inet_ntop, htons and
 * friends are wasi-libc's.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the GNU/BSD declarations, whatever the program's flags */
#endif
#include <arpa/inet.h>
#include <stdio.h>

in_addr_t inet_addr(const char *text) {
    struct in_addr a;
    return inet_aton(text, &a) ? a.s_addr : INADDR_NONE;
}

char *inet_ntoa(struct in_addr in) {
    static char buf[16];
    const unsigned char *b = (const unsigned char *)&in;
    snprintf(buf, sizeof buf, "%d.%d.%d.%d", b[0], b[1], b[2], b[3]);
    return buf;
}

/* The address in host byte order (musl's definition: inet_aton's forms). */
in_addr_t inet_network(const char *text) {
    return ntohl(inet_addr(text));
}

struct in_addr inet_makeaddr(in_addr_t net, in_addr_t host) {
    in_addr_t a;
    if (net < 256)
        a = net << 24 | (host & 0xffffff);
    else if (net < 65536)
        a = net << 16 | (host & 0xffff);
    else if (net < 16777216)
        a = net << 8 | (host & 0xff);
    else
        a = net | host;
    struct in_addr in = {htonl(a)};
    return in;
}

in_addr_t inet_lnaof(struct in_addr in) {
    uint32_t h = ntohl(in.s_addr);
    if (IN_CLASSA(h))
        return h & IN_CLASSA_HOST;
    if (IN_CLASSB(h))
        return h & IN_CLASSB_HOST;
    return h & IN_CLASSC_HOST;
}

in_addr_t inet_netof(struct in_addr in) {
    uint32_t h = ntohl(in.s_addr);
    if (IN_CLASSA(h))
        return h >> IN_CLASSA_NSHIFT;
    if (IN_CLASSB(h))
        return h >> IN_CLASSB_NSHIFT;
    return h >> IN_CLASSC_NSHIFT;
}
