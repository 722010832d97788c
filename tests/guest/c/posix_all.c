/*
 * posix_all.c — the POSIX pieces the vnet SDK adds beyond sockets, one
 * check per line: pipe/pipe2 (Linux's 64 KiB buffer, non-blocking writes,
 * poll, EOF, EPIPE), dup/dup2/dup3 (shared file descriptions, files and
 * sockets), mkstemp/mkdtemp, getrandom/getentropy, gethostname/uname.
 *
 * Portable C: compiled with gcc and run natively (in a throwaway network and
 * UTS namespace whose host name is `host=`), and built with `vnet build` and
 * run as a guest on a virtual host of that name; both must pass every check.
 * `sandbox=1` (vnet only) adds the checks of what a sandbox cannot have —
 * fork, daemon, exec, system, popen, wait, chroot fail; the identity and
 * user database a privilege-dropping program needs; syslog on stderr.
 * Prints `ok NAME` / `FAIL NAME: details`, `random HEX` (64 bytes from
 * getrandom, compared between runs by the test), and a summary line.
 *
 * Arguments: dir=PATH (a writable directory), host=NAME, sandbox=0|1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>
#include <arpa/inet.h>

static int passed, failed;

static void result(int good, const char *name, const char *fmt, ...) {
    if (good) {
        printf("ok %s\n", name);
        passed++;
        return;
    }
    va_list ap;
    printf("FAIL %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    failed++;
}

#define CHECK(name, cond, ...) result((cond), name, __VA_ARGS__)
#define CHECK_ERRNO(name, call, want)                                                   \
    do {                                                                                \
        errno = 0;                                                                      \
        long rc_ = (long)(call);                                                        \
        int e_ = errno;                                                                 \
        result(rc_ == -1 && e_ == (want), name, "rc %ld errno %d (%s), want %d (%s)",   \
               rc_, e_, strerror(e_), (want), strerror(want));                          \
    } while (0)

static const char *dir = "/tmp";
static const char *host = "alpha";
static int sandbox;

static short poll_one(int fd, short events) {
    struct pollfd p = {fd, events, 0};
    int n = poll(&p, 1, 0);
    return n < 0 ? -1 : p.revents;
}

/* Non-blocking writes of `chunk` bytes until EAGAIN: the total written. */
static long fill_pipe(int fd, size_t chunk) {
    static char buf[70000];
    long total = 0;
    for (;;) {
        ssize_t n = write(fd, buf, chunk);
        if (n < 0)
            return errno == EAGAIN ? total : -errno;
        total += n;
    }
}

static long drain_pipe(int fd) {
    char buf[8192];
    long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += n;
    return total;
}

