/* bulk — move lots of bytes and time it: a TCP/UDP benchmark pair.
 *
 *   bulk recv PORT                         accept one TCP connection, read it to the end
 *   bulk send HOST PORT MEGABYTES [BUFSIZE]  send MEGABYTES MiB (0.5 works too),
 *                                          BUFSIZE bytes per write (default 65536)
 *   bulk udp-recv PORT [EXPECT] [IDLE_MS]  count datagrams until EXPECT arrived or none
 *                                          came for IDLE_MS (default 1000) after the first
 *   bulk udp-send HOST PORT SIZE COUNT     send COUNT datagrams of SIZE bytes, unpaced
 *
 * TCP: the sender's bytes come from a fixed pseudo-random generator, so both
 * sides print the same byte count and FNV-1a 64-bit checksum when nothing was
 * lost or reordered — compare them — plus the time taken and MB/s (10^6
 * bytes per second). UDP: the receiver prints how many datagrams were
 * delivered; the difference to what was sent is what the network (or a full
 * receive buffer) dropped.
 *
 *   gcc -O2 -Wall examples/bulk.c -o bulk
 *   vnet build examples/bulk.c -o bulk.wasm
 *   ./bulk recv 5001 &  ./bulk send localhost 5001 100
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* FNV-1a, 64-bit: a small, well-known non-cryptographic hash. */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv1a(uint64_t hash, const unsigned char *data, size_t len) {
    for (size_t i = 0; i < len; i++) {
        hash ^= data[i];
        hash *= FNV_PRIME;
    }
    return hash;
}

/* xorshift32: the sender's deterministic byte stream. */
static uint32_t xorshift_state = 2463534242u;

