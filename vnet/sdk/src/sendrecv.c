/*
 * sendrecv.c — vnet SDK: moving data through sockets.
 *
 * send, recv, sendto, recvfrom, sendmsg, recvmsg, sendmmsg and recvmmsg.
 * Receiving goes through WASIX sock_recv_from (which also reports the
 * source address); sending to an address through WASIX sock_send_to, and
 * sending on a connected socket through preview1's sock_send. Flags use
 * Linux's values (see <sys/socket.h>):
 *
 *   MSG_PEEK, MSG_WAITALL   passed to the host as riflags
 *   MSG_DONTWAIT            the fd is switched to O_NONBLOCK for this call
 *   MSG_TRUNC (recv)        datagram sockets return the datagram's real
 *                           length, as on Linux
 *   MSG_NOSIGNAL, MSG_MORE, MSG_EOR, MSG_CONFIRM, MSG_DONTROUTE
 *                           accepted and ignored (wasm has no SIGPIPE)
 *   MSG_OOB                 EOPNOTSUPP (vnet carries no urgent data)
 *   MSG_ERRQUEUE            EAGAIN (no error queue)
 *
 * recvmsg delivers the control messages the socket asked for (IP_PKTINFO,
 * IP_RECVTTL, IP_RECVTOS, IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT,
 * IPV6_RECVTCLASS, SO_TIMESTAMP, SO_TIMESTAMPNS on datagram sockets) through
 * vnet_v1.sock_recvmsg, laid out with this SDK's CMSG_* macros and cut as
 * Linux's put_cmsg cuts them (MSG_CTRUNC when msg_control is too small).
 * As on Linux, receiving on a stream socket reports no source address
 * (the address length comes back 0).
 *
 * Replaces wasi-libc's send and recv (preview1 numbering of MSG_*, no
 * MSG_DONTWAIT); defining them here keeps wasi-libc's out of the link.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the GNU/BSD declarations, whatever the program's flags */
#endif
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <vnet/posix.h>
#include <vnet/sdk_internal.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define SEND_IGNORED (MSG_NOSIGNAL | MSG_MORE | MSG_EOR | MSG_CONFIRM | MSG_DONTROUTE)
#define MAX_DATAGRAM 65536

static int filetype_of(int fd) {
    __wasi_fdstat_t st;
    return __wasi_fd_fdstat_get(fd, &st) == 0 ? st.fs_filetype : -1;
}

static size_t iov_total(const struct iovec *iov, int n) {
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    return total;
}

static void scatter(const struct iovec *iov, int n, const uint8_t *data, size_t len) {
    for (int i = 0; i < n && len > 0; i++) {
        size_t chunk = iov[i].iov_len < len ? iov[i].iov_len : len;
        memcpy(iov[i].iov_base, data, chunk);
        data += chunk;
        len -= chunk;
    }
}

/* One receive: returns the byte count (the full datagram length when
 * MSG_TRUNC asks for it) and fills *msg_flags and the source address. */
/* Where recvmsg wants control messages: the host's records go to `records`
 * (`written` of them fit, `needed` is the length of all). */
struct control_request {
    uint8_t records[256];
    uint32_t needed;
};

