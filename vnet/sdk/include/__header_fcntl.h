/*
 * __header_fcntl.h — vnet SDK: shadows wasi-libc's private header, which its
 * <fcntl.h> includes before declaring fcntl. Adds F_DUPFD (Linux's 0; wasi-libc
 * has none) and declares fcntl with the SDK's link name (__vnet_fcntl, see
 * <__vnet_replaces.h>): the SDK's fcntl (src/unistd.c) does F_DUPFD and
 * F_DUPFD_CLOEXEC on the guest's fd table and hands every other command to
 * wasi-libc's.
 */
#ifndef __vnet___header_fcntl_h
#define __vnet___header_fcntl_h

#include_next <__header_fcntl.h>
#include <__vnet_replaces.h>

#define F_DUPFD 0
#ifndef F_DUPFD_CLOEXEC
#define F_DUPFD_CLOEXEC 1030
#endif

#ifdef __cplusplus
extern "C" {
#endif

int fcntl(int, int, ...) __VNET_REPLACES(fcntl);

#ifdef __cplusplus
}
#endif

#endif
