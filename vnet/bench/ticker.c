/* ticker — an idle-heavy guest: one small UDP datagram to a peer every interval.
 *
 *   ticker PORT PEER COUNT [INTERVAL_MS]
 *
 * Binds UDP PORT and listens for one interval (INTERVAL_MS, default 1000),
 * then COUNT times: sends a 32-byte datagram to PEER:PORT and sleeps until
 * the next tick in poll(), taking whatever datagrams arrive meanwhile. After
 * the last send it listens for one more interval, then prints
 *
 *   ticker: sent N received M in S s
 *
 * (S in the program's own clock: simulated seconds under vnet's virtual
 * time). Part of vnet's benchmarks: fifty of them make the virtual-time
 * figure (vnet/bench/idle.py). Builds both ways:
 *   gcc -O2 -Wall vnet/bench/ticker.c -o ticker
 *   vnet build vnet/bench/ticker.c -o ticker.wasm
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: ticker PORT PEER COUNT [INTERVAL_MS]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    long long count = atoll(argv[3]);
    long long interval = argc == 5 ? atoll(argv[4]) : 1000;
    struct sockaddr_in self, peer;
    memset(&self, 0, sizeof self);
    self.sin_family = AF_INET;
    self.sin_port = htons((unsigned short)port);
    peer = self;
    if (inet_pton(AF_INET, argv[2], &peer.sin_addr) != 1 || interval <= 0) {
        fprintf(stderr, "ticker: bad peer address or interval\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&self, sizeof self) != 0) {
        perror("ticker: bind");
        return 1;
    }
    char payload[32];
    memset(payload, 't', sizeof payload);
    long long sent = 0, received = 0;
    long long start = now_ms(), next = start;
    /* tick 0 only listens (every peer has bound its port by then); ticks 1..COUNT send
     * first; after the last send, one more interval of listening */
    for (long long tick = 0; tick <= count; tick++) {
        if (tick > 0) {
            memcpy(payload, &tick, sizeof tick);
            if (sendto(fd, payload, sizeof payload, 0, (struct sockaddr *)&peer,
                       sizeof peer) == (ssize_t)sizeof payload)
                sent++;
        }
        next += interval;
        for (long long left; (left = next - now_ms()) > 0;) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int ready = poll(&pfd, 1, (int)left);
            if (ready < 0 && errno != EINTR) {
                perror("ticker: poll");
                return 1;
            }
            if (ready > 0) {
                char buf[256];
                if (recv(fd, buf, sizeof buf, 0) >= 0) received++;
            }
        }
    }
    printf("ticker: sent %lld received %lld in %.3f s\n", sent, received,
           (now_ms() - start) / 1e3);
    close(fd);
    return 0;
}
