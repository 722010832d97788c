/*
 * <grp.h> — vnet SDK: a guest's group database is three built-in entries,
 * root (0), nogroup and nobody (65534), matching <pwd.h>; setgroups and
 * initgroups follow the setuid family's rules (vnet/sdk/src/process.c).
 */
#ifndef __vnet_grp_h
#define __vnet_grp_h

#include <sys/types.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct group {
    char *gr_name;
    char *gr_passwd;
    gid_t gr_gid;
    char **gr_mem;
};

struct group *getgrnam(const char *);
struct group *getgrgid(gid_t);
void setgrent(void);
void endgrent(void);
struct group *getgrent(void);
int setgroups(size_t, const gid_t *);
int initgroups(const char *, gid_t);

#ifdef __cplusplus
}
#endif

#endif