static void test_pipes(void) {
    int p[2];
    char buf[64];
    CHECK("pipe", pipe(p) == 0 && p[0] >= 0 && p[1] >= 0 && p[0] != p[1], "pipe: %s",
          strerror(errno));
    CHECK("pipe_write", write(p[1], "hello", 5) == 5, "write: %s", strerror(errno));
    short re = poll_one(p[0], POLLIN);
    CHECK("pipe_poll_readable", re == POLLIN, "revents 0x%x", re);
    re = poll_one(p[1], POLLOUT);
    CHECK("pipe_poll_writable", re == POLLOUT, "revents 0x%x", re);
    memset(buf, 0, sizeof buf);
    ssize_t n = read(p[0], buf, 3);
    CHECK("pipe_read_partial", n == 3 && memcmp(buf, "hel", 3) == 0, "read %zd", n);
    n = read(p[0], buf, sizeof buf);
    CHECK("pipe_read_rest", n == 2 && memcmp(buf, "lo", 2) == 0, "read %zd", n);
    re = poll_one(p[0], POLLIN);
    CHECK("pipe_poll_empty", re == 0, "revents 0x%x", re);
    CHECK_ERRNO("pipe_write_to_read_end", write(p[0], "x", 1), EBADF);
    CHECK_ERRNO("pipe_read_from_write_end", read(p[1], buf, 1), EBADF);

    /* EOF once every write end is closed (a dup keeps it open) */
    int w2 = dup(p[1]);
    close(p[1]);
    CHECK("pipe_dup_writer_keeps_open", write(w2, "z", 1) == 1, "write: %s", strerror(errno));
    close(w2);
    re = poll_one(p[0], POLLIN);
    CHECK("pipe_poll_hup_with_data", (re & POLLHUP) && (re & POLLIN), "revents 0x%x", re);
    n = read(p[0], buf, sizeof buf);
    CHECK("pipe_data_before_eof", n == 1 && buf[0] == 'z', "read %zd", n);
    re = poll_one(p[0], POLLIN);
    CHECK("pipe_poll_hup", re & POLLHUP, "revents 0x%x", re);
    printf("info pipe_eof_revents 0x%x\n", re);
    n = read(p[0], buf, sizeof buf);
    CHECK("pipe_eof", n == 0, "read %zd errno %s", n, strerror(errno));
    close(p[0]);

    /* EPIPE once the read end is closed */
    CHECK("pipe_again", pipe(p) == 0, "pipe: %s", strerror(errno));
    close(p[0]);
    CHECK_ERRNO("pipe_epipe", write(p[1], "x", 1), EPIPE);
    re = poll_one(p[1], POLLOUT);
    CHECK("pipe_poll_err_no_reader", re & POLLERR, "revents 0x%x", re);
    printf("info pipe_no_reader_revents 0x%x\n", re);
    close(p[1]);

    /* Linux's 64 KiB: 16 pages of 4096 bytes */
    CHECK("pipe2_nonblock", pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0, "pipe2: %s",
          strerror(errno));
    CHECK("pipe2_flags", (fcntl(p[0], F_GETFL) & O_NONBLOCK) && (fcntl(p[1], F_GETFL) & O_NONBLOCK),
          "F_GETFL 0x%x 0x%x", fcntl(p[0], F_GETFL), fcntl(p[1], F_GETFL));
    CHECK_ERRNO("pipe_empty_nonblock_read", read(p[0], buf, 1), EAGAIN);
    long total = fill_pipe(p[1], 4096);
    CHECK("pipe_capacity_pages", total == 65536, "filled %ld", total);
    CHECK_ERRNO("pipe_full_eagain", write(p[1], "x", 1), EAGAIN);
    re = poll_one(p[1], POLLOUT);
    CHECK("pipe_poll_full", re == 0, "revents 0x%x", re);
    n = read(p[0], buf, 10);
    CHECK("pipe_read_from_full", n == 10, "read %zd", n);
    re = poll_one(p[1], POLLOUT);
    CHECK("pipe_poll_full_after_partial_read", re == 0, "revents 0x%x", re);
    CHECK_ERRNO("pipe_no_merge_into_read_page", write(p[1], "x", 1), EAGAIN);
    CHECK("pipe_drain", drain_pipe(p[0]) == 65526, "drained");
    re = poll_one(p[1], POLLOUT);
    CHECK("pipe_poll_writable_again", re == POLLOUT, "revents 0x%x", re);
    total = fill_pipe(p[1], 1000);
    CHECK("pipe_capacity_small_writes", total == 64000, "filled %ld", total);
    CHECK("pipe_drain_small", drain_pipe(p[0]) == 64000, "drained");
    total = fill_pipe(p[1], 1);
    CHECK("pipe_capacity_byte_writes", total == 65536, "filled %ld", total);
    drain_pipe(p[0]);
    n = write(p[1], buf, 0);
    CHECK("pipe_zero_write", n == 0, "write %zd", n);
    static char big[100000];
    n = write(p[1], big, sizeof big);
    CHECK("pipe_big_nonblock_write_partial", n == 65536, "write %zd", n);
    drain_pipe(p[0]);
    CHECK("pipe_write_5000", write(p[1], big, 5000) == 5000, "write");
    total = fill_pipe(p[1], 4096);
    CHECK("pipe_capacity_after_5000", total == 57344, "filled %ld", total);
    drain_pipe(p[0]);
    for (int i = 0; i < 15; i++)
        write(p[1], big, 4096);
    CHECK("pipe_last_page", write(p[1], big, 100) == 100, "write 100");
    n = write(p[1], big, 3997);
    CHECK("pipe_tail_too_big_to_merge", n == -1 && errno == EAGAIN, "write %zd", n);
    n = write(p[1], big, 3996);
    CHECK("pipe_tail_merges", n == 3996, "write %zd errno %d", n, errno);
    CHECK_ERRNO("pipe_full_after_merge", write(p[1], "x", 1), EAGAIN);
    drain_pipe(p[0]);
    close(p[0]);
    close(p[1]);
}

