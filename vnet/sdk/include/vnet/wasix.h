/*
 * <vnet/wasix.h> — vnet SDK: the raw guest ABI beyond wasi-libc.
 *
 * Declares the WASIX socket imports (module "wasix_32v1") and vnet's own
 * "vnet_v1" imports exactly as vnet/sdk/ABI.md defines them, with C structs
 * for their byte layouts. The SDK's BSD socket layer (vnet/sdk/src) is built
 * on these; ordinary programs never need this header — they use
 * <sys/socket.h>, <netdb.h>, <ifaddrs.h> and friends.
 *
 * Every function returns a WASI errno (0 on success); results are written
 * through the trailing pointer parameters. Byte order: the port inside an
 * addr_port is stored in network byte order (exactly as sin_port holds it);
 * IPv4 address bytes are in network order; IPv6 addresses are eight 16-bit
 * groups *as numbers* (fd00::1 -> segs[0] = 0xfd00 … segs[7] = 1).
 */
#ifndef __vnet_wasix_h
#define __vnet_wasix_h

#include <stddef.h>
#include <stdint.h>
#include <wasi/api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- enums ---------------------------------------------------------------- */

/* address_family (the tag of addr_port / addr_ip / addr_cidr) */
#define VNET_AF_UNSPEC 0
#define VNET_AF_INET4  1
#define VNET_AF_INET6  2
#define VNET_AF_UNIX   3

/* sock_type */
#define VNET_SOCK_STREAM    1
#define VNET_SOCK_DGRAM     2
#define VNET_SOCK_RAW       3
#define VNET_SOCK_SEQPACKET 4

/* sock_status */
#define VNET_SOCK_STATUS_OPENING 0
#define VNET_SOCK_STATUS_OPENED  1
#define VNET_SOCK_STATUS_CLOSED  2
#define VNET_SOCK_STATUS_FAILED  3

/* sock_option */
#define VNET_OPT_NOOP              0
#define VNET_OPT_REUSE_PORT        1
#define VNET_OPT_REUSE_ADDR        2
#define VNET_OPT_NO_DELAY          3
#define VNET_OPT_DONT_ROUTE        4
#define VNET_OPT_ONLY_V6           5
#define VNET_OPT_BROADCAST         6
#define VNET_OPT_MULTICAST_LOOP_V4 7
#define VNET_OPT_MULTICAST_LOOP_V6 8
#define VNET_OPT_PROMISCUOUS       9
#define VNET_OPT_LISTENING         10
#define VNET_OPT_LAST_ERROR        11
#define VNET_OPT_KEEP_ALIVE        12
#define VNET_OPT_LINGER            13
#define VNET_OPT_OOB_INLINE        14
#define VNET_OPT_RECV_BUF_SIZE     15
#define VNET_OPT_SEND_BUF_SIZE     16
#define VNET_OPT_RECV_LOWAT        17
#define VNET_OPT_SEND_LOWAT        18
#define VNET_OPT_RECV_TIMEOUT      19
#define VNET_OPT_SEND_TIMEOUT      20
#define VNET_OPT_CONNECT_TIMEOUT   21
#define VNET_OPT_ACCEPT_TIMEOUT    22
#define VNET_OPT_TTL               23
#define VNET_OPT_MULTICAST_TTL_V4  24
#define VNET_OPT_TYPE              25
#define VNET_OPT_PROTO             26

/* riflags / roflags / sdflags / fdflags */
#define VNET_RIFLAGS_PEEK       1
#define VNET_RIFLAGS_WAITALL    2
#define VNET_ROFLAGS_TRUNCATED  1
#define VNET_SDFLAGS_RD         1
#define VNET_SDFLAGS_WR         2
#define VNET_FDFLAGS_NONBLOCK   4

/* --- layouts -------------------------------------------------------------- */

/* addr_port: 110 bytes, align 2 */
typedef struct vnet_addr_port {
    uint8_t tag;                 /* VNET_AF_* */
    uint8_t _pad;
    union {
        struct { uint16_t port; uint8_t addr[4]; } ip4;
        struct {
            uint16_t port;
            uint16_t segs[8];
            uint16_t flow_info1, flow_info0;   /* most / least significant half */
            uint16_t scope_id1, scope_id0;
        } ip6;
        struct { uint16_t port; uint8_t addr; } unspec;
        uint8_t unix_path[108];
    } u;
} vnet_addr_port;

/* addr_ip (used by resolve): 18 bytes */
typedef struct vnet_addr_ip {
    uint8_t tag;
    uint8_t _pad;
    union {
        uint8_t ip4[4];
        uint16_t ip6[8];
    } u;
} vnet_addr_ip;

