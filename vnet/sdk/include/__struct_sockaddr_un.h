/*
 * __struct_sockaddr_un.h — vnet SDK: the standard `struct sockaddr_un`
 * with `sun_path[108]` (wasi-libc's private version has no path at all).
 */
#ifndef __wasilibc___struct_sockaddr_un_h
#define __wasilibc___struct_sockaddr_un_h

#include <__typedef_sa_family_t.h>

struct sockaddr_un {
    sa_family_t sun_family;
    char sun_path[108];
};

#endif
