/* hostcall — what one cheap socket call costs: a system call natively, a
 * host call (wasm -> Python -> back) under vnet.
 *
 *   hostcall COUNT
 *
 * Opens one UDP socket on 127.0.0.1, connects it to itself, then times COUNT
 * calls of each kind and prints one line per kind:
 *
 *   hostcall: getsockname COUNT calls in S s (N ns/call, F failed)
 *   hostcall: send0 COUNT calls in S s (N ns/call, F failed)
 *
 * getsockname is the cheapest socket call there is (under vnet: one
 * sock_addr_local host call that writes 20 bytes back): its cost is the
 * runtime's overhead. send0 sends an empty datagram on the connected socket
 * (one sock_send host call through the UDP layer and the loopback; once the
 * socket's own receive queue is full the datagrams are dropped, as Linux
 * drops them). Part of vnet's benchmarks (scripts/bench); it builds both
 * ways like the examples:
 *
 *   gcc -O2 -Wall vnet/bench/hostcall.c -o hostcall
 *   vnet build vnet/bench/hostcall.c -o hostcall.wasm
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report(const char *what, long long count, long long failed, double seconds) {
    printf("hostcall: %s %lld calls in %.3f s (%.1f ns/call, %lld failed)\n", what, count,
           seconds, count ? seconds * 1e9 / count : 0.0, failed);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    long long count = argc == 2 ? atoll(argv[1]) : 0;
    if (count <= 0) {
        fprintf(stderr, "usage: hostcall COUNT\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in self;
    socklen_t len = sizeof self;
    memset(&self, 0, sizeof self);
    self.sin_family = AF_INET;
    self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&self, sizeof self) != 0 ||
        getsockname(fd, (struct sockaddr *)&self, &len) != 0 ||
        connect(fd, (struct sockaddr *)&self, sizeof self) != 0) {
        perror("hostcall: socket setup");
        return 1;
    }

    long long failed = 0;
    double start = now_s();
    for (long long i = 0; i < count; i++) {
        struct sockaddr_in name;
        socklen_t name_len = sizeof name;
        if (getsockname(fd, (struct sockaddr *)&name, &name_len) != 0) failed++;
    }
    report("getsockname", count, failed, now_s() - start);

    failed = 0;
    char empty[1];
    start = now_s();
    for (long long i = 0; i < count; i++)
        if (send(fd, empty, 0, 0) != 0) failed++;
    report("send0", count, failed, now_s() - start);
    close(fd);
    return 0;
}
