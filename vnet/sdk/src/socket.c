/*
 * socket.c — vnet SDK: creating, naming, connecting and closing sockets.
 *
 * socket, socketpair, bind, connect, listen, accept, accept4, shutdown,
 * getsockname, getpeername and sockatmark over WASIX (sock_open, sock_bind,
 * sock_connect, sock_listen, sock_accept_v2, sock_addr_local/peer) and
 * preview1's sock_shutdown. Sockets are ordinary fds: read, write, close,
 * fcntl and ioctl(FIONBIO) stay wasi-libc's (fd_read, fd_write, fd_close,
 * fd_fdstat_set_flags), which vnet's host implements for sockets.
 *
 * Replaces wasi-libc's accept, accept4 (which report no peer address) and
 * shutdown (which uses WASI's SHUT_* numbering); defining all the symbols of
 * those archive members keeps wasi-libc's copies out of the link.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the GNU/BSD declarations, whatever the program's flags */
#endif
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <vnet/netlink_sdk.h>
#include <vnet/sdk_internal.h>

/* O_NONBLOCK on a fresh fd (SOCK_NONBLOCK); closes it on failure. */
static int apply_nonblock(int fd) {
    __wasi_fdstat_t st;
    __wasi_errno_t err = __wasi_fd_fdstat_get(fd, &st);
    if (err == 0)
        err = __wasi_fd_fdstat_set_flags(fd, st.fs_flags | __WASI_FDFLAGS_NONBLOCK);
    if (err != 0) {
        (void)__wasi_fd_close(fd);
        return __vnet_fail(err);
    }
    return fd;
}

static int wasix_type(int type) {
    switch (type) {
    case SOCK_STREAM: return VNET_SOCK_STREAM;
    case SOCK_DGRAM: return VNET_SOCK_DGRAM;
    case SOCK_RAW: return VNET_SOCK_RAW;
    case SOCK_SEQPACKET: return VNET_SOCK_SEQPACKET;
    default: return -1;
    }
}

static int wasix_family(int domain) {
    switch (domain) {
    case AF_INET: return VNET_AF_INET4;
    case AF_INET6: return VNET_AF_INET6;
    case AF_UNIX: return VNET_AF_UNIX;
    default: return -1;
    }
}

int socket(int domain, int type, int protocol) {
    int flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (domain == AF_NETLINK) { /* rtnetlink: netlink.c */
        int nl = __vnet_netlink_socket(type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), protocol);
        return (nl >= 0 && (flags & SOCK_NONBLOCK)) ? apply_nonblock(nl) : nl;
    }
    int af = wasix_family(domain);
    int st = wasix_type(type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (af < 0)
        return __vnet_fail(EAFNOSUPPORT);
    if (st < 0 || protocol < 0 || protocol > 0xffff)
        return __vnet_fail(EINVAL);
    int32_t fd;
    if (__vnet_check(__wasix_sock_open(af, st, protocol, &fd)) < 0)
        return -1;
    return (flags & SOCK_NONBLOCK) ? apply_nonblock(fd) : fd;
}

int socketpair(int domain, int type, int protocol, int sv[2]) {
    int flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC);
    int af = wasix_family(domain);
    int st = wasix_type(type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (af < 0)
        return __vnet_fail(EAFNOSUPPORT);
    if (st < 0 || protocol < 0 || protocol > 0xffff)
        return __vnet_fail(EINVAL);
    int32_t fds[2];
    if (__vnet_check(__wasix_sock_pair(af, st, protocol, &fds[0], &fds[1])) < 0)
        return -1;
    if (flags & SOCK_NONBLOCK) {
        if (apply_nonblock(fds[0]) < 0) {
            (void)__wasi_fd_close(fds[1]);
            return -1;
        }
        if (apply_nonblock(fds[1]) < 0) {
            (void)__wasi_fd_close(fds[0]);
            return -1;
        }
    }
    sv[0] = fds[0];
    sv[1] = fds[1];
    return 0;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    int nl = __vnet_netlink_bind_fd(fd, addr, len); /* rtnetlink: netlink.c */
    if (nl != VNET_NOT_NETLINK)
        return nl;
    vnet_addr_port ap;
    int err = __vnet_sockaddr_to_wasix(addr, len, &ap);
    if (err)
        return __vnet_fail(err);
    return __vnet_check(__wasix_sock_bind(fd, &ap));
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    vnet_addr_port ap;
    int err = __vnet_sockaddr_to_wasix(addr, len, &ap);
    if (err)
        return __vnet_fail(err);
    return __vnet_check(__wasix_sock_connect(fd, &ap));
}

