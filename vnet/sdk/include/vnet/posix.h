/*
 * <vnet/posix.h> — vnet SDK (internal): the vnet_v1 imports behind the
 * POSIX calls in src/unistd.c — the virtual host's name, dup and pipe on
 * the guest's fd table — and recvmsg's control messages (src/sendrecv.c). Layouts and errnos: vnet/sdk/ABI.md.
 */
#ifndef __vnet_posix_h
#define __vnet_posix_h

#include <stdint.h>

#define VNET_FD_DUP_LOWEST 0xFFFFFFFFu /* fd_dup target: the lowest free fd */
#define VNET_PIPE_NONBLOCK 1u          /* fd_pipe flag */

/* Writes the name's length to *len; its bytes (no NUL) to buf when they fit,
 * else ENAMETOOLONG. */
int32_t __vnet_host_name(char *buf, uint32_t buf_len, uint32_t *len)
    __attribute__((__import_module__("vnet_v1"), __import_name__("host_name")));
/* dup2 (target = an fd) or F_DUPFD (target = VNET_FD_DUP_LOWEST: lowest free >= lowest). */
int32_t __vnet_fd_dup(int32_t fd, uint32_t target, uint32_t lowest, int32_t *new_fd)
    __attribute__((__import_module__("vnet_v1"), __import_name__("fd_dup")));
int32_t __vnet_fd_pipe(uint32_t flags, int32_t *read_fd, int32_t *write_fd)
    __attribute__((__import_module__("vnet_v1"), __import_name__("fd_pipe")));

/* wasix sock_recv_from plus the datagram's control messages: records of
 * (u32 level, u32 type, u32 len, data padded to 4) that fit in control_len are
 * written to control; *control_used is the length of all of them. */
int32_t __vnet_sock_recvmsg(int32_t fd, const void *iovs, int32_t iovs_len, int32_t riflags,
                            uint32_t *size, uint16_t *roflags, void *from, void *control,
                            uint32_t control_len, uint32_t *control_used)
    __attribute__((__import_module__("vnet_v1"), __import_name__("sock_recvmsg")));

#endif