static void test_dup(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/dup_file", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK("dup_open", fd >= 0, "open %s: %s", path, strerror(errno));
    int d = dup(fd);
    CHECK("dup_lowest", d > fd, "dup %d (fd %d)", d, fd);
    CHECK("dup_shared_offset_write", write(fd, "abcdef", 6) == 6 &&
          lseek(d, 0, SEEK_CUR) == 6, "offset %ld", (long)lseek(d, 0, SEEK_CUR));
    CHECK("dup_shared_offset_seek", lseek(d, 2, SEEK_SET) == 2 && lseek(fd, 0, SEEK_CUR) == 2,
          "offset");
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    CHECK("dup_shared_status_flags", fcntl(d, F_GETFL) & O_NONBLOCK, "F_GETFL 0x%x",
          fcntl(d, F_GETFL));
    fcntl(fd, F_SETFL, flags);
    close(fd);
    char buf[16] = {0};
    CHECK("dup_survives_close", read(d, buf, 4) == 4 && memcmp(buf, "cdef", 4) == 0, "read %s",
          buf);
    int e = dup(d);
    CHECK("dup_reuses_lowest", e == fd, "dup %d want %d", e, fd);
    close(e);
    int t = open(path, O_RDONLY);
    int r = dup2(d, t);
    CHECK("dup2_replaces", r == t && lseek(t, 0, SEEK_CUR) == 6, "dup2 %d offset %ld", r,
          (long)lseek(t, 0, SEEK_CUR));
    CHECK("dup2_same_fd", dup2(d, d) == d, "dup2 same");
    CHECK_ERRNO("dup2_bad_source", dup2(999, t), EBADF);
    CHECK_ERRNO("dup2_bad_closed_same", dup2(999, 999), EBADF);
    CHECK_ERRNO("dup2_negative_target", dup2(d, -1), EBADF);
    CHECK_ERRNO("dup_bad", dup(999), EBADF);
    CHECK_ERRNO("dup3_same_fd", dup3(d, d, 0), EINVAL);
    CHECK_ERRNO("dup3_bad_flags", dup3(d, t, 0x4242), EINVAL);
    CHECK("dup3_cloexec", dup3(d, t, O_CLOEXEC) == t, "dup3: %s", strerror(errno));
    int at = fcntl(d, F_DUPFD, 150);
    CHECK("fcntl_dupfd", at >= 150 && lseek(at, 0, SEEK_CUR) == 6, "F_DUPFD %d", at);
    int at2 = fcntl(d, F_DUPFD_CLOEXEC, 150);
    CHECK("fcntl_dupfd_cloexec", at2 > at, "F_DUPFD_CLOEXEC %d (after %d)", at2, at);
    close(at);
    close(at2);
    CHECK_ERRNO("fcntl_dupfd_negative", fcntl(d, F_DUPFD, -1), EINVAL);
    CHECK_ERRNO("fcntl_dupfd_bad_fd", fcntl(999, F_DUPFD, 0), EBADF);
    int high = dup2(d, 200);
    CHECK("dup2_high_fd", high == 200 && lseek(200, 0, SEEK_CUR) == 6, "dup2 %d", high);
    CHECK("dup_after_high", dup(d) < 200, "lowest");
    close(200);
    close(t);
    close(d);
    unlink(path);

    /* sockets: one socket behind two fds */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    CHECK("dup_sock_bind", bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
          getsockname(s, (struct sockaddr *)&a, &alen) == 0, "bind: %s", strerror(errno));
    int s2 = dup(s);
    struct sockaddr_in b = {0};
    alen = sizeof b;
    CHECK("dup_sock_name", getsockname(s2, (struct sockaddr *)&b, &alen) == 0 &&
          b.sin_port == a.sin_port, "getsockname via dup");
    close(s);
    CHECK("dup_sock_send_after_close", sendto(s2, "ping", 4, 0, (struct sockaddr *)&a,
          sizeof a) == 4, "sendto: %s", strerror(errno));
    memset(buf, 0, sizeof buf);
    CHECK("dup_sock_recv_after_close", recv(s2, buf, sizeof buf, 0) == 4 &&
          strcmp(buf, "ping") == 0, "recv: %s", strerror(errno));
    int s3 = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK("dup2_over_socket", dup2(s2, s3) == s3, "dup2: %s", strerror(errno));
    alen = sizeof b;
    CHECK("dup2_socket_is_same", getsockname(s3, (struct sockaddr *)&b, &alen) == 0 &&
          b.sin_port == a.sin_port, "getsockname");
    close(s3);
    close(s2);
}

