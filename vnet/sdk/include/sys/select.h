/*
 * <sys/select.h> — vnet SDK: wasi-libc's header, with select and pselect
 * bound to the SDK's implementations (vnet/sdk/src/poll.c; see
 * __vnet_replaces.h for why they have their own link names).
 *
 * fd_set stays wasi-libc's: a list of descriptors rather than a bitmap,
 * used through the usual FD_ZERO / FD_SET / FD_CLR / FD_ISSET macros.
 */
#ifndef __vnet_sys_select_h
#define __vnet_sys_select_h

#include <__typedef_fd_set.h>
#include <__struct_timeval.h>
#include <__struct_timespec.h>
#include <__typedef_sigset_t.h>
#include <__vnet_replaces.h>

#ifdef __cplusplus
extern "C" {
#endif

int select(int, fd_set *__restrict, fd_set *__restrict, fd_set *__restrict,
           struct timeval *__restrict) __VNET_REPLACES(select);
int pselect(int, fd_set *__restrict, fd_set *__restrict, fd_set *__restrict,
            const struct timespec *__restrict, const sigset_t *__restrict)
    __VNET_REPLACES(pselect);

#ifdef __cplusplus
}
#endif

#include_next <sys/select.h>

#endif
