/*
 * ifaddrs.c — vnet SDK: the host's interfaces (<ifaddrs.h>, <net/if.h>).
 *
 * getifaddrs, freeifaddrs, if_nametoindex, if_indextoname, if_nameindex
 * and if_freenameindex over vnet_v1.if_list (WASIX's port_addr_list has
 * neither interface names nor indexes). wasi-libc has none of them.
 *
 * getifaddrs lists entries in Linux's order: one AF_PACKET entry per
 * interface (its MAC address in a struct sockaddr_ll), then every IPv4
 * address, then every IPv6 address, interfaces in index order. IPv4
 * entries with IFF_BROADCAST carry the broadcast address; link-local IPv6
 * addresses carry the interface index as sin6_scope_id.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the GNU/BSD declarations, whatever the program's flags */
#endif
#include <net/if.h>
#include <ifaddrs.h>
#include <netpacket/packet.h>
#include <stdlib.h>
#include <string.h>

#include <vnet/sdk_internal.h>

#define ARPHRD_ETHER 1
#define ARPHRD_LOOPBACK 772

int __vnet_if_snapshot(vnet_if **list, uint32_t *count) {
    uint32_t cap = 8;
    for (int attempt = 0; attempt < 4; attempt++) {
        vnet_if *buf = malloc(cap * sizeof *buf);
        if (buf == NULL)
            return ENOMEM;
        uint32_t n = 0;
        int32_t err = __vnet_if_list(buf, cap * (uint32_t)sizeof *buf, &n);
        if (err == 0) {
            *list = buf;
            *count = n < cap ? n : cap;
            return 0;
        }
        free(buf);
        if (err != __WASI_ERRNO_OVERFLOW)
            return err;
        cap = n > cap ? n : cap * 2;
    }
    return EOVERFLOW;
}

/* --- getifaddrs ------------------------------------------------------------------ */

union any_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr_ll sll;
};

struct entry {
    struct ifaddrs ifa;   /* first: freeifaddrs frees entries through it */
    char name[IF_NAMESIZE];
    union any_sockaddr addr, netmask, broadaddr;
};

static struct entry *new_entry(const vnet_if *vif, struct ifaddrs ***tail) {
    struct entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    memcpy(e->name, vif->name, IF_NAMESIZE - 1);
    e->ifa.ifa_name = e->name;
    e->ifa.ifa_flags = vif->flags;
    **tail = &e->ifa;
    *tail = &e->ifa.ifa_next;
    return e;
}

static void prefix_mask(uint8_t *mask, int bytes, int prefix) {
    memset(mask, 0, (size_t)bytes);
    for (int i = 0; i < bytes && prefix > 0; i++, prefix -= 8)
        mask[i] = prefix >= 8 ? 0xff : (uint8_t)(0xff << (8 - prefix));
}

