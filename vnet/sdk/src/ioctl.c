/*
 * ioctl.c — vnet SDK: ioctl() with Linux's request numbers.
 *
 * Replaces wasi-libc's ioctl (which knows only its own FIONREAD and FIONBIO).
 * FIONBIO is fcntl(O_NONBLOCK) here; every other request goes to the host as
 * vnet_v1.ioctl(fd, request, arg), which reads and writes the argument in
 * guest memory itself (its layout depends on the request: an int, a struct
 * ifreq, a struct rtentry …) and returns the call's non-negative result or
 * an errno — ENOTTY for a request the fd does not take, as Linux.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include <vnet/sdk_internal.h>

int ioctl(int fd, int request, ...) {
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);

    if (request == FIONBIO) {
        if (arg == NULL)
            return __vnet_fail(EFAULT);
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0)
            return -1;
        flags = *(const int *)arg ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
        return fcntl(fd, F_SETFL, flags) < 0 ? -1 : 0;
    }
    int32_t result = 0;
    int32_t err = __vnet_host_ioctl(fd, request, arg, &result);
    if (err != 0)
        return __vnet_fail((int)err);
    return (int)result;
}
