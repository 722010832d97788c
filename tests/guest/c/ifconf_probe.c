/*
 * ifconf_probe.c — interface configuration, call by call: the SIOC* ioctls
 * and an rtnetlink socket, on a point-to-point interface (a TUN device).
 *
 * Portable C: built natively with gcc and run in a private network namespace
 * against a real Linux TUN device, and built with `vnet build` and run as a
 * vnet guest against a point-to-point interface it may configure; the two
 * outputs are compared line by line (tests/guest/test_ifconf.py). Each call
 * prints one line: `NAME ret=R errno=E` and the result's fields. Nothing
 * that must differ between the two is printed as such: the interface index
 * is printed as `idx_ok=1` (equal to if_nametoindex), a netlink port id as
 * `pid_ok=1`, address families by name.
 *
 * Arguments:
 *   ifname=tun0   the point-to-point interface to configure
 *   attach        attach to it with open("/dev/net/tun") + TUNSETIFF first (this
 *                 creates it, natively, and under vnet with a device grant)
 *   up            then bring it up (SIOCSIFFLAGS) before the calls begin: a device
 *                 vnet grants comes up configured, Linux's TUNSETIFF leaves it down
 *   listen=N      instead: subscribe to link, address and route changes and
 *                 print the first N notifications (blocking receives)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#if defined(__linux__)
#include <linux/if_tun.h>
#endif

#ifndef IFF_NOARP
#define IFF_NOARP 0x80
#endif

struct in6_rtmsg_probe { /* <linux/ipv6_route.h>'s struct in6_rtmsg */
    struct in6_addr rtmsg_dst;
    struct in6_addr rtmsg_src;
    struct in6_addr rtmsg_gateway;
    uint32_t rtmsg_type;
    uint16_t rtmsg_dst_len;
    uint16_t rtmsg_src_len;
    uint32_t rtmsg_metric;
    unsigned long rtmsg_info;
    uint32_t rtmsg_flags;
    int rtmsg_ifindex;
};

struct in6_ifreq_probe { /* <linux/ipv6.h>'s struct in6_ifreq */
    struct in6_addr ifr6_addr;
    uint32_t ifr6_prefixlen;
    int ifr6_ifindex;
};

static const char *ename(int e) {
    switch (e) {
    case 0: return "0";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENOTTY: return "ENOTTY";
    case ERANGE: return "ERANGE";
    case ENOSYS: return "ENOSYS";
    case ENOTSOCK: return "ENOTSOCK";
    case EMSGSIZE: return "EMSGSIZE";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETDOWN: return "ENETDOWN";
    case ENETUNREACH: return "ENETUNREACH";
    case ENOBUFS: return "ENOBUFS";
    case EDESTADDRREQ: return "EDESTADDRREQ";
    case ENOTCONN: return "ENOTCONN";
    case EPROTOTYPE: return "EPROTOTYPE";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    default: return "E?";
    }
}

static const char *family(int f) {
    if (f == AF_UNSPEC) return "unspec";
    if (f == AF_INET) return "inet";
    if (f == AF_INET6) return "inet6";
    if (f == AF_NETLINK) return "netlink";
    return "other";
}

static char ifname[IFNAMSIZ] = "tun0";
static int tun_index;
static int tun_fd = -1; /* the attached /dev/net/tun fd, if any */

/* --- ioctl helpers -------------------------------------------------------- */

static int ifreq_call(int fd, unsigned long request, struct ifreq *ifr, const char *name) {
    memset(ifr, 0, sizeof *ifr);
    snprintf(ifr->ifr_name, IFNAMSIZ, "%s", name);
    errno = 0;
    int r = ioctl(fd, request, ifr);
    return r;
}

static void print_call(const char *what, int r) {
    printf("%s ret=%d errno=%s", what, r, r < 0 ? ename(errno) : "0");
}

static const char *in4(const struct sockaddr *sa) {
    static char buf[4][INET_ADDRSTRLEN + 16];
    static int next;
    char *out = buf[next++ % 4];
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    snprintf(out, sizeof buf[0], "%s/%s", family(sa->sa_family), text);
    return out;
}

static void set_in4(struct sockaddr *sa, int fam, const char *text) {
    struct sockaddr_in *sin = (struct sockaddr_in *)sa;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = (sa_family_t)fam;
    inet_pton(AF_INET, text, &sin->sin_addr);
}

static void get_addr(int fd, unsigned long request, const char *what, const char *name) {
    struct ifreq ifr;
    int r = ifreq_call(fd, request, &ifr, name);
    print_call(what, r);
    if (r == 0)
        printf(" addr=%s", in4(&ifr.ifr_addr));
    printf("\n");
}

static void set_addr(int fd, unsigned long request, const char *what, const char *name,
                     int fam, const char *text) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    set_in4(&ifr.ifr_addr, fam, text);
    errno = 0;
    int r = ioctl(fd, request, &ifr);
    print_call(what, r);
    printf("\n");
}

static void get_flags(int fd, const char *what, const char *name) {
    struct ifreq ifr;
    int r = ifreq_call(fd, SIOCGIFFLAGS, &ifr, name);
    print_call(what, r);
    if (r == 0)
        printf(" flags=0x%x", (unsigned)(unsigned short)ifr.ifr_flags);
    printf("\n");
}

static void set_flags(int fd, const char *what, const char *name, int flags) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    ifr.ifr_flags = (short)flags;
    errno = 0;
    int r = ioctl(fd, SIOCSIFFLAGS, &ifr);
    print_call(what, r);
    printf("\n");
}

static void get_mtu(int fd, const char *what, const char *name) {
    struct ifreq ifr;
    int r = ifreq_call(fd, SIOCGIFMTU, &ifr, name);
    print_call(what, r);
    if (r == 0)
        printf(" mtu=%d", ifr.ifr_mtu);
    printf("\n");
}

static void set_mtu(int fd, const char *what, const char *name, int mtu) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    ifr.ifr_mtu = mtu;
    errno = 0;
    int r = ioctl(fd, SIOCSIFMTU, &ifr);
    print_call(what, r);
    printf("\n");
}

static void route_ioctl(int fd, unsigned long request, const char *what, const char *dst,
                        const char *mask, const char *gw, const char *dev, int dst_family) {
    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    set_in4(&rt.rt_dst, dst_family, dst);
    set_in4(&rt.rt_genmask, AF_INET, mask);
    rt.rt_flags = RTF_UP;
    if (gw != NULL) {
        set_in4(&rt.rt_gateway, AF_INET, gw);
        rt.rt_flags |= RTF_GATEWAY;
    }
    char devbuf[IFNAMSIZ];
    if (dev != NULL) {
        snprintf(devbuf, sizeof devbuf, "%s", dev);
        rt.rt_dev = devbuf;
    }
    errno = 0;
    int r = ioctl(fd, request, &rt);
    print_call(what, r);
    printf("\n");
}

