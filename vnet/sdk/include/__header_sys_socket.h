/*
 * __header_sys_socket.h — vnet SDK: the <sys/socket.h> constants, with
 * Linux's values.
 *
 * Shadows wasi-libc's private header of the same name, which
 * <sys/socket.h> includes first. wasi-libc's version numbers things after
 * WASI preview1 (SOCK_STREAM 6, SOL_SOCKET 0x7fffffff, SHUT_RD 1,
 * MSG_TRUNC == MSG_PEEK == 1) and leaves most options out. vnet's SDK
 * implements every socket call itself (vnet/sdk/src), so it can use the
 * values C programmers and Linux expect: SOL_SOCKET, SO_*, MSG_*, SHUT_*
 * and SOCK_* are Linux's (x86-64), and option numbers pass straight
 * through to vnet's host (`vnet_v1.sock_setsockopt`).
 *
 * The address families keep wasi-libc's values (AF_INET 1, AF_INET6 2,
 * AF_UNIX 3), which are also WASIX's `address_family` numbers; wasi-libc's
 * own inet_pton/inet_ntop are compiled with them. AF_PACKET is Linux's 17
 * (getifaddrs reports each interface's MAC address as an AF_PACKET entry).
 */
#ifndef __wasilibc___header_sys_socket_h
#define __wasilibc___header_sys_socket_h

#include <__wasi_snapshot.h>
#include <__struct_msghdr.h>
#include <__struct_sockaddr.h>
#include <__struct_sockaddr_storage.h>
#include <__typedef_socklen_t.h>
#include <__typedef_ssize_t.h>
#include <__vnet_replaces.h>

#define __need_size_t
#include <stddef.h>

#include <wasi/api.h>

/* shutdown() */
#define SHUT_RD   0
#define SHUT_WR   1
#define SHUT_RDWR 2

/* socket types (also WASIX's sock_type numbers for the first three) */
#define SOCK_STREAM    1
#define SOCK_DGRAM     2
#define SOCK_RAW       3
#define SOCK_RDM       4
#define SOCK_SEQPACKET 5
#define SOCK_DCCP      6
#define SOCK_PACKET    10

/* socket() / accept4() flags (wasi-libc's values) */
#define SOCK_NONBLOCK (0x00004000)
#define SOCK_CLOEXEC  (0x00002000)

/* address and protocol families */
#define PF_UNSPEC 0
#define PF_INET   1
#define PF_INET6  2
#define PF_UNIX   3
#define PF_LOCAL  PF_UNIX
#define PF_FILE   PF_UNIX
#define PF_PACKET 17

#define AF_UNSPEC PF_UNSPEC
#define AF_INET   PF_INET
#define AF_INET6  PF_INET6
#define AF_UNIX   PF_UNIX
#define AF_LOCAL  PF_LOCAL
#define AF_FILE   PF_FILE
#define AF_PACKET PF_PACKET

/* option levels */
#define SOL_SOCKET  1
#define SOL_IP      0
#define SOL_TCP     6
#define SOL_UDP     17
#define SOL_IPV6    41
#define SOL_ICMPV6  58
#define SOL_RAW     255
#define SOL_PACKET  263

/* SOL_SOCKET options (Linux, x86-64 numbering) */
#define SO_DEBUG        1
#define SO_REUSEADDR    2
#define SO_TYPE         3
#define SO_ERROR        4
#define SO_DONTROUTE    5
#define SO_BROADCAST    6
#define SO_SNDBUF       7
#define SO_RCVBUF       8
#define SO_KEEPALIVE    9
#define SO_OOBINLINE    10
#define SO_NO_CHECK     11
#define SO_PRIORITY     12
#define SO_LINGER       13
#define SO_BSDCOMPAT    14
#define SO_REUSEPORT    15
#define SO_PASSCRED     16
#define SO_PEERCRED     17
#define SO_RCVLOWAT     18
#define SO_SNDLOWAT     19
#define SO_RCVTIMEO     20
#define SO_SNDTIMEO     21
#define SO_BINDTODEVICE 25
#define SO_TIMESTAMP    29
#define SO_ACCEPTCONN   30
#define SO_SNDBUFFORCE  32
#define SO_RCVBUFFORCE  33
#define SO_TIMESTAMPNS  35
#define SO_MARK         36
#define SO_PROTOCOL     38
#define SO_DOMAIN       39
#define SO_RXQ_OVFL     40
#define SO_PEEK_OFF     42
#define SO_BUSY_POLL    46
#define SO_INCOMING_CPU 49
#define SO_BINDTOIFINDEX 62

