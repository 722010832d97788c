/* devfs_probe.c — what a program sees under /dev: prints one line per check.
 * Portable C (natively it reports the machine's /dev). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *err(int e) {
    switch (e) {
    case ENOENT: return "ENOENT";
    case EROFS: return "EROFS";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EEXIST: return "EEXIST";
    default: return strerror(e);
    }
}

int main(void) {
    unsigned char buf[16];
    int first = socket(AF_INET, SOCK_DGRAM, 0);
    int fd = open("/dev/urandom", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
    printf("urandom read %zd: ", n);
    for (ssize_t i = 0; i < n; i++)
        printf("%02x", buf[i]);
    printf("\n");
    FILE *f = fopen("/dev/random", "rb");
    printf("random fread %zu\n", f ? fread(buf, 1, 4, f) : (size_t)0);
    int null = open("/dev/null", O_RDWR);
    printf("null write %zd read %zd\n", write(null, "abc", 3), read(null, buf, 4));
    int zero = open("/dev/zero", O_RDONLY);
    memset(buf, 0xAA, sizeof buf);
    printf("zero read %zd first %d last %d\n", read(zero, buf, 8), buf[0], buf[7]);
    struct stat st;
    printf("stat null %d chr %d\n", stat("/dev/null", &st), S_ISCHR(st.st_mode));
    int tun = open("/dev/net/tun", O_RDWR);
    printf("tun open %s\n", tun >= 0 ? "ok" : err(errno));
    errno = 0;
    printf("create /dev/x %d %s\n", open("/dev/x", O_CREAT | O_WRONLY, 0600), err(errno));
    DIR *d = opendir("/dev/net");
    struct dirent *e;
    printf("ls /dev/net:");
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            printf(" %s", e->d_name);
    printf("\n");
    printf("first socket fd %d\n", first);
    return 0;
}