static void in6_ioctl(int fd, unsigned long request, const char *what, const char *addr,
                      unsigned prefix, int ifindex) {
    struct in6_ifreq_probe req;
    memset(&req, 0, sizeof req);
    inet_pton(AF_INET6, addr, &req.ifr6_addr);
    req.ifr6_prefixlen = prefix;
    req.ifr6_ifindex = ifindex;
    errno = 0;
    int r = ioctl(fd, request, &req);
    print_call(what, r);
    printf("\n");
}

static void route6_ioctl(int fd, unsigned long request, const char *what, const char *dst,
                         int dst_len, const char *gw, int ifindex) {
    struct in6_rtmsg_probe rt;
    memset(&rt, 0, sizeof rt);
    inet_pton(AF_INET6, dst, &rt.rtmsg_dst);
    rt.rtmsg_dst_len = (uint16_t)dst_len;
    rt.rtmsg_flags = RTF_UP;
    if (gw != NULL) {
        inet_pton(AF_INET6, gw, &rt.rtmsg_gateway);
        rt.rtmsg_flags |= RTF_GATEWAY;
    }
    rt.rtmsg_ifindex = ifindex;
    errno = 0;
    int r = ioctl(fd, request, &rt);
    print_call(what, r);
    printf("\n");
}

static void ioctl_calls(void) {
    int s4 = socket(AF_INET, SOCK_DGRAM, 0);
    int s6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct ifreq ifr;
    int r;

    r = ifreq_call(s4, SIOCGIFINDEX, &ifr, ifname);
    print_call("gifindex", r);
    if (r == 0) {
        tun_index = ifr.ifr_ifindex;
        printf(" idx_ok=%d", ifr.ifr_ifindex == (int)if_nametoindex(ifname));
    }
    printf("\n");
    r = ifreq_call(s4, SIOCGIFINDEX, &ifr, "nosuch0");
    print_call("gifindex_unknown", r);
    printf("\n");

    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = tun_index;
    errno = 0;
    r = ioctl(s4, SIOCGIFNAME, &ifr);
    print_call("gifname", r);
    if (r == 0)
        printf(" name=%s", ifr.ifr_name);
    printf("\n");
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = 999999;
    errno = 0;
    r = ioctl(s4, SIOCGIFNAME, &ifr);
    print_call("gifname_unknown", r);
    printf("\n");

    get_flags(s4, "gifflags_initial", ifname);
    get_flags(s4, "gifflags_lo", "lo");
    get_flags(s4, "gifflags_unknown", "nosuch0");
    get_flags(s6, "gifflags_on_inet6", ifname);
    set_flags(s4, "sifflags_up", ifname, IFF_UP | IFF_POINTOPOINT | IFF_NOARP | IFF_MULTICAST);
    get_flags(s4, "gifflags_up", ifname);
    set_flags(s4, "sifflags_unknown", "nosuch0", IFF_UP);

    get_mtu(s4, "gifmtu", ifname);
    set_mtu(s4, "sifmtu_1400", ifname, 1400);
    get_mtu(s4, "gifmtu_after", ifname);
    set_mtu(s4, "sifmtu_67", ifname, 67);
    set_mtu(s4, "sifmtu_65536", ifname, 65536);
    set_mtu(s4, "sifmtu_negative", ifname, -1);
    get_mtu(s4, "gifmtu_unchanged", ifname);
    get_mtu(s4, "gifmtu_lo", "lo");
    get_mtu(s6, "gifmtu_on_inet6", ifname);

    get_addr(s4, SIOCGIFADDR, "gifaddr_none", ifname);
    get_addr(s4, SIOCGIFNETMASK, "gifnetmask_none", ifname);
    get_addr(s4, SIOCGIFDSTADDR, "gifdstaddr_none", ifname);
    get_addr(s4, SIOCGIFBRDADDR, "gifbrdaddr_none", ifname);
    set_addr(s4, SIOCSIFNETMASK, "sifnetmask_none", ifname, AF_INET, "255.255.255.0");
    set_addr(s4, SIOCSIFDSTADDR, "sifdstaddr_none", ifname, AF_INET, "10.9.0.2");
    get_addr(s4, SIOCGIFADDR, "gifaddr_unknown", "nosuch0");
    set_addr(s4, SIOCSIFADDR, "sifaddr_bad_family", ifname, AF_INET6, "10.9.0.1");
    set_addr(s4, SIOCSIFADDR, "sifaddr_unknown", "nosuch0", AF_INET, "10.9.0.1");
    set_addr(s4, SIOCSIFADDR, "sifaddr_multicast", ifname, AF_INET, "224.0.0.5");
    set_addr(s4, SIOCSIFADDR, "sifaddr", ifname, AF_INET, "10.9.0.1");
    get_addr(s4, SIOCGIFADDR, "gifaddr", ifname);
    get_addr(s4, SIOCGIFNETMASK, "gifnetmask", ifname);
    get_addr(s4, SIOCGIFDSTADDR, "gifdstaddr", ifname);
    get_addr(s4, SIOCGIFBRDADDR, "gifbrdaddr", ifname);
    set_addr(s4, SIOCSIFDSTADDR, "sifdstaddr", ifname, AF_INET, "10.9.0.2");
    get_addr(s4, SIOCGIFDSTADDR, "gifdstaddr_after", ifname);
    set_addr(s4, SIOCSIFNETMASK, "sifnetmask_bad", ifname, AF_INET, "255.0.255.0");
    set_addr(s4, SIOCSIFNETMASK, "sifnetmask", ifname, AF_INET, "255.255.255.0");
    get_addr(s4, SIOCGIFNETMASK, "gifnetmask_after", ifname);
    set_addr(s4, SIOCSIFBRDADDR, "sifbrdaddr", ifname, AF_INET, "10.9.0.255");
    get_addr(s4, SIOCGIFBRDADDR, "gifbrdaddr_after", ifname);
    get_addr(s4, SIOCGIFADDR, "gifaddr_after_netmask", ifname);
    get_addr(s4, SIOCGIFADDR, "gifaddr_lo", "lo");
    get_addr(s4, SIOCGIFNETMASK, "gifnetmask_lo", "lo");
    get_addr(s6, SIOCGIFADDR, "gifaddr_on_inet6", ifname);

    r = ifreq_call(s4, SIOCGIFHWADDR, &ifr, ifname);
    print_call("gifhwaddr", r);
    if (r == 0) {
        const unsigned char *d = (const unsigned char *)ifr.ifr_hwaddr.sa_data;
        printf(" type=%u bytes=%02x%02x%02x%02x%02x%02x", (unsigned)ifr.ifr_hwaddr.sa_family,
               d[0], d[1], d[2], d[3], d[4], d[5]);
    }
    printf("\n");
    r = ifreq_call(s4, SIOCGIFHWADDR, &ifr, "lo");
    print_call("gifhwaddr_lo", r);
    if (r == 0)
        printf(" type=%u", (unsigned)ifr.ifr_hwaddr.sa_family);
    printf("\n");
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
    ifr.ifr_hwaddr.sa_family = 1; /* ARPHRD_ETHER */
    memcpy(ifr.ifr_hwaddr.sa_data, "\x02\x00\x00\x00\x00\x09", 6);
    errno = 0;
    r = ioctl(s4, SIOCSIFHWADDR, &ifr);
    print_call("sifhwaddr", r);
    printf("\n");

    /* SIOCGIFCONF: the size first, then the list */
    struct ifconf ifc;
    memset(&ifc, 0, sizeof ifc);
    errno = 0;
    r = ioctl(s4, SIOCGIFCONF, &ifc);
    print_call("gifconf_size", r);
    printf(" entries=%d\n", (int)(ifc.ifc_len / (int)sizeof(struct ifreq)));
    struct ifreq list[8];
    ifc.ifc_len = sizeof list;
    ifc.ifc_req = list;
    errno = 0;
    r = ioctl(s4, SIOCGIFCONF, &ifc);
    print_call("gifconf", r);
    int n = ifc.ifc_len / (int)sizeof(struct ifreq);
    printf(" entries=%d", n);
    for (int i = 0; i < n; i++)
        printf(" %s=%s", list[i].ifr_name, in4(&list[i].ifr_addr));
    printf("\n");
    ifc.ifc_len = sizeof(struct ifreq);
    errno = 0;
    r = ioctl(s4, SIOCGIFCONF, &ifc);
    print_call("gifconf_short", r);
    printf(" entries=%d\n", (int)(ifc.ifc_len / (int)sizeof(struct ifreq)));

    /* routes through the classic ioctl */
    route_ioctl(s4, SIOCADDRT, "addrt", "10.10.0.0", "255.255.0.0", NULL, ifname, AF_INET);
    route_ioctl(s4, SIOCADDRT, "addrt_again", "10.10.0.0", "255.255.0.0", NULL, ifname,
                AF_INET);
    route_ioctl(s4, SIOCADDRT, "addrt_gateway", "10.11.0.0", "255.255.0.0", "10.9.0.2", NULL,
                AF_INET);
    route_ioctl(s4, SIOCADDRT, "addrt_unknown_dev", "10.12.0.0", "255.255.0.0", NULL,
                "nosuch0", AF_INET);
    route_ioctl(s4, SIOCADDRT, "addrt_unreachable_gw", "10.13.0.0", "255.255.0.0",
                "192.0.2.77", NULL, AF_INET);
    route_ioctl(s4, SIOCADDRT, "addrt_bad_family", "10.14.0.0", "255.255.0.0", NULL, ifname,
                AF_INET6);
    route_ioctl(s4, SIOCADDRT, "addrt_bad_mask", "10.15.0.0", "255.0.255.0", NULL, ifname,
                AF_INET);
    route_ioctl(s4, SIOCDELRT, "delrt", "10.10.0.0", "255.255.0.0", NULL, ifname, AF_INET);
    route_ioctl(s4, SIOCDELRT, "delrt_again", "10.10.0.0", "255.255.0.0", NULL, ifname,
                AF_INET);
    route_ioctl(s4, SIOCDELRT, "delrt_gateway", "10.11.0.0", "255.255.0.0", "10.9.0.2", NULL,
                AF_INET);

    /* IPv6 addresses through struct in6_ifreq on an AF_INET6 socket */
    in6_ioctl(s6, SIOCSIFADDR, "sifaddr6", "fd00:9::1", 64, tun_index);
    in6_ioctl(s6, SIOCSIFADDR, "sifaddr6_again", "fd00:9::1", 64, tun_index);
    in6_ioctl(s6, SIOCSIFADDR, "sifaddr6_unknown", "fd00:9::2", 64, 999999);
    in6_ioctl(s6, SIOCSIFADDR, "sifaddr6_prefix129", "fd00:9::3", 129, tun_index);
    route6_ioctl(s6, SIOCADDRT, "addrt6", "fd00:10::", 64, NULL, tun_index);
    route6_ioctl(s6, SIOCADDRT, "addrt6_again", "fd00:10::", 64, NULL, tun_index);
    route6_ioctl(s6, SIOCADDRT, "addrt6_gateway", "fd00:11::", 64, "fd00:9::2", 0);
    route6_ioctl(s6, SIOCADDRT, "addrt6_gateway_dev", "fd00:12::", 64, "fd00:9::2", tun_index);
    route6_ioctl(s6, SIOCADDRT, "addrt6_unknown_dev", "fd00:13::", 64, NULL, 999999);
    route6_ioctl(s6, SIOCADDRT, "addrt6_unreachable_gw", "fd00:14::", 64, "fd00:77::1", 0);
    route6_ioctl(s6, SIOCADDRT, "addrt6_bad_len", "fd00:15::", 129, NULL, tun_index);
    route6_ioctl(s6, SIOCADDRT, "addrt6_no_dev", "fd00:16::", 64, NULL, 0);
    route6_ioctl(s6, SIOCDELRT, "delrt6", "fd00:10::", 64, NULL, tun_index);
    route6_ioctl(s6, SIOCDELRT, "delrt6_again", "fd00:10::", 64, NULL, tun_index);
    route6_ioctl(s6, SIOCDELRT, "delrt6_gateway", "fd00:11::", 64, "fd00:9::2", 0);
    route6_ioctl(s6, SIOCDELRT, "delrt6_gateway_dev", "fd00:12::", 64, "fd00:9::2", tun_index);
    in6_ioctl(s6, SIOCDIFADDR, "difaddr6", "fd00:9::1", 64, tun_index);
    in6_ioctl(s6, SIOCDIFADDR, "difaddr6_again", "fd00:9::1", 64, tun_index);
    in6_ioctl(s4, SIOCDIFADDR, "difaddr6_on_inet", "fd00:9::1", 64, tun_index);

    /* other kinds of fd */
    errno = 0;
    r = ioctl(1, SIOCGIFFLAGS, &ifr);
    print_call("gifflags_on_stdout", r);
    printf("\n");
    errno = 0;
    r = ioctl(999, SIOCGIFFLAGS, &ifr);
    print_call("gifflags_on_closed_fd", r);
    printf("\n");
    if (tun_fd >= 0) { /* the TUN fd itself takes a few of them */
        r = ifreq_call(tun_fd, SIOCGIFFLAGS, &ifr, ifname);
        print_call("gifflags_on_tun_fd", r);
        printf("\n");
        r = ifreq_call(tun_fd, SIOCGIFHWADDR, &ifr, "lo");
        print_call("gifhwaddr_on_tun_fd", r);
        if (r == 0)
            printf(" type=%u", (unsigned)ifr.ifr_hwaddr.sa_family);
        printf("\n");
        r = ifreq_call(tun_fd, SIOCGIFMTU, &ifr, ifname);
        print_call("gifmtu_on_tun_fd", r);
        printf("\n");
    }
    errno = 0;
    r = ioctl(s4, 0x89ff, &ifr); /* nobody's request */
    print_call("unknown_request", r);
    printf("\n");

    set_addr(s4, SIOCSIFADDR, "sifaddr_zero", ifname, AF_INET, "0.0.0.0");
    get_addr(s4, SIOCGIFADDR, "gifaddr_after_zero", ifname);
    close(s4);
    close(s6);
}

