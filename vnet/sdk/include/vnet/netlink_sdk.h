/*
 * <vnet/netlink_sdk.h> — vnet SDK (internal): rtnetlink sockets.
 *
 * The vnet_v1.netlink_* imports, and the helpers socket.c, sendrecv.c and
 * sockopt.c call so that socket(AF_NETLINK, …), bind, getsockname, every
 * send* and recv*, setsockopt and getsockopt reach them for a netlink fd
 * (vnet/sdk/src/netlink.c). The SDK
 * remembers which fds it opened as netlink sockets; the host has the last
 * word (ENOTSOCK for an fd that is not one any more, after which the
 * ordinary socket path runs).
 */
#ifndef __vnet_netlink_sdk_h
#define __vnet_netlink_sdk_h

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <wasi/api.h>

#ifndef AF_NETLINK
#define AF_NETLINK 16
#endif

#define __VNET_NL_IMPORT(name) \
    __attribute__((__import_module__("vnet_v1"), __import_name__(#name)))

int32_t __vnet_netlink_open(int32_t type, int32_t protocol, int32_t *fd)
    __VNET_NL_IMPORT(netlink_open);
int32_t __vnet_netlink_bind(int32_t fd, const void *addr, uint32_t len)
    __VNET_NL_IMPORT(netlink_bind);
int32_t __vnet_netlink_name(int32_t fd, void *addr12) __VNET_NL_IMPORT(netlink_name);
int32_t __vnet_netlink_send(int32_t fd, const struct iovec *iov, int32_t iovcnt, int32_t flags,
                            const void *addr, uint32_t addr_len, uint32_t *size)
    __VNET_NL_IMPORT(netlink_send);
int32_t __vnet_netlink_recv(int32_t fd, const struct iovec *iov, int32_t iovcnt, int32_t flags,
                            uint32_t *size, uint32_t *msg_flags, void *addr12)
    __VNET_NL_IMPORT(netlink_recv);
int32_t __vnet_netlink_set_option(int32_t fd, int32_t level, int32_t name, const void *value,
                                  uint32_t len) __VNET_NL_IMPORT(netlink_setsockopt);
int32_t __vnet_netlink_get_option(int32_t fd, int32_t level, int32_t name, void *value,
                                  uint32_t *len) __VNET_NL_IMPORT(netlink_getsockopt);

/* Returned by the helpers below when fd is not a netlink socket: the caller
 * goes on with the ordinary socket path. */
#define VNET_NOT_NETLINK (-2)

/* socket(AF_NETLINK, type, protocol) (type without SOCK_NONBLOCK/CLOEXEC):
 * the new fd or -1 with errno. */
int __vnet_netlink_socket(int type, int protocol);
/* bind / getsockname / sendmsg / recvmsg for a netlink fd, or
 * VNET_NOT_NETLINK. */
int __vnet_netlink_bind_fd(int fd, const struct sockaddr *addr, socklen_t len);
int __vnet_netlink_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
ssize_t __vnet_netlink_sendmsg(int fd, const struct iovec *iov, int iovcnt, int flags,
                               const struct sockaddr *to, socklen_t tolen);
ssize_t __vnet_netlink_recvmsg(int fd, const struct iovec *iov, int iovcnt, int flags,
                               struct sockaddr *from, socklen_t *fromlen, int *msg_flags);
int __vnet_netlink_setsockopt(int fd, int level, int name, const void *value, socklen_t len);
int __vnet_netlink_getsockopt(int fd, int level, int name, void *value, socklen_t *len);

#endif