static void test_tempfiles(void) {
    char t[512];
    snprintf(t, sizeof t, "%s/tmpXXXXXX", dir);
    int fd = mkstemp(t);
    struct stat st;
    CHECK("mkstemp", fd >= 0 && strstr(t, "XXXXXX") == NULL && stat(t, &st) == 0 &&
          S_ISREG(st.st_mode), "mkstemp %d %s: %s", fd, t, strerror(errno));
    CHECK("mkstemp_rw", write(fd, "data", 4) == 4 && lseek(fd, 0, SEEK_SET) == 0, "rw");
    char buf[8] = {0};
    CHECK("mkstemp_read", read(fd, buf, 4) == 4 && strcmp(buf, "data") == 0, "read");
    close(fd);
    char t2[512];
    snprintf(t2, sizeof t2, "%s/tmpXXXXXX", dir);
    int fd2 = mkstemp(t2);
    CHECK("mkstemp_unique", fd2 >= 0 && strcmp(t, t2) != 0, "%s %s", t, t2);
    close(fd2);
    unlink(t);
    unlink(t2);
    snprintf(t, sizeof t, "%s/tmpXXXXX", dir);
    CHECK_ERRNO("mkstemp_short_template", mkstemp(t), EINVAL);
    CHECK("mkstemp_template_unchanged", strstr(t, "tmpXXXXX") != NULL, "%s", t);
    snprintf(t, sizeof t, "%s/tmpXXXXXX.txt", dir);
    fd = mkstemps(t, 4);
    CHECK("mkstemps_suffix", fd >= 0 && strcmp(t + strlen(t) - 4, ".txt") == 0 &&
          strstr(t, "XXXXXX") == NULL, "%s", t);
    close(fd);
    unlink(t);
    snprintf(t, sizeof t, "%s/tmpXXXXXX", dir);
    fd = mkostemp(t, O_APPEND);
    CHECK("mkostemp", fd >= 0 && (fcntl(fd, F_GETFL) & O_APPEND), "%s", t);
    close(fd);
    unlink(t);
    snprintf(t, sizeof t, "%s/dirXXXXXX", dir);
    char *made = mkdtemp(t);
    CHECK("mkdtemp", made == t && stat(t, &st) == 0 && S_ISDIR(st.st_mode), "%s: %s", t,
          strerror(errno));
    CHECK("mkdtemp_rmdir", rmdir(t) == 0, "rmdir: %s", strerror(errno));
    snprintf(t, sizeof t, "%s/no_such_dir/tmpXXXXXX", dir);
    CHECK_ERRNO("mkstemp_missing_dir", mkstemp(t), ENOENT);
}

static void test_random(void) {
    static unsigned char big_entropy[512];
    unsigned char a[64], b[256];
    CHECK("getrandom", getrandom(a, sizeof a, 0) == (ssize_t)sizeof a, "%s", strerror(errno));
    CHECK("getrandom_nonblock", getrandom(b, sizeof b, GRND_NONBLOCK) == (ssize_t)sizeof b,
          "%s", strerror(errno));
    CHECK("getrandom_differs", memcmp(a, b, 64) != 0, "same bytes twice");
    CHECK_ERRNO("getrandom_bad_flags", getrandom(a, 8, 0x100), EINVAL);
    CHECK("getrandom_zero", getrandom(a, 0, 0) == 0, "%s", strerror(errno));
    CHECK("getentropy", getentropy(b, 256) == 0, "%s", strerror(errno));
    CHECK_ERRNO("getentropy_too_long", getentropy(big_entropy, 257), EIO);
    printf("random ");
    for (size_t i = 0; i < sizeof a; i++)
        printf("%02x", a[i]);
    printf("\n");
}

static void test_hostname(void) {
    char name[256];
    memset(name, 'x', sizeof name);
    CHECK("gethostname", gethostname(name, sizeof name) == 0 && strcmp(name, host) == 0,
          "got '%s' want '%s'", name, host);
    size_t len = strlen(host);
    CHECK_ERRNO("gethostname_short", gethostname(name, len), ENAMETOOLONG);
    CHECK("gethostname_exact", gethostname(name, len + 1) == 0 && strcmp(name, host) == 0,
          "got '%s'", name);
    struct utsname u;
    CHECK("uname", uname(&u) == 0 && strcmp(u.nodename, host) == 0 && u.sysname[0] &&
          u.machine[0], "nodename '%s'", u.nodename);
}

