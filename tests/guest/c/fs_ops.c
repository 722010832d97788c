/* fs_ops DIR — exercise the filesystem through ordinary libc calls.
 *
 * DIR is a preopened directory. Every step prints one line: what was done
 * and its result, or strerror(errno). Nothing printed depends on inode
 * numbers, fd numbers or the current time, so the output under vnet and
 * under wasmtime's own WASI must be byte-identical, and so must the files
 * left in DIR. The last part tries to get out of DIR in every way it can.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *dir;
static char pathbuf[4][512];

/* DIR/rel, in one of four rotating buffers so a call can take several. */
static const char *at(const char *rel) {
    static int next;
    char *p = pathbuf[next++ % 4];
    snprintf(p, sizeof pathbuf[0], "%s/%s", dir, rel);
    return p;
}

static void report(const char *what, int result) {
    if (result < 0)
        printf("%s: %s\n", what, strerror(errno));
    else
        printf("%s: ok\n", what);
}

static void show_file(const char *rel) {
    char buf[256];
    int fd = open(at(rel), O_RDONLY);
    if (fd < 0) {
        printf("cat %s: %s\n", rel, strerror(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    printf("cat %s: [%s]\n", rel, buf);
}

static void show_stat(const char *rel, int follow) {
    struct stat st;
    int r = follow ? stat(at(rel), &st) : lstat(at(rel), &st);
    if (r < 0) {
        printf("%s %s: %s\n", follow ? "stat" : "lstat", rel, strerror(errno));
        return;
    }
    const char *kind = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir"
                     : S_ISLNK(st.st_mode) ? "symlink" : "other";
    printf("%s %s: %s", follow ? "stat" : "lstat", rel, kind);
    if (!S_ISDIR(st.st_mode)) printf(" size=%lld nlink=%lu", (long long)st.st_size,
                                     (unsigned long)st.st_nlink);
    printf("\n");
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of DIR/rel, sorted (readdir order is the host's). */
static void list(const char *rel) {
    DIR *d = opendir(at(rel));
    if (!d) {
        printf("ls %s: %s\n", rel, strerror(errno));
        return;
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        char line[300];
        const char *type = e->d_type == DT_DIR ? "/" : e->d_type == DT_LNK ? "@" : "";
        snprintf(line, sizeof line, "%s%s", e->d_name, type);
        names[n++] = strdup(line);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    printf("ls %s:", rel);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
}

static void file_io(void) {
    char buf[64];
    int fd = open(at("work/data.txt"), O_CREAT | O_RDWR | O_TRUNC, 0644);
    report("open data.txt O_CREAT|O_RDWR|O_TRUNC", fd);
    printf("write: %zd\n", write(fd, "hello, world\n", 13));
    printf("lseek SET 0: %lld\n", (long long)lseek(fd, 0, SEEK_SET));
    ssize_t n = read(fd, buf, 5);
    printf("read 5: %zd [%.*s]\n", n, (int)(n > 0 ? n : 0), buf);
    n = pread(fd, buf, 5, 7);
    printf("pread 5 at 7: %zd [%.*s] pos still %lld\n", n, (int)(n > 0 ? n : 0), buf,
           (long long)lseek(fd, 0, SEEK_CUR));
    printf("pwrite WORLD at 7: %zd\n", pwrite(fd, "WORLD", 5, 7));
    printf("lseek END -1: %lld\n", (long long)lseek(fd, -1, SEEK_END));
    printf("lseek CUR -100: %lld (%s)\n", (long long)lseek(fd, -100, SEEK_CUR), strerror(errno));
    printf("lseek past end: %lld\n", (long long)lseek(fd, 20, SEEK_SET));
    printf("read at eof: %zd\n", read(fd, buf, sizeof buf));
    struct stat st;
    fstat(fd, &st);
    printf("fstat size: %lld\n", (long long)st.st_size);
    report("ftruncate 12", ftruncate(fd, 12));
    report("fsync", fsync(fd));
    report("fdatasync", fdatasync(fd));
    report("posix_fadvise", -posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL));
    report("close", close(fd));
    report("close again", close(fd));
    show_file("work/data.txt");

    fd = open(at("work/data.txt"), O_WRONLY | O_APPEND);
    report("open O_APPEND", fd);
    lseek(fd, 0, SEEK_SET);
    printf("append write: %zd\n", write(fd, "+more", 5));
    printf("position after append: %lld\n", (long long)lseek(fd, 0, SEEK_CUR));
    printf("fcntl GETFL has O_APPEND: %d\n", (fcntl(fd, F_GETFL) & O_APPEND) != 0);
    report("fcntl clear O_APPEND", fcntl(fd, F_SETFL, 0));
    lseek(fd, 0, SEEK_SET);
    printf("overwrite: %zd\n", write(fd, "J", 1));
    printf("read on O_WRONLY: %zd (%s)\n", read(fd, buf, 1), strerror(errno));
    close(fd);
    show_file("work/data.txt");

    fd = open(at("work/data.txt"), O_RDONLY);
    printf("write on O_RDONLY: %zd (%s)\n", write(fd, "x", 1), strerror(errno));
    close(fd);
    report("open O_CREAT|O_EXCL existing", open(at("work/data.txt"), O_CREAT | O_EXCL | O_WRONLY,
                                                 0644));
    fd = open(at("work/data.txt"), O_RDWR | O_TRUNC);
    report("open O_TRUNC", fd);
    fstat(fd, &st);
    printf("size after O_TRUNC: %lld\n", (long long)st.st_size);
    write(fd, "truncated\n", 10);
    close(fd);
    report("open missing", open(at("work/missing"), O_RDONLY));
    report("open dir for writing", open(at("work"), O_WRONLY));
    report("open file as dir", open(at("work/data.txt"), O_RDONLY | O_DIRECTORY));
    report("open through a file", open(at("work/data.txt/x"), O_RDONLY));
}

static void directories(void) {
    report("mkdir work/d1", mkdir(at("work/d1"), 0755));
    report("mkdir work/d1 again", mkdir(at("work/d1"), 0755));
    report("mkdir work/d1/d2/", mkdir(at("work/d1/d2/"), 0755));
    report("mkdir nested missing", mkdir(at("work/nope/x"), 0755));
    int fd = open(at("work/d1/d2/inner.txt"), O_CREAT | O_WRONLY, 0644);
    write(fd, "inner\n", 6);
    close(fd);
    report("rmdir non-empty", rmdir(at("work/d1")));
    report("rmdir a file", rmdir(at("work/data.txt")));
    report("unlink a directory", unlink(at("work/d1")));
    report("rename d1/d2 -> d3", rename(at("work/d1/d2"), at("work/d3")));
    report("rename data.txt -> d3/data.txt", rename(at("work/data.txt"), at("work/d3/data.txt")));
    report("rename onto a non-empty dir", rename(at("work/d1"), at("work/d3")));
    report("rename dir into itself", rename(at("work/d3"), at("work/d3/sub")));
    report("rename missing", rename(at("work/missing"), at("work/x")));
    report("rmdir d1", rmdir(at("work/d1")));
    report("rmdir d1 again", rmdir(at("work/d1")));
    list("work");
    list("work/d3");
}

static void links(void) {
    char buf[128];
    report("symlink d3/data.txt <- ln", symlink("d3/data.txt", at("work/ln")));
    report("symlink again", symlink("elsewhere", at("work/ln")));
    ssize_t n = readlink(at("work/ln"), buf, sizeof buf);
    printf("readlink ln: %zd [%.*s]\n", n, (int)(n > 0 ? n : 0), buf);
    n = readlink(at("work/ln"), buf, 4);
    printf("readlink ln into 4 bytes: %zd [%.*s]\n", n, (int)(n > 0 ? n : 0), buf);
    report("readlink a file", (int)readlink(at("work/d3/data.txt"), buf, sizeof buf));
    show_stat("work/ln", 0);
    show_stat("work/ln", 1);
    show_file("work/ln");
    report("symlink dangling", symlink("nowhere", at("work/dangling")));
    show_stat("work/dangling", 0);
    show_stat("work/dangling", 1);
    report("link d3/data.txt -> hard", link(at("work/d3/data.txt"), at("work/hard")));
    show_stat("work/hard", 1);
    report("link a directory", link(at("work/d3"), at("work/dirlink")));
    report("link onto existing", link(at("work/hard"), at("work/ln")));
    report("unlink hard", unlink(at("work/hard")));
    show_stat("work/d3/data.txt", 1);
    report("unlink symlink to dir", symlink("d3", at("work/lnd")));
    report("open dir via symlink", open(at("work/lnd/data.txt"), O_RDONLY) < 0 ? -1 : 0);
    report("unlink lnd", unlink(at("work/lnd")));
    show_stat("work/d3", 1);
}

static void times(void) {
    struct timespec ts[2] = {{1000000, 5}, {2000000, 7}};
    report("utimensat explicit", utimensat(AT_FDCWD, at("work/d3/data.txt"), ts, 0));
    struct stat st;
    stat(at("work/d3/data.txt"), &st);
    printf("atime %lld.%09ld mtime %lld.%09ld\n", (long long)st.st_atim.tv_sec,
           st.st_atim.tv_nsec, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {3000000, 0}};
    report("utimensat omit atime", utimensat(AT_FDCWD, at("work/d3/data.txt"), omit, 0));
    stat(at("work/d3/data.txt"), &st);
    printf("atime %lld mtime %lld\n", (long long)st.st_atim.tv_sec, (long long)st.st_mtim.tv_sec);
    struct timespec link_ts[2] = {{42, 0}, {43, 0}};
    report("utimensat nofollow", utimensat(AT_FDCWD, at("work/ln"), link_ts,
                                           AT_SYMLINK_NOFOLLOW));
    lstat(at("work/ln"), &st);
    printf("symlink mtime %lld\n", (long long)st.st_mtim.tv_sec);
    stat(at("work/ln"), &st);
    printf("target mtime still %lld\n", (long long)st.st_mtim.tv_sec);
    int fd = open(at("work/d3/data.txt"), O_RDONLY);
    struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    report("futimens now", futimens(fd, now));
    fstat(fd, &st);
    close(fd);
    printf("mtime is recent: %d\n", st.st_mtim.tv_sec > 1600000000);
}

static void escapes(void) {
    char buf[64];
    report("open ../ via dir", open(at("../outside.txt"), O_RDONLY));
    report("create ../ via dir", open(at("../planted.txt"), O_CREAT | O_WRONLY, 0644));
    report("open /etc/passwd", open("/etc/passwd", O_RDONLY));
    report("symlink to /etc/passwd", symlink("/etc/passwd", at("work/abs")));
    report("symlink to ../../outside.txt", symlink("../../outside.txt", at("work/up")));
    report("open via symlink up", open(at("work/up"), O_RDONLY));
    report("stat via symlink up", stat(at("work/up"), &(struct stat){0}));
    report("readlink up", (int)readlink(at("work/up"), buf, sizeof buf));
    report("symlink to ..", symlink("..", at("work/dotdot")));
    report("open dotdot/..", open(at("work/dotdot/../outside.txt"), O_RDONLY));
    report("mkdir via dotdot", mkdir(at("work/dotdot/../evil"), 0755));
    report("symlink loop a", symlink("loop_b", at("work/loop_a")));
    report("symlink loop b", symlink("loop_a", at("work/loop_b")));
    report("open loop", open(at("work/loop_a"), O_RDONLY));
    report("link ../outside.txt", link(at("../outside.txt"), at("work/stolen")));
    report("link via symlink up", linkat(AT_FDCWD, at("work/up"), AT_FDCWD, at("work/stolen2"),
                                         AT_SYMLINK_FOLLOW));
    report("rename out", rename(at("work/d3/data.txt"), at("../moved.txt")));
    report("rename in", rename(at("../outside.txt"), at("work/in.txt")));
    report("unlink outside", unlink(at("../outside.txt")));
    report("rmdir outside", rmdir(at("..")));
    report("opendir ..", opendir(at("..")) ? 0 : -1);
    report("unlink loops", unlink(at("work/loop_a")) | unlink(at("work/loop_b")));
    report("unlink escapes", unlink(at("work/up")) | unlink(at("work/dotdot")));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: fs_ops DIR\n");
        return 2;
    }
    dir = argv[1];
    report("mkdir work", mkdir(at("work"), 0755));
    file_io();
    directories();
    links();
    times();
    escapes();
    list("work");
    list("");
    return 0;
}
