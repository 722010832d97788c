/*
 * pthread.h for guests built with -pthread (this directory is on their include
 * path, before wasi-libc's): wasi-libc's header, plus what it leaves out for
 * its single-threaded build and vnet's runtime (vnet/sdk/pthread/pthread.c)
 * provides.
 */
#ifndef __vnet_pthread_h
#define __vnet_pthread_h
#include_next <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif
_Noreturn void pthread_exit(void *);
#ifdef __cplusplus
}
#endif

#endif
