/* busywait — a guest that waits by spinning on host calls, never by blocking.
 *
 *   busywait clock MS         spin on clock_gettime(CLOCK_MONOTONIC) until MS ms passed
 *   busywait recv PORT        spin on a non-blocking recv() until a datagram arrives
 *   busywait poll PORT        spin on poll(fd, 1, 0) until a datagram is readable
 *   busywait yield MS         spin on sched_yield() + clock_gettime until MS ms passed
 *
 * Each mode prints what it waited for and how many host calls the wait took.
 * Under virtual time such a guest must still see the clock advance and the
 * datagram arrive: vnet charges every host call virtual time and preempts
 * a guest that runs ahead of the clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int bound_udp(int port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return -1;
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: busywait clock|yield MS | recv|poll PORT\n");
        return 2;
    }
    const char *mode = argv[1];
    long long calls = 0;
    if (strcmp(mode, "clock") == 0 || strcmp(mode, "yield") == 0) {
        int yield = mode[0] == 'y';
        long long start = now_ns(), end = start + atoll(argv[2]) * 1000000LL, t;
        do {
            if (yield) sched_yield();
            t = now_ns();
            calls++;
        } while (t < end);
        printf("busywait: %s waited %lld ms in %lld calls\n", mode, (t - start) / 1000000LL,
               calls);
        return 0;
    }
    int fd = bound_udp(atoi(argv[2]));
    if (fd < 0) {
        perror("busywait: socket");
        return 1;
    }
    printf("busywait: %s waiting on port %s\n", mode, argv[2]);
    fflush(stdout);
    long long start = now_ns();
    char buf[2048];
    ssize_t n;
    if (strcmp(mode, "recv") == 0) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        while ((n = recv(fd, buf, sizeof buf, 0)) < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                perror("busywait: recv");
                return 1;
            }
            calls++;
        }
    } else if (strcmp(mode, "poll") == 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready;
        while ((ready = poll(&pfd, 1, 0)) == 0) calls++;
        if (ready < 0) {
            perror("busywait: poll");
            return 1;
        }
        n = recv(fd, buf, sizeof buf, 0);
    } else {
        fprintf(stderr, "busywait: unknown mode %s\n", mode);
        return 2;
    }
    printf("busywait: %s got %zd bytes after %lld ms and %lld calls\n", mode, n,
           (now_ns() - start) / 1000000LL, calls);
    return 0;
}
