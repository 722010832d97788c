/*
 * __header_sys_ioctl.h — vnet SDK: replaces wasi-libc's, which
 * <sys/ioctl.h> includes (the SDK's include directory comes first).
 *
 * wasi-libc's ioctl knows FIONREAD and FIONBIO only, with numbers of its
 * own (1 and 2). The SDK's ioctl (vnet/sdk/src/ioctl.c) takes Linux's
 * request numbers — FIONREAD, FIONBIO, the SIOC* interface requests of
 * <linux/sockios.h>, TUNSETIFF and friends of <linux/if_tun.h> — and hands
 * every request but FIONBIO to the host (vnet_v1.ioctl), which answers
 * for the guest's own fds and host, as Linux would (ENOTTY for a request
 * the fd does not know).
 */
#ifndef __wasilibc___header_sys_ioctl_h
#define __wasilibc___header_sys_ioctl_h

#include <__vnet_replaces.h>
#include <linux/sockios.h>

#define FIONREAD 0x541B
#define FIONBIO 0x5421
#define FIONCLEX 0x5450
#define FIOCLEX 0x5451
#define TIOCOUTQ 0x5411
#define TIOCINQ FIONREAD

#ifdef __cplusplus
extern "C" {
#endif

int ioctl(int, int, ...) __VNET_REPLACES(ioctl);

#ifdef __cplusplus
}
#endif

#endif
