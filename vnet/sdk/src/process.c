/*
 * process.c — vnet SDK: process and privilege calls a sandboxed guest
 * cannot have, defined so programs link and take the error path they
 * already have.
 *
 * - No processes: fork, vfork, _Fork, the exec family, daemon, setsid,
 *   setpgid, chroot, system(cmd) and popen fail with ENOSYS (-1 or NULL);
 *   system(NULL) is 0 ("no shell"); wait/waitpid fail with ECHILD and
 *   pclose with ECHILD, as for a process without children. daemon() failing
 *   lets a "daemonize unless -f" program carry on in the foreground.
 *   getppid is 1, getpgrp/getpgid/getsid are the emulated getpid.
 * - Identity: the guest is root of its own sandbox (uid and gid 0: it may
 *   configure its own network device, as CAP_NET_ADMIN). The setuid family
 *   works on an in-guest credential with POSIX's rules — root may set any
 *   id, anyone may set an id it already has, otherwise EPERM — so a program
 *   that "drops privileges" succeeds, sees the new ids in getuid/geteuid,
 *   and cannot get root back (its own check that setuid(0) now fails
 *   passes). The ids change nothing else: the sandbox grants what it grants.
 * - Users: getpwnam/getpwuid know root (0) and nobody (65534), getgrnam/
 *   getgrgid root (0), nogroup and nobody (65534); anything else is not
 *   found (NULL, errno 0).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int no_processes(void) { return errno = ENOSYS, -1; }

pid_t fork(void) { return no_processes(); }
pid_t vfork(void) { return no_processes(); }
pid_t _Fork(void) { return no_processes(); }
int execve(const char *p, char *const a[], char *const e[]) {
    (void)p, (void)a, (void)e;
    return no_processes();
}
int execv(const char *p, char *const a[]) { (void)p, (void)a; return no_processes(); }
int execvp(const char *p, char *const a[]) { (void)p, (void)a; return no_processes(); }
int execvpe(const char *p, char *const a[], char *const e[]) {
    (void)p, (void)a, (void)e;
    return no_processes();
}
int fexecve(int fd, char *const a[], char *const e[]) {
    (void)fd, (void)a, (void)e;
    return no_processes();
}
int execl(const char *p, const char *a, ...) { (void)p, (void)a; return no_processes(); }
int execle(const char *p, const char *a, ...) { (void)p, (void)a; return no_processes(); }
int execlp(const char *p, const char *a, ...) { (void)p, (void)a; return no_processes(); }
int daemon(int nochdir, int noclose) { (void)nochdir, (void)noclose; return no_processes(); }
pid_t setsid(void) { return no_processes(); }
int setpgid(pid_t pid, pid_t pgid) { (void)pid, (void)pgid; return no_processes(); }
pid_t setpgrp(void) { return no_processes(); }
int chroot(const char *path) { (void)path; return no_processes(); }

pid_t getppid(void) { return 1; }
pid_t getpgrp(void) { return getpid(); }
pid_t getpgid(pid_t pid) { (void)pid; return getpid(); }
pid_t getsid(pid_t pid) { (void)pid; return getpid(); }

pid_t wait(int *status) { (void)status; return errno = ECHILD, -1; }
pid_t waitpid(pid_t pid, int *status, int options) {
    (void)pid, (void)status;
    if (options & ~(WNOHANG | WUNTRACED | WCONTINUED))
        return errno = EINVAL, -1;
    return errno = ECHILD, -1;
}

int system(const char *command) { return command ? no_processes() : 0; }
FILE *popen(const char *command, const char *mode) {
    (void)command, (void)mode;
    errno = ENOSYS;
    return NULL;
}
int pclose(FILE *f) { (void)f; return errno = ECHILD, -1; }

/* --- credentials ---------------------------------------------------------- */

static uid_t ruid, euid, suid;
static gid_t rgid, egid, sgid;
static gid_t groups[32];
static int ngroups;

uid_t getuid(void) { return ruid; }
uid_t geteuid(void) { return euid; }
gid_t getgid(void) { return rgid; }
gid_t getegid(void) { return egid; }

int getgroups(int size, gid_t list[]) {
    if (size == 0)
        return ngroups;
    if (size < ngroups)
        return errno = EINVAL, -1;
    memcpy(list, groups, (size_t)ngroups * sizeof *groups);
    return ngroups;
}

int setgroups(size_t size, const gid_t *list) {
    if (euid != 0)
        return errno = EPERM, -1;
    if (size > sizeof groups / sizeof *groups)
        return errno = EINVAL, -1;
    if (size)
        memcpy(groups, list, size * sizeof *groups);
    ngroups = (int)size;
    return 0;
}

/* May the caller take `id`? Root may take any; others one of their own. */
static int may_uid(uid_t id) { return euid == 0 || id == ruid || id == euid || id == suid; }
static int may_gid(gid_t id) { return euid == 0 || id == rgid || id == egid || id == sgid; }

int setuid(uid_t id) {
    if (id == (uid_t)-1)
        return errno = EINVAL, -1;
    if (euid == 0)
        ruid = euid = suid = id;
    else if (may_uid(id))
        euid = id;
    else
        return errno = EPERM, -1;
    return 0;
}

int seteuid(uid_t id) {
    if (id == (uid_t)-1)
        return errno = EINVAL, -1;
    if (!may_uid(id))
        return errno = EPERM, -1;
    euid = id;
    return 0;
}

