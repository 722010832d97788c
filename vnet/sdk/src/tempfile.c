/*
 * tempfile.c — vnet SDK: mkstemp, mkostemp, mkstemps, mkostemps, mkdtemp.
 * wasi-libc leaves them out; these work wherever the guest may create files
 * (a preopened directory or below it). The six X's become letters and digits
 * from getrandom (so names repeat with the seed in virtual time); a name
 * that exists is retried, as musl does. A template that does not end in
 * XXXXXX (before the suffix) is EINVAL, and the template is left unchanged.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define ATTEMPTS 100

static const char letters[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* The six X's of the template, or NULL (errno EINVAL). */
static char *placeholder(char *template, int suffixlen) {
    size_t len = strlen(template);
    if (suffixlen < 0 || (size_t)suffixlen > len || len - (size_t)suffixlen < 6) {
        errno = EINVAL;
        return NULL;
    }
    char *x = template + len - (size_t)suffixlen - 6;
    if (memcmp(x, "XXXXXX", 6) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return x;
}

static void fill(char *x) {
    uint8_t random[6];
    if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random)
        memset(random, 0, sizeof random);
    for (int i = 0; i < 6; i++)
        x[i] = letters[random[i] % (sizeof letters - 1)];
}

int mkostemps(char *template, int suffixlen, int flags) {
    char *x = placeholder(template, suffixlen);
    if (!x)
        return -1;
    flags &= ~O_ACCMODE;
    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        fill(x);
        int fd = open(template, flags | O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            break;
    }
    memcpy(x, "XXXXXX", 6);
    return -1;
}

int mkstemps(char *template, int suffixlen) { return mkostemps(template, suffixlen, 0); }
int mkostemp(char *template, int flags) { return mkostemps(template, 0, flags); }
int mkstemp(char *template) { return mkostemps(template, 0, 0); }

char *mkdtemp(char *template) {
    char *x = placeholder(template, 0);
    if (!x)
        return NULL;
    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        fill(x);
        if (mkdir(template, 0700) == 0)
            return template;
        if (errno != EEXIST)
            break;
    }
    memcpy(x, "XXXXXX", 6);
    return NULL;
}
