/* Exercises args, environ, clocks, sleep, random and stdio, printing only
 * values that are the same under any faithful WASI host (the tests compare
 * this output between vnet and wasmtime's own WASI). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    int n = 0;
    for (char **e = environ; *e; e++) n++;
    printf("envc=%d\n", n);
    for (char **e = environ; *e; e++) printf("env %s\n", *e);
    const char *v = getenv("GREETING");
    printf("GREETING=%s\n", v ? v : "(unset)");

    struct timespec res, m0, m1, r0;
    printf("res_mono=%d\n", clock_getres(CLOCK_MONOTONIC, &res) == 0 && (res.tv_sec > 0 || res.tv_nsec > 0));
    clock_gettime(CLOCK_MONOTONIC, &m0);
    clock_gettime(CLOCK_REALTIME, &r0);
    struct timespec nap = {0, 30 * 1000 * 1000};
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &m1);
    long long elapsed = (m1.tv_sec - m0.tv_sec) * 1000000000LL + (m1.tv_nsec - m0.tv_nsec);
    printf("slept_at_least_30ms=%d\n", elapsed >= 30000000LL);
    printf("slept_under_5s=%d\n", elapsed < 5000000000LL);
    fprintf(stderr, "realtime_sec=%lld\n", (long long)r0.tv_sec);

    unsigned char a[32], b[32];
    printf("getentropy=%d\n", getentropy(a, sizeof a) == 0 && getentropy(b, sizeof b) == 0);
    printf("random_differs=%d\n", memcmp(a, b, sizeof a) != 0);

    char line[256];
    int lines = 0;
    while (fgets(line, sizeof line, stdin)) {
        lines++;
        printf("stdin: %s", line);
    }
    printf("stdin_lines=%d\n", lines);
    fprintf(stderr, "to stderr\n");
    fflush(stdout);
    if (argc > 1 && strcmp(argv[1], "exit7") == 0) exit(7);
    if (argc > 1 && strcmp(argv[1], "trap") == 0) __builtin_trap();
    return 0;
}