/* --- rtnetlink ------------------------------------------------------------ */

static uint32_t seq = 100;

struct request {
    struct nlmsghdr h;
    union {
        struct ifinfomsg ifi;
        struct ifaddrmsg ifa;
        struct rtmsg rtm;
        struct rtgenmsg gen;
    } body;
    char attrs[256];
};

static void add_attr(struct request *req, int type, const void *data, int len) {
    struct rtattr *rta = (struct rtattr *)((char *)req + NLMSG_ALIGN(req->h.nlmsg_len));
    rta->rta_type = (unsigned short)type;
    rta->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(rta), data, (size_t)len);
    req->h.nlmsg_len = NLMSG_ALIGN(req->h.nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

static void start(struct request *req, int type, int flags, size_t body) {
    memset(req, 0, sizeof *req);
    req->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(body);
    req->h.nlmsg_type = (uint16_t)type;
    req->h.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
    req->h.nlmsg_seq = ++seq;
}

static ssize_t send_request(int fd, struct request *req) {
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof kernel);
    kernel.nl_family = AF_NETLINK;
    return sendto(fd, req, req->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
}

static uint32_t my_pid;
static char reply[65536];

static int attr_u32(struct rtattr *rta, uint32_t *out) {
    if (RTA_PAYLOAD(rta) < 4)
        return 0;
    memcpy(out, RTA_DATA(rta), 4);
    return 1;
}

static void print_link(struct nlmsghdr *h, const char *tag) {
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    int len = (int)IFLA_PAYLOAD(h);
    char name[IFNAMSIZ + 1] = "?";
    uint32_t mtu = 0;
    int operstate = -1, addr_len = -1;
    for (struct rtattr *rta = IFLA_RTA(ifi); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
        switch (rta->rta_type) {
        case IFLA_IFNAME:
            snprintf(name, sizeof name, "%.*s", (int)RTA_PAYLOAD(rta), (char *)RTA_DATA(rta));
            break;
        case IFLA_MTU: attr_u32(rta, &mtu); break;
        case IFLA_OPERSTATE: operstate = *(unsigned char *)RTA_DATA(rta); break;
        case IFLA_ADDRESS: addr_len = RTA_PAYLOAD(rta); break;
        }
    }
    printf("%s name=%s family=%s type=%u idx_ok=%d flags=0x%x mtu=%u operstate=%d "
           "addr_len=%d\n", tag, name, family(ifi->ifi_family), (unsigned)ifi->ifi_type,
           ifi->ifi_index == (int)if_nametoindex(name), ifi->ifi_flags & 0xffff, mtu,
           operstate, addr_len);
}

static void format_addr(int fam, const void *data, char *out, size_t size) {
    if (!inet_ntop(fam, data, out, (socklen_t)size))
        snprintf(out, size, "?");
}

static void addr_line(struct nlmsghdr *h, const char *tag, char *out, size_t size) {
    struct ifaddrmsg *ifa = NLMSG_DATA(h);
    int len = (int)IFA_PAYLOAD(h);
    char local[64] = "-", address[64] = "-", label[IFNAMSIZ + 1] = "-", brd[64] = "-";
    for (struct rtattr *rta = IFA_RTA(ifa); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
        switch (rta->rta_type) {
        case IFA_LOCAL: format_addr(ifa->ifa_family, RTA_DATA(rta), local, sizeof local); break;
        case IFA_ADDRESS:
            format_addr(ifa->ifa_family, RTA_DATA(rta), address, sizeof address);
            break;
        case IFA_BROADCAST: format_addr(ifa->ifa_family, RTA_DATA(rta), brd, sizeof brd); break;
        case IFA_LABEL:
            snprintf(label, sizeof label, "%.*s", (int)RTA_PAYLOAD(rta), (char *)RTA_DATA(rta));
            break;
        }
    }
    snprintf(out, size,
             "%s family=%s prefix=%u scope=%u idx_ok=%d local=%s address=%s brd=%s label=%s "
             "pid_own=%d seq_set=%d",
             tag, family(ifa->ifa_family), ifa->ifa_prefixlen, ifa->ifa_scope,
             (int)ifa->ifa_index == tun_index, local, address, brd, label,
             h->nlmsg_pid == my_pid, h->nlmsg_seq != 0);
}

static void print_addr(struct nlmsghdr *h, const char *tag) {
    char line[512];
    addr_line(h, tag, line, sizeof line);
    printf("%s\n", line);
}

/* Routes through the TUN device in the main table, skipping IPv6 link-local and
 * multicast ones (Linux adds those by itself when the device comes up). */
static void print_route(struct nlmsghdr *h, const char *tag) {
    struct rtmsg *rtm = NLMSG_DATA(h);
    int len = (int)RTM_PAYLOAD(h);
    char dst[64] = "default", gw[64] = "-", src[64] = "-";
    uint32_t oif = 0, table = rtm->rtm_table, priority = 0;
    unsigned char dst_bytes[16] = {0};
    for (struct rtattr *rta = RTM_RTA(rtm); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
        switch (rta->rta_type) {
        case RTA_DST:
            format_addr(rtm->rtm_family, RTA_DATA(rta), dst, sizeof dst);
            memcpy(dst_bytes, RTA_DATA(rta), RTA_PAYLOAD(rta) < 16 ? RTA_PAYLOAD(rta) : 16);
            break;
        case RTA_GATEWAY: format_addr(rtm->rtm_family, RTA_DATA(rta), gw, sizeof gw); break;
        case RTA_PREFSRC: format_addr(rtm->rtm_family, RTA_DATA(rta), src, sizeof src); break;
        case RTA_OIF: attr_u32(rta, &oif); break;
        case RTA_TABLE: attr_u32(rta, &table); break;
        case RTA_PRIORITY: attr_u32(rta, &priority); break;
        }
    }
    if ((int)oif != tun_index || table != RT_TABLE_MAIN)
        return;
    if (rtm->rtm_family == AF_INET6 && ((dst_bytes[0] == 0xfe && (dst_bytes[1] & 0xc0) == 0x80)
                                        || dst_bytes[0] == 0xff))
        return;
    printf("%s family=%s dst=%s/%u gw=%s prefsrc=%s protocol=%u scope=%u type=%u", tag,
           family(rtm->rtm_family), dst, rtm->rtm_dst_len, gw, src, rtm->rtm_protocol,
           rtm->rtm_scope, rtm->rtm_type);
    if (rtm->rtm_family == AF_INET)
        printf(" priority=%u", priority);
    printf(" pid_own=%d seq_set=%d\n", h->nlmsg_pid == my_pid, h->nlmsg_seq != 0);
}

/* Reads replies to request `want_seq` until DONE, an error/ack or a single answer;
 * prints them. Returns the error of an NLMSG_ERROR (0 for an ack), 1 otherwise. */
static int read_replies(int fd, uint32_t want_seq, const char *what) {
    int multi_seen = 0, count = 0, result = 1, seq_ok = 1, pid_ok = 1;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) != 1) {
            printf("%s timeout\n", what);
            return -1000;
        }
        ssize_t n = recv(fd, reply, sizeof reply, 0);
        if (n < 0) {
            printf("%s recv errno=%s\n", what, ename(errno));
            return -1000;
        }
        int len = (int)n;
        int finished = 0;
        for (struct nlmsghdr *h = (struct nlmsghdr *)reply; NLMSG_OK(h, len);
             h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_seq != want_seq)
                seq_ok = 0;
            if (h->nlmsg_pid != my_pid)
                pid_ok = 0;
            if (h->nlmsg_flags & NLM_F_MULTI)
                multi_seen = 1;
            if (h->nlmsg_type == NLMSG_DONE) {
                printf("%s done count=%d multi=%d seq_ok=%d pid_ok=%d\n", what, count,
                       multi_seen, seq_ok, pid_ok);
                return 1;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *err = NLMSG_DATA(h);
                result = err->error;
                printf("%s error=%s seq_ok=%d pid_ok=%d echo_type=%u echo_seq_ok=%d\n", what,
                       err->error == 0 ? "0" : ename(-err->error), seq_ok, pid_ok,
                       err->msg.nlmsg_type, err->msg.nlmsg_seq == want_seq);
                return result;
            }
            count++;
            if (h->nlmsg_type == RTM_NEWLINK)
                print_link(h, what);
            else if (h->nlmsg_type == RTM_NEWADDR && ((struct ifaddrmsg *)NLMSG_DATA(h))
                                                          ->ifa_index == (unsigned)tun_index)
                print_addr(h, what);
            else if (h->nlmsg_type == RTM_NEWROUTE)
                print_route(h, what);
            if (!(h->nlmsg_flags & NLM_F_MULTI))
                finished = 1;
        }
        if (finished) {
            printf("%s single count=%d seq_ok=%d pid_ok=%d\n", what, count, seq_ok, pid_ok);
            return 1;
        }
    }
}

