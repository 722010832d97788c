/* lobby [-6] [-i IFACE] [-g GROUP] [-p PORT] [-n ROUNDS] [-t MS] NAME
 *
 * A game-style LAN lobby: every MS milliseconds (default 100) announce
 * "LOBBY NAME" to a multicast group, listen on the group in between, and
 * after ROUNDS announcements (default 5) print the sorted list of the other
 * players heard, then exit.
 *
 *   -6        IPv6: group ff15::7777 instead of IPv4 239.255.77.77
 *   -i IFACE  the interface to use (default: the first one that is up,
 *             multicast-capable and not loopback, from getifaddrs)
 *   -g GROUP  another group address; -p PORT another port (default 7777)
 *
 * Several lobbies can run on one machine: the port is shared with
 * SO_REUSEADDR, and multicast loopback (on by default) lets them hear each
 * other. Multicast never crosses a router here (TTL / hop limit 1).
 *
 *   gcc -O2 -Wall examples/lobby.c -o lobby
 *   vnet build examples/lobby.c -o lobby.wasm
 *   ./lobby alice & ./lobby bob
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PEERS 64

static char peers[MAX_PEERS][32];
static int npeers;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void remember(const char *name) {
    for (int i = 0; i < npeers; i++)
        if (strcmp(peers[i], name) == 0) return;
    if (npeers < MAX_PEERS) snprintf(peers[npeers++], sizeof peers[0], "%.31s", name);
}

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

/* Find the interface to use (the named one, or the first suitable one) and,
 * for IPv4, its address: IPv4 multicast names interfaces by address. */
static int pick_interface(const char *want, int family, char *name, size_t name_len,
                          struct in_addr *v4) {
    struct ifaddrs *list;
    if (getifaddrs(&list) != 0) {
        perror("lobby: getifaddrs");
        return -1;
    }
    int found = -1;
    for (struct ifaddrs *ifa = list; ifa != NULL && found < 0; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == NULL || ifa->ifa_addr->sa_family != family) continue;
        if (want != NULL ? strcmp(ifa->ifa_name, want) != 0
                         : (ifa->ifa_flags & IFF_LOOPBACK) || !(ifa->ifa_flags & IFF_UP) ||
                               !(ifa->ifa_flags & IFF_MULTICAST))
            continue;
        snprintf(name, name_len, "%s", ifa->ifa_name);
        if (family == AF_INET) *v4 = ((struct sockaddr_in *)ifa->ifa_addr)->sin_addr;
        found = 0;
    }
    freeifaddrs(list);
    if (found < 0)
        fprintf(stderr, "lobby: no %s interface with an %s address\n",
                want ? want : "multicast-capable", family == AF_INET ? "IPv4" : "IPv6");
    return found;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int v6 = 0, port = 7777, rounds = 5, interval_ms = 100;
    const char *ifname = NULL, *group_text = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "6i:g:p:n:t:")) != -1) {
        switch (opt) {
        case '6': v6 = 1; break;
        case 'i': ifname = optarg; break;
        case 'g': group_text = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'n': rounds = atoi(optarg); break;
        case 't': interval_ms = atoi(optarg); break;
        default: optind = argc + 1; break;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: lobby [-6] [-i IFACE] [-g GROUP] [-p PORT] [-n ROUNDS] "
                        "[-t MS] NAME\n");
        return 2;
    }
    const char *me = argv[optind];
    if (group_text == NULL) group_text = v6 ? "ff15::7777" : "239.255.77.77";
    int family = v6 ? AF_INET6 : AF_INET;

    char iface[IF_NAMESIZE + 1];
    struct in_addr iface_addr = {0};
    if (pick_interface(ifname, family, iface, sizeof iface, &iface_addr) != 0) return 1;
    unsigned ifindex = if_nametoindex(iface);

    int fd = socket(family, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("lobby: socket");
        return 1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* share the port */

    /* Bind the wildcard address on the port, join the group on the interface,
     * and send from that interface. */
    struct sockaddr_storage dest;
    socklen_t dest_len;
    memset(&dest, 0, sizeof dest);
    int rc;
    if (v6) {
        struct sockaddr_in6 any;
        memset(&any, 0, sizeof any);
        any.sin6_family = AF_INET6;
        any.sin6_port = htons((unsigned short)port);
        rc = bind(fd, (struct sockaddr *)&any, sizeof any);
        struct ipv6_mreq mreq;
        memset(&mreq, 0, sizeof mreq);
        if (rc == 0 && inet_pton(AF_INET6, group_text, &mreq.ipv6mr_multiaddr) != 1) {
            fprintf(stderr, "lobby: %s is not an IPv6 address\n", group_text);
            return 2;
        }
        mreq.ipv6mr_interface = ifindex;
        if (rc == 0) rc = setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof mreq);
        int hops = 1;
        if (rc == 0) rc = setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof ifindex);
        if (rc == 0) rc = setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops);
        if (rc == 0) rc = setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one);
        struct sockaddr_in6 *to = (struct sockaddr_in6 *)&dest;
        to->sin6_family = AF_INET6;
        to->sin6_port = htons((unsigned short)port);
        to->sin6_addr = mreq.ipv6mr_multiaddr;
        dest_len = sizeof *to;
    } else {
        struct sockaddr_in any;
        memset(&any, 0, sizeof any);
        any.sin_family = AF_INET;
        any.sin_port = htons((unsigned short)port);
        any.sin_addr.s_addr = htonl(INADDR_ANY);
        rc = bind(fd, (struct sockaddr *)&any, sizeof any);
        struct ip_mreq mreq;
        memset(&mreq, 0, sizeof mreq);
        if (rc == 0 && inet_pton(AF_INET, group_text, &mreq.imr_multiaddr) != 1) {
            fprintf(stderr, "lobby: %s is not an IPv4 address\n", group_text);
            return 2;
        }
        mreq.imr_interface = iface_addr;
        if (rc == 0) rc = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq);
        unsigned char ttl = 1, loop = 1;
        if (rc == 0) rc = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &iface_addr, sizeof iface_addr);
        if (rc == 0) rc = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
        if (rc == 0) rc = setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
        struct sockaddr_in *to = (struct sockaddr_in *)&dest;
        to->sin_family = AF_INET;
        to->sin_port = htons((unsigned short)port);
        to->sin_addr = mreq.imr_multiaddr;
        dest_len = sizeof *to;
    }
    if (rc != 0) {
        perror("lobby: joining the group");
        return 1;
    }
    printf("lobby: %s announcing on %s port %d via %s\n", me, group_text, port, iface);

    char hello[64];
    int hello_len = snprintf(hello, sizeof hello, "LOBBY %s", me);
    for (int round = 1; round <= rounds; round++) {
        if (sendto(fd, hello, (size_t)hello_len, 0, (struct sockaddr *)&dest, dest_len) < 0)
            perror("lobby: sendto");
        /* Listen until the next announcement is due. */
        long long next = now_ms() + interval_ms;
        for (long long left; (left = next - now_ms()) > 0;) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll(&pfd, 1, (int)left) <= 0) continue;
            char msg[128];
            ssize_t n = recv(fd, msg, sizeof msg - 1, 0);
            if (n <= 0) continue;
            msg[n] = '\0';
            if (strncmp(msg, "LOBBY ", 6) == 0 && strcmp(msg + 6, me) != 0) remember(msg + 6);
        }
    }
    close(fd);

    qsort(peers, (size_t)npeers, sizeof peers[0], by_name);
    printf("lobby: %s heard %d peer(s):", me, npeers);
    for (int i = 0; i < npeers; i++) printf(" %s", peers[i]);
    printf("\n");
    return 0;
}
