/* fs_probe: a tiny interpreter of raw wasi_snapshot_preview1 filesystem calls.
 *
 * Each command is a run of argv words; the program prints one line per
 * command with the errno *name* the host returned, or the result. The same
 * command list is run under vnet's WASI and under wasmtime's own WASI, and
 * the outputs are compared, so nothing printed may depend on inode numbers,
 * fd numbers or wall-clock times. Calling the imports directly (not libc)
 * shows the host's raw behaviour: wasi-libc would refuse absolute paths and
 * `..` before the host ever sees them.
 *
 * Opened fds go into slots s0, s1, ...; a directory argument D is either a
 * number (3 is the first preopen) or a slot. Rights words: r, w, rw, none.
 *
 *   open D LF PATH OFLAGS RIGHTS FDFLAGS   close S
 *   read S N   write S TEXT   pread S N OFF   pwrite S TEXT OFF
 *   seek S OFF WHENCE   tell S   fstat S   fsetsize S N   fdstat S
 *   setflags S FLAGS   sync S   datasync S   advise S   allocate S OFF LEN
 *   ftimes S ATIM MTIM FSTFLAGS   times D LF PATH
 *   mkdir D PATH   rmdir D PATH   unlink D PATH   rename D PATH D2 PATH2
 *   symlink TARGET D PATH   readlink D PATH BUFLEN   link D LF PATH D2 PATH2
 *   stat D LF PATH   utimes D LF PATH ATIM MTIM FSTFLAGS
 *   readdir S BUFLEN COOKIE   ls S BUFLEN
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

static const char *const ERRNO_NAMES[] = {
    "SUCCESS", "E2BIG", "EACCES", "EADDRINUSE", "EADDRNOTAVAIL", "EAFNOSUPPORT", "EAGAIN",
    "EALREADY", "EBADF", "EBADMSG", "EBUSY", "ECANCELED", "ECHILD", "ECONNABORTED",
    "ECONNREFUSED", "ECONNRESET", "EDEADLK", "EDESTADDRREQ", "EDOM", "EDQUOT", "EEXIST",
    "EFAULT", "EFBIG", "EHOSTUNREACH", "EIDRM", "EILSEQ", "EINPROGRESS", "EINTR", "EINVAL",
    "EIO", "EISCONN", "EISDIR", "ELOOP", "EMFILE", "EMLINK", "EMSGSIZE", "EMULTIHOP",
    "ENAMETOOLONG", "ENETDOWN", "ENETRESET", "ENETUNREACH", "ENFILE", "ENOBUFS", "ENODEV",
    "ENOENT", "ENOEXEC", "ENOLCK", "ENOLINK", "ENOMEM", "ENOMSG", "ENOPROTOOPT", "ENOSPC",
    "ENOSYS", "ENOTCONN", "ENOTDIR", "ENOTEMPTY", "ENOTRECOVERABLE", "ENOTSOCK", "ENOTSUP",
    "ENOTTY", "ENXIO", "EOVERFLOW", "EOWNERDEAD", "EPERM", "EPIPE", "EPROTO",
    "EPROTONOSUPPORT", "EPROTOTYPE", "ERANGE", "EROFS", "ESPIPE", "ESRCH", "ESTALE",
    "ETIMEDOUT", "ETXTBSY", "EXDEV", "ENOTCAPABLE",
};

#define MAX_SLOTS 64
static __wasi_fd_t slots[MAX_SLOTS];
static int nslots;
static char **args;
static int nargs, pos;

static const char *next(void) {
    if (pos >= nargs) {
        printf("probe: missing argument\n");
        exit(2);
    }
    return args[pos++];
}
static uint64_t num(void) { return strtoull(next(), NULL, 0); }
static int64_t snum(void) { return strtoll(next(), NULL, 0); }

static __wasi_fd_t fdarg(void) {
    const char *w = next();
    if (w[0] == 's') {
        int i = atoi(w + 1);
        return i < nslots ? slots[i] : 0xFFFFFF;
    }
    return (__wasi_fd_t)strtoul(w, NULL, 0);
}

static __wasi_rights_t rightsarg(void) {
    const char *w = next();
    __wasi_rights_t all = (((__wasi_rights_t)1) << 29) - 1;
    __wasi_rights_t rw = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE;
    if (!strcmp(w, "r")) return all & ~__WASI_RIGHTS_FD_WRITE;
    if (!strcmp(w, "w")) return all & ~__WASI_RIGHTS_FD_READ;
    if (!strcmp(w, "rw")) return all;
    if (!strcmp(w, "none")) return all & ~rw;
    return strtoull(w, NULL, 0);
}

/* Prints "op: ENAME" for an error; returns 1 when the call succeeded. */
static int ok(const char *op, __wasi_errno_t e) {
    if (e == 0) return 1;
    printf("%s: %s\n", op, e < sizeof ERRNO_NAMES / sizeof *ERRNO_NAMES ? ERRNO_NAMES[e] : "?");
    return 0;
}