/* What a subscriber got so far (without waiting): address and route changes of the
 * TUN device, and whether a link message with `mtu` came. */
static void drain_subscriber(int fd, const char *what, uint32_t mtu) {
    int link_seen = 0;
    /* Linux announces an IPv6 address twice (added, then, from a work queue, its DAD
     * state settled), the second time sometimes only by a later drain: an address
     * already announced, and not deleted since, is printed once. */
    static char announced[16][512];
    for (;;) {
        ssize_t n = recv(fd, reply, sizeof reply, MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN)
                printf("%s recv errno=%s\n", what, ename(errno));
            break;
        }
        int len = (int)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)reply; NLMSG_OK(h, len);
             h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR) {
                struct ifaddrmsg *ifa = NLMSG_DATA(h);
                char line[512], what[512];
                addr_line(h, h->nlmsg_type == RTM_NEWADDR ? "sub_newaddr" : "sub_deladdr", line,
                          sizeof line);
                addr_line(h, "", what, sizeof what);
                int slot = -1, free_slot = -1;
                for (int k = 0; k < 16; k++) {
                    if (strcmp(announced[k], what) == 0)
                        slot = k;
                    if (announced[k][0] == 0 && free_slot < 0)
                        free_slot = k;
                }
                if ((int)ifa->ifa_index != tun_index)
                    continue;
                if (h->nlmsg_type == RTM_DELADDR) {
                    if (slot >= 0)
                        announced[slot][0] = 0;
                    printf("%s\n", line);
                } else if (slot < 0) {
                    if (free_slot >= 0)
                        snprintf(announced[free_slot], sizeof announced[0], "%s", what);
                    printf("%s\n", line);
                }
            } else if (h->nlmsg_type == RTM_NEWROUTE) {
                print_route(h, "sub_newroute");
            } else if (h->nlmsg_type == RTM_DELROUTE) {
                print_route(h, "sub_delroute");
            } else if (h->nlmsg_type == RTM_NEWLINK) {
                struct ifinfomsg *ifi = NLMSG_DATA(h);
                int alen = (int)IFLA_PAYLOAD(h);
                for (struct rtattr *rta = IFLA_RTA(ifi); RTA_OK(rta, alen);
                     rta = RTA_NEXT(rta, alen)) {
                    uint32_t value;
                    if (rta->rta_type == IFLA_MTU && attr_u32(rta, &value) && value == mtu &&
                        ifi->ifi_index == tun_index)
                        link_seen = 1;
                }
            }
        }
    }
    if (mtu)
        printf("%s newlink_mtu_%u=%d\n", what, mtu, link_seen);
}

