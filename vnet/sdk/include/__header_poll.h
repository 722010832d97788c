/*
 * __header_poll.h — vnet SDK: poll() event bits with Linux's values.
 *
 * Shadows wasi-libc's private header, which has only POLLRDNORM/POLLWRNORM
 * (POLLIN/POLLOUT aliases), POLLERR, POLLHUP and POLLNVAL, in its own
 * numbering (no POLLPRI, POLLRDHUP …). vnet's SDK implements poll(),
 * ppoll(), select() and pselect() itself (vnet/sdk/src/poll.c) over
 * preview1's poll_oneoff, so the usual names and values work; poll is
 * bound to the SDK's link name (see __vnet_replaces.h).
 */
#ifndef __wasilibc___header_poll_h
#define __wasilibc___header_poll_h

#include <__struct_pollfd.h>
#include <__typedef_nfds_t.h>
#include <__vnet_replaces.h>

#define POLLIN     0x001
#define POLLPRI    0x002
#define POLLOUT    0x004
#define POLLERR    0x008
#define POLLHUP    0x010
#define POLLNVAL   0x020
#define POLLRDNORM 0x040
#define POLLRDBAND 0x080
#define POLLWRNORM 0x100
#define POLLWRBAND 0x200
#define POLLMSG    0x400
#define POLLRDHUP  0x2000

#ifdef __cplusplus
extern "C" {
#endif

int poll(struct pollfd[], nfds_t, int) __VNET_REPLACES(poll);

#ifdef __cplusplus
}
#endif

#endif
