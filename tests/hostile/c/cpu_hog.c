/* cpu_hog — a guest that only computes: no host call after its first line.
 *
 *   cpu_hog      prints "hogging", then mixes numbers in a loop until it is stopped
 *
 * The control of the flood-fairness test: it takes a core's worth of CPU, as
 * the flooder does, but none of the network, so a victim beside it shows what
 * sharing the machine's cores costs, apart from sharing the network.
 */
#include <stdint.h>
#include <stdio.h>

int main(void) {
    puts("hogging");
    fflush(stdout);
    volatile uint64_t state = 0x9E3779B97F4A7C15ULL;
    for (;;) {
        uint64_t x = state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state = x;
    }
}