static void request_addr(int fd, int type, int flags, int fam, const char *text, int prefix,
                         int index, const char *what) {
    struct request req;
    start(&req, type, flags, sizeof(struct ifaddrmsg));
    req.body.ifa.ifa_family = (unsigned char)fam;
    req.body.ifa.ifa_prefixlen = (unsigned char)prefix;
    req.body.ifa.ifa_index = (uint32_t)index;
    unsigned char addr[16];
    inet_pton(fam, text, addr);
    int alen = fam == AF_INET ? 4 : 16;
    add_attr(&req, IFA_LOCAL, addr, alen);
    add_attr(&req, IFA_ADDRESS, addr, alen);
    send_request(fd, &req);
    read_replies(fd, req.h.nlmsg_seq, what);
}

static void request_route(int fd, int type, int flags, const char *dst, int dst_len,
                          const char *gw, int oif, const char *what) {
    struct request req;
    start(&req, type, flags, sizeof(struct rtmsg));
    req.body.rtm.rtm_family = AF_INET;
    req.body.rtm.rtm_dst_len = (unsigned char)dst_len;
    req.body.rtm.rtm_table = RT_TABLE_MAIN;
    req.body.rtm.rtm_protocol = RTPROT_BOOT;
    req.body.rtm.rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    req.body.rtm.rtm_type = RTN_UNICAST;
    unsigned char addr[4];
    inet_pton(AF_INET, dst, addr);
    add_attr(&req, RTA_DST, addr, 4);
    if (gw) {
        inet_pton(AF_INET, gw, addr);
        add_attr(&req, RTA_GATEWAY, addr, 4);
    }
    if (oif) {
        uint32_t o = (uint32_t)oif;
        add_attr(&req, RTA_OIF, &o, 4);
    }
    send_request(fd, &req);
    read_replies(fd, req.h.nlmsg_seq, what);
}

