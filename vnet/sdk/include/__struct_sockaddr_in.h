/*
 * __struct_sockaddr_in.h — vnet SDK: the standard `struct sockaddr_in`
 * (16 bytes, with `sin_zero`), shadowing wasi-libc's private header, whose
 * version has no `sin_zero` and is over-aligned.
 */
#ifndef __wasilibc___struct_sockaddr_in_h
#define __wasilibc___struct_sockaddr_in_h

#include <__typedef_sa_family_t.h>
#include <__typedef_in_port_t.h>
#include <__struct_in_addr.h>

struct sockaddr_in {
    sa_family_t sin_family;
    in_port_t sin_port;         /* network byte order */
    struct in_addr sin_addr;    /* network byte order */
    unsigned char sin_zero[8];
};

#endif
