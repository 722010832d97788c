/*
 * <arpa/inet.h> — vnet SDK: wasi-libc's header plus the classic IPv4
 * helpers it leaves out (inet_addr, inet_ntoa, inet_network,
 * inet_makeaddr, inet_lnaof, inet_netof), implemented in
 * vnet/sdk/src/inet.c. inet_pton, inet_ntop, inet_aton and the byte-order
 * functions are wasi-libc's.
 */
#ifndef __vnet_arpa_inet_h
#define __vnet_arpa_inet_h

#include_next <arpa/inet.h>

#ifdef __cplusplus
extern "C" {
#endif

in_addr_t inet_addr(const char *);
in_addr_t inet_network(const char *);
char *inet_ntoa(struct in_addr);
struct in_addr inet_makeaddr(in_addr_t, in_addr_t);
in_addr_t inet_lnaof(struct in_addr);
in_addr_t inet_netof(struct in_addr);

#ifdef __cplusplus
}
#endif

#endif
