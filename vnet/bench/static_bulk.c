/* static_bulk — TCP bulk transfer that measures the network, not the program.
 *
 *   static_bulk sink PORT                 accept one connection, count bytes to the end
 *   static_bulk source HOST PORT MEGABYTES  write MEGABYTES MiB from one static buffer
 *
 * The sibling of examples/bulk.c without its per-byte work: bulk.c's sender
 * fills every byte from a generator and both ends hash every byte (under
 * wasm that alone tops out near 150 MB/s here), so its rate is partly the
 * program's. Here the sender writes the same 64 KiB static buffer over and
 * over (65,536-byte writes) and the receiver reads into 64 KiB and only
 * counts. The stream still carries a checkable pattern — the byte at stream
 * offset k is (k mod 65536) mod 251 — and the receiver checks the first and
 * last byte of every read against it (two compares per read, not per byte),
 * which catches lost, duplicated or reordered data.
 *
 *   static_bulk: listening on port PORT
 *   static_bulk: received BYTES bytes in READS reads, MISMATCHES mismatches in S s (R MB/s)
 *   static_bulk: sent BYTES bytes in S s (R MB/s)
 *
 * Part of vnet's benchmarks (scripts/bench); builds both ways:
 *   gcc -O2 -Wall vnet/bench/static_bulk.c -o static_bulk
 *   vnet build vnet/bench/static_bulk.c -o static_bulk.wasm
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536

static unsigned char pattern[BUF];

static unsigned char expected(long long offset) { return (unsigned char)((offset % BUF) % 251); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void print_rate(double seconds, long long bytes) {
    if (seconds > 0)
        printf(" in %.3f s (%.2f MB/s)\n", seconds, bytes / 1e6 / seconds);
    else
        printf(" in 0.000 s (too fast to time)\n");
}

static int sink(int port) {
    int one = 1, zero = 0;
    int listener = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 addr;
    memset(&addr, 0, sizeof addr);
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons((unsigned short)port);
    if (listener < 0) {
        perror("static_bulk: socket");
        return 1;
    }
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1) != 0) {
        perror("static_bulk: listen");
        return 1;
    }
    printf("static_bulk: listening on port %d\n", port);
    int conn = accept(listener, NULL, NULL);
    if (conn < 0) {
        perror("static_bulk: accept");
        return 1;
    }
    static unsigned char buf[BUF];
    long long total = 0, reads = 0, mismatches = 0;
    double start = now_s();
    for (;;) {
        ssize_t n = read(conn, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            perror("static_bulk: read");
            return 1;
        }
        if (n == 0) break;
        mismatches += buf[0] != expected(total);
        mismatches += buf[n - 1] != expected(total + n - 1);
        total += n;
        reads++;
    }
    double took = now_s() - start;
    close(conn);
    close(listener);
    printf("static_bulk: received %lld bytes in %lld reads, %lld mismatches", total, reads,
           mismatches);
    print_rate(took, total);
    return 0;
}

static int source(const char *host, const char *port, double megabytes) {
    struct addrinfo hints, *found;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &found);
    if (rc != 0) {
        fprintf(stderr, "static_bulk: %s: %s\n", host, gai_strerror(rc));
        return 2;
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
    if (fd < 0) {
        fprintf(stderr, "static_bulk: cannot connect to %s port %s\n", host, port);
        return 2;
    }
    for (int i = 0; i < BUF; i++) pattern[i] = expected(i);
    long long total = (long long)(megabytes * 1024 * 1024), sent = 0;
    double start = now_s();
    while (sent < total) {
        long long at = sent % BUF, left = total - sent;
        size_t chunk = (size_t)(BUF - at < left ? BUF - at : left);
        ssize_t n = write(fd, pattern + at, chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            perror("static_bulk: write");
            return 1;
        }
        sent += n;
    }
    close(fd);
    double took = now_s() - start;
    printf("static_bulk: sent %lld bytes", total);
    print_rate(took, total);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "sink") == 0 && argc == 3) return sink(atoi(argv[2]));
    if (strcmp(mode, "source") == 0 && argc == 5) return source(argv[2], argv[3], atof(argv[4]));
    fprintf(stderr, "usage: static_bulk sink PORT\n"
                    "       static_bulk source HOST PORT MEGABYTES\n");
    return 2;
}
