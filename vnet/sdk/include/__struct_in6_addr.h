/*
 * __struct_in6_addr.h — vnet SDK: `struct in6_addr` as musl and glibc
 * define it, with the `s6_addr16` / `s6_addr32` views as well as
 * `s6_addr` (wasi-libc's private version has only `s6_addr`). Same size
 * (16) and alignment (4) as wasi-libc's, so the `in6addr_any` and
 * `in6addr_loopback` objects wasi-libc defines are compatible.
 */
#ifndef __wasilibc___struct_in6_addr_h
#define __wasilibc___struct_in6_addr_h

#include <stdint.h>

struct in6_addr {
    union {
        uint8_t __s6_addr[16];
        uint16_t __s6_addr16[8];
        uint32_t __s6_addr32[4];
    } __in6_union;
};
#define s6_addr __in6_union.__s6_addr
#define s6_addr16 __in6_union.__s6_addr16
#define s6_addr32 __in6_union.__s6_addr32

#endif
