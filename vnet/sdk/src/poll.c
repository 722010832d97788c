/*
 * poll.c — vnet SDK: poll, ppoll, select and pselect over preview1's
 * poll_oneoff, with Linux's event bits (see <poll.h>).
 *
 * Why not wasi-libc's: its poll() refuses a pollfd that asks for neither
 * reading nor writing (ENOSYS), has no POLLPRI, and strips POLLOUT whenever
 * POLLHUP is set; its select() refuses any non-empty exceptfds (ENOSYS) and
 * never reports a socket with a pending error (POLLERR), so a program
 * waiting in select() for a refused non-blocking connect() would hang.
 *
 * How poll_oneoff events become revents:
 *   - POLLIN/POLLRDNORM/POLLRDBAND subscribe FD_READ, and
 *     POLLOUT/POLLWRNORM/POLLWRBAND subscribe FD_WRITE;
 *   - event ready            -> the direction's bits that were asked for;
 *   - event error EBADF      -> POLLNVAL;
 *   - any other event error  -> POLLERR;
 *   - the hang-up flag       -> POLLHUP, plus the direction's bits (a dead
 *     connection is readable and writable on Linux: the next call reports
 *     the error or end of stream at once);
 *   - a pollfd that asks only for POLLPRI, or for nothing, is checked for
 *     POLLNVAL but not waited on (vnet has no urgent data, and poll_oneoff
 *     cannot wait for errors alone); POLLRDHUP is never reported (a peer's
 *     FIN shows as POLLIN, and recv then returns 0).
 * POLLERR, POLLHUP and POLLNVAL are reported whether asked for or not.
 * Pipes follow Linux's pipe_poll (see is_pipe).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the GNU/BSD declarations, whatever the program's flags */
#endif
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include <vnet/sdk_internal.h>

#define READ_BITS (POLLIN | POLLRDNORM | POLLRDBAND)
#define WRITE_BITS (POLLOUT | POLLWRNORM | POLLWRBAND)
#define NO_TIMEOUT UINT64_MAX
#define STACK_SUBS 32

static int is_open(int fd) {
    __wasi_fdstat_t st;
    return __wasi_fd_fdstat_get(fd, &st) != __WASI_ERRNO_BADF;
}

/* A pipe (vnet's: WASI has no FIFO file type, so its filetype is unknown).
 * Pipes poll as Linux's pipe_poll: at end of file only POLLHUP (no POLLIN),
 * without a reader POLLOUT|POLLERR (no POLLHUP). Asked only in those two cases. */
static int is_pipe(int fd) {
    __wasi_fdstat_t st;
    return __wasi_fd_fdstat_get(fd, &st) == 0 && st.fs_filetype == __WASI_FILETYPE_UNKNOWN;
}

