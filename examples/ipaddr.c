/* ipaddr [IFNAME] — list network interfaces and their addresses, like `ip addr`.
 *
 * Uses only getifaddrs() and if_nametoindex(), so it shows what any portable
 * program can learn: each interface's index, name and flags, and its IPv4
 * and IPv6 addresses with prefix lengths. Where the C library also reports
 * link-layer addresses through getifaddrs (Linux's AF_PACKET entries), the
 * MAC is shown too. Interfaces are listed by index; within one, IPv4
 * addresses come before IPv6, each family in ascending order, so the
 * output is the same wherever the same interfaces exist.
 *
 *   gcc -O2 -Wall examples/ipaddr.c -o ipaddr
 *   vnet build examples/ipaddr.c -o ipaddr.wasm
 *   ./ipaddr          # every interface
 *   ./ipaddr eth0     # just one
 *
 * Under vnet it lists the virtual host's interfaces — never the machine's.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#if defined(__has_include)
#if __has_include(<netpacket/packet.h>)
#include <netpacket/packet.h> /* struct sockaddr_ll: MACs in getifaddrs (Linux) */
#define HAVE_SOCKADDR_LL 1
#endif
#endif

#define MAX_IFACES 64
#define MAX_ADDRS 32

struct address {
    int family;
    unsigned char bytes[16];
    int prefix;
};

struct iface {
    unsigned index;
    char name[IF_NAMESIZE + 1];
    unsigned flags;
    unsigned char mac[6];
    int has_mac;
    struct address addrs[MAX_ADDRS];
    int naddrs;
};

static struct iface ifaces[MAX_IFACES];
static int nifaces;

static struct iface *iface_named(const char *name) {
    for (int i = 0; i < nifaces; i++)
        if (strcmp(ifaces[i].name, name) == 0) return &ifaces[i];
    if (nifaces == MAX_IFACES) return NULL;
    struct iface *it = &ifaces[nifaces++];
    memset(it, 0, sizeof *it);
    snprintf(it->name, sizeof it->name, "%s", name);
    it->index = if_nametoindex(name);
    return it;
}

/* A netmask's prefix length: its count of one bits. */
static int prefix_len(const unsigned char *mask, size_t len) {
    int bits = 0;
    for (size_t i = 0; i < len; i++)
        for (int b = 7; b >= 0; b--) bits += (mask[i] >> b) & 1;
    return bits;
}

static int by_index(const void *a, const void *b) {
    const struct iface *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static int by_family_then_bytes(const void *a, const void *b) {
    const struct address *x = a, *y = b;
    if (x->family != y->family) return x->family == AF_INET ? -1 : 1;
    return memcmp(x->bytes, y->bytes, x->family == AF_INET ? 4 : 16);
}

/* The flags both Linux and vnet report, in the order `ip` prints them. */
static void print_flags(unsigned flags) {
    static const struct { unsigned bit; const char *name; } known[] = {
        {IFF_LOOPBACK, "LOOPBACK"}, {IFF_BROADCAST, "BROADCAST"},
        {IFF_POINTOPOINT, "POINTOPOINT"}, {IFF_MULTICAST, "MULTICAST"},
        {IFF_UP, "UP"}, {IFF_RUNNING, "RUNNING"},
    };
    const char *sep = "";
    printf("<");
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (!(flags & known[i].bit)) continue;
        printf("%s%s", sep, known[i].name);
        sep = ",";
    }
    printf(">");
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    struct ifaddrs *list;
    if (getifaddrs(&list) != 0) {
        perror("ipaddr: getifaddrs");
        return 1;
    }
    for (struct ifaddrs *ifa = list; ifa != NULL; ifa = ifa->ifa_next) {
        struct iface *it = iface_named(ifa->ifa_name);
        if (it == NULL) break;
        it->flags = ifa->ifa_flags;
        struct sockaddr *sa = ifa->ifa_addr;
        if (sa == NULL) continue;
        if ((sa->sa_family == AF_INET || sa->sa_family == AF_INET6) && it->naddrs < MAX_ADDRS) {
            struct address *a = &it->addrs[it->naddrs++];
            a->family = sa->sa_family;
            if (a->family == AF_INET) {
                memcpy(a->bytes, &((struct sockaddr_in *)sa)->sin_addr, 4);
                a->prefix = ifa->ifa_netmask
                    ? prefix_len((unsigned char *)&((struct sockaddr_in *)ifa->ifa_netmask)->sin_addr, 4)
                    : 32;
            } else {
                memcpy(a->bytes, &((struct sockaddr_in6 *)sa)->sin6_addr, 16);
                a->prefix = ifa->ifa_netmask
                    ? prefix_len((unsigned char *)&((struct sockaddr_in6 *)ifa->ifa_netmask)->sin6_addr, 16)
                    : 128;
            }
        }
#ifdef HAVE_SOCKADDR_LL
        if (sa->sa_family == AF_PACKET) {
            struct sockaddr_ll *ll = (struct sockaddr_ll *)sa;
            if (ll->sll_halen == 6 && memcmp(ll->sll_addr, "\0\0\0\0\0\0", 6) != 0) {
                memcpy(it->mac, ll->sll_addr, 6);
                it->has_mac = 1;
            }
        }
#endif
    }
    freeifaddrs(list);

    qsort(ifaces, (size_t)nifaces, sizeof ifaces[0], by_index);
    int shown = 0;
    for (int i = 0; i < nifaces; i++) {
        struct iface *it = &ifaces[i];
        if (only != NULL && strcmp(only, it->name) != 0) continue;
        shown++;
        printf("%u: %s: ", it->index, it->name);
        print_flags(it->flags);
        printf("\n");
        if (it->has_mac)
            printf("    link/ether %02x:%02x:%02x:%02x:%02x:%02x\n", it->mac[0], it->mac[1],
                   it->mac[2], it->mac[3], it->mac[4], it->mac[5]);
        qsort(it->addrs, (size_t)it->naddrs, sizeof it->addrs[0], by_family_then_bytes);
        for (int j = 0; j < it->naddrs; j++) {
            char text[INET6_ADDRSTRLEN];
            struct address *a = &it->addrs[j];
            inet_ntop(a->family, a->bytes, text, sizeof text);
            printf("    %s %s/%d\n", a->family == AF_INET ? "inet" : "inet6", text, a->prefix);
        }
    }
    if (only != NULL && shown == 0) {
        fprintf(stderr, "ipaddr: no interface %s\n", only);
        return 1;
    }
    return 0;
}
