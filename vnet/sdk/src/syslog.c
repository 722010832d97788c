/*
 * syslog.c — vnet SDK: syslog to the guest's stderr (see <syslog.h>).
 * One write per message, so lines from one guest never interleave.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static char ident[64];
static int options;
static int mask = 0xff;

void openlog(const char *name, int opts, int facility) {
    (void)facility;
    options = opts;
    if (name) {
        strncpy(ident, name, sizeof ident - 1);
        ident[sizeof ident - 1] = '\0';
    } else {
        ident[0] = '\0';
    }
}

void closelog(void) {}

int setlogmask(int new_mask) {
    int old = mask;
    if (new_mask)
        mask = new_mask;
    return old;
}

void vsyslog(int priority, const char *format, va_list ap) {
    if (!(mask & LOG_MASK(LOG_PRI(priority))))
        return;
    int saved = errno;
    /* %m -> strerror(errno), as glibc's syslog */
    char fmt[512];
    size_t o = 0;
    for (const char *p = format; *p && o < sizeof fmt - 1; p++) {
        if (p[0] == '%' && p[1] == 'm') {
            const char *e = strerror(saved);
            for (; *e && o < sizeof fmt - 1; e++)
                fmt[o++] = *e == '%' ? '?' : *e;
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            if (o + 2 >= sizeof fmt)
                break;
            fmt[o++] = '%';
            fmt[o++] = '%';
            p++;
        } else {
            fmt[o++] = *p;
        }
    }
    fmt[o] = '\0';
    char line[1024];
    int n = 0;
    if (ident[0] && (options & LOG_PID))
        n = snprintf(line, sizeof line, "%s[%d]: ", ident, (int)getpid());
    else if (ident[0])
        n = snprintf(line, sizeof line, "%s: ", ident);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    if (len == 0 || line[len - 1] != '\n')
        line[len++] = '\n';
    (void)write(STDERR_FILENO, line, len);
    errno = saved;
}

void syslog(int priority, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    vsyslog(priority, format, ap);
    va_end(ap);
}