/* The common core: timeout_ns is relative, NO_TIMEOUT waits forever. */
static int poll_ns(struct pollfd *fds, nfds_t nfds, uint64_t timeout_ns) {
    if (nfds > 0 && fds == NULL)
        return __vnet_fail(EFAULT);
    if (nfds > (nfds_t)1 << 20)
        return __vnet_fail(EINVAL);
    /* Linux: EINVAL when nfds exceeds RLIMIT_NOFILE (vnet: the guest's --max-fds),
     * before anything is allocated or read */
    uint32_t fd_limit = 0;
    if (nfds > STACK_SUBS / 2 && __vnet_fd_limit(&fd_limit) == 0 && nfds > fd_limit)
        return __vnet_fail(EINVAL);

    size_t max_subs = 2 * (size_t)nfds + 1;
    __wasi_subscription_t stack_subs[STACK_SUBS];
    __wasi_event_t stack_events[STACK_SUBS];
    __wasi_subscription_t *subs = stack_subs;
    __wasi_event_t *events = stack_events;
    if (max_subs > STACK_SUBS) {
        subs = malloc(max_subs * sizeof *subs);
        events = malloc(max_subs * sizeof *events);
        if (subs == NULL || events == NULL) {
            free(subs);
            free(events);
            return __vnet_fail(ENOMEM);
        }
    }

    size_t nsubs = 0;
    int ready = 0;
    for (nfds_t i = 0; i < nfds; i++) {
        struct pollfd *p = &fds[i];
        p->revents = 0;
        if (p->fd < 0)
            continue;
        int subscribed = 0;
        if (p->events & READ_BITS) {
            subs[nsubs++] = (__wasi_subscription_t){
                .userdata = i,
                .u.tag = __WASI_EVENTTYPE_FD_READ,
                .u.u.fd_read.file_descriptor = p->fd,
            };
            subscribed = 1;
        }
        if (p->events & WRITE_BITS) {
            subs[nsubs++] = (__wasi_subscription_t){
                .userdata = i,
                .u.tag = __WASI_EVENTTYPE_FD_WRITE,
                .u.u.fd_write.file_descriptor = p->fd,
            };
            subscribed = 1;
        }
        if (!subscribed && !is_open(p->fd)) {
            p->revents = POLLNVAL;
            ready++;
        }
    }

    /* With an invalid fd already found, poll returns at once, as Linux does. */
    if (ready > 0)
        timeout_ns = 0;
    if (timeout_ns != NO_TIMEOUT || nsubs == 0) {
        subs[nsubs++] = (__wasi_subscription_t){
            .userdata = UINT64_MAX,
            .u.tag = __WASI_EVENTTYPE_CLOCK,
            .u.u.clock.id = __WASI_CLOCKID_MONOTONIC,
            .u.u.clock.timeout = timeout_ns,
            .u.u.clock.precision = 0,
            .u.u.clock.flags = 0,
        };
    }

    __wasi_size_t nevents = 0;
    __wasi_errno_t err = __wasi_poll_oneoff(subs, events, nsubs, &nevents);
    if (err != 0) {
        if (subs != stack_subs) {
            free(subs);
            free(events);
        }
        return __vnet_fail(err);
    }

    for (__wasi_size_t k = 0; k < nevents; k++) {
        const __wasi_event_t *ev = &events[k];
        if (ev->type == __WASI_EVENTTYPE_CLOCK || ev->userdata >= nfds)
            continue;
        struct pollfd *p = &fds[ev->userdata];
        short dir = (short)(p->events &
                            (ev->type == __WASI_EVENTTYPE_FD_READ ? READ_BITS : WRITE_BITS));
        int hangup = (ev->fd_readwrite.flags & __WASI_EVENTRWFLAGS_FD_READWRITE_HANGUP) != 0;
        if (ev->error == __WASI_ERRNO_BADF) {
            p->revents |= POLLNVAL;
        } else if (ev->error != 0) {
            p->revents |= POLLERR;
            if (hangup)
                p->revents |= POLLHUP | dir;
            else if (ev->error == __WASI_ERRNO_PIPE && is_pipe(p->fd))
                p->revents |= dir;
        } else if (hangup && ev->fd_readwrite.nbytes == 0 &&
                   ev->type == __WASI_EVENTTYPE_FD_READ && is_pipe(p->fd)) {
            p->revents |= POLLHUP;
        } else {
            p->revents |= dir;
            if (hangup)
                p->revents |= POLLHUP;
        }
    }
    if (subs != stack_subs) {
        free(subs);
        free(events);
    }

    int count = 0;
    for (nfds_t i = 0; i < nfds; i++)
        if (fds[i].revents != 0)
            count++;
    return count;
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout_ms) {
    uint64_t ns = timeout_ms < 0 ? NO_TIMEOUT : (uint64_t)timeout_ms * 1000000u;
    return poll_ns(fds, nfds, ns);
}

int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout,
          const sigset_t *sigmask) {
    (void)sigmask; /* wasm has no asynchronous signals */
    uint64_t ns = NO_TIMEOUT;
    if (timeout != NULL) {
        if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000)
            return __vnet_fail(EINVAL);
        ns = (uint64_t)timeout->tv_sec * 1000000000u + (uint64_t)timeout->tv_nsec;
    }
    return poll_ns(fds, nfds, ns);
}

/* --- select ------------------------------------------------------------------- */

/* wasi-libc's fd_set is a list of fds (see <__fd_set.h>), used here only
 * through the FD_* macros. */
