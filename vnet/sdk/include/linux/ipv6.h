/*
 * <linux/ipv6.h> — vnet SDK: what programs take from Linux's <linux/ipv6.h>:
 * struct in6_ifreq (the IPv6 address ioctl, SIOCSIFADDR / SIOCDIFADDR on an
 * AF_INET6 socket) and struct ipv6hdr, with Linux's layouts.
 */
#ifndef __vnet_linux_ipv6_h
#define __vnet_linux_ipv6_h

#include <stdint.h>
#include <netinet/in.h>

struct in6_ifreq {
    struct in6_addr ifr6_addr;
    uint32_t ifr6_prefixlen;
    int ifr6_ifindex;
};

struct ipv6hdr {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint8_t priority : 4, version : 4;
#else
    uint8_t version : 4, priority : 4;
#endif
    uint8_t flow_lbl[3];
    uint16_t payload_len; /* network byte order */
    uint8_t nexthdr;
    uint8_t hop_limit;
    struct in6_addr saddr;
    struct in6_addr daddr;
};

#define IPV6_MIN_MTU 1280

#endif
