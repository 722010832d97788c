/* idle_udp PORT PEER SECONDS — an idle-heavy network program.
 *
 * Binds a UDP socket to PORT and, once a second for SECONDS seconds, sends a
 * 16-byte datagram to PEER:PORT; in between it waits in poll() for datagrams
 * from others and counts them. Prints "idle_udp: sent N received M" at the
 * end. Fifty of these in a ring are the idle-heavy virtual-time topology of
 * issue 12 (tests/scheduler/idle_heavy.py).
 */
#include <arpa/inet.h>
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
    if (argc != 4) {
        fprintf(stderr, "usage: idle_udp PORT PEER SECONDS\n");
        return 2;
    }
    int port = atoi(argv[1]);
    int seconds = atoi(argv[3]);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in me, peer;
    memset(&me, 0, sizeof me);
    me.sin_family = AF_INET;
    me.sin_port = htons((unsigned short)port);
    if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof me) != 0) {
        perror("idle_udp: socket/bind");
        return 1;
    }
    memset(&peer, 0, sizeof peer);
    peer.sin_family = AF_INET;
    peer.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, argv[2], &peer.sin_addr) != 1) {
        fprintf(stderr, "idle_udp: bad address %s\n", argv[2]);
        return 2;
    }
    long long start = now_ms();
    long sent = 0, received = 0;
    char msg[16] = "tick tock tick!";
    for (int second = 1; second <= seconds; second++) {
        if (sendto(fd, msg, sizeof msg, 0, (struct sockaddr *)&peer, sizeof peer) == sizeof msg)
            sent++;
        long long next = start + 1000LL * second;
        for (;;) {
            long long left = next - now_ms();
            if (left <= 0)
                break;
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, (int)left) > 0) {
                char buf[64];
                if (recv(fd, buf, sizeof buf, 0) > 0)
                    received++;
            }
        }
    }
    printf("idle_udp: sent %ld received %ld\n", sent, received);
    return 0;
}