#define SOMAXCONN 128

/* send/recv flags */
#define MSG_OOB       0x0001
#define MSG_PEEK      0x0002
#define MSG_DONTROUTE 0x0004
#define MSG_CTRUNC    0x0008
#define MSG_PROXY     0x0010
#define MSG_TRUNC     0x0020
#define MSG_DONTWAIT  0x0040
#define MSG_EOR       0x0080
#define MSG_WAITALL   0x0100
#define MSG_FIN       0x0200
#define MSG_SYN       0x0400
#define MSG_CONFIRM   0x0800
#define MSG_RST       0x1000
#define MSG_ERRQUEUE  0x2000
#define MSG_NOSIGNAL  0x4000
#define MSG_MORE      0x8000
#define MSG_WAITFORONE 0x10000
#define MSG_BATCH     0x40000
#define MSG_ZEROCOPY  0x4000000
#define MSG_FASTOPEN  0x20000000
#define MSG_CMSG_CLOEXEC 0x40000000

/* Ancillary data: recvmsg delivers IP_PKTINFO, IP_TTL, IP_TOS, IPV6_PKTINFO,
 * IPV6_HOPLIMIT, IPV6_TCLASS and SCM_TIMESTAMP(NS) messages (src/sendrecv.c).
 * wasm32's struct cmsghdr is 12 bytes (CMSG_LEN(0) is 12, 16 on x86-64). */
struct cmsghdr {
    socklen_t cmsg_len;
    int cmsg_level;
    int cmsg_type;
};

#define __CMSG_LEN(cmsg) (((cmsg)->cmsg_len + sizeof(long) - 1) & ~(long)(sizeof(long) - 1))
#define __CMSG_NEXT(cmsg) ((unsigned char *)(cmsg) + __CMSG_LEN(cmsg))
#define __MHDR_END(mhdr) ((unsigned char *)(mhdr)->msg_control + (mhdr)->msg_controllen)

#define CMSG_DATA(cmsg) ((unsigned char *) (((struct cmsghdr *)(cmsg)) + 1))
#define CMSG_NXTHDR(mhdr, cmsg) ((cmsg)->cmsg_len < sizeof (struct cmsghdr) || \
	__CMSG_LEN(cmsg) + sizeof(struct cmsghdr) >= (__SIZE_TYPE__)(__MHDR_END(mhdr) - (unsigned char *)(cmsg)) \
	? 0 : (struct cmsghdr *)__CMSG_NEXT(cmsg))
#define CMSG_FIRSTHDR(mhdr) ((size_t) (mhdr)->msg_controllen >= sizeof (struct cmsghdr) ? (struct cmsghdr *) (mhdr)->msg_control : (struct cmsghdr *) 0)
#define CMSG_ALIGN(len) (((len) + sizeof (size_t) - 1) & (size_t) ~(sizeof (size_t) - 1))
#define CMSG_SPACE(len) (CMSG_ALIGN (len) + CMSG_ALIGN (sizeof (struct cmsghdr)))
#define CMSG_LEN(len)   (CMSG_ALIGN (sizeof (struct cmsghdr)) + (len))

#define SCM_RIGHTS      0x01
#define SCM_CREDENTIALS 0x02
#define SCM_TIMESTAMP   SO_TIMESTAMP
#define SCM_TIMESTAMPNS SO_TIMESTAMPNS

/* The calls wasi-libc also defines, bound to the SDK's link names (see
 * __vnet_replaces.h); <sys/socket.h> redeclares them without the label,
 * which keeps it. The SDK's <sys/socket.h> declares the rest. */
#ifdef __cplusplus
extern "C" {
#endif
int accept(int, struct sockaddr *__restrict, socklen_t *__restrict) __VNET_REPLACES(accept);
int accept4(int, struct sockaddr *__restrict, socklen_t *__restrict, int)
    __VNET_REPLACES(accept4);
ssize_t send(int, const void *, size_t, int) __VNET_REPLACES(send);
ssize_t recv(int, void *, size_t, int) __VNET_REPLACES(recv);
int shutdown(int, int) __VNET_REPLACES(shutdown);
int getsockopt(int, int, int, void *__restrict, socklen_t *__restrict)
    __VNET_REPLACES(getsockopt);
#ifdef __cplusplus
}
#endif

#endif
