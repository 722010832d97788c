/*
 * etc_probe.c — what a guest sees of /etc: each file's contents, the listing,
 * the errno of everything that would write there, and the number of its first fd.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        printf("open %s: %s\n", path, strerror(errno));
        return;
    }
    char line[256];
    while (fgets(line, sizeof line, f) != NULL)
        printf("%s: %s", path, line);
    fclose(f);
}

int main(void) {
    int first = socket(AF_INET, SOCK_DGRAM, 0); /* as on Linux: /etc takes no fd number */
    printf("first fd %d\n", first);
    close(first);
    show("/etc/resolv.conf");
    show("/etc/hosts");
    DIR *d = opendir("/etc");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                printf("entry %s\n", e->d_name);
        closedir(d);
    }
    int fd = open("/etc/resolv.conf", O_WRONLY);
    printf("open for writing: %s\n", fd < 0 ? strerror(errno) : "ok");
    fd = open("/etc/new", O_CREAT | O_WRONLY, 0644);
    printf("create: %s\n", fd < 0 ? strerror(errno) : "ok");
    printf("mkdir: %s\n", mkdir("/etc/sub", 0755) < 0 ? strerror(errno) : "ok");
    printf("unlink: %s\n", unlink("/etc/hosts") < 0 ? strerror(errno) : "ok");
    struct stat st;
    printf("stat: %s size=%lld\n", stat("/etc/hosts", &st) < 0 ? strerror(errno) : "ok",
           (long long)st.st_size);
    show("/etc/../etc/hosts");
    return 0;
}
