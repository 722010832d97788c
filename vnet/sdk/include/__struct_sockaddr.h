/*
 * __struct_sockaddr.h — vnet SDK: the standard `struct sockaddr`.
 *
 * Shadows wasi-libc's private header of the same name (the SDK's include
 * directory comes first on the path). wasi-libc declares `sa_data[0]` and
 * over-aligns the struct to 16 bytes; C network code expects Linux's
 * 16-byte layout with `char sa_data[14]`.
 */
#ifndef __wasilibc___struct_sockaddr_h
#define __wasilibc___struct_sockaddr_h

#include <__typedef_sa_family_t.h>

struct sockaddr {
    sa_family_t sa_family;
    char sa_data[14];
};

#endif
