/* Opens DIR/f repeatedly until open fails; prints how many and the errno name. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    char path[256];
    snprintf(path, sizeof path, "%s/f", argc > 1 ? argv[1] : ".");
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd < 0) { printf("create failed: %s\n", strerror(errno)); return 1; }
    int n = 1;
    for (;;) {
        int again = open(path, O_RDONLY);
        if (again < 0) { printf("opened %d then %s\n", n, errno == EMFILE ? "EMFILE" : strerror(errno)); break; }
        n++;
        if (n > 100000) { printf("no limit\n"); break; }
    }
    return 0;
}