static ssize_t do_recv(int fd, const struct iovec *iov, int iovcnt, int flags,
                       struct sockaddr *from, socklen_t *fromlen, int *msg_flags,
                       struct control_request *control) {
    if (iovcnt < 0 || iovcnt > IOV_MAX)
        return __vnet_fail(EMSGSIZE);
    if (flags & MSG_OOB)
        return __vnet_fail(EOPNOTSUPP);
    if (flags & MSG_ERRQUEUE)
        return __vnet_fail(EAGAIN);
    int32_t riflags = 0;
    if (flags & MSG_PEEK)
        riflags |= VNET_RIFLAGS_PEEK;
    if (flags & MSG_WAITALL)
        riflags |= VNET_RIFLAGS_WAITALL;

    /* MSG_TRUNC on a datagram socket: receive into a buffer big enough for
     * any datagram so the real length is known. */
    uint8_t *bounce = NULL;
    struct iovec bounce_iov;
    const struct iovec *use_iov = iov;
    int use_cnt = iovcnt;
    if ((flags & MSG_TRUNC) && filetype_of(fd) == __WASI_FILETYPE_SOCKET_DGRAM) {
        bounce = malloc(MAX_DATAGRAM);
        if (bounce == NULL)
            return __vnet_fail(ENOMEM);
        bounce_iov.iov_base = bounce;
        bounce_iov.iov_len = MAX_DATAGRAM;
        use_iov = &bounce_iov;
        use_cnt = 1;
    }

    int saved_flags = -1;
    if (flags & MSG_DONTWAIT) {
        saved_flags = __vnet_force_nonblock(fd);
        if (saved_flags < 0) {
            free(bounce);
            return -1;
        }
    }
    uint32_t size = 0;
    uint16_t roflags = 0;
    vnet_addr_port src;
    memset(&src, 0, sizeof src);
    int32_t err;
    if (control != NULL)
        err = __vnet_sock_recvmsg(fd, use_iov, use_cnt, riflags, &size, &roflags, &src,
                                  control->records, sizeof control->records, &control->needed);
    else
        err = __wasix_sock_recv_from(fd, (const __wasi_iovec_t *)use_iov, use_cnt, riflags,
                                     &size, &roflags, &src);
    if (saved_flags >= 0)
        __vnet_restore_flags(fd, saved_flags);
    if (err != 0) {
        free(bounce);
        return __vnet_fail(err);
    }

    int out_flags = 0;
    if (bounce != NULL) {
        size_t room = iov_total(iov, iovcnt);
        scatter(iov, iovcnt, bounce, size < room ? size : room);
        if (size > room)
            out_flags |= MSG_TRUNC;
        free(bounce);
    } else if (roflags & VNET_ROFLAGS_TRUNCATED) {
        out_flags |= MSG_TRUNC;
    }
    if (msg_flags != NULL)
        *msg_flags = out_flags;
    if (from != NULL && fromlen != NULL) {
        /* Linux names no source on a stream socket (the length comes back
         * 0); the host reports the peer, so ask what the socket is. */
        struct sockaddr_storage ss;
        socklen_t actual = 0;
        if (filetype_of(fd) != __WASI_FILETYPE_SOCKET_STREAM)
            actual = __vnet_wasix_to_sockaddr(&src, &ss);
        __vnet_copy_out(&ss, actual, from, fromlen);
    }
    return (ssize_t)size;
}

static ssize_t do_send(int fd, const struct iovec *iov, int iovcnt, int flags,
                       const struct sockaddr *to, socklen_t tolen) {
    if (iovcnt < 0 || iovcnt > IOV_MAX)
        return __vnet_fail(EMSGSIZE);
    if (flags & MSG_OOB)
        return __vnet_fail(EOPNOTSUPP);
    vnet_addr_port dest;
    if (to != NULL) {
        int err = __vnet_sockaddr_to_wasix(to, tolen, &dest);
        if (err)
            return __vnet_fail(err);
    }
    int saved_flags = -1;
    if (flags & MSG_DONTWAIT) {
        saved_flags = __vnet_force_nonblock(fd);
        if (saved_flags < 0)
            return -1;
    }
    int32_t err;
    uint32_t size = 0;
    if (to != NULL) {
        err = __wasix_sock_send_to(fd, (const __wasi_ciovec_t *)iov, iovcnt, 0, &dest, &size);
    } else {
        __wasi_size_t sent = 0;
        err = __wasi_sock_send(fd, (const __wasi_ciovec_t *)iov, (size_t)iovcnt, 0, &sent);
        size = sent;
    }
    if (saved_flags >= 0)
        __vnet_restore_flags(fd, saved_flags);
    if (err != 0)
        return __vnet_fail(err);
    return (ssize_t)size;
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
    struct iovec iov = {buf, len};
    return do_recv(fd, &iov, 1, flags, NULL, NULL, NULL, NULL);
}

