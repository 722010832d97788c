/*
 * devfs.c — vnet SDK: makes "/dev" a preopened directory, so that
 * open("/dev/urandom"), fopen("/dev/null") and open("/dev/net/tun") reach
 * vnet's synthetic /dev (vnet/guest/devfs.py).
 *
 * vnet keeps that directory at a fixed, high fd (VNET_DEV_DIR_FD, which
 * must equal devfs.DEV_DIR_FD), so the fds a program opens are numbered as
 * on Linux; wasi-libc finds preopens only by scanning from fd 3 upwards,
 * so a constructor registers this one by hand. Under a runtime that has
 * nothing at that fd, paths under /dev fail with EBADF instead of ENOENT.
 */
#include <wasi/libc.h>

#define VNET_DEV_DIR_FD 0x3FFFFFFF

/* Not static: `vnet cc` links the SDK as an archive and names this symbol
 * (-Wl,--export: zig ignores -u for wasm) so that the member holding it is linked in. */
void __vnet_dev_preopen(void);

__attribute__((constructor)) void __vnet_dev_preopen(void) {
    (void)__wasilibc_register_preopened_fd(VNET_DEV_DIR_FD, "/dev");
}
