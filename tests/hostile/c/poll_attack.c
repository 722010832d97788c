/* poll_attack — poll() with far more descriptors than the process may open.
 *
 *   poll_attack [ROUNDS]
 *
 * Calls poll() ROUNDS times (default 20) with 350,000 pollfds that all name
 * one listening socket (Linux: EINVAL, since nfds exceeds RLIMIT_NOFILE),
 * then once with 1000 pollfds (within the limit of 1024 descriptors), which
 * must work. One line per distinct outcome: `call NAME RESULT ERRNO_NAME`,
 * and `rounds N` with how many of the big polls failed with EINVAL. As a
 * wasm guest it also calls poll_oneoff itself with 350,000 subscriptions
 * (`call poll_oneoff_350000`, `oneoff_rounds N`), past the SDK's own check.
 * Portable C: gcc for the Linux reference, `vnet build` for the guest.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __wasi__
#include <wasi/api.h>
#endif

#define HUGE_NFDS 350000
#define SMALL_NFDS 1000

static const char *errno_name(int e) {
    switch (e) {
    case 0: return "OK";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    default: return "OTHER";
    }
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(listener, 4) < 0) {
        perror("listener");
        return 1;
    }
    struct pollfd *fds = calloc(HUGE_NFDS, sizeof *fds);
    if (fds == NULL) {
        perror("calloc");
        return 1;
    }
    for (int i = 0; i < HUGE_NFDS; i++) {
        fds[i].fd = listener;
        fds[i].events = POLLIN | POLLOUT;
    }
    int einval = 0;
    for (int r = 0; r < rounds; r++) {
        int n = poll(fds, HUGE_NFDS, 0);
        if (r == 0)
            printf("call poll_350000 %d %s\n", n, errno_name(n < 0 ? errno : 0));
        if (n < 0 && errno == EINVAL)
            einval++;
    }
    printf("rounds %d\n", einval);
#ifdef __wasi__
    __wasi_subscription_t *subs = calloc(HUGE_NFDS, sizeof *subs);
    __wasi_event_t *events = calloc(HUGE_NFDS, sizeof *events);
    if (subs == NULL || events == NULL) {
        perror("calloc");
        return 1;
    }
    for (int i = 0; i < HUGE_NFDS; i++) {
        subs[i].userdata = (uint64_t)i;
        subs[i].u.tag = __WASI_EVENTTYPE_FD_READ;
        subs[i].u.u.fd_read.file_descriptor = listener;
    }
    int oneoff_einval = 0;
    for (int r = 0; r < rounds; r++) {
        __wasi_size_t nevents = 0;
        __wasi_errno_t err = __wasi_poll_oneoff(subs, events, HUGE_NFDS, &nevents);
        if (r == 0)
            printf("call poll_oneoff_350000 %d %s\n", err ? -1 : (int)nevents,
                   errno_name(err == __WASI_ERRNO_INVAL ? EINVAL : err));
        if (err == __WASI_ERRNO_INVAL)
            oneoff_einval++;
    }
    printf("oneoff_rounds %d\n", oneoff_einval);
    free(subs);
    free(events);
#endif
    int n = poll(fds, SMALL_NFDS, 0);
    printf("call poll_1000 %d %s\n", n, errno_name(n < 0 ? errno : 0));
    printf("done\n");
    return 0;
}
