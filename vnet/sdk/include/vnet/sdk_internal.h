/*
 * <vnet/sdk_internal.h> — vnet SDK: helpers shared by the SDK's own
 * sources in vnet/sdk/src (internal: programs have no use for it). It lives
 * under include/ rather than next to the sources so that it is packaged
 * with the SDK and covered by `vnet build`'s cache key.
 *
 * Converting between BSD socket addresses and WASIX addr_port, setting
 * errno from a host call's return value, and taking one snapshot of the
 * host's interface list (vnet_v1.if_list).
 */
#ifndef __vnet_sdk_internal_h
#define __vnet_sdk_internal_h

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <vnet/wasix.h>

/* errno = err; return -1. */
static inline int __vnet_fail(int err) {
    errno = err;
    return -1;
}

/* Host calls return a WASI errno, which is also wasi-libc's errno value. */
static inline int __vnet_check(int32_t err) {
    if (err != 0) {
        errno = (int)err;
        return -1;
    }
    return 0;
}

/* sockaddr -> addr_port. Returns 0 or an errno (EFAULT, EINVAL,
 * EAFNOSUPPORT). */
int __vnet_sockaddr_to_wasix(const struct sockaddr *sa, socklen_t len, vnet_addr_port *out);

/* addr_port -> sockaddr; returns the sockaddr's length (0 when the host
 * reported no address). */
socklen_t __vnet_wasix_to_sockaddr(const vnet_addr_port *ap, struct sockaddr_storage *out);

/* Copies a converted address out the BSD way: at most *len bytes, and
 * *len set to the full length. A NULL addr or len copies nothing. */
void __vnet_copy_out(const struct sockaddr_storage *ss, socklen_t actual,
                     struct sockaddr *addr, socklen_t *len);

/* in6_addr <-> the eight numeric groups WASIX uses. */
void __vnet_in6_to_segs(const struct in6_addr *a, uint16_t segs[8]);
void __vnet_segs_to_in6(const uint16_t segs[8], struct in6_addr *a);

/* One snapshot of every interface (malloc'ed; the caller frees it).
 * Returns 0 and sets *list and *count, or returns an errno. */
int __vnet_if_snapshot(vnet_if **list, uint32_t *count);

/* Switches O_NONBLOCK on for one call (MSG_DONTWAIT): returns the fd's
 * previous fdflags, or -1 with errno set. __vnet_restore_flags puts them
 * back (keeping errno). */
int __vnet_force_nonblock(int fd);
void __vnet_restore_flags(int fd, int flags);

#endif