ssize_t recvfrom(int fd, void *__restrict buf, size_t len, int flags,
                 struct sockaddr *__restrict from, socklen_t *__restrict fromlen) {
    struct iovec iov = {buf, len};
    if (from != NULL && fromlen == NULL)
        return __vnet_fail(EFAULT);
    return do_recv(fd, &iov, 1, flags, from, fromlen, NULL, NULL);
}

/* The host's control records as cmsghdrs in msg_control, each cut as Linux's
 * put_cmsg cuts it: a header that does not fit ends the list, data that does
 * not fit is truncated, and either sets MSG_CTRUNC. msg_controllen becomes
 * what was used. */
static void put_control(struct msghdr *msg, const struct control_request *control,
                        int *out_flags) {
    unsigned char *out = msg->msg_control;
    size_t room = out != NULL ? msg->msg_controllen : 0;
    size_t used = 0;
    uint32_t written = control->needed < sizeof control->records ? control->needed
                                                                 : sizeof control->records;
    uint32_t offset = 0;
    while (offset + 12 <= written) {
        uint32_t head[3];
        memcpy(head, control->records + offset, sizeof head);
        const uint8_t *data = control->records + offset + 12;
        uint32_t len = head[2];
        offset += 12 + ((len + 3) & ~3u);
        if (offset > written)
            break;
        if (room - used < sizeof(struct cmsghdr)) {
            *out_flags |= MSG_CTRUNC;
            break;
        }
        size_t cmlen = CMSG_LEN(len);
        if (room - used < cmlen) {
            *out_flags |= MSG_CTRUNC;
            cmlen = room - used;
        }
        struct cmsghdr header;
        header.cmsg_len = (socklen_t)cmlen;
        header.cmsg_level = (int)head[0];
        header.cmsg_type = (int)head[1];
        memcpy(out + used, &header, sizeof header);
        memcpy(out + used + sizeof header, data, cmlen - sizeof header);
        size_t space = CMSG_SPACE(len);
        used += space < room - used ? space : room - used;
    }
    if (control->needed > sizeof control->records)
        *out_flags |= MSG_CTRUNC;
    msg->msg_controllen = (socklen_t)used;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    if (msg == NULL)
        return __vnet_fail(EFAULT);
    int out_flags = 0;
    socklen_t namelen = msg->msg_namelen;
    struct control_request control;
    control.needed = 0;
    ssize_t n = do_recv(fd, msg->msg_iov, msg->msg_iovlen, flags,
                        msg->msg_name, msg->msg_name ? &namelen : NULL, &out_flags, &control);
    if (n < 0)
        return -1;
    if (msg->msg_name != NULL)
        msg->msg_namelen = namelen;
    put_control(msg, &control, &out_flags);
    msg->msg_flags = out_flags;
    return n;
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
    struct iovec iov = {(void *)buf, len};
    return do_send(fd, &iov, 1, flags, NULL, 0);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
               socklen_t tolen) {
    struct iovec iov = {(void *)buf, len};
    return do_send(fd, &iov, 1, flags, to, tolen);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    if (msg == NULL)
        return __vnet_fail(EFAULT);
    return do_send(fd, msg->msg_iov, msg->msg_iovlen, flags, msg->msg_name,
                   msg->msg_name ? msg->msg_namelen : 0);
}

int sendmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, unsigned int flags) {
    unsigned int i;
    for (i = 0; i < vlen; i++) {
        ssize_t n = sendmsg(fd, &msgs[i].msg_hdr, (int)flags);
        if (n < 0)
            return i > 0 ? (int)i : -1;
        msgs[i].msg_len = (unsigned int)n;
    }
    return (int)i;
}

int recvmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, unsigned int flags,
             struct timespec *timeout) {
    (void)timeout; /* like Linux, only checked between datagrams; vnet: ignored */
    unsigned int i;
    for (i = 0; i < vlen; i++) {
        ssize_t n = recvmsg(fd, &msgs[i].msg_hdr, (int)flags);
        if (n < 0)
            return i > 0 ? (int)i : -1;
        msgs[i].msg_len = (unsigned int)n;
        if (flags & MSG_WAITFORONE)
            flags |= MSG_DONTWAIT;
    }
    return (int)i;
}
