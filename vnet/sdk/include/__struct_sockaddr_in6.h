/*
 * __struct_sockaddr_in6.h — vnet SDK: the standard 28-byte
 * `struct sockaddr_in6`, shadowing wasi-libc's over-aligned (32-byte)
 * private version.
 */
#ifndef __wasilibc___struct_sockaddr_in6_h
#define __wasilibc___struct_sockaddr_in6_h

#include <__typedef_sa_family_t.h>
#include <__typedef_in_port_t.h>
#include <__struct_in6_addr.h>

struct sockaddr_in6 {
    sa_family_t sin6_family;
    in_port_t sin6_port;        /* network byte order */
    unsigned sin6_flowinfo;     /* network byte order */
    struct in6_addr sin6_addr;
    unsigned sin6_scope_id;     /* interface index, host byte order */
};

#endif
