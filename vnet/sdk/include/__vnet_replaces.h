/*
 * __vnet_replaces.h — vnet SDK: link names for the functions the SDK
 * replaces in wasi-libc.
 *
 * wasi-libc (built into libc.a by zig) already defines accept, accept4,
 * recv, send, shutdown, getsockopt, poll, select and pselect over WASI
 * preview1. The SDK's versions are declared with an asm label, so a call
 * to recv() in any program compiled with the SDK headers links to
 * `__vnet_recv` and wasi-libc's archive member is never pulled in —
 * whatever order the linker sees the objects and libc.a in (two strong
 * definitions of `recv` would otherwise be a duplicate-symbol error).
 * musl's __REDIR does the same for its time64 functions.
 */
#ifndef __vnet_replaces_h
#define __vnet_replaces_h

#define __VNET_REPLACES(name) __asm__("__vnet_" #name)

#endif
