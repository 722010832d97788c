/* pipe_attack — pipes and dup'ed descriptors as a way to make the host hold memory.
 *
 *   pipe_attack
 *
 * Opens pipes until the descriptor limit (EMFILE), fills every one without
 * reading (non-blocking writes of 4096 bytes until EAGAIN), then dups a
 * descriptor until EMFILE and dup2s to a number past the limit (EBADF).
 * Prints `call NAME RESULT ERRNO_NAME` for each distinct failure, `pipes N`
 * (pipes opened) and `pipe_bytes N` (bytes the pipes hold). As a wasm guest
 * it also calls vnet_v1's fd_pipe, fd_dup, host_name and sock_recvmsg with
 * pointers outside its memory (`call raw_*`). Portable C: gcc for the Linux
 * reference, `vnet build` for the guest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __wasi__
#include <vnet/posix.h>
#endif

#define MAX_PIPES 4096

static const char *errno_name(int e) {
    switch (e) {
    case 0: return "OK";
    case EMFILE: return "EMFILE";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    default: return "OTHER";
    }
}

static int ends[MAX_PIPES][2];

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int pipes = 0;
    while (pipes < MAX_PIPES) {
        if (pipe2(ends[pipes], O_NONBLOCK) < 0) {
            printf("call pipe_at_limit -1 %s\n", errno_name(errno));
            break;
        }
        pipes++;
    }
    printf("pipes %d\n", pipes);
    static char page[4096];
    long long held = 0;
    int full_errno = 0;
    for (int i = 0; i < pipes; i++) {
        for (;;) {
            ssize_t n = write(ends[i][1], page, sizeof page);
            if (n < 0) {
                if (!full_errno)
                    full_errno = errno;
                break;
            }
            held += n;
        }
    }
    printf("call pipe_full -1 %s\n", errno_name(full_errno));
    printf("pipe_bytes %lld\n", held);
    /* free a few descriptors, then dup until the limit again */
    for (int i = 0; i < 8 && i < pipes; i++) {
        close(ends[i][0]);
        close(ends[i][1]);
    }
    int dups = 0;
    for (;;) {
        int d = dup(ends[pipes - 1][0]);
        if (d < 0) {
            printf("call dup_at_limit -1 %s\n", errno_name(errno));
            break;
        }
        dups++;
    }
    printf("dups %d\n", dups);
    int r = dup2(ends[pipes - 1][0], 1 << 20);
    printf("call dup2_past_limit %d %s\n", r, errno_name(r < 0 ? errno : 0));
#ifdef __wasi__
    int32_t a, b;
    uint32_t len;
    int32_t bad = (int32_t)0xFFFFFFF0;
    printf("call raw_fd_pipe -1 %s\n", errno_name(__vnet_fd_pipe(0, (int32_t *)bad, &b)));
    printf("call raw_fd_dup -1 %s\n",
           errno_name(__vnet_fd_dup(ends[pipes - 1][0], 0xFFFFFFFFu, 0, (int32_t *)bad)));
    printf("call raw_host_name -1 %s\n",
           errno_name(__vnet_host_name((char *)bad, 64, &len)));
    close(ends[pipes - 1][1]);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    printf("call raw_sock_recvmsg -1 %s\n",
           errno_name(__vnet_sock_recvmsg(s, NULL, 0, 0, (uint32_t *)&a, (uint16_t *)&b, &a,
                                          (void *)bad, 4096, &len)));
#endif
    return 0;
}
