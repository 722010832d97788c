/* Allocates 1 MiB blocks until malloc fails, touching each; reports how many. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    int limit = argc > 1 ? atoi(argv[1]) : 100000;
    int n = 0;
    unsigned long sum = 0;
    char *volatile keep = 0;
    while (n < limit) {
        char *p = malloc(1 << 20);
        if (!p) break;
        memset(p, n & 0xff, 1 << 20);
        keep = p;
        sum += (unsigned char)keep[n % (1 << 20)];
        n++;
    }
    printf("allocated %d MiB (checksum %lu)\n", n, sum);
    return 0;
}
