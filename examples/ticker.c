/* ticker NAME COUNT — print COUNT ticks, sleeping a random 1-100 ms between
 * them, each stamped with the monotonic clock in milliseconds since start.
 *
 * Portable C: builds natively with gcc and to wasm with `vnet build`. Several
 * tickers run side by side show the scheduler at work; in virtual time their
 * interleaving and timestamps are the same on every run with the same seed. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "ticker";
    int count = argc > 2 ? atoi(argv[2]) : 5;
    long long start = now_ms();
    for (int i = 1; i <= count; i++) {
        unsigned char r;
        if (getentropy(&r, 1) != 0) r = 50;
        int delay_ms = 1 + r % 100;
        struct timespec nap = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&nap, NULL);
        printf("%s tick %d after %lld ms (slept %d)\n", name, i, now_ms() - start, delay_ms);
        fflush(stdout);
    }
    return 0;
}
