/*
 * unistd.c — vnet SDK: the POSIX calls that need the host: pipe, pipe2,
 * dup, dup2, dup3, fcntl's F_DUPFD (vnet_v1.fd_pipe, fd_dup), gethostname, uname (the
 * virtual host's name, vnet_v1.host_name) and getrandom (WASI random_get,
 * seeded in virtual time). errno values and argument checks are Linux's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <wasi/api.h>

#include <vnet/posix.h>

#define GETRANDOM_MAX 33554431 /* Linux returns at most this much per call */

int pipe2(int fds[2], int flags) {
    if (flags & ~(O_NONBLOCK | O_CLOEXEC))
        return errno = EINVAL, -1;
    int32_t r, w;
    int32_t err = __vnet_fd_pipe((flags & O_NONBLOCK) ? VNET_PIPE_NONBLOCK : 0, &r, &w);
    if (err)
        return errno = err, -1;
    fds[0] = r;
    fds[1] = w;
    return 0;
}

int pipe(int fds[2]) { return pipe2(fds, 0); }

int dup(int fd) {
    int32_t new_fd;
    int32_t err = __vnet_fd_dup(fd, VNET_FD_DUP_LOWEST, 0, &new_fd);
    return err ? (errno = err, -1) : new_fd;
}

int dup2(int fd, int target) {
    int32_t new_fd;
    if (target < 0)
        return errno = EBADF, -1;
    int32_t err = __vnet_fd_dup(fd, (uint32_t)target, 0, &new_fd);
    return err ? (errno = err, -1) : new_fd;
}

int dup3(int fd, int target, int flags) {
    if (flags & ~O_CLOEXEC)
        return errno = EINVAL, -1;
    if (fd == target)
        return errno = EINVAL, -1;
    return dup2(fd, target);
}

/* wasi-libc's fcntl, under its own link name */
int __wasilibc_fcntl(int, int, ...) __asm__("fcntl");

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    int arg = va_arg(ap, int); /* every command takes an int or a pointer (32 bits) */
    va_end(ap);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
        if (arg < 0)
            return errno = EINVAL, -1;
        int32_t new_fd;
        int32_t err = __vnet_fd_dup(fd, VNET_FD_DUP_LOWEST, (uint32_t)arg, &new_fd);
        return err ? (errno = err, -1) : new_fd;
    }
    return __wasilibc_fcntl(fd, cmd, arg);
}

/* gethostname as glibc: copies at most len bytes; ENAMETOOLONG when the name and
 * its NUL do not fit. */
int gethostname(char *name, size_t len) {
    char buf[65];
    uint32_t n = 0;
    int32_t err = __vnet_host_name(buf, sizeof buf - 1, &n);
    if (err)
        return errno = err, -1;
    buf[n] = '\0';
    memcpy(name, buf, len < (size_t)n + 1 ? len : (size_t)n + 1);
    if ((size_t)n + 1 > len)
        return errno = ENAMETOOLONG, -1;
    return 0;
}

/* A guest may not rename its host: EPERM, as for an unprivileged Linux process
 * (a bad length is still EINVAL first). */
int sethostname(const char *name, size_t len) {
    (void)name;
    if (len > 64)
        return errno = EINVAL, -1;
    return errno = EPERM, -1;
}

int getdomainname(char *name, size_t len) {
    static const char none[] = "(none)"; /* Linux's when no domain is set */
    if (len < sizeof none)
        return errno = EINVAL, -1;
    memcpy(name, none, sizeof none);
    return 0;
}

int uname(struct utsname *u) {
    if (!u)
        return errno = EFAULT, -1;
    memset(u, 0, sizeof *u);
    strcpy(u->sysname, "wasi");
    strcpy(u->release, "vnet");
    strcpy(u->version, "vnet_v1");
    strcpy(u->machine, "wasm32");
    strcpy(u->domainname, "(none)");
    uint32_t n = 0;
    int32_t err = __vnet_host_name(u->nodename, sizeof u->nodename - 1, &n);
    if (err)
        return errno = err, -1;
    u->nodename[n] = '\0';
    return 0;
}

ssize_t getrandom(void *buf, size_t len, unsigned flags) {
    if (flags & ~(unsigned)(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE))
        return errno = EINVAL, -1;
    if ((flags & GRND_RANDOM) && (flags & GRND_INSECURE))
        return errno = EINVAL, -1;
    if (len > GETRANDOM_MAX)
        len = GETRANDOM_MAX;
    int err = __wasi_random_get((uint8_t *)buf, len);
    if (err)
        return errno = err, -1;
    return (ssize_t)len;
}
