/*
 * <unistd.h> — vnet SDK: wasi-libc's header plus the POSIX calls WASI
 * preview1 leaves out and vnet provides (vnet/sdk/src/unistd.c, process.c).
 *
 * Real ones: pipe, pipe2, dup, dup2, dup3 (vnet_v1.fd_pipe / fd_dup on the
 * guest's one fd table), gethostname and sethostname (the virtual host's
 * name, vnet_v1.host_name). Process and privilege calls a sandboxed program
 * cannot have link and fail as a program already handles: fork, vfork, the
 * exec family, daemon, setsid, chroot → -1 with ENOSYS. The guest is root of
 * its sandbox: getuid/geteuid/getgid/getegid return 0 until a setuid-family
 * call drops them (see process.c).
 */
#ifndef __vnet_unistd_h
#define __vnet_unistd_h

#include_next <unistd.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

int pipe(int[2]);
int pipe2(int[2], int);
int dup(int);
int dup2(int, int);
int dup3(int, int, int);
int sethostname(const char *, size_t);
int getdomainname(char *, size_t);

pid_t fork(void);
pid_t vfork(void);
pid_t _Fork(void);
int execve(const char *, char *const[], char *const[]);
int execv(const char *, char *const[]);
int execle(const char *, const char *, ...);
int execl(const char *, const char *, ...);
int execvp(const char *, char *const[]);
int execlp(const char *, const char *, ...);
int execvpe(const char *, char *const[], char *const[]);
int fexecve(int, char *const[], char *const[]);
int daemon(int, int);
int chroot(const char *);

pid_t getppid(void);
pid_t getpgrp(void);
pid_t getpgid(pid_t);
int setpgid(pid_t, pid_t);
pid_t setpgrp(void);
pid_t setsid(void);
pid_t getsid(pid_t);

uid_t getuid(void);
uid_t geteuid(void);
gid_t getgid(void);
gid_t getegid(void);
int getgroups(int, gid_t[]);
int setuid(uid_t);
int seteuid(uid_t);
int setgid(gid_t);
int setegid(gid_t);
int setreuid(uid_t, uid_t);
int setregid(gid_t, gid_t);
int setresuid(uid_t, uid_t, uid_t);
int setresgid(gid_t, gid_t, gid_t);
int getresuid(uid_t *, uid_t *, uid_t *);
int getresgid(gid_t *, gid_t *, gid_t *);
int setgroups(size_t, const gid_t *);

#ifdef __cplusplus
}
#endif

#endif