static int select_ns(int nfds, fd_set *rfds, fd_set *wfds, fd_set *efds, uint64_t timeout_ns) {
    if (nfds < 0 || nfds > FD_SETSIZE)
        return __vnet_fail(EINVAL);
    fd_set *sets[3] = {rfds, wfds, efds};
    static const short wanted[3] = {POLLIN, POLLOUT, POLLPRI};

    size_t cap = 0;
    for (int s = 0; s < 3; s++)
        if (sets[s] != NULL)
            cap += sets[s]->__nfds;
    struct pollfd stack_pfds[STACK_SUBS];
    struct pollfd *pfds = stack_pfds;
    if (cap > STACK_SUBS) {
        pfds = malloc(cap * sizeof *pfds);
        if (pfds == NULL)
            return __vnet_fail(ENOMEM);
    }

    /* One pollfd per distinct fd below nfds. */
    nfds_t n = 0;
    for (int s = 0; s < 3; s++) {
        if (sets[s] == NULL)
            continue;
        for (size_t j = 0; j < sets[s]->__nfds; j++) {
            int fd = sets[s]->__fds[j];
            if (fd < 0 || fd >= nfds)
                continue;
            nfds_t k = 0;
            while (k < n && pfds[k].fd != fd)
                k++;
            if (k == n)
                pfds[n++] = (struct pollfd){.fd = fd, .events = 0, .revents = 0};
            pfds[k].events |= wanted[s];
        }
    }

    int rc = poll_ns(pfds, n, timeout_ns);
    if (rc < 0)
        goto out;
    for (nfds_t k = 0; k < n; k++) {
        if (pfds[k].revents & POLLNVAL) {
            rc = __vnet_fail(EBADF);
            goto out;
        }
    }
    /* Linux: readable = POLLIN|POLLHUP|POLLERR, writable = POLLOUT|POLLERR,
     * exceptional = POLLPRI. */
    if (rfds) FD_ZERO(rfds);
    if (wfds) FD_ZERO(wfds);
    if (efds) FD_ZERO(efds);
    rc = 0;
    for (nfds_t k = 0; k < n; k++) {
        short ev = pfds[k].events, re = pfds[k].revents;
        if (rfds && (ev & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR))) {
            FD_SET(pfds[k].fd, rfds);
            rc++;
        }
        if (wfds && (ev & POLLOUT) && (re & (POLLOUT | POLLERR))) {
            FD_SET(pfds[k].fd, wfds);
            rc++;
        }
        if (efds && (ev & POLLPRI) && (re & POLLPRI)) {
            FD_SET(pfds[k].fd, efds);
            rc++;
        }
    }
out:
    if (pfds != stack_pfds)
        free(pfds);
    return rc;
}

static uint64_t now_ns(void) {
    __wasi_timestamp_t t = 0;
    (void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t);
    return t;
}

int select(int nfds, fd_set *__restrict rfds, fd_set *__restrict wfds, fd_set *__restrict efds,
           struct timeval *__restrict timeout) {
    uint64_t ns = NO_TIMEOUT, start = 0;
    if (timeout != NULL) {
        if (timeout->tv_sec < 0 || timeout->tv_usec < 0)
            return __vnet_fail(EINVAL);
        ns = (uint64_t)timeout->tv_sec * 1000000000u + (uint64_t)timeout->tv_usec * 1000u;
        start = now_ns();
    }
    int rc = select_ns(nfds, rfds, wfds, efds, ns);
    if (timeout != NULL && rc >= 0) {
        /* Linux leaves the time not slept in *timeout. */
        uint64_t spent = now_ns() - start;
        uint64_t left = spent >= ns ? 0 : ns - spent;
        timeout->tv_sec = (time_t)(left / 1000000000u);
        timeout->tv_usec = (suseconds_t)((left % 1000000000u) / 1000u);
    }
    return rc;
}

int pselect(int nfds, fd_set *__restrict rfds, fd_set *__restrict wfds, fd_set *__restrict efds,
            const struct timespec *__restrict timeout, const sigset_t *__restrict sigmask) {
    (void)sigmask;
    uint64_t ns = NO_TIMEOUT;
    if (timeout != NULL) {
        if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000)
            return __vnet_fail(EINVAL);
        ns = (uint64_t)timeout->tv_sec * 1000000000u + (uint64_t)timeout->tv_nsec;
    }
    return select_ns(nfds, rfds, wfds, efds, ns);
}
