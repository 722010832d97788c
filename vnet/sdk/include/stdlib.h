/*
 * <stdlib.h> — vnet SDK: wasi-libc's header plus mkstemp, mkostemp,
 * mkstemps, mkostemps and mkdtemp (vnet/sdk/src/tempfile.c), which work in
 * any directory the guest can open (a preopened one or below it). system()
 * is wasi-libc's declaration with the SDK's definition (process.c): no
 * shell, so system(NULL) is 0 and system(cmd) is -1 with ENOSYS.
 */
#ifndef __vnet_stdlib_h
#define __vnet_stdlib_h

#include_next <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

int mkstemp(char *);
int mkostemp(char *, int);
int mkstemps(char *, int);
int mkostemps(char *, int, int);
char *mkdtemp(char *);

#ifdef __cplusplus
}
#endif

#endif