int getifaddrs(struct ifaddrs **out) {
    vnet_if *list;
    uint32_t count;
    int err = __vnet_if_snapshot(&list, &count);
    if (err)
        return __vnet_fail(err);
    struct ifaddrs *head = NULL, **tail = &head;

    for (uint32_t i = 0; i < count; i++) {      /* links */
        const vnet_if *vif = &list[i];
        struct entry *e = new_entry(vif, &tail);
        if (e == NULL)
            goto nomem;
        struct sockaddr_ll *sll = &e->addr.sll;
        sll->sll_family = AF_PACKET;
        sll->sll_ifindex = (int)vif->index;
        sll->sll_hatype = vif->mac_len ? ARPHRD_ETHER : ARPHRD_LOOPBACK;
        sll->sll_halen = 6;                      /* Linux: all-zero for loopback */
        memcpy(sll->sll_addr, vif->mac, vif->mac_len <= 6 ? vif->mac_len : 6);
        e->ifa.ifa_addr = &e->addr.sa;
    }
    for (int family = 4; family <= 6; family += 2) {    /* IPv4, then IPv6 */
        for (uint32_t i = 0; i < count; i++) {
            const vnet_if *vif = &list[i];
            for (int j = 0; j < vif->naddrs && j < VNET_IF_MAX_ADDRS; j++) {
                const vnet_ifaddr *a = &vif->addrs[j];
                if (a->family != family)
                    continue;
                struct entry *e = new_entry(vif, &tail);
                if (e == NULL)
                    goto nomem;
                if (family == 4) {
                    e->addr.sin.sin_family = AF_INET;
                    memcpy(&e->addr.sin.sin_addr, a->addr, 4);
                    e->netmask.sin.sin_family = AF_INET;
                    prefix_mask((uint8_t *)&e->netmask.sin.sin_addr, 4, a->prefix_len);
                    if (vif->flags & IFF_BROADCAST) {
                        e->broadaddr.sin.sin_family = AF_INET;
                        uint8_t *b = (uint8_t *)&e->broadaddr.sin.sin_addr;
                        const uint8_t *m = (const uint8_t *)&e->netmask.sin.sin_addr;
                        for (int k = 0; k < 4; k++)
                            b[k] = a->addr[k] | (uint8_t)~m[k];
                        e->ifa.ifa_broadaddr = &e->broadaddr.sa;
                    }
                } else {
                    e->addr.sin6.sin6_family = AF_INET6;
                    memcpy(&e->addr.sin6.sin6_addr, a->addr, 16);
                    if (IN6_IS_ADDR_LINKLOCAL(&e->addr.sin6.sin6_addr) ||
                        IN6_IS_ADDR_MC_LINKLOCAL(&e->addr.sin6.sin6_addr))
                        e->addr.sin6.sin6_scope_id = vif->index;
                    e->netmask.sin6.sin6_family = AF_INET6;
                    prefix_mask(e->netmask.sin6.sin6_addr.s6_addr, 16, a->prefix_len);
                }
                e->ifa.ifa_addr = &e->addr.sa;
                e->ifa.ifa_netmask = &e->netmask.sa;
            }
        }
    }
    free(list);
    *out = head;
    return 0;

nomem:
    free(list);
    freeifaddrs(head);
    return __vnet_fail(ENOMEM);
}

void freeifaddrs(struct ifaddrs *ifa) {
    while (ifa != NULL) {
        struct ifaddrs *next = ifa->ifa_next;
        free(ifa);
        ifa = next;
    }
}

/* --- <net/if.h> ------------------------------------------------------------------ */

unsigned int if_nametoindex(const char *name) {
    vnet_if *list;
    uint32_t count;
    if (name == NULL)
        return 0;
    int err = __vnet_if_snapshot(&list, &count);
    if (err) {
        errno = err;
        return 0;
    }
    unsigned int index = 0;
    for (uint32_t i = 0; i < count && index == 0; i++)
        if (strncmp(list[i].name, name, IF_NAMESIZE) == 0)
            index = list[i].index;
    free(list);
    if (index == 0)
        errno = ENODEV;
    return index;
}

char *if_indextoname(unsigned int index, char *name) {
    vnet_if *list;
    uint32_t count;
    int err = __vnet_if_snapshot(&list, &count);
    if (err) {
        errno = err;
        return NULL;
    }
    char *found = NULL;
    for (uint32_t i = 0; i < count && found == NULL; i++) {
        if (list[i].index == index) {
            memcpy(name, list[i].name, IF_NAMESIZE);
            name[IF_NAMESIZE - 1] = '\0';
            found = name;
        }
    }
    free(list);
    if (found == NULL)
        errno = ENXIO;
    return found;
}

struct if_nameindex *if_nameindex(void) {
    vnet_if *list;
    uint32_t count;
    int err = __vnet_if_snapshot(&list, &count);
    if (err) {
        errno = err;
        return NULL;
    }
    /* One block: count+1 entries, then the names. */
    struct if_nameindex *out =
        malloc((count + 1) * sizeof *out + (size_t)count * IF_NAMESIZE);
    if (out == NULL) {
        free(list);
        errno = ENOBUFS;
        return NULL;
    }
    char *names = (char *)(out + count + 1);
    for (uint32_t i = 0; i < count; i++) {
        char *n = names + (size_t)i * IF_NAMESIZE;
        memcpy(n, list[i].name, IF_NAMESIZE);
        n[IF_NAMESIZE - 1] = '\0';
        out[i].if_index = list[i].index;
        out[i].if_name = n;
    }
    out[count].if_index = 0;
    out[count].if_name = NULL;
    free(list);
    return out;
}

void if_freenameindex(struct if_nameindex *ni) {
    free(ni);
}
