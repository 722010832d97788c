/*
 * netlink.c — vnet SDK: rtnetlink sockets (socket(AF_NETLINK, SOCK_RAW,
 * NETLINK_ROUTE)) over the vnet_v1.netlink_* imports.
 *
 * socket.c sends socket(AF_NETLINK, …), bind and getsockname here,
 * sendrecv.c every send* and recv*, and sockopt.c setsockopt and
 * getsockopt, for the fds this file opened (a bitmap
 * of fd numbers; the host answers ENOTSOCK for an fd that is no longer a
 * netlink socket, and the ordinary path runs). read, write, poll, select
 * and close need nothing here: the host's fd table has the socket.
 * Addresses are struct sockaddr_nl (12 bytes, Linux's layout); flags are
 * Linux's MSG_* values, which the host reads itself (MSG_PEEK, MSG_TRUNC,
 * MSG_DONTWAIT).
 */
#include <errno.h>
#include <string.h>

#include <vnet/netlink_sdk.h>
#include <vnet/sdk_internal.h>

#define NETLINK_FDS 4096
static uint8_t netlink_fds[NETLINK_FDS / 8];

static int is_netlink(int fd) {
    return fd >= 0 && fd < NETLINK_FDS && (netlink_fds[fd / 8] & (1u << (fd % 8)));
}

static void mark(int fd, int on) {
    if (fd < 0 || fd >= NETLINK_FDS)
        return;
    if (on)
        netlink_fds[fd / 8] |= (uint8_t)(1u << (fd % 8));
    else
        netlink_fds[fd / 8] &= (uint8_t)~(1u << (fd % 8));
}

/* The host says fd is not (any more) a netlink socket: forget it. */
static int forget(int fd) {
    mark(fd, 0);
    return VNET_NOT_NETLINK;
}

int __vnet_netlink_socket(int type, int protocol) {
    int32_t fd;
    int32_t err = __vnet_netlink_open(type, protocol, &fd);
    if (err != 0)
        return __vnet_fail((int)err);
    mark(fd, 1);
    return fd;
}

int __vnet_netlink_bind_fd(int fd, const struct sockaddr *addr, socklen_t len) {
    if (!is_netlink(fd))
        return VNET_NOT_NETLINK;
    if (addr == NULL)
        return __vnet_fail(EFAULT);
    int32_t err = __vnet_netlink_bind(fd, addr, len);
    if (err == ENOTSOCK)
        return forget(fd);
    return __vnet_check(err);
}

int __vnet_netlink_getsockname(int fd, struct sockaddr *addr, socklen_t *len) {
    if (!is_netlink(fd))
        return VNET_NOT_NETLINK;
    if (addr == NULL || len == NULL)
        return __vnet_fail(EFAULT);
    if ((int)*len < 0)
        return __vnet_fail(EINVAL);
    uint8_t name[12];
    int32_t err = __vnet_netlink_name(fd, name);
    if (err == ENOTSOCK)
        return forget(fd);
    if (err != 0)
        return __vnet_fail((int)err);
    memcpy(addr, name, *len < sizeof name ? *len : sizeof name);
    *len = sizeof name;
    return 0;
}

ssize_t __vnet_netlink_sendmsg(int fd, const struct iovec *iov, int iovcnt, int flags,
                               const struct sockaddr *to, socklen_t tolen) {
    if (!is_netlink(fd))
        return VNET_NOT_NETLINK;
    uint32_t size = 0;
    int32_t err = __vnet_netlink_send(fd, iov, iovcnt, flags, to, to ? tolen : 0, &size);
    if (err == ENOTSOCK)
        return forget(fd);
    if (err != 0)
        return __vnet_fail((int)err);
    return (ssize_t)size;
}

ssize_t __vnet_netlink_recvmsg(int fd, const struct iovec *iov, int iovcnt, int flags,
                               struct sockaddr *from, socklen_t *fromlen, int *msg_flags) {
    if (!is_netlink(fd))
        return VNET_NOT_NETLINK;
    uint32_t size = 0, out_flags = 0;
    uint8_t name[12];
    int32_t err = __vnet_netlink_recv(fd, iov, iovcnt, flags, &size, &out_flags, name);
    if (err == ENOTSOCK)
        return forget(fd);
    if (err != 0)
        return __vnet_fail((int)err);
    if (msg_flags != NULL)
        *msg_flags = (int)out_flags;
    if (from != NULL && fromlen != NULL) {
        memcpy(from, name, *fromlen < sizeof name ? *fromlen : sizeof name);
        *fromlen = sizeof name;
    }
    return (ssize_t)size;
}

int __vnet_netlink_setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    if (!is_netlink(fd))
        return VNET_NOT_NETLINK;
    int32_t err = __vnet_netlink_set_option(fd, level, name, value, len);
    if (err == ENOTSOCK)
        return forget(fd);
    return __vnet_check(err);
}

int __vnet_netlink_getsockopt(int fd, int level, int name, void *value, socklen_t *len) {
    if (!is_netlink(fd))
        return VNET_NOT_NETLINK;
    uint32_t n = *len;
    int32_t err = __vnet_netlink_get_option(fd, level, name, value, &n);
    if (err == ENOTSOCK)
        return forget(fd);
    if (err != 0)
        return __vnet_fail((int)err);
    *len = n;
    return 0;
}