/* addr_cidr (used by port_addr_list): 28 bytes */
typedef struct vnet_addr_cidr {
    uint8_t tag;
    uint8_t _pad;
    union {
        struct { uint8_t addr[4]; uint8_t prefix; } ip4;
        struct {
            uint16_t segs[8];
            uint16_t flow_info1, flow_info0, scope_id1, scope_id0;
            uint8_t prefix;
        } ip6;
    } u;
} vnet_addr_cidr;

/* addr_ip4: 4 bytes, network order */
typedef struct vnet_addr_ip4 { uint8_t octets[4]; } vnet_addr_ip4;

/* addr_ip6: 24 bytes */
typedef struct vnet_addr_ip6 {
    uint16_t segs[8];
    uint16_t flow_info1, flow_info0, scope_id1, scope_id0;
} vnet_addr_ip6;

/* option_timestamp: 16 bytes; tag 0 = none, 1 = some(nanoseconds) */
typedef struct vnet_option_timestamp {
    uint8_t tag;
    uint64_t ns;
} vnet_option_timestamp;

/* hardware_address: 6 bytes */
typedef struct vnet_hardware_address { uint8_t octets[6]; } vnet_hardware_address;

/* vnet_v1.if_list records */
#define VNET_IF_MAX_ADDRS 16
typedef struct vnet_ifaddr {
    uint8_t family;              /* 4 or 6 */
    uint8_t prefix_len;
    uint16_t reserved;
    uint8_t addr[16];            /* network order; IPv4 in the first 4 bytes */
} vnet_ifaddr;

typedef struct vnet_if {
    uint32_t index;
    uint32_t flags;              /* Linux IFF_* */
    uint32_t mtu;
    uint8_t mac[6];
    uint8_t mac_len;             /* 0 for loopback, 6 otherwise */
    uint8_t naddrs;              /* at most VNET_IF_MAX_ADDRS */
    char name[16];               /* NUL-terminated */
    vnet_ifaddr addrs[VNET_IF_MAX_ADDRS];
} vnet_if;

_Static_assert(sizeof(vnet_addr_port) == 110, "addr_port is 110 bytes");
_Static_assert(_Alignof(vnet_addr_port) == 2, "addr_port is 2-aligned");
_Static_assert(offsetof(vnet_addr_port, u.ip4.addr) == 4, "addr_port ip4 layout");
_Static_assert(offsetof(vnet_addr_port, u.ip6.flow_info1) == 20, "addr_port ip6 layout");
_Static_assert(offsetof(vnet_addr_port, u.ip6.scope_id0) == 26, "addr_port ip6 layout");
_Static_assert(sizeof(vnet_addr_ip) == 18, "addr_ip is 18 bytes");
_Static_assert(sizeof(vnet_addr_cidr) == 28, "addr_cidr is 28 bytes");
_Static_assert(offsetof(vnet_addr_cidr, u.ip4.prefix) == 6, "addr_cidr ip4 layout");
_Static_assert(offsetof(vnet_addr_cidr, u.ip6.prefix) == 26, "addr_cidr ip6 layout");
_Static_assert(sizeof(vnet_addr_ip6) == 24, "addr_ip6 is 24 bytes");
_Static_assert(sizeof(vnet_option_timestamp) == 16, "option_timestamp is 16 bytes");
_Static_assert(offsetof(vnet_option_timestamp, ns) == 8, "option_timestamp layout");
_Static_assert(sizeof(vnet_ifaddr) == 20, "vnet_ifaddr is 20 bytes");
_Static_assert(offsetof(vnet_if, name) == 20, "vnet_if layout");
_Static_assert(offsetof(vnet_if, addrs) == 36, "vnet_if layout");
_Static_assert(sizeof(vnet_if) == 356, "vnet_if is 356 bytes");

/* --- imports -------------------------------------------------------------- */

