/* fs_tour DIR [WORDS...] — a short tour of what a guest gets from WASI.
 *
 * Reads its arguments and the GREETING environment variable, times a 20 ms
 * nap with the monotonic clock, draws random bytes, then writes WORDS to
 * DIR/tour.txt, reads the file back and lists DIR. DIR must be a directory
 * the guest was given (`--dir` / a preopen); nothing else is reachable.
 *
 * Portable C: `gcc examples/fs_tour.c -o fs_tour` natively, `vnet build
 * examples/fs_tour.c` to wasm. The output is the same on both.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* getentropy where the libc has it, else /dev/urandom. */
static int random_bytes(unsigned char *buf, size_t len) {
    if (getentropy(buf, len) == 0) return 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: fs_tour DIR [WORDS...]\n");
        return 2;
    }
    const char *dir = argv[1];
    printf("%d argument(s) after the program name\n", argc - 1);
    const char *greeting = getenv("GREETING");
    printf("GREETING is %s\n", greeting ? greeting : "not set");

    double start = seconds(CLOCK_MONOTONIC);
    struct timespec nap = {0, 20 * 1000000L};
    nanosleep(&nap, NULL);
    printf("a 20 ms nap took at least 20 ms: %s\n",
           seconds(CLOCK_MONOTONIC) - start >= 0.020 ? "yes" : "no");
    printf("the wall clock is past 2000-01-01: %s\n",
           seconds(CLOCK_REALTIME) >= 946684800.0 ? "yes" : "no");

    unsigned char noise[16] = {0};
    int nonzero = 0;
    if (random_bytes(noise, sizeof noise) == 0)
        for (size_t i = 0; i < sizeof noise; i++) nonzero |= noise[i];
    printf("16 random bytes, not all zero: %s\n", nonzero ? "yes" : "no");

    char path[1024];
    snprintf(path, sizeof path, "%s/tour.txt", dir);
    FILE *out = fopen(path, "w");
    if (!out) {
        perror(path);
        return 1;
    }
    for (int i = 2; i < argc; i++) fprintf(out, "%s%s", argv[i], i + 1 < argc ? " " : "\n");
    fclose(out);

    char line[512] = "";
    FILE *in = fopen(path, "r");
    if (!in || !fgets(line, sizeof line, in)) line[0] = 0;
    if (in) fclose(in);
    struct stat st;
    stat(path, &st);
    printf("tour.txt holds %lld bytes: %s", (long long)st.st_size, line[0] ? line : "\n");

    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d) closedir(d);
    printf("%s has %d entr%s\n", dir, entries, entries == 1 ? "y" : "ies");
    return 0;
}
