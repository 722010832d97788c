/* namespin MS — spin on read-only host calls (getsockname, getpeername,
 * fcntl(F_GETFL), clock_gettime) until MS ms of the monotonic clock passed,
 * then print how many rounds that took and the socket's name.
 * MS 0: spin forever. A guest that busy-waits without ever blocking. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    long long ms = argc > 1 ? atoll(argv[1]) : 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in self;
    memset(&self, 0, sizeof self);
    self.sin_family = AF_INET;
    self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof self;
    if (fd < 0 || bind(fd, (struct sockaddr *)&self, sizeof self) != 0 ||
        getsockname(fd, (struct sockaddr *)&self, &len) != 0 ||
        connect(fd, (struct sockaddr *)&self, sizeof self) != 0) {
        perror("namespin: setup");
        return 1;
    }
    long long start = now_ms(), rounds = 0;
    struct sockaddr_in name, peer;
    for (;;) {
        socklen_t n1 = sizeof name, n2 = sizeof peer;
        if (getsockname(fd, (struct sockaddr *)&name, &n1) != 0 ||
            getpeername(fd, (struct sockaddr *)&peer, &n2) != 0 || fcntl(fd, F_GETFL) < 0) {
            perror("namespin");
            return 1;
        }
        rounds++;
        if (ms > 0 && now_ms() - start >= ms)
            break;
    }
    char text[INET_ADDRSTRLEN];
    printf("namespin: %lld rounds, name %s:%d, peer port %d\n", rounds,
           inet_ntop(AF_INET, &name.sin_addr, text, sizeof text), ntohs(name.sin_port),
           ntohs(peer.sin_port));
    return 0;
}