#define __VNET_WASIX(name) \
    __attribute__((__import_module__("wasix_32v1"), __import_name__(#name)))
#define __VNET_V1(name) \
    __attribute__((__import_module__("vnet_v1"), __import_name__(#name)))

int32_t __wasix_sock_open(int32_t af, int32_t socktype, int32_t proto, int32_t *fd)
    __VNET_WASIX(sock_open);
int32_t __wasix_sock_pair(int32_t af, int32_t socktype, int32_t proto, int32_t *fd0,
                          int32_t *fd1) __VNET_WASIX(sock_pair);
int32_t __wasix_sock_bind(int32_t fd, const vnet_addr_port *addr) __VNET_WASIX(sock_bind);
int32_t __wasix_sock_listen(int32_t fd, int32_t backlog) __VNET_WASIX(sock_listen);
int32_t __wasix_sock_connect(int32_t fd, const vnet_addr_port *addr)
    __VNET_WASIX(sock_connect);
int32_t __wasix_sock_accept_v2(int32_t fd, int32_t fdflags, int32_t *newfd,
                               vnet_addr_port *peer) __VNET_WASIX(sock_accept_v2);
int32_t __wasix_sock_recv_from(int32_t fd, const __wasi_iovec_t *iovs, int32_t iovs_len,
                               int32_t riflags, uint32_t *size, uint16_t *roflags,
                               vnet_addr_port *from) __VNET_WASIX(sock_recv_from);
int32_t __wasix_sock_send_to(int32_t fd, const __wasi_ciovec_t *iovs, int32_t iovs_len,
                             int32_t siflags, const vnet_addr_port *to, uint32_t *size)
    __VNET_WASIX(sock_send_to);
int32_t __wasix_sock_addr_local(int32_t fd, vnet_addr_port *addr)
    __VNET_WASIX(sock_addr_local);
int32_t __wasix_sock_addr_peer(int32_t fd, vnet_addr_port *addr)
    __VNET_WASIX(sock_addr_peer);
int32_t __wasix_sock_status(int32_t fd, uint8_t *status) __VNET_WASIX(sock_status);
int32_t __wasix_sock_set_opt_flag(int32_t fd, int32_t option, int32_t flag)
    __VNET_WASIX(sock_set_opt_flag);
int32_t __wasix_sock_get_opt_flag(int32_t fd, int32_t option, uint8_t *flag)
    __VNET_WASIX(sock_get_opt_flag);
int32_t __wasix_sock_set_opt_size(int32_t fd, int32_t option, int64_t size)
    __VNET_WASIX(sock_set_opt_size);
int32_t __wasix_sock_get_opt_size(int32_t fd, int32_t option, uint64_t *size)
    __VNET_WASIX(sock_get_opt_size);
int32_t __wasix_sock_set_opt_time(int32_t fd, int32_t option,
                                  const vnet_option_timestamp *time)
    __VNET_WASIX(sock_set_opt_time);
int32_t __wasix_sock_get_opt_time(int32_t fd, int32_t option, vnet_option_timestamp *time)
    __VNET_WASIX(sock_get_opt_time);
int32_t __wasix_sock_join_multicast_v4(int32_t fd, const vnet_addr_ip4 *group,
                                       const vnet_addr_ip4 *iface)
    __VNET_WASIX(sock_join_multicast_v4);
int32_t __wasix_sock_leave_multicast_v4(int32_t fd, const vnet_addr_ip4 *group,
                                        const vnet_addr_ip4 *iface)
    __VNET_WASIX(sock_leave_multicast_v4);
int32_t __wasix_sock_join_multicast_v6(int32_t fd, const vnet_addr_ip6 *group,
                                       uint32_t ifindex) __VNET_WASIX(sock_join_multicast_v6);
int32_t __wasix_sock_leave_multicast_v6(int32_t fd, const vnet_addr_ip6 *group,
                                        uint32_t ifindex)
    __VNET_WASIX(sock_leave_multicast_v6);
int32_t __wasix_resolve(const char *host, uint32_t host_len, uint32_t port,
                        vnet_addr_ip *addrs, uint32_t naddrs, uint32_t *count)
    __VNET_WASIX(resolve);
int32_t __wasix_port_addr_list(vnet_addr_cidr *addrs, uint32_t *naddrs)
    __VNET_WASIX(port_addr_list);
int32_t __wasix_port_mac(vnet_hardware_address *mac) __VNET_WASIX(port_mac);

int32_t __vnet_if_list(vnet_if *buf, uint32_t buf_len, uint32_t *count) __VNET_V1(if_list);
int32_t __vnet_sock_setsockopt(int32_t fd, int32_t level, int32_t name, const void *value,
                               uint32_t value_len) __VNET_V1(sock_setsockopt);
int32_t __vnet_sock_getsockopt(int32_t fd, int32_t level, int32_t name, void *value,
                               uint32_t *value_len) __VNET_V1(sock_getsockopt);
int32_t __vnet_fd_limit(uint32_t *max_fds) __VNET_V1(fd_limit);
int32_t __vnet_host_ioctl(int32_t fd, int32_t request, void *arg, int32_t *result) __VNET_V1(ioctl);

#ifdef __cplusplus
}
#endif

#endif
