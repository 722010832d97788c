/*
 * <stdio.h> — vnet SDK: wasi-libc's header plus popen and pclose
 * (vnet/sdk/src/process.c): a guest has no shell and no processes, so popen
 * returns NULL with ENOSYS and pclose fails with ECHILD.
 */
#ifndef __vnet_stdio_h
#define __vnet_stdio_h

#include_next <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

FILE *popen(const char *, const char *);
int pclose(FILE *);

#ifdef __cplusplus
}
#endif

#endif
