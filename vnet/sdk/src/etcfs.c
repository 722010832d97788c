/*
 * etcfs.c — vnet SDK: makes "/etc" a preopened directory when vnet gives the
 * guest one (every guest on a host: vnet/guest/etc_files.py), so that
 * fopen("/etc/resolv.conf") and fopen("/etc/hosts") reach it — the SDK's own
 * resolver (netdb.c) and any DNS client the program brings.
 *
 * vnet keeps that directory at a fixed, high fd (VNET_ETC_DIR_FD, which must
 * equal etc_files.ETC_DIR_FD), so the fds a program opens are numbered as on
 * Linux; wasi-libc finds preopens only by scanning from fd 3 upwards, so a
 * constructor registers this one by hand — only when the fd is there and is a
 * preopened directory, so that a guest given an /etc of its own (or none)
 * sees only that.
 */
#include <wasi/api.h>
#include <wasi/libc.h>

#define VNET_ETC_DIR_FD 0x3FFFFFFE

/* Not static: `vnet cc` links the SDK as an archive and names this symbol
 * (-Wl,--export: zig ignores -u for wasm) so that the member holding it is linked in. */
void __vnet_etc_preopen(void);

__attribute__((constructor)) void __vnet_etc_preopen(void) {
    __wasi_prestat_t prestat;
    if (__wasi_fd_prestat_get(VNET_ETC_DIR_FD, &prestat) == 0 &&
        prestat.tag == __WASI_PREOPENTYPE_DIR)
        (void)__wasilibc_register_preopened_fd(VNET_ETC_DIR_FD, "/etc");
}