static void fill(unsigned char *buf, size_t len) {
    for (size_t i = 0; i < len; i++) {
        uint32_t x = xorshift_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        xorshift_state = x;
        buf[i] = (unsigned char)x;
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "in 0.123 s (45.67 MB/s)"; a run too quick to time says so. */
static void print_rate(double seconds, double amount, const char *unit) {
    if (seconds > 0)
        printf(" in %.3f s (%.2f %s)\n", seconds, amount / seconds, unit);
    else
        printf(" in 0.000 s (too fast to time)\n");
}

static int bind_any(int type, int port) {
    int one = 1, zero = 0;
    int fd = socket(AF_INET6, type, 0);
    struct sockaddr_in6 addr;
    memset(&addr, 0, sizeof addr);
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons((unsigned short)port);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_to(const char *host, const char *port, int type) {
    struct addrinfo hints, *found;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = type;
    int rc = getaddrinfo(host, port, &hints, &found);
    if (rc != 0) {
        fprintf(stderr, "bulk: %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = found; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(found);
    if (fd < 0) fprintf(stderr, "bulk: cannot connect to %s port %s\n", host, port);
    return fd;
}

static int tcp_recv(int port) {
    int listener = bind_any(SOCK_STREAM, port);
    if (listener < 0 || listen(listener, 1) != 0) {
        perror("bulk: listen");
        return 1;
    }
    printf("bulk: listening on port %d\n", port);
    int conn = accept(listener, NULL, NULL);
    if (conn < 0) {
        perror("bulk: accept");
        return 1;
    }
    static unsigned char buf[65536];
    uint64_t hash = FNV_OFFSET;
    long long total = 0;
    double start = now_s();
    for (;;) {
        ssize_t n = read(conn, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            perror("bulk: read");
            return 1;
        }
        if (n == 0) break;
        hash = fnv1a(hash, buf, (size_t)n);
        total += n;
    }
    double took = now_s() - start;
    close(conn);
    close(listener);
    printf("bulk: received %lld bytes fnv1a64=%016llx", total, (unsigned long long)hash);
    print_rate(took, total / 1e6, "MB/s");
    return 0;
}

static int tcp_send(const char *host, const char *port, double megabytes, size_t bufsize) {
    int fd = connect_to(host, port, SOCK_STREAM);
    if (fd < 0) return 2;
    if (bufsize == 0) bufsize = 65536;
    unsigned char *buf = malloc(bufsize);
    if (buf == NULL) return 1;
    long long total = (long long)(megabytes * 1024 * 1024), left = total;
    uint64_t hash = FNV_OFFSET;
    double start = now_s();
    while (left > 0) {
        size_t chunk = left < (long long)bufsize ? (size_t)left : bufsize;
        fill(buf, chunk);
        hash = fnv1a(hash, buf, chunk);
        for (size_t off = 0; off < chunk;) {
            ssize_t n = write(fd, buf + off, chunk - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                perror("bulk: write");
                return 1;
            }
            off += (size_t)n;
        }
        left -= (long long)chunk;
    }
    /* Closing after the last write: the receiver sees the end of the stream
     * once everything before it has arrived. */
    close(fd);
    double took = now_s() - start;
    printf("bulk: sent %lld bytes fnv1a64=%016llx", total, (unsigned long long)hash);
    print_rate(took, total / 1e6, "MB/s");
    free(buf);
    return 0;
}

static int udp_recv(int port, long long expect, int idle_ms) {
    int fd = bind_any(SOCK_DGRAM, port);
    if (fd < 0) {
        perror("bulk: bind");
        return 1;
    }
    printf("bulk: listening for datagrams on port %d\n", port);
    static unsigned char buf[65536];
    long long count = 0, bytes = 0;
    double first = 0, last = 0;
    while (expect == 0 || count < expect) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, count == 0 ? -1 : idle_ms);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) break; /* quiet for idle_ms: the sender is done */
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) continue;
        last = now_s();
        if (count == 0) first = last;
        count++;
        bytes += n;
    }
    close(fd);
    printf("bulk: received %lld datagrams, %lld bytes", count, bytes);
    print_rate(count > 1 ? last - first : 0, (double)count, "datagrams/s");
    return 0;
}

static int udp_send(const char *host, const char *port, size_t size, long long count) {
    int fd = connect_to(host, port, SOCK_DGRAM);
    if (fd < 0) return 2;
    unsigned char *buf = calloc(size > 8 ? size : 8, 1);
    if (buf == NULL) return 1;
    long long failed = 0;
    double start = now_s();
    for (long long seq = 0; seq < count; seq++) {
        memcpy(buf, &seq, sizeof seq < size ? sizeof seq : size); /* a sequence number */
        if (send(fd, buf, size, 0) < 0) failed++;
    }
    double took = now_s() - start;
    close(fd);
    printf("bulk: sent %lld datagrams of %zu bytes (%lld failed)", count, size, failed);
    print_rate(took, (double)count, "datagrams/s");
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "recv") == 0 && argc == 3) return tcp_recv(atoi(argv[2]));
    if (strcmp(mode, "send") == 0 && (argc == 5 || argc == 6))
        return tcp_send(argv[2], argv[3], atof(argv[4]),
                        argc == 6 ? (size_t)atol(argv[5]) : 65536);
    if (strcmp(mode, "udp-recv") == 0 && argc >= 3 && argc <= 5)
        return udp_recv(atoi(argv[2]), argc > 3 ? atoll(argv[3]) : 0,
                        argc > 4 ? atoi(argv[4]) : 1000);
    if (strcmp(mode, "udp-send") == 0 && argc == 6)
        return udp_send(argv[2], argv[3], (size_t)atol(argv[4]), atoll(argv[5]));
    fprintf(stderr, "usage: bulk recv PORT\n"
                    "       bulk send HOST PORT MEGABYTES [BUFSIZE]\n"
                    "       bulk udp-recv PORT [EXPECT] [IDLE_MS]\n"
                    "       bulk udp-send HOST PORT SIZE COUNT\n");
    return 2;
}