int setresuid(uid_t r, uid_t e, uid_t s) {
    if ((r != (uid_t)-1 && !may_uid(r)) || (e != (uid_t)-1 && !may_uid(e))
        || (s != (uid_t)-1 && !may_uid(s)))
        return errno = EPERM, -1;
    if (r != (uid_t)-1) ruid = r;
    if (e != (uid_t)-1) euid = e;
    if (s != (uid_t)-1) suid = s;
    return 0;
}

int setreuid(uid_t r, uid_t e) {
    uid_t old_ruid = ruid;
    if (setresuid(r, e, (uid_t)-1) != 0)
        return -1;
    if (r != (uid_t)-1 || (e != (uid_t)-1 && e != old_ruid))
        suid = euid;
    return 0;
}

int getresuid(uid_t *r, uid_t *e, uid_t *s) {
    *r = ruid, *e = euid, *s = suid;
    return 0;
}

int setgid(gid_t id) {
    if (id == (gid_t)-1)
        return errno = EINVAL, -1;
    if (euid == 0)
        rgid = egid = sgid = id;
    else if (may_gid(id))
        egid = id;
    else
        return errno = EPERM, -1;
    return 0;
}

int setegid(gid_t id) {
    if (id == (gid_t)-1)
        return errno = EINVAL, -1;
    if (!may_gid(id))
        return errno = EPERM, -1;
    egid = id;
    return 0;
}

int setresgid(gid_t r, gid_t e, gid_t s) {
    if ((r != (gid_t)-1 && !may_gid(r)) || (e != (gid_t)-1 && !may_gid(e))
        || (s != (gid_t)-1 && !may_gid(s)))
        return errno = EPERM, -1;
    if (r != (gid_t)-1) rgid = r;
    if (e != (gid_t)-1) egid = e;
    if (s != (gid_t)-1) sgid = s;
    return 0;
}

int setregid(gid_t r, gid_t e) {
    gid_t old_rgid = rgid;
    if (setresgid(r, e, (gid_t)-1) != 0)
        return -1;
    if (r != (gid_t)-1 || (e != (gid_t)-1 && e != old_rgid))
        sgid = egid;
    return 0;
}

int getresgid(gid_t *r, gid_t *e, gid_t *s) {
    *r = rgid, *e = egid, *s = sgid;
    return 0;
}

/* --- users and groups ------------------------------------------------------ */

static struct passwd users[] = {
    {"root", "x", 0, 0, "root", "/root", "/bin/sh"},
    {"nobody", "x", 65534, 65534, "nobody", "/nonexistent", "/usr/sbin/nologin"},
};
static char *no_members[] = {NULL};
static struct group group_list[] = {
    {"root", "x", 0, no_members},
    {"nogroup", "x", 65534, no_members},
    {"nobody", "x", 65534, no_members},
};
#define COUNT(a) (sizeof(a) / sizeof *(a))
static size_t next_user, next_group;

struct passwd *getpwnam(const char *name) {
    for (size_t i = 0; name && i < COUNT(users); i++)
        if (strcmp(users[i].pw_name, name) == 0)
            return &users[i];
    return NULL;
}

struct passwd *getpwuid(uid_t uid) {
    for (size_t i = 0; i < COUNT(users); i++)
        if (users[i].pw_uid == uid)
            return &users[i];
    return NULL;
}

/* The _r forms: strings copied into buf (ERANGE when it is too small). */
static int copy_user(const struct passwd *found, struct passwd *pw, char *buf, size_t size,
                     struct passwd **result) {
    *result = NULL;
    if (!found)
        return 0;
    const char *fields[5] = {found->pw_name, found->pw_passwd, found->pw_gecos, found->pw_dir,
                             found->pw_shell};
    char *out[5];
    size_t used = 0;
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(fields[i]) + 1;
        if (used + n > size)
            return ERANGE;
        out[i] = memcpy(buf + used, fields[i], n);
        used += n;
    }
    *pw = *found;
    pw->pw_name = out[0], pw->pw_passwd = out[1], pw->pw_gecos = out[2];
    pw->pw_dir = out[3], pw->pw_shell = out[4];
    *result = pw;
    return 0;
}

int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t size,
               struct passwd **result) {
    return copy_user(getpwnam(name), pw, buf, size, result);
}

int getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t size, struct passwd **result) {
    return copy_user(getpwuid(uid), pw, buf, size, result);
}

void setpwent(void) { next_user = 0; }
void endpwent(void) { next_user = 0; }
struct passwd *getpwent(void) { return next_user < COUNT(users) ? &users[next_user++] : NULL; }

struct group *getgrnam(const char *name) {
    for (size_t i = 0; name && i < COUNT(group_list); i++)
        if (strcmp(group_list[i].gr_name, name) == 0)
            return &group_list[i];
    return NULL;
}

struct group *getgrgid(gid_t gid) {
    for (size_t i = 0; i < COUNT(group_list); i++)
        if (group_list[i].gr_gid == gid)
            return &group_list[i];
    return NULL;
}

void setgrent(void) { next_group = 0; }
void endgrent(void) { next_group = 0; }
struct group *getgrent(void) {
    return next_group < COUNT(group_list) ? &group_list[next_group++] : NULL;
}

int initgroups(const char *user, gid_t group) {
    (void)user;
    return setgroups(1, &group);
}
