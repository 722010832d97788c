/* compute_then_sleep — compute without host calls, then say so and sleep.
 *
 *   compute_then_sleep ROUNDS SECONDS
 *
 * Prints "computing", mixes numbers for ROUNDS million rounds with no host
 * call at all, prints "computed", then sleeps SECONDS (a blocking host call).
 * tests/scheduler/test_cpu_placement.py watches which CPUs its thread may use.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 100;
    unsigned seconds = argc > 2 ? (unsigned)atoi(argv[2]) : 10;
    puts("computing");
    fflush(stdout);
    volatile uint64_t state = 0x9E3779B97F4A7C15ULL;
    for (long i = 0; i < rounds * 1000000L; i++) {
        uint64_t x = state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state = x;
    }
    printf("computed %llu\n", (unsigned long long)(state & 0xff));
    fflush(stdout);
    sleep(seconds);
    return 0;
}