static uint64_t now_ns(void) {
    __wasi_timestamp_t t = 0;
    (void)__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &t);
    return t;
}

/* A timestamp as something comparable across runs: exact if set explicitly
 * to a small value, "now" if within a minute of the current time. */
static void print_time(const char *label, uint64_t t) {
    uint64_t now = now_ns(), minute = 60ull * 1000000000ull;
    if (t + minute > now && t < now + minute)
        printf(" %s=now", label);
    else
        printf(" %s=%llu", label, (unsigned long long)t);
}

static void print_stat(const char *op, const __wasi_filestat_t *st, int with_times) {
    printf("%s: type=%u size=%llu nlink=%llu", op, st->filetype, (unsigned long long)st->size,
           (unsigned long long)st->nlink);
    if (with_times) {
        print_time("atim", st->atim);
        print_time("mtim", st->mtim);
    }
    printf("\n");
}

static void print_quoted(const uint8_t *p, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 32 && p[i] < 127 && p[i] != '"' && p[i] != '\\')
            putchar(p[i]);
        else
            printf("\\x%02x", p[i]);
    }
    putchar('"');
}

/* Decode a readdir buffer without trusting it: a record may be cut anywhere. */
static void print_dirents(const uint8_t *buf, size_t used) {
    size_t off = 0;
    while (off < used) {
        if (used - off < sizeof(__wasi_dirent_t)) {
            printf("  cut header %zu bytes\n", used - off);
            return;
        }
        __wasi_dirent_t d;
        memcpy(&d, buf + off, sizeof d);
        off += sizeof d;
        size_t have = used - off < d.d_namlen ? used - off : d.d_namlen;
        printf("  next=%llu type=%u namlen=%u name=", (unsigned long long)d.d_next, d.d_type,
               d.d_namlen);
        print_quoted(buf + off, have);
        printf(have < d.d_namlen ? " (cut)\n" : "\n");
        off += have;
    }
}

static void cmd_open(void) {
    __wasi_fd_t dir = fdarg();
    __wasi_lookupflags_t lf = (__wasi_lookupflags_t)num();
    const char *path = next();
    __wasi_oflags_t of = (__wasi_oflags_t)num();
    __wasi_rights_t rights = rightsarg();
    __wasi_fdflags_t fl = (__wasi_fdflags_t)num();
    __wasi_fd_t fd;
    char op[300];
    snprintf(op, sizeof op, "open %s", path);
    if (!ok(op, __wasi_path_open(dir, lf, path, of, rights, rights, fl, &fd))) return;
    __wasi_fdstat_t st;
    if (!ok(op, __wasi_fd_fdstat_get(fd, &st))) return;
    printf("%s: s%d type=%u flags=%u\n", op, nslots, st.fs_filetype, st.fs_flags);
    if (nslots < MAX_SLOTS) slots[nslots++] = fd;
}