static void route_get(int fd, const char *dst, const char *what) {
    struct request req;
    start(&req, RTM_GETROUTE, 0, sizeof(struct rtmsg));
    req.body.rtm.rtm_family = AF_INET;
    req.body.rtm.rtm_dst_len = 32;
    unsigned char addr[4];
    inet_pton(AF_INET, dst, addr);
    add_attr(&req, RTA_DST, addr, 4);
    send_request(fd, &req);
    read_replies(fd, req.h.nlmsg_seq, what);
}

static void dump(int fd, int type, int fam, const char *what) {
    struct request req;
    size_t body = type == RTM_GETLINK ? sizeof(struct ifinfomsg)
                  : type == RTM_GETADDR ? sizeof(struct ifaddrmsg) : sizeof(struct rtmsg);
    start(&req, type, NLM_F_DUMP, body);
    req.body.gen.rtgen_family = (unsigned char)fam;
    send_request(fd, &req);
    read_replies(fd, req.h.nlmsg_seq, what);
}

static void link_request(int fd, int index, unsigned flags, unsigned change, uint32_t mtu,
                         const char *what) {
    struct request req;
    start(&req, RTM_NEWLINK, NLM_F_ACK, sizeof(struct ifinfomsg));
    req.body.ifi.ifi_index = index;
    req.body.ifi.ifi_flags = flags;
    req.body.ifi.ifi_change = change;
    if (mtu)
        add_attr(&req, IFLA_MTU, &mtu, 4);
    send_request(fd, &req);
    read_replies(fd, req.h.nlmsg_seq, what);
}

static void no_reply_expected(int fd, const char *what) {
    ssize_t n = recv(fd, reply, sizeof reply, MSG_DONTWAIT);
    printf("%s recv=%d errno=%s\n", what, (int)n, n < 0 ? ename(errno) : "0");
}

static void option(int fd, int level, int name, int value, const char *what) {
    errno = 0;
    int r = setsockopt(fd, level, name, &value, sizeof value);
    print_call(what, r);
    int got = -1;
    socklen_t len = sizeof got;
    errno = 0;
    r = getsockopt(fd, level, name, &got, &len);
    printf(" get_ret=%d get_errno=%s value=%d len=%d\n", r, r < 0 ? ename(errno) : "0",
           r == 0 ? got : -1, (int)len);
}

static void socket_options(int fd, int sub) {
    option(fd, SOL_SOCKET, SO_RCVBUF, 65536, "nl_so_rcvbuf");
    option(fd, SOL_SOCKET, SO_SNDBUF, 32768, "nl_so_sndbuf");
    int value = -1;
    socklen_t len = sizeof value;
    int r = getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len);
    printf("nl_so_type ret=%d value=%d\n", r, value == SOCK_RAW);
    r = getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &value, &len);
    printf("nl_so_protocol ret=%d value=%d\n", r, value);
    r = getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &value, &len);
    printf("nl_so_domain ret=%d value=%s\n", r, family(value));
    option(sub, SOL_NETLINK, NETLINK_EXT_ACK, 1, "nl_ext_ack");
    option(sub, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_IPV6_ROUTE, "nl_add_membership");
    uint32_t groups[4] = {0};
    len = sizeof groups;
    r = getsockopt(sub, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &len);
    printf("nl_list_memberships ret=%d groups=0x%x len=%d\n", r, groups[0], (int)len);
    option(sub, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, RTNLGRP_IPV6_ROUTE, "nl_drop_membership");
    option(sub, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, 0, "nl_add_membership_0");
    option(sub, SOL_NETLINK, 999, 1, "nl_unknown_option");
}

