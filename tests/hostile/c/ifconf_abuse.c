/*
 * ifconf_abuse.c — a guest that misuses interface configuration.
 *
 *   ifconf_abuse other IFNAME       tries to change IFNAME (an interface it was
 *                                   not given) every way there is, and reads it
 *   ifconf_abuse malformed N SEED   sends N malformed rtnetlink datagrams
 *   ifconf_abuse dumps N            asks for N dumps without reading a reply
 *   ifconf_abuse flood              requests and reads link dumps forever
 *   ifconf_abuse badptr             hands every call pointers outside its memory
 *
 * Prints one line per attempt or a summary; tests/hostile/test_ifconfig_abuse.py
 * asserts on them and on the host afterwards.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
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

struct in6_ifreq_abuse {
    struct in6_addr addr;
    uint32_t prefixlen;
    int ifindex;
};

static const char *ename(int e) {
    switch (e) {
    case 0: return "0";
    case EPERM: return "EPERM";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    case ENOBUFS: return "ENOBUFS";
    case EAGAIN: return "EAGAIN";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EMSGSIZE: return "EMSGSIZE";
    case ENETDOWN: return "ENETDOWN";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ESRCH: return "ESRCH";
    case EFAULT: return "EFAULT";
    default: return "E?";
    }
}

static void report(const char *what, int r) {
    printf("%s ret=%d errno=%s\n", what, r, r < 0 ? ename(errno) : "0");
}

static int nl_open(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    struct sockaddr_nl local = {.nl_family = AF_NETLINK};
    if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
        perror("netlink");
        exit(2);
    }
    return fd;
}

static char reply[65536];

/* Sends one request and returns the error of its NLMSG_ERROR answer (0 = ack). */
static int nl_request(int fd, void *req, size_t len) {
    if (send(fd, req, len, 0) < 0)
        return -errno;
    ssize_t n = recv(fd, reply, sizeof reply, 0);
    if (n < 0)
        return -errno;
    struct nlmsghdr *h = (struct nlmsghdr *)reply;
    if (n >= (ssize_t)sizeof *h && h->nlmsg_type == NLMSG_ERROR)
        return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
    return 1;
}

