/* ceiling — what bounds a benchmark figure before any network is involved.
 *
 *   ceiling compute MEGABYTES   examples/bulk.c's per-byte work, without sockets
 *   ceiling empty COUNT         the cheapest call out of the program, COUNT times
 *
 * compute: the TCP bulk sender's work (xorshift32 fill + FNV-1a 64 of every
 * byte, 64 KiB at a time) and the receiver's (FNV-1a only), each over
 * MEGABYTES MiB in memory; the same algorithms as examples/bulk.c, so under
 * wasm this is the fastest bulk.c can ever move data through any network.
 *
 *   ceiling: sender fill+fnv BYTES bytes in S s (R MB/s) hash=H
 *   ceiling: receiver fnv BYTES bytes in S s (R MB/s) hash=H
 *
 * empty: the floor under every socket call. Under wasm it is a call of the
 * WASI import proc_raise, which vnet answers with ENOSYS without touching
 * guest memory, a socket or the network lock: the host-call bridge and
 * nothing else. Natively it is the getppid system call (no work in the
 * kernel beyond entering and leaving it).
 *
 *   ceiling: empty COUNT calls in S s (N ns/call)
 *
 * Part of vnet's benchmarks (scripts/bench); builds both ways:
 *   gcc -O2 -Wall vnet/bench/ceiling.c -o ceiling
 *   vnet build vnet/bench/ceiling.c -o ceiling.wasm
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __wasm__
__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_raise")))
int32_t ceiling_proc_raise(int32_t sig);
static int empty_call(void) { return ceiling_proc_raise(0); }
#else
#include <sys/syscall.h>
static int empty_call(void) { return (int)syscall(SYS_getppid); }
#endif

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define CHUNK 65536

static uint64_t fnv1a(uint64_t hash, const unsigned char *data, size_t len) {
    for (size_t i = 0; i < len; i++) {
        hash ^= data[i];
        hash *= FNV_PRIME;
    }
    return hash;
}

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

static void rate(const char *what, long long bytes, double seconds, uint64_t hash) {
    printf("ceiling: %s %lld bytes in %.4f s (%.2f MB/s) hash=%016llx\n", what, bytes, seconds,
           seconds > 0 ? bytes / 1e6 / seconds : 0.0, (unsigned long long)hash);
}

static int compute(double megabytes) {
    static unsigned char buf[CHUNK];
    long long total = (long long)(megabytes * 1024 * 1024);
    uint64_t hash = FNV_OFFSET;
    double start = now_s();
    for (long long left = total; left > 0; left -= CHUNK) {
        size_t chunk = left < CHUNK ? (size_t)left : CHUNK;
        fill(buf, chunk);
        hash = fnv1a(hash, buf, chunk);
    }
    rate("sender fill+fnv", total, now_s() - start, hash);
    hash = FNV_OFFSET;
    start = now_s();
    for (long long left = total; left > 0; left -= CHUNK) {
        size_t chunk = left < CHUNK ? (size_t)left : CHUNK;
        buf[0] ^= (unsigned char)left; /* not the same buffer twice: no shortcut */
        hash = fnv1a(hash, buf, chunk);
    }
    rate("receiver fnv", total, now_s() - start, hash);
    return 0;
}

static int empty(long long count) {
    long long odd = 0;
    double start = now_s();
    for (long long i = 0; i < count; i++) odd += empty_call() == -12345;
    double took = now_s() - start;
    printf("ceiling: empty %lld calls in %.4f s (%.1f ns/call)\n", count, took,
           count ? took * 1e9 / count : 0.0);
    return odd != 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "compute") == 0 && argc == 3) return compute(atof(argv[2]));
    if (strcmp(mode, "empty") == 0 && argc == 3) return empty(atoll(argv[2]));
    fprintf(stderr, "usage: ceiling compute MEGABYTES\n       ceiling empty COUNT\n");
    return 2;
}