static void cmd_ls(void) {
    __wasi_fd_t fd = fdarg();
    size_t buflen = (size_t)num();
    uint8_t *buf = malloc(buflen);
    __wasi_dircookie_t cookie = 0;
    for (int rounds = 0; rounds < 1000; rounds++) {
        __wasi_size_t used;
        if (!ok("ls", __wasi_fd_readdir(fd, buf, buflen, cookie, &used))) break;
        size_t off = 0, complete = 0;
        while (used - off >= sizeof(__wasi_dirent_t)) {
            __wasi_dirent_t d;
            memcpy(&d, buf + off, sizeof d);
            if (used - off - sizeof d < d.d_namlen) break;
            printf("ls: %.*s type=%u next=%llu\n", (int)d.d_namlen, (char *)buf + off + sizeof d,
                   d.d_type, (unsigned long long)d.d_next);
            cookie = d.d_next;
            off += sizeof d + d.d_namlen;
            complete++;
        }
        if (used < buflen) break;
        if (complete == 0) {
            printf("ls: buffer too small for one entry\n");
            break;
        }
    }
    free(buf);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep what was printed if the host traps */
    args = argv;
    nargs = argc;
    pos = 1;
    static uint8_t buf[65536];
    while (pos < nargs) {
        const char *op = next();
        size_t n;
        __wasi_filestat_t st;
        if (!strcmp(op, "open")) {
            cmd_open();
        } else if (!strcmp(op, "close")) {
            if (ok(op, __wasi_fd_close(fdarg()))) printf("close: ok\n");
        } else if (!strcmp(op, "read")) {
            __wasi_fd_t fd = fdarg();
            __wasi_iovec_t iov = {buf, (size_t)num()};
            if (ok(op, __wasi_fd_read(fd, &iov, 1, &n))) {
                printf("read: %zu ", n);
                print_quoted(buf, n);
                printf("\n");
            }
        } else if (!strcmp(op, "write")) {
            __wasi_fd_t fd = fdarg();
            const char *text = next();
            __wasi_ciovec_t iov = {(const uint8_t *)text, strlen(text)};
            if (ok(op, __wasi_fd_write(fd, &iov, 1, &n))) printf("write: %zu\n", n);
        } else if (!strcmp(op, "pread")) {
            __wasi_fd_t fd = fdarg();
            __wasi_iovec_t iov = {buf, (size_t)num()};
            uint64_t off = num();
            if (ok(op, __wasi_fd_pread(fd, &iov, 1, off, &n))) {
                printf("pread: %zu ", n);
                print_quoted(buf, n);
                printf("\n");
            }
        } else if (!strcmp(op, "pwrite")) {
            __wasi_fd_t fd = fdarg();
            const char *text = next();
            uint64_t off = num();
            __wasi_ciovec_t iov = {(const uint8_t *)text, strlen(text)};
            if (ok(op, __wasi_fd_pwrite(fd, &iov, 1, off, &n))) printf("pwrite: %zu\n", n);
        } else if (!strcmp(op, "seek")) {
            __wasi_fd_t fd = fdarg();
            int64_t off = snum();
            __wasi_whence_t wh = (__wasi_whence_t)num();
            __wasi_filesize_t r;
            if (ok(op, __wasi_fd_seek(fd, off, wh, &r))) printf("seek: %llu\n", (unsigned long long)r);
        } else if (!strcmp(op, "tell")) {
            __wasi_filesize_t r;
            if (ok(op, __wasi_fd_tell(fdarg(), &r))) printf("tell: %llu\n", (unsigned long long)r);
        } else if (!strcmp(op, "fstat")) {
            if (ok(op, __wasi_fd_filestat_get(fdarg(), &st))) print_stat(op, &st, 0);
        } else if (!strcmp(op, "fsetsize")) {
            __wasi_fd_t fd = fdarg();
            if (ok(op, __wasi_fd_filestat_set_size(fd, num()))) printf("fsetsize: ok\n");
        } else if (!strcmp(op, "fdstat")) {
            __wasi_fdstat_t fs;
            if (ok(op, __wasi_fd_fdstat_get(fdarg(), &fs)))
                printf("fdstat: type=%u flags=%u\n", fs.fs_filetype, fs.fs_flags);
        } else if (!strcmp(op, "setflags")) {
            __wasi_fd_t fd = fdarg();
            if (ok(op, __wasi_fd_fdstat_set_flags(fd, (__wasi_fdflags_t)num())))
                printf("setflags: ok\n");
        } else if (!strcmp(op, "sync")) {
            if (ok(op, __wasi_fd_sync(fdarg()))) printf("sync: ok\n");
        } else if (!strcmp(op, "datasync")) {
            if (ok(op, __wasi_fd_datasync(fdarg()))) printf("datasync: ok\n");
        } else if (!strcmp(op, "advise")) {
            if (ok(op, __wasi_fd_advise(fdarg(), 0, 0, __WASI_ADVICE_SEQUENTIAL)))
                printf("advise: ok\n");
        } else if (!strcmp(op, "allocate")) {
            __wasi_fd_t fd = fdarg();
            uint64_t off = num();
            if (ok(op, __wasi_fd_allocate(fd, off, num()))) printf("allocate: ok\n");
        } else if (!strcmp(op, "ftimes")) {
            __wasi_fd_t fd = fdarg();
            uint64_t a = num(), m = num();
            if (ok(op, __wasi_fd_filestat_set_times(fd, a, m, (__wasi_fstflags_t)num())))
                printf("ftimes: ok\n");
        } else if (!strcmp(op, "times") || !strcmp(op, "stat")) {
            __wasi_fd_t dir = fdarg();
            __wasi_lookupflags_t lf = (__wasi_lookupflags_t)num();
            const char *path = next();
            char label[300];
            snprintf(label, sizeof label, "%s %s", op, path);
            if (ok(label, __wasi_path_filestat_get(dir, lf, path, &st)))
                print_stat(label, &st, op[0] == 't');
        } else if (!strcmp(op, "utimes")) {
            __wasi_fd_t dir = fdarg();
            __wasi_lookupflags_t lf = (__wasi_lookupflags_t)num();
            const char *path = next();
            uint64_t a = num(), m = num();
            __wasi_fstflags_t fl = (__wasi_fstflags_t)num();
            if (ok(op, __wasi_path_filestat_set_times(dir, lf, path, a, m, fl)))
                printf("utimes: ok\n");
        } else if (!strcmp(op, "mkdir") || !strcmp(op, "rmdir") || !strcmp(op, "unlink")) {
            __wasi_fd_t dir = fdarg();
            const char *path = next();
            __wasi_errno_t e = op[0] == 'm'   ? __wasi_path_create_directory(dir, path)
                               : op[0] == 'r' ? __wasi_path_remove_directory(dir, path)
                                              : __wasi_path_unlink_file(dir, path);
            char label[300];
            snprintf(label, sizeof label, "%s %s", op, path);
            if (ok(label, e)) printf("%s: ok\n", label);
        } else if (!strcmp(op, "rename")) {
            __wasi_fd_t d1 = fdarg();
            const char *p1 = next();
            __wasi_fd_t d2 = fdarg();
            const char *p2 = next();
            char label[600];
            snprintf(label, sizeof label, "rename %s %s", p1, p2);
            if (ok(label, __wasi_path_rename(d1, p1, d2, p2))) printf("%s: ok\n", label);
        } else if (!strcmp(op, "symlink")) {
            const char *target = next();
            __wasi_fd_t dir = fdarg();
            const char *path = next();
            char label[600];
            snprintf(label, sizeof label, "symlink %s %s", target, path);
            if (ok(label, __wasi_path_symlink(target, dir, path))) printf("%s: ok\n", label);
        } else if (!strcmp(op, "readlink")) {
            __wasi_fd_t dir = fdarg();
            const char *path = next();
            size_t len = (size_t)num();
            char label[300];
            snprintf(label, sizeof label, "readlink %s", path);
            if (ok(label, __wasi_path_readlink(dir, path, buf, len, &n))) {
                printf("%s: %zu ", label, n);
                print_quoted(buf, n);
                printf("\n");
            }
        } else if (!strcmp(op, "link")) {
            __wasi_fd_t d1 = fdarg();
            __wasi_lookupflags_t lf = (__wasi_lookupflags_t)num();
            const char *p1 = next();
            __wasi_fd_t d2 = fdarg();
            const char *p2 = next();
            char label[600];
            snprintf(label, sizeof label, "link %s %s", p1, p2);
            if (ok(label, __wasi_path_link(d1, lf, p1, d2, p2))) printf("%s: ok\n", label);
        } else if (!strcmp(op, "readdir")) {
            __wasi_fd_t fd = fdarg();
            size_t len = (size_t)num();
            __wasi_dircookie_t cookie = num();
            if (len > sizeof buf) len = sizeof buf;
            if (ok(op, __wasi_fd_readdir(fd, buf, len, cookie, &n))) {
                printf("readdir: used=%zu of %zu\n", n, len);
                print_dirents(buf, n);
            }
        } else if (!strcmp(op, "ls")) {
            cmd_ls();
        } else {
            printf("probe: unknown command %s\n", op);
            return 2;
        }
    }
    return 0;
}