static void other(const char *name) {
    int s4 = socket(AF_INET, SOCK_DGRAM, 0);
    int s6 = socket(AF_INET6, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    report("gifflags", ioctl(s4, SIOCGIFFLAGS, &ifr));
    short flags = ifr.ifr_flags;
    report("gifaddr", ioctl(s4, SIOCGIFADDR, &ifr));
    int index = (int)if_nametoindex(name);

    ifr.ifr_flags = (short)(flags & ~IFF_UP);
    report("sifflags_down", ioctl(s4, SIOCSIFFLAGS, &ifr));
    ifr.ifr_mtu = 1300;
    report("sifmtu", ioctl(s4, SIOCSIFMTU, &ifr));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, "10.66.0.1", &sin->sin_addr);
    report("sifaddr", ioctl(s4, SIOCSIFADDR, &ifr));
    inet_pton(AF_INET, "255.255.0.0", &sin->sin_addr);
    report("sifnetmask", ioctl(s4, SIOCSIFNETMASK, &ifr));
    ifr.ifr_hwaddr.sa_family = 1;
    memcpy(ifr.ifr_hwaddr.sa_data, "\x02\x66\x66\x66\x66\x66", 6);
    report("sifhwaddr", ioctl(s4, SIOCSIFHWADDR, &ifr));

    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    ((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
    inet_pton(AF_INET, "10.67.0.0", &((struct sockaddr_in *)&rt.rt_dst)->sin_addr);
    ((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
    inet_pton(AF_INET, "255.255.0.0", &((struct sockaddr_in *)&rt.rt_genmask)->sin_addr);
    rt.rt_flags = RTF_UP;
    char dev[IFNAMSIZ];
    snprintf(dev, sizeof dev, "%s", name);
    rt.rt_dev = dev;
    report("addrt", ioctl(s4, SIOCADDRT, &rt));
    inet_pton(AF_INET, "10.0.0.0", &((struct sockaddr_in *)&rt.rt_dst)->sin_addr);
    inet_pton(AF_INET, "255.255.255.0", &((struct sockaddr_in *)&rt.rt_genmask)->sin_addr);
    report("delrt_connected", ioctl(s4, SIOCDELRT, &rt));

    struct in6_ifreq_abuse req6;
    memset(&req6, 0, sizeof req6);
    inet_pton(AF_INET6, "fd66::1", &req6.addr);
    req6.prefixlen = 64;
    req6.ifindex = index;
    report("sifaddr6", ioctl(s6, SIOCSIFADDR, &req6));

    int nl = nl_open();
    struct {
        struct nlmsghdr h;
        struct ifaddrmsg ifa;
        struct rtattr rta;
        unsigned char addr[4];
    } addreq;
    memset(&addreq, 0, sizeof addreq);
    addreq.h.nlmsg_len = sizeof addreq;
    addreq.h.nlmsg_type = RTM_NEWADDR;
    addreq.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
    addreq.ifa.ifa_family = AF_INET;
    addreq.ifa.ifa_prefixlen = 24;
    addreq.ifa.ifa_index = (uint32_t)index;
    addreq.rta.rta_len = RTA_LENGTH(4);
    addreq.rta.rta_type = IFA_LOCAL;
    inet_pton(AF_INET, "10.68.0.1", addreq.addr);
    int err = nl_request(nl, &addreq, sizeof addreq);
    printf("nl_newaddr error=%s\n", err <= 0 ? ename(-err) : "reply");
    addreq.h.nlmsg_type = RTM_DELADDR;
    inet_pton(AF_INET, "10.0.0.1", addreq.addr);
    err = nl_request(nl, &addreq, sizeof addreq);
    printf("nl_deladdr error=%s\n", err <= 0 ? ename(-err) : "reply");

    struct {
        struct nlmsghdr h;
        struct ifinfomsg ifi;
        struct rtattr rta;
        uint32_t mtu;
    } linkreq;
    memset(&linkreq, 0, sizeof linkreq);
    linkreq.h.nlmsg_len = sizeof linkreq;
    linkreq.h.nlmsg_type = RTM_NEWLINK;
    linkreq.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    linkreq.ifi.ifi_index = index;
    linkreq.ifi.ifi_change = IFF_UP;
    linkreq.rta.rta_len = RTA_LENGTH(4);
    linkreq.rta.rta_type = IFLA_MTU;
    linkreq.mtu = 1200;
    err = nl_request(nl, &linkreq, sizeof linkreq);
    printf("nl_setlink error=%s\n", err <= 0 ? ename(-err) : "reply");

    struct {
        struct nlmsghdr h;
        struct rtmsg rtm;
        struct rtattr rta;
        unsigned char dst[4];
    } routereq;
    memset(&routereq, 0, sizeof routereq);
    routereq.h.nlmsg_len = sizeof routereq;
    routereq.h.nlmsg_type = RTM_DELROUTE;
    routereq.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    routereq.rtm.rtm_family = AF_INET;
    routereq.rtm.rtm_dst_len = 24;
    routereq.rtm.rtm_table = RT_TABLE_MAIN;
    routereq.rta.rta_len = RTA_LENGTH(4);
    routereq.rta.rta_type = RTA_DST;
    inet_pton(AF_INET, "10.0.0.0", routereq.dst);
    err = nl_request(nl, &routereq, sizeof routereq);
    printf("nl_delroute error=%s\n", err <= 0 ? ename(-err) : "reply");

    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    report("gifmtu_after", ioctl(s4, SIOCGIFMTU, &ifr));
    printf("mtu_after=%d\n", ifr.ifr_mtu);
}

/* Malformed datagrams: bad lengths, truncated attributes, lengths past the buffer,
 * random bytes under a valid header. Every answer must be an NLMSG_ERROR. */
static void malformed(int count, unsigned seed) {
    int nl = nl_open();
    srand(seed);
    int replies = 0, errors = 0, others = 0, send_failures = 0;
    static unsigned char buf[2048];
    for (int i = 0; i < count; i++) {
        size_t len = 16 + (size_t)(rand() % 200);
        for (size_t j = 0; j < len; j++)
            buf[j] = (unsigned char)rand();
        struct nlmsghdr *h = (struct nlmsghdr *)buf;
        switch (i % 6) {
        case 0: h->nlmsg_len = (uint32_t)(rand() % 16); break;            /* shorter than a header */
        case 1: h->nlmsg_len = (uint32_t)(len + 1 + rand() % 5000); break; /* past the buffer */
        case 2: h->nlmsg_len = (uint32_t)len; break;                      /* random type and body */
        case 3: /* a known type, random attributes */
            h->nlmsg_len = (uint32_t)len;
            h->nlmsg_type = (uint16_t)(RTM_NEWLINK + rand() % 12);
            break;
        case 4: /* a truncated attribute */
            h->nlmsg_len = (uint32_t)len;
            h->nlmsg_type = RTM_NEWADDR;
            ((struct rtattr *)(buf + 24))->rta_len = 0xfff0;
            break;
        case 5: h->nlmsg_len = 0xffffffffu; break;
        }
        h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
        h->nlmsg_flags &= (uint16_t)~NLM_F_DUMP;
        if (send(nl, buf, len, 0) < 0) {
            send_failures++;
            continue;
        }
        for (;;) {
            ssize_t n = recv(nl, reply, sizeof reply, MSG_DONTWAIT);
            if (n < 0)
                break;
            replies++;
            for (struct nlmsghdr *r = (struct nlmsghdr *)reply; NLMSG_OK(r, (int)n);
                 r = NLMSG_NEXT(r, n)) {
                if (r->nlmsg_type == NLMSG_ERROR)
                    errors++;
                else
                    others++;
            }
        }
    }
    printf("malformed sent=%d send_failures=%d replies=%d errors=%d others=%d\n", count,
           send_failures, replies, errors, others);
    /* the socket still works */
    struct {
        struct nlmsghdr h;
        struct ifinfomsg ifi;
    } req = {{sizeof req, RTM_GETLINK, NLM_F_REQUEST, 1, 0}, {0}};
    req.ifi.ifi_index = 1;
    int err = nl_request(nl, &req, sizeof req);
    printf("after_malformed getlink=%s\n", err == 1 ? "reply" : ename(-err));
}

static void dumps(int count) {
    int nl = nl_open();
    struct {
        struct nlmsghdr h;
        struct rtgenmsg g;
    } req = {{NLMSG_LENGTH(sizeof(struct rtgenmsg)), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP,
              0, 0}, {AF_UNSPEC}};
    int send_failures = 0;
    for (int i = 0; i < count; i++) {
        req.h.nlmsg_seq = (uint32_t)i;
        if (send(nl, &req, req.h.nlmsg_len, 0) < 0)
            send_failures++;
    }
    int datagrams = 0, busy = 0, done = 0, enobufs = 0;
    for (;;) {
        ssize_t n = recv(nl, reply, sizeof reply, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == ENOBUFS) {
                enobufs++;
                continue;
            }
            break;
        }
        datagrams++;
        for (struct nlmsghdr *r = (struct nlmsghdr *)reply; NLMSG_OK(r, (int)n);
             r = NLMSG_NEXT(r, n)) {
            if (r->nlmsg_type == NLMSG_DONE)
                done++;
            if (r->nlmsg_type == NLMSG_ERROR && ((struct nlmsgerr *)NLMSG_DATA(r))->error == -EBUSY)
                busy++;
        }
    }
    printf("dumps sent=%d send_failures=%d datagrams=%d done=%d ebusy=%d enobufs=%d\n", count,
           send_failures, datagrams, done, busy, enobufs);
    req.h.nlmsg_seq = 999999;
    send(nl, &req, req.h.nlmsg_len, 0);
    int complete = 0;
    for (int k = 0; k < 100 && !complete; k++) {
        ssize_t n = recv(nl, reply, sizeof reply, 0);
        if (n < 0)
            break;
        for (struct nlmsghdr *r = (struct nlmsghdr *)reply; NLMSG_OK(r, (int)n);
             r = NLMSG_NEXT(r, n))
            if (r->nlmsg_type == NLMSG_DONE && r->nlmsg_seq == 999999)
                complete = 1;
    }
    printf("after_dumps dump_complete=%d\n", complete);
}

static void flood(void) {
    int nl = nl_open();
    struct {
        struct nlmsghdr h;
        struct rtgenmsg g;
    } req = {{NLMSG_LENGTH(sizeof(struct rtgenmsg)), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP,
              0, 0}, {AF_UNSPEC}};
    printf("flooding\n");
    fflush(stdout);
    for (uint32_t i = 0;; i++) {
        req.h.nlmsg_seq = i;
        send(nl, &req, req.h.nlmsg_len, 0);
        while (recv(nl, reply, sizeof reply, MSG_DONTWAIT) > 0) {
        }
    }
}

/* Pointers past the end of linear memory: every call must fail with EFAULT. */
static void badptr(void) {
    void *wild = (void *)(uintptr_t)0xfffffff0u;
    int s4 = socket(AF_INET, SOCK_DGRAM, 0);
    int s6 = socket(AF_INET6, SOCK_DGRAM, 0);
    report("gifflags_wild", ioctl(s4, SIOCGIFFLAGS, wild));
    report("sifaddr_wild", ioctl(s4, SIOCSIFADDR, wild));
    report("addrt_wild", ioctl(s4, SIOCADDRT, wild));
    report("addrt6_wild", ioctl(s6, SIOCADDRT, wild));
    report("sifaddr6_wild", ioctl(s6, SIOCSIFADDR, wild));
    struct ifconf ifc = {.ifc_len = 4096};
    ifc.ifc_buf = wild;
    report("gifconf_wild_buffer", ioctl(s4, SIOCGIFCONF, &ifc));
    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    ((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
    ((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
    rt.rt_dev = wild;
    report("addrt_wild_dev", ioctl(s4, SIOCADDRT, &rt));
    int nl = nl_open();
    report("nl_send_wild", (int)send(nl, wild, 64, 0));
    struct sockaddr_nl to = {.nl_family = AF_NETLINK};
    report("nl_sendto_wild", (int)sendto(nl, wild, 64, 0, (struct sockaddr *)&to, sizeof to));
    report("nl_bind_wild", bind(nl, wild, sizeof to));
    struct {
        struct nlmsghdr h;
        struct ifinfomsg ifi;
    } req = {{sizeof req, RTM_GETLINK, NLM_F_REQUEST, 1, 0}, {0}};
    req.ifi.ifi_index = 1;
    send(nl, &req, sizeof req, 0);
    report("nl_recv_wild", (int)recv(nl, wild, 4096, 0));
    report("nl_setsockopt_wild", setsockopt(nl, SOL_SOCKET, SO_RCVBUF, wild, 4));
    socklen_t len = 4;
    report("nl_getsockopt_wild", getsockopt(nl, SOL_SOCKET, SO_RCVBUF, wild, &len));
    /* still answers */
    req.h.nlmsg_seq = 2;
    int err = nl_request(nl, &req, sizeof req);
    printf("after_wild getlink=%s\n", err == 1 ? "reply" : ename(-err));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[1], "other") == 0)
        other(argv[2]);
    else if (argc >= 4 && strcmp(argv[1], "malformed") == 0)
        malformed(atoi(argv[2]), (unsigned)atoi(argv[3]));
    else if (argc >= 3 && strcmp(argv[1], "dumps") == 0)
        dumps(atoi(argv[2]));
    else if (argc >= 2 && strcmp(argv[1], "flood") == 0)
        flood();
    else if (argc >= 2 && strcmp(argv[1], "badptr") == 0)
        badptr();
    else {
        fprintf(stderr, "usage: ifconf_abuse other IFNAME | malformed N SEED | dumps N | flood\n");
        return 2;
    }
    printf("end\n");
    return 0;
}
