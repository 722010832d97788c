/* udp_rtt — measure UDP round-trip times, like a tiny ping over UDP.
 *
 *   udp_rtt server PORT                                 echo probes back; exit on "bye"
 *   udp_rtt client HOST PORT COUNT [INTERVAL_MS] [TIMEOUT_MS]
 *
 * The client sends COUNT numbered probes, one every INTERVAL_MS (default 10),
 * and waits up to TIMEOUT_MS (default 500) for each echo; late or duplicate
 * replies are ignored. It then prints how many were lost and the minimum,
 * median (p50), 99th percentile (p99) and maximum round-trip time in
 * microseconds (nearest-rank percentiles), and tells the server "bye".
 *
 *   gcc -O2 -Wall examples/udp_rtt.c -o udp_rtt
 *   vnet build examples/udp_rtt.c -o udp_rtt.wasm
 *   ./udp_rtt server 9100 &  ./udp_rtt client localhost 9100 100
 *
 * In vnet's virtual time a link's configured latency shows up exactly.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROBE_SIZE 64

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int server(int port) {
    int zero = 0;
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 addr;
    memset(&addr, 0, sizeof addr);
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons((unsigned short)port);
    if (fd < 0) {
        perror("udp_rtt: socket");
        return 1;
    }
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("udp_rtt: bind");
        return 1;
    }
    printf("udp_rtt: listening on port %d\n", port);
    long long echoed = 0;
    for (;;) {
        char buf[2048];
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &peer_len);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("udp_rtt: recvfrom");
            return 1;
        }
        if (n == 3 && memcmp(buf, "bye", 3) == 0) break;
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, peer_len);
        echoed++;
    }
    printf("udp_rtt: echoed %lld probe(s), bye\n", echoed);
    close(fd);
    return 0;
}

static int by_value(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of n sorted samples. */
static long long percentile(const long long *sorted, int n, int pct) {
    int rank = (pct * n + 99) / 100; /* ceil(pct/100 * n) */
    return sorted[rank < 1 ? 0 : rank - 1];
}

static int client(const char *host, const char *port, int count, int interval_ms,
                  int timeout_ms) {
    struct addrinfo hints, *found;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    int rc = getaddrinfo(host, port, &hints, &found);
    if (rc != 0) {
        fprintf(stderr, "udp_rtt: %s: %s\n", host, gai_strerror(rc));
        return 2;
    }
    int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    if (fd < 0 || connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
        perror("udp_rtt: connect");
        return 2;
    }
    freeaddrinfo(found);

    long long *rtts = calloc((size_t)(count > 0 ? count : 1), sizeof *rtts);
    int got = 0;
    for (int seq = 1; seq <= count; seq++) {
        /* A probe: "probe SEQ", zero-padded to PROBE_SIZE bytes. */
        char probe[PROBE_SIZE], reply[PROBE_SIZE + 1];
        memset(probe, 0, sizeof probe);
        snprintf(probe, sizeof probe, "probe %d", seq);
        long long sent = now_us(), deadline = sent + timeout_ms * 1000LL;
        if (send(fd, probe, sizeof probe, 0) < 0) {
            fprintf(stderr, "udp_rtt: send: %s\n", strerror(errno));
        } else {
            for (long long left; (left = deadline - now_us()) > 0;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                if (poll(&pfd, 1, (int)((left + 999) / 1000)) <= 0) continue;
                ssize_t n = recv(fd, reply, sizeof reply, 0);
                if (n == PROBE_SIZE && memcmp(reply, probe, PROBE_SIZE) == 0) {
                    rtts[got++] = now_us() - sent;
                    break;
                }
                /* anything else is a late echo of an earlier probe: ignore it */
            }
        }
        if (seq < count && interval_ms > 0) {
            struct timespec nap = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
            nanosleep(&nap, NULL);
        }
    }
    for (int i = 0; i < 3; i++) send(fd, "bye", 3, 0); /* three times, in case of loss */
    close(fd);

    int lost = count - got;
    printf("udp_rtt: %d probes to %s port %s: %d replies, %d lost (%.1f%% loss)\n", count, host,
           port, got, lost, count ? 100.0 * lost / count : 0.0);
    if (got > 0) {
        qsort(rtts, (size_t)got, sizeof *rtts, by_value);
        printf("udp_rtt: rtt_us min=%lld p50=%lld p99=%lld max=%lld\n", rtts[0],
               percentile(rtts, got, 50), percentile(rtts, got, 99), rtts[got - 1]);
    }
    free(rtts);
    return got > 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "server") == 0) return server(atoi(argv[2]));
    if (argc >= 5 && argc <= 7 && strcmp(argv[1], "client") == 0)
        return client(argv[2], argv[3], atoi(argv[4]), argc > 5 ? atoi(argv[5]) : 10,
                      argc > 6 ? atoi(argv[6]) : 500);
    fprintf(stderr, "usage: udp_rtt server PORT\n"
                    "       udp_rtt client HOST PORT COUNT [INTERVAL_MS] [TIMEOUT_MS]\n");
    return 2;
}