static void netlink_calls(void) {
    int fd, r;
    errno = 0;
    fd = socket(AF_NETLINK, SOCK_RAW, 31);
    printf("nl_socket_bad_protocol ret=%d errno=%s\n", fd < 0 ? -1 : 0,
           fd < 0 ? ename(errno) : "0");
    if (fd >= 0)
        close(fd);
    errno = 0;
    fd = socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE);
    printf("nl_socket_stream ret=%d errno=%s\n", fd < 0 ? -1 : 0, fd < 0 ? ename(errno) : "0");
    if (fd >= 0)
        close(fd);

    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    printf("nl_socket ret=%d\n", fd < 0 ? -1 : 0);
    struct sockaddr_nl local;
    memset(&local, 0, sizeof local);
    local.nl_family = AF_INET;
    errno = 0;
    r = bind(fd, (struct sockaddr *)&local, sizeof local);
    print_call("nl_bind_bad_family", r);
    printf("\n");
    local.nl_family = AF_NETLINK;
    errno = 0;
    r = bind(fd, (struct sockaddr *)&local, 4);
    print_call("nl_bind_short", r);
    printf("\n");
    errno = 0;
    r = bind(fd, (struct sockaddr *)&local, sizeof local);
    print_call("nl_bind", r);
    printf("\n");
    socklen_t alen = sizeof local;
    memset(&local, 0xff, sizeof local);
    errno = 0;
    r = getsockname(fd, (struct sockaddr *)&local, &alen);
    print_call("nl_getsockname", r);
    printf(" len=%d family=%s pid_set=%d groups=%u\n", (int)alen, family(local.nl_family),
           local.nl_pid != 0, local.nl_groups);
    my_pid = local.nl_pid;

    int sub = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    struct sockaddr_nl groups;
    memset(&groups, 0, sizeof groups);
    groups.nl_family = AF_NETLINK;
    groups.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE;
    errno = 0;
    r = bind(sub, (struct sockaddr *)&groups, sizeof groups);
    print_call("nl_bind_groups", r);
    alen = sizeof groups;
    getsockname(sub, (struct sockaddr *)&groups, &alen);
    printf(" groups=0x%x pid_differs=%d\n", groups.nl_groups, groups.nl_pid != my_pid);

    socket_options(fd, sub);
    dump(fd, RTM_GETLINK, AF_UNSPEC, "getlink_dump");

    struct request req;
    start(&req, RTM_GETLINK, 0, sizeof(struct ifinfomsg));
    req.body.ifi.ifi_index = tun_index;
    send_request(fd, &req);
    read_replies(fd, req.h.nlmsg_seq, "getlink_one");
    start(&req, RTM_GETLINK, 0, sizeof(struct ifinfomsg));
    req.body.ifi.ifi_index = 999999;
    send_request(fd, &req);
    read_replies(fd, req.h.nlmsg_seq, "getlink_unknown");
    start(&req, RTM_GETLINK, 0, sizeof(struct ifinfomsg));
    add_attr(&req, IFLA_IFNAME, ifname, (int)strlen(ifname) + 1);
    send_request(fd, &req);
    read_replies(fd, req.h.nlmsg_seq, "getlink_by_name");

    drain_subscriber(sub, "sub_before", 0);
    request_addr(fd, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.9.1.1",
                 24, tun_index, "newaddr");
    drain_subscriber(sub, "sub_after_newaddr", 0);
    request_addr(fd, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.9.1.1",
                 24, tun_index, "newaddr_again");
    request_addr(fd, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.9.2.1",
                 24, 999999, "newaddr_unknown_index");
    request_addr(fd, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, AF_INET, "10.9.3.1",
                 33, tun_index, "newaddr_prefix33");
    request_addr(fd, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, AF_INET6,
                 "fd00:9::1", 64, tun_index, "newaddr6");
    drain_subscriber(sub, "sub_after_newaddr6", 0);
    dump(fd, RTM_GETADDR, AF_UNSPEC, "getaddr_dump");
    dump(fd, RTM_GETADDR, AF_INET6, "getaddr_dump_inet6");

    request_route(fd, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, "10.10.0.0", 16,
                  NULL, tun_index, "newroute");
    request_route(fd, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, "10.10.0.0", 16,
                  NULL, tun_index, "newroute_again");
    request_route(fd, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, "10.11.0.0", 16,
                  "10.9.1.2", 0, "newroute_gateway");
    request_route(fd, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, "10.12.0.0", 16,
                  NULL, 999999, "newroute_unknown_oif");
    request_route(fd, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, "10.13.0.0", 16,
                  "192.0.2.77", 0, "newroute_unreachable_gw");
    drain_subscriber(sub, "sub_after_newroute", 0);
    route_get(fd, "10.9.1.5", "getroute_one");
    route_get(fd, "10.11.3.4", "getroute_via_gateway");
    route_get(fd, "10.9.1.1", "getroute_local");
    route_get(fd, "192.0.2.1", "getroute_unreachable");
    dump(fd, RTM_GETROUTE, AF_INET, "getroute_dump");
    request_route(fd, RTM_DELROUTE, NLM_F_ACK, "10.10.0.0", 16, NULL, tun_index, "delroute");
    request_route(fd, RTM_DELROUTE, NLM_F_ACK, "10.10.0.0", 16, NULL, tun_index,
                  "delroute_again");
    request_route(fd, RTM_DELROUTE, NLM_F_ACK, "10.11.0.0", 16, "10.9.1.2", 0,
                  "delroute_gateway");
    drain_subscriber(sub, "sub_after_delroute", 0);

    request_addr(fd, RTM_DELADDR, NLM_F_ACK, AF_INET, "10.9.1.1", 24, tun_index, "deladdr");
    request_addr(fd, RTM_DELADDR, NLM_F_ACK, AF_INET, "10.9.1.1", 24, tun_index,
                 "deladdr_again");
    request_addr(fd, RTM_DELADDR, NLM_F_ACK, AF_INET6, "fd00:9::1", 64, tun_index, "deladdr6");
    drain_subscriber(sub, "sub_after_deladdr", 0);

    link_request(fd, tun_index, 0, 0, 1280, "setlink_mtu");
    drain_subscriber(sub, "sub_after_setlink_mtu", 1280);
    link_request(fd, tun_index, 0, 0, 40, "setlink_mtu_40");
    link_request(fd, 999999, 0, 0, 1300, "setlink_unknown");
    link_request(fd, tun_index, 0, IFF_UP, 0, "setlink_down");
    start(&req, RTM_GETLINK, 0, sizeof(struct ifinfomsg));
    req.body.ifi.ifi_index = tun_index;
    send_request(fd, &req);
    read_replies(fd, req.h.nlmsg_seq, "getlink_after_down");
    link_request(fd, tun_index, IFF_UP, IFF_UP, 0, "setlink_up");

    /* bad requests */
    start(&req, 0x7f0, NLM_F_ACK, sizeof(struct rtgenmsg));
    send_request(fd, &req);
    read_replies(fd, req.h.nlmsg_seq, "unknown_type");
    start(&req, NLMSG_NOOP, NLM_F_ACK, 0);
    send_request(fd, &req);
    read_replies(fd, req.h.nlmsg_seq, "noop_ack");
    start(&req, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE, sizeof(struct ifaddrmsg));
    req.body.ifa.ifa_family = AF_INET;
    req.body.ifa.ifa_prefixlen = 24;
    req.body.ifa.ifa_index = (uint32_t)tun_index;
    {
        unsigned char addr[4] = {10, 9, 4, 1};
        add_attr(&req, IFA_LOCAL, addr, 4);
        struct rtattr *rta = (struct rtattr *)((char *)&req + NLMSG_LENGTH(sizeof(struct ifaddrmsg)));
        rta->rta_len = 64; /* runs past the message */
    }
    send_request(fd, &req);
    read_replies(fd, req.h.nlmsg_seq, "newaddr_truncated_attr");

    start(&req, RTM_GETLINK, NLM_F_ACK, sizeof(struct ifinfomsg));
    req.h.nlmsg_len = 8; /* shorter than a header */
    ssize_t sent = sendto(fd, &req, 20, 0, NULL, 0);
    printf("short_header sent=%d\n", (int)sent);
    no_reply_expected(fd, "short_header");
    start(&req, RTM_GETLINK, NLM_F_ACK, sizeof(struct ifinfomsg));
    req.h.nlmsg_len = 200; /* claims more than is sent */
    sent = send(fd, &req, 32, 0);
    printf("len_beyond_buffer sent=%d\n", (int)sent);
    no_reply_expected(fd, "len_beyond_buffer");

    /* read()/write() and a receive buffer too small */
    start(&req, RTM_GETLINK, 0, sizeof(struct ifinfomsg));
    req.body.ifi.ifi_index = tun_index;
    ssize_t wrote = write(fd, &req, req.h.nlmsg_len);
    printf("write_request ret=%d\n", wrote == (ssize_t)req.h.nlmsg_len ? 0 : -1);
    struct pollfd p = {fd, POLLIN, 0};
    r = poll(&p, 1, 2000);
    printf("poll_reply ret=%d revents=0x%x\n", r, p.revents);
    char tiny[16];
    ssize_t got = recv(fd, tiny, sizeof tiny, MSG_PEEK | MSG_TRUNC);
    printf("recv_peek_trunc full_len_ok=%d\n", got > (ssize_t)sizeof tiny);
    struct iovec iov = {tiny, sizeof tiny};
    struct sockaddr_nl from;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    got = recvmsg(fd, &msg, 0);
    printf("recvmsg_tiny ret=%d msg_trunc=%d namelen=%d from_family=%s from_pid=%u\n",
           (int)got, (msg.msg_flags & MSG_TRUNC) != 0, (int)msg.msg_namelen,
           family(from.nl_family), from.nl_pid);
    no_reply_expected(fd, "after_tiny_read");

    close(sub);
    close(fd);
}

