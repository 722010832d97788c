/*
 * <sys/random.h> — vnet SDK: wasi-libc's header (getentropy) plus Linux's
 * getrandom and its flags (vnet/sdk/src/unistd.c). Both draw from WASI's
 * random_get, which in virtual time is the run's seeded generator: the same
 * seed gives the same bytes.
 */
#ifndef __vnet_sys_random_h
#define __vnet_sys_random_h

#include_next <sys/random.h>
#include <sys/types.h>

#define GRND_NONBLOCK 0x0001
#define GRND_RANDOM 0x0002
#define GRND_INSECURE 0x0004

#ifdef __cplusplus
extern "C" {
#endif

ssize_t getrandom(void *, size_t, unsigned);

#ifdef __cplusplus
}
#endif

#endif