int listen(int fd, int backlog) {
    /* Linux treats a negative backlog as "as large as allowed"; the host
     * caps large ones. */
    if (backlog < 0)
        backlog = SOMAXCONN;
    return __vnet_check(__wasix_sock_listen(fd, backlog));
}

int accept4(int fd, struct sockaddr *__restrict addr, socklen_t *__restrict len, int flags) {
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
        return __vnet_fail(EINVAL);
    int32_t newfd;
    vnet_addr_port peer;
    memset(&peer, 0, sizeof peer);
    int32_t fdflags = (flags & SOCK_NONBLOCK) ? VNET_FDFLAGS_NONBLOCK : 0;
    if (__vnet_check(__wasix_sock_accept_v2(fd, fdflags, &newfd, &peer)) < 0)
        return -1;
    if (addr != NULL && len != NULL) {
        struct sockaddr_storage ss;
        socklen_t actual = __vnet_wasix_to_sockaddr(&peer, &ss);
        __vnet_copy_out(&ss, actual, addr, len);
    }
    return newfd;
}

int accept(int fd, struct sockaddr *__restrict addr, socklen_t *__restrict len) {
    return accept4(fd, addr, len, 0);
}

int shutdown(int fd, int how) {
    __wasi_sdflags_t sd;
    switch (how) {
    case SHUT_RD: sd = __WASI_SDFLAGS_RD; break;
    case SHUT_WR: sd = __WASI_SDFLAGS_WR; break;
    case SHUT_RDWR: sd = __WASI_SDFLAGS_RD | __WASI_SDFLAGS_WR; break;
    default: return __vnet_fail(EINVAL);
    }
    return __vnet_check(__wasi_sock_shutdown(fd, sd));
}

static int name_of(int32_t (*query)(int32_t, vnet_addr_port *), int fd,
                   struct sockaddr *addr, socklen_t *len) {
    if (addr == NULL || len == NULL)
        return __vnet_fail(EFAULT);
    if ((int)*len < 0)
        return __vnet_fail(EINVAL);
    vnet_addr_port ap;
    memset(&ap, 0, sizeof ap);
    if (__vnet_check(query(fd, &ap)) < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t actual = __vnet_wasix_to_sockaddr(&ap, &ss);
    if (actual == 0) {
        /* unnamed: like Linux for an unbound AF_UNIX socket */
        ss.ss_family = AF_UNSPEC;
        actual = sizeof(sa_family_t);
    }
    __vnet_copy_out(&ss, actual, addr, len);
    return 0;
}

int getsockname(int fd, struct sockaddr *__restrict addr, socklen_t *__restrict len) {
    int nl = __vnet_netlink_getsockname(fd, addr, len); /* rtnetlink: netlink.c */
    if (nl != VNET_NOT_NETLINK)
        return nl;
    return name_of(__wasix_sock_addr_local, fd, addr, len);
}

int getpeername(int fd, struct sockaddr *__restrict addr, socklen_t *__restrict len) {
    return name_of(__wasix_sock_addr_peer, fd, addr, len);
}

int sockatmark(int fd) {
    /* vnet delivers no urgent data, so a socket is never at the mark; still
     * check that fd is a socket. */
    uint8_t status;
    if (__vnet_check(__wasix_sock_status(fd, &status)) < 0)
        return -1;
    return 0;
}

/* --- MSG_DONTWAIT support (used by sendrecv.c) ----------------------------- */

int __vnet_force_nonblock(int fd) {
    __wasi_fdstat_t st;
    __wasi_errno_t err = __wasi_fd_fdstat_get(fd, &st);
    if (err != 0)
        return __vnet_fail(err);
    if (!(st.fs_flags & __WASI_FDFLAGS_NONBLOCK)) {
        err = __wasi_fd_fdstat_set_flags(fd, st.fs_flags | __WASI_FDFLAGS_NONBLOCK);
        if (err != 0)
            return __vnet_fail(err);
    }
    return st.fs_flags;
}

void __vnet_restore_flags(int fd, int flags) {
    if (!(flags & __WASI_FDFLAGS_NONBLOCK)) {
        int saved = errno;
        (void)__wasi_fd_fdstat_set_flags(fd, (__wasi_fdflags_t)flags);
        errno = saved;
    }
}
