/*
 * <sys/utsname.h> — vnet SDK: struct utsname (Linux's layout) and uname,
 * whose nodename is the virtual host's name (vnet/sdk/src/unistd.c).
 * wasi-libc defines uname but ships no header; the SDK's replaces it (its
 * link name is __vnet_uname, see <__vnet_replaces.h>).
 */
#ifndef __vnet_sys_utsname_h
#define __vnet_sys_utsname_h

#include <__vnet_replaces.h>

#ifdef __cplusplus
extern "C" {
#endif

struct utsname {
    char sysname[65];
    char nodename[65];
    char release[65];
    char version[65];
    char machine[65];
#ifdef _GNU_SOURCE
    char domainname[65];
#else
    char __domainname[65];
#endif
};

int uname(struct utsname *) __VNET_REPLACES(uname);

#ifdef __cplusplus
}
#endif

#endif
