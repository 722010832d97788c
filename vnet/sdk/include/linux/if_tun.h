/*
 * <linux/if_tun.h> — vnet SDK: the TUN/TAP device's ioctls, flags and
 * struct tun_pi, with Linux's values (x86-64 request numbers).
 *
 * Under vnet, open("/dev/net/tun", O_RDWR) works for a guest granted a
 * device (vnet run --guest-tun), and TUNSETIFF, TUNGETIFF, TUNGETFEATURES,
 * TUNSETPERSIST, TUNSETOWNER, TUNSETGROUP, TUNSETNOCSUM and TUNSETOFFLOAD go
 * to the host (vnet/guest/tundev.py says what each does). TUNGETFEATURES
 * lists IFF_TUN, IFF_TAP, IFF_NO_PI and IFF_ONE_QUEUE; IFF_MULTI_QUEUE,
 * IFF_VNET_HDR and IFF_NAPI* are refused with EINVAL.
 */
#ifndef _LINUX_IF_TUN_H
#define _LINUX_IF_TUN_H

#include <linux/if_ether.h>

#define TUN_READQ_SIZE 500
#define TUN_TUN_DEV IFF_TUN
#define TUN_TAP_DEV IFF_TAP
#define TUN_TYPE_MASK 0x000f

/* ioctl requests: _IOW('T', n, int) / _IOR('T', n, unsigned int) */
#define TUNSETNOCSUM 0x400454c8
#define TUNSETDEBUG 0x400454c9
#define TUNSETIFF 0x400454ca
#define TUNSETPERSIST 0x400454cb
#define TUNSETOWNER 0x400454cc
#define TUNSETLINK 0x400454cd
#define TUNSETGROUP 0x400454ce
#define TUNGETFEATURES 0x800454cf
#define TUNSETOFFLOAD 0x400454d0
#define TUNSETTXFILTER 0x400454d1
#define TUNGETIFF 0x800454d2
#define TUNGETSNDBUF 0x800454d3
#define TUNSETSNDBUF 0x400454d4
#define TUNGETVNETHDRSZ 0x800454d7
#define TUNSETVNETHDRSZ 0x400454d8
#define TUNSETQUEUE 0x400454d9
#define TUNSETIFINDEX 0x400454da
#define TUNSETVNETLE 0x400454dc
#define TUNGETVNETLE 0x800454dd
#define TUNSETVNETBE 0x400454de
#define TUNGETVNETBE 0x800454df
#define TUNSETCARRIER 0x400454e2
#define TUNGETDEVNETNS 0x54e3

/* TUNSETIFF ifr_flags */
#define IFF_TUN 0x0001
#define IFF_TAP 0x0002
#define IFF_NAPI 0x0010
#define IFF_NAPI_FRAGS 0x0020
#define IFF_NO_CARRIER 0x0040
#define IFF_NO_PI 0x1000
#define IFF_ONE_QUEUE 0x2000
#define IFF_VNET_HDR 0x4000
#define IFF_TUN_EXCL 0x8000
#define IFF_MULTI_QUEUE 0x0100
#define IFF_ATTACH_QUEUE 0x0200
#define IFF_DETACH_QUEUE 0x0400
#define IFF_PERSIST 0x0800
#define IFF_NOFILTER 0x1000

/* TUNSETOFFLOAD features */
#define TUN_F_CSUM 0x01
#define TUN_F_TSO4 0x02
#define TUN_F_TSO6 0x04
#define TUN_F_TSO_ECN 0x08
#define TUN_F_UFO 0x10
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40

/* struct tun_pi flags */
#define TUN_PKT_STRIP 0x0001

/* The packet information header before each packet without IFF_NO_PI. */
struct tun_pi {
    unsigned short flags;
    unsigned short proto; /* ETH_P_*, network byte order */
};

#define TUN_FLT_ALLMULTI 0x0001

struct tun_filter {
    unsigned short flags;
    unsigned short count;
    unsigned char addr[][ETH_ALEN];
};

#endif