static void listen_for(int count) {
    int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    struct sockaddr_nl groups;
    memset(&groups, 0, sizeof groups);
    groups.nl_family = AF_NETLINK;
    groups.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
                       RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
    if (bind(fd, (struct sockaddr *)&groups, sizeof groups) < 0) {
        perror("bind");
        return;
    }
    printf("subscribed\n");
    int seen = 0;
    while (seen < count) {
        struct sockaddr_nl from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(fd, reply, sizeof reply, 0, (struct sockaddr *)&from, &fromlen);
        if (n < 0) {
            printf("recv errno=%s\n", ename(errno));
            return;
        }
        int len = (int)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)reply; NLMSG_OK(h, len);
             h = NLMSG_NEXT(h, len), seen++) {
            char name[IFNAMSIZ] = "?";
            if (h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK) {
                struct ifinfomsg *ifi = NLMSG_DATA(h);
                int alen = (int)IFLA_PAYLOAD(h);
                for (struct rtattr *rta = IFLA_RTA(ifi); RTA_OK(rta, alen);
                     rta = RTA_NEXT(rta, alen))
                    if (rta->rta_type == IFLA_IFNAME)
                        snprintf(name, sizeof name, "%.*s", (int)RTA_PAYLOAD(rta),
                                 (char *)RTA_DATA(rta));
                printf("event group=0x%x %s %s flags=0x%x\n", from.nl_groups,
                       h->nlmsg_type == RTM_NEWLINK ? "newlink" : "dellink", name,
                       ifi->ifi_flags & 0xffff);
            } else if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR) {
                struct ifaddrmsg *ifa = NLMSG_DATA(h);
                char text[64] = "?";
                int alen = (int)IFA_PAYLOAD(h);
                for (struct rtattr *rta = IFA_RTA(ifa); RTA_OK(rta, alen);
                     rta = RTA_NEXT(rta, alen))
                    if (rta->rta_type == IFA_ADDRESS)
                        format_addr(ifa->ifa_family, RTA_DATA(rta), text, sizeof text);
                if_indextoname(ifa->ifa_index, name);
                printf("event group=0x%x %s %s %s/%u\n", from.nl_groups,
                       h->nlmsg_type == RTM_NEWADDR ? "newaddr" : "deladdr", name, text,
                       ifa->ifa_prefixlen);
            } else if (h->nlmsg_type == RTM_NEWROUTE || h->nlmsg_type == RTM_DELROUTE) {
                struct rtmsg *rtm = NLMSG_DATA(h);
                char text[64] = "default";
                int alen = (int)RTM_PAYLOAD(h);
                for (struct rtattr *rta = RTM_RTA(rtm); RTA_OK(rta, alen);
                     rta = RTA_NEXT(rta, alen))
                    if (rta->rta_type == RTA_DST)
                        format_addr(rtm->rtm_family, RTA_DATA(rta), text, sizeof text);
                printf("event group=0x%x %s %s/%u\n", from.nl_groups,
                       h->nlmsg_type == RTM_NEWROUTE ? "newroute" : "delroute", text,
                       rtm->rtm_dst_len);
            } else {
                printf("event type=%u\n", h->nlmsg_type);
            }
        }
    }
}

int main(int argc, char **argv) {
    int attach = 0, up = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "ifname=", 7) == 0)
            snprintf(ifname, sizeof ifname, "%s", argv[i] + 7);
        else if (strcmp(argv[i], "attach") == 0)
            attach = 1;
        else if (strcmp(argv[i], "up") == 0)
            up = 1;
        else if (strncmp(argv[i], "listen=", 7) == 0) {
            listen_for(atoi(argv[i] + 7));
            printf("end\n");
            return 0;
        }
    }
    if (attach) {
#if defined(__linux__) && defined(TUNSETIFF)
        int tun = open("/dev/net/tun", O_RDWR);
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
        if (tun < 0 || ioctl(tun, TUNSETIFF, &ifr) < 0) {
            perror("TUNSETIFF");
            return 2;
        }
        tun_fd = tun;
#else
        fprintf(stderr, "attach needs <linux/if_tun.h>\n");
        return 2;
#endif
    }
    if (up) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
        ifr.ifr_flags = IFF_UP | IFF_POINTOPOINT | IFF_NOARP | IFF_MULTICAST;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
            perror("SIOCSIFFLAGS");
            return 2;
        }
        close(s);
    }
    ioctl_calls();
    netlink_calls();
    printf("end\n");
    return 0;
}
