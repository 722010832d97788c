/* errno.h: wasi-libc's, plus the Linux network errno names WASI lacks.
 *
 * Programs written for Linux name these in switch statements over errno
 * (c-ares's ares_socket.c has `case EHOSTDOWN:`). They get Linux's numbers,
 * which no WASI errno uses (WASI's stop at 76); vnet never returns them. */
#include_next <errno.h>

#ifndef EHOSTDOWN
#define EHOSTDOWN 112
#endif
#ifndef ESHUTDOWN
#define ESHUTDOWN 108
#endif
#ifndef ETOOMANYREFS
#define ETOOMANYREFS 109
#endif
#ifndef ESOCKTNOSUPPORT
#define ESOCKTNOSUPPORT 94
#endif
#ifndef EPFNOSUPPORT
#define EPFNOSUPPORT 96
#endif
