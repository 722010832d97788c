/*
 * <sys/socket.h> — vnet SDK: wasi-libc's header plus the BSD socket calls
 * WASI preview1 leaves out.
 *
 * wasi-libc declares only accept, accept4, recv, send, shutdown and
 * getsockopt (and implements them over preview1's sock_* calls). vnet's SDK
 * implements all of the calls below over WASIX (vnet/sdk/src/socket.c,
 * sendrecv.c, sockopt.c); the constants come from the SDK's
 * __header_sys_socket.h, which wasi-libc's header includes.
 */
#ifndef __vnet_sys_socket_h
#define __vnet_sys_socket_h

#include_next <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

int socket(int, int, int);
int socketpair(int, int, int, int[2]);
int bind(int, const struct sockaddr *, socklen_t);
int connect(int, const struct sockaddr *, socklen_t);
int listen(int, int);
int getsockname(int, struct sockaddr *__restrict, socklen_t *__restrict);
int getpeername(int, struct sockaddr *__restrict, socklen_t *__restrict);
ssize_t sendto(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
ssize_t recvfrom(int, void *__restrict, size_t, int, struct sockaddr *__restrict,
                 socklen_t *__restrict);
ssize_t sendmsg(int, const struct msghdr *, int);
ssize_t recvmsg(int, struct msghdr *, int);
int setsockopt(int, int, int, const void *, socklen_t);
int sockatmark(int);

#ifdef __cplusplus
}
#endif

#endif
