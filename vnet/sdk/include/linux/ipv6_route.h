/*
 * <linux/ipv6_route.h> — vnet SDK: the IPv6 route ioctl (SIOCADDRT /
 * SIOCDELRT on an AF_INET6 socket). struct in6_rtmsg and most RTF_* flags
 * come from <net/route.h> (wasi-libc's musl, Linux's layout; on wasm32
 * rtmsg_info is 4 bytes and the struct 72); this adds the rest, with
 * Linux's values.
 */
#ifndef __vnet_linux_ipv6_route_h
#define __vnet_linux_ipv6_route_h

#include <net/route.h>

#ifndef RTF_PREFIX_RT
#define RTF_PREFIX_RT 0x00080000
#endif
#ifndef RTF_ANYCAST
#define RTF_ANYCAST 0x00100000
#endif
#ifndef RTF_EXPIRES
#define RTF_EXPIRES 0x00400000
#endif
#ifndef RTF_ROUTEINFO
#define RTF_ROUTEINFO 0x00800000
#endif
#ifndef RTF_PREF
#define RTF_PREF(pref) ((pref) << 27)
#define RTF_PREF_MASK 0x18000000
#endif
#ifndef RTF_PCPU
#define RTF_PCPU 0x40000000
#endif

#define IP6_RT_PRIO_USER 1024
#define IP6_RT_PRIO_ADDRCONF 256

#endif