/* --- the sandbox's answers (vnet only) ------------------------------------------------ */

static void test_sandbox(void) {
    CHECK_ERRNO("fork", fork(), ENOSYS);
    CHECK_ERRNO("vfork", vfork(), ENOSYS);
    CHECK_ERRNO("daemon", daemon(0, 0), ENOSYS);
    CHECK_ERRNO("setsid", setsid(), ENOSYS);
    char *argv[] = {"/bin/true", NULL};
    CHECK_ERRNO("execv", execv("/bin/true", argv), ENOSYS);
    CHECK_ERRNO("execvp", execvp("true", argv), ENOSYS);
    CHECK_ERRNO("execl", execl("/bin/true", "true", (char *)NULL), ENOSYS);
    CHECK_ERRNO("chroot", chroot("/"), ENOSYS);
    CHECK_ERRNO("waitpid", waitpid(-1, NULL, 0), ECHILD);
    CHECK_ERRNO("wait", wait(NULL), ECHILD);
    CHECK("system_no_shell", system(NULL) == 0, "system(NULL)");
    CHECK_ERRNO("system", system("true"), ENOSYS);
    errno = 0;
    CHECK("popen", popen("true", "r") == NULL && errno == ENOSYS, "errno %d", errno);
    CHECK("getppid", getppid() == 1, "%d", getppid());
    CHECK_ERRNO("sethostname_refused", sethostname("other", 5), EPERM);

    CHECK("root_in_sandbox", getuid() == 0 && geteuid() == 0 && getgid() == 0 && getegid() == 0,
          "uid %u", getuid());
    struct passwd *pw = getpwnam("nobody");
    CHECK("getpwnam_nobody", pw && pw->pw_uid == 65534 && pw->pw_gid == 65534, "pw %p", pw);
    errno = 0;
    CHECK("getpwnam_unknown", getpwnam("mallory") == NULL && errno == 0, "errno %d", errno);
    pw = getpwuid(0);
    CHECK("getpwuid_root", pw && strcmp(pw->pw_name, "root") == 0, "pw %p", pw);
    struct group *gr = getgrnam("nogroup");
    CHECK("getgrnam_nogroup", gr && gr->gr_gid == 65534, "gr %p", gr);
    char pwbuf[256];
    struct passwd pwd, *found = NULL;
    CHECK("getpwnam_r", getpwnam_r("nobody", &pwd, pwbuf, sizeof pwbuf, &found) == 0 &&
          found == &pwd && strcmp(pwd.pw_dir, "/nonexistent") == 0, "getpwnam_r");
    CHECK("getpwnam_r_erange", getpwnam_r("nobody", &pwd, pwbuf, 4, &found) == ERANGE &&
          found == NULL, "erange");
    /* the classic drop: setgroups, setgid, setuid, then make sure root is gone */
    CHECK("drop_setgroups", setgroups(0, NULL) == 0, "%s", strerror(errno));
    CHECK("drop_setgid", setgid(65534) == 0 && getgid() == 65534 && getegid() == 65534, "gid");
    CHECK("drop_setuid", setuid(65534) == 0 && getuid() == 65534 && geteuid() == 65534, "uid");
    CHECK_ERRNO("drop_is_final", setuid(0), EPERM);
    CHECK_ERRNO("drop_seteuid_final", seteuid(0), EPERM);
    CHECK_ERRNO("drop_setgroups_final", setgroups(0, NULL), EPERM);
    CHECK("setuid_same", setuid(65534) == 0, "%s", strerror(errno));

    openlog("posix_all", LOG_PID, LOG_DAEMON);
    errno = ENOENT;
    syslog(LOG_ERR, "syslog line %d: %m", 7);
    setlogmask(LOG_UPTO(LOG_WARNING));
    syslog(LOG_DEBUG, "filtered");
    closelog();
    result(1, "syslog_called", "");
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "dir=", 4) == 0)
            dir = argv[i] + 4;
        else if (strncmp(argv[i], "host=", 5) == 0)
            host = argv[i] + 5;
        else if (strncmp(argv[i], "sandbox=", 8) == 0)
            sandbox = atoi(argv[i] + 8);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN);
#endif
    test_pipes();
    test_dup();
    test_tempfiles();
    test_random();
    test_hostname();
    if (sandbox)
        test_sandbox();
    printf("summary: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
