/*
 * <pwd.h> — vnet SDK: a guest's user database is two built-in entries,
 * root (0) and nobody (65534), as a minimal container has, so a program
 * that "drops privileges to nobody" finds its user; any other name or uid
 * is not found (NULL, errno 0). vnet/sdk/src/process.c.
 */
#ifndef __vnet_pwd_h
#define __vnet_pwd_h

#include <sys/types.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct passwd {
    char *pw_name;
    char *pw_passwd;
    uid_t pw_uid;
    gid_t pw_gid;
    char *pw_gecos;
    char *pw_dir;
    char *pw_shell;
};

struct passwd *getpwnam(const char *);
struct passwd *getpwuid(uid_t);
int getpwnam_r(const char *, struct passwd *, char *, size_t, struct passwd **);
int getpwuid_r(uid_t, struct passwd *, char *, size_t, struct passwd **);
void setpwent(void);
void endpwent(void);
struct passwd *getpwent(void);

#ifdef __cplusplus
}
#endif

#endif
