/*
 * netdb.c — vnet SDK: name and service lookup (<netdb.h>).
 *
 * getaddrinfo, freeaddrinfo, gai_strerror, getnameinfo, gethostbyname,
 * gethostbyname2, gethostbyaddr (always HOST_NOT_FOUND), h_errno, herror, hstrerror,
 * getservbyname, getservbyport, getprotobyname, getprotobynumber.
 * wasi-libc has none of them for preview1.
 *
 * Host names are resolved by the host (WASIX `resolve`): the names of the
 * virtual topology and "localhost". Numeric addresses and ports are parsed
 * here and never reach the host. Results keep the host's order (for
 * AF_UNSPEC, IPv6 and IPv4 as the host returns them). There is no
 * /etc/services: named services come from a small built-in table.
 *
 * getnameinfo cannot ask for reverse lookups (WASIX has none), so it always
 * gives numeric hosts; with NI_NAMEREQD it fails with EAI_NONAME.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the GNU/BSD declarations, whatever the program's flags */
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vnet/sdk_internal.h>

/* --- services and protocols ----------------------------------------------------- */

struct service {
    const char *name;
    unsigned short port;
    unsigned char tcp, udp;
};

static const struct service services[] = {
    {"echo", 7, 1, 1},      {"discard", 9, 1, 1},   {"daytime", 13, 1, 1},
    {"chargen", 19, 1, 1},  {"ftp-data", 20, 1, 0}, {"ftp", 21, 1, 0},
    {"ssh", 22, 1, 0},      {"telnet", 23, 1, 0},   {"smtp", 25, 1, 0},
    {"time", 37, 1, 1},     {"domain", 53, 1, 1},   {"bootps", 67, 0, 1},
    {"bootpc", 68, 0, 1},   {"tftp", 69, 0, 1},     {"http", 80, 1, 0},
    {"pop3", 110, 1, 0},    {"ntp", 123, 0, 1},     {"imap", 143, 1, 0},
    {"snmp", 161, 1, 1},    {"ldap", 389, 1, 0},    {"https", 443, 1, 0},
    {"syslog", 514, 0, 1},  {"submission", 587, 1, 0}, {"imaps", 993, 1, 0},
    {"pop3s", 995, 1, 0},   {"openvpn", 1194, 1, 1}, {"mqtt", 1883, 1, 0},
    {"sip", 5060, 1, 1},    {"http-alt", 8080, 1, 0}, {"wireguard", 51820, 0, 1},
};

/* proto: 0 any, else IPPROTO_TCP / IPPROTO_UDP */
static const struct service *service_by_name(const char *name, int proto) {
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        const struct service *s = &services[i];
        if (strcmp(s->name, name) == 0 && (proto == 0 || (proto == IPPROTO_TCP && s->tcp) ||
                                           (proto == IPPROTO_UDP && s->udp)))
            return s;
    }
    return NULL;
}

static const struct service *service_by_port(int port, int proto) {
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        const struct service *s = &services[i];
        if (s->port == port && (proto == 0 || (proto == IPPROTO_TCP && s->tcp) ||
                                (proto == IPPROTO_UDP && s->udp)))
            return s;
    }
    return NULL;
}

static int proto_of(const char *proto) {
    if (proto == NULL)
        return 0;
    if (strcmp(proto, "tcp") == 0)
        return IPPROTO_TCP;
    if (strcmp(proto, "udp") == 0)
        return IPPROTO_UDP;
    return -1;
}

static struct servent *fill_servent(const struct service *s, int proto) {
    static struct servent se;
    static char *no_aliases[1] = {NULL};
    static char name[16], pname[4];
    if (s == NULL)
        return NULL;
    snprintf(name, sizeof name, "%s", s->name);
    snprintf(pname, sizeof pname, "%s",
             proto == IPPROTO_UDP || (proto == 0 && !s->tcp) ? "udp" : "tcp");
    se.s_name = name;
    se.s_aliases = no_aliases;
    se.s_port = htons(s->port);
    se.s_proto = pname;
    return &se;
}

struct servent *getservbyname(const char *name, const char *proto) {
    int p = proto_of(proto);
    return p < 0 || name == NULL ? NULL : fill_servent(service_by_name(name, p), p);
}

struct servent *getservbyport(int port, const char *proto) {
    int p = proto_of(proto);
    return p < 0 ? NULL : fill_servent(service_by_port(ntohs((uint16_t)port), p), p);
}

static const struct {
    const char *name;
    int number;
} protocols[] = {
    {"ip", 0}, {"icmp", 1}, {"igmp", 2}, {"tcp", 6}, {"udp", 17},
    {"ipv6", 41}, {"ipv6-icmp", 58}, {"icmpv6", 58}, {"raw", 255},
};

static struct protoent *fill_protoent(size_t i) {
    static struct protoent pe;
    static char *no_aliases[1] = {NULL};
    static char name[16];
    snprintf(name, sizeof name, "%s", protocols[i].name);
    pe.p_name = name;
    pe.p_aliases = no_aliases;
    pe.p_proto = protocols[i].number;
    return &pe;
}

struct protoent *getprotobyname(const char *name) {
    for (size_t i = 0; name && i < sizeof protocols / sizeof protocols[0]; i++)
        if (strcmp(protocols[i].name, name) == 0)
            return fill_protoent(i);
    return NULL;
}

struct protoent *getprotobynumber(int number) {
    for (size_t i = 0; i < sizeof protocols / sizeof protocols[0]; i++)
        if (protocols[i].number == number)
            return fill_protoent(i);
    return NULL;
}

/* --- getaddrinfo ------------------------------------------------------------------ */

#define MAX_ADDRS 64

struct gai_addr {
    int family;
    uint8_t addr[16];
    uint32_t scope_id;
};

#define GAI_FLAGS (AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_V4MAPPED | AI_ALL | \
                   AI_ADDRCONFIG | AI_NUMERICSERV)

/* Port for `service`: 0 and *port set, or an EAI_* code. */
static int parse_service(const char *service, int socktype, int protocol, int flags, int *port) {
    *port = 0;
    if (service == NULL)
        return 0;
    if (*service == '\0')
        return EAI_NONAME;
    char *end;
    unsigned long n = strtoul(service, &end, 10);
    if (*end == '\0' && isdigit((unsigned char)*service)) {
        if (n > 65535)
            return EAI_SERVICE;
        if (socktype == SOCK_RAW)
            return EAI_SERVICE;
        *port = (int)n;
        return 0;
    }
    if (flags & AI_NUMERICSERV)
        return EAI_NONAME;
    if (socktype == SOCK_RAW)
        return EAI_SERVICE;
    int proto = protocol ? protocol
                         : socktype == SOCK_STREAM ? IPPROTO_TCP
                         : socktype == SOCK_DGRAM  ? IPPROTO_UDP : 0;
    const struct service *s = service_by_name(service, proto);
    if (s == NULL)
        return EAI_SERVICE;
    *port = s->port;
    return 0;
}

/* A numeric host: 1 and the address, 0 if `node` is not numeric, or an
 * EAI_* code (negative) for a bad scope. */
static int parse_numeric(const char *node, struct gai_addr *out) {
    memset(out, 0, sizeof *out);
    struct in_addr a4;
    if (inet_aton(node, &a4)) {
        out->family = AF_INET;
        memcpy(out->addr, &a4, 4);
        return 1;
    }
    char buf[64];
    const char *pct = strchr(node, '%');
    size_t n = pct ? (size_t)(pct - node) : strlen(node);
    if (n >= sizeof buf)
        return 0;
    memcpy(buf, node, n);
    buf[n] = '\0';
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) != 1)
        return 0;
    out->family = AF_INET6;
    memcpy(out->addr, &a6, 16);
    if (pct != NULL) {
        char *end;
        unsigned long id = strtoul(pct + 1, &end, 10);
        if (pct[1] != '\0' && *end == '\0')
            out->scope_id = (uint32_t)id;
        else if ((out->scope_id = if_nametoindex(pct + 1)) == 0)
            return EAI_NONAME;
    }
    return 1;
}

/* Ask the host. Returns the number of addresses or an EAI_* code. */
static int resolve_name(const char *node, int port, struct gai_addr *out, int max) {
    vnet_addr_ip addrs[MAX_ADDRS];
    uint32_t count = 0;
    int32_t err = __wasix_resolve(node, (uint32_t)strlen(node), (uint32_t)port, addrs,
                                  MAX_ADDRS, &count);
    switch (err) {
    case 0: break;
    case __WASI_ERRNO_AGAIN: return EAI_AGAIN;
    case __WASI_ERRNO_NOMEM: return EAI_MEMORY;
    case __WASI_ERRNO_NOENT: case __WASI_ERRNO_ADDRNOTAVAIL: case __WASI_ERRNO_HOSTUNREACH:
    case __WASI_ERRNO_NETUNREACH: case __WASI_ERRNO_INVAL: case __WASI_ERRNO_NOTSUP:
        return EAI_NONAME;
    default:
        errno = err;
        return EAI_FAIL;
    }
    if (count > MAX_ADDRS)
        count = MAX_ADDRS;
    int n = 0;
    for (uint32_t i = 0; i < count && n < max; i++) {
        struct gai_addr *a = &out[n];
        memset(a, 0, sizeof *a);
        if (addrs[i].tag == VNET_AF_INET4) {
            a->family = AF_INET;
            memcpy(a->addr, addrs[i].u.ip4, 4);
        } else if (addrs[i].tag == VNET_AF_INET6) {
            struct in6_addr a6;
            a->family = AF_INET6;
            __vnet_segs_to_in6(addrs[i].u.ip6, &a6);
            memcpy(a->addr, &a6, 16);
        } else {
            continue;
        }
        n++;
    }
    return n;
}

/* AI_ADDRCONFIG as glibc does it: a family counts as configured when some
 * interface has an address of it other than the loopback address. */
static void configured_families(int *v4, int *v6) {
    vnet_if *list;
    uint32_t count;
    *v4 = *v6 = 1;
    if (__vnet_if_snapshot(&list, &count) != 0)
        return;
    *v4 = *v6 = 0;
    static const uint8_t lo6[16] = {[15] = 1};
    for (uint32_t i = 0; i < count; i++) {
        for (int j = 0; j < list[i].naddrs && j < VNET_IF_MAX_ADDRS; j++) {
            const vnet_ifaddr *a = &list[i].addrs[j];
            if (a->family == 4 && !(a->addr[0] == 127 && a->addr[1] == 0 && a->addr[2] == 0 &&
                                    a->addr[3] == 1))
                *v4 = 1;
            if (a->family == 6 && memcmp(a->addr, lo6, 16) != 0)
                *v6 = 1;
        }
    }
    free(list);
}

static struct addrinfo *new_node(const struct gai_addr *a, int port, int socktype,
                                 int protocol) {
    struct addrinfo *ai = calloc(1, sizeof *ai + sizeof(struct sockaddr_in6));
    if (ai == NULL)
        return NULL;
    struct sockaddr *sa = (struct sockaddr *)(ai + 1);
    ai->ai_family = a->family;
    ai->ai_socktype = socktype;
    ai->ai_protocol = protocol;
    ai->ai_addr = sa;
    if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)sa;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, a->addr, 4);
        ai->ai_addrlen = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        memcpy(&sin6->sin6_addr, a->addr, 16);
        sin6->sin6_scope_id = a->scope_id;
        ai->ai_addrlen = sizeof *sin6;
    }
    return ai;
}

void freeaddrinfo(struct addrinfo *ai) {
    while (ai != NULL) {
        struct addrinfo *next = ai->ai_next;
        free(ai->ai_canonname);
        free(ai);
        ai = next;
    }
}

int getaddrinfo(const char *__restrict node, const char *__restrict service,
                const struct addrinfo *__restrict hints, struct addrinfo **__restrict res) {
    int family = AF_UNSPEC, socktype = 0, protocol = 0;
    int flags = AI_V4MAPPED | AI_ADDRCONFIG;   /* glibc's defaults without hints */
    if (res == NULL)
        return EAI_SYSTEM;
    *res = NULL;
    if (hints != NULL) {
        family = hints->ai_family;
        socktype = hints->ai_socktype;
        protocol = hints->ai_protocol;
        flags = hints->ai_flags;
        if (hints->ai_addrlen || hints->ai_canonname || hints->ai_addr || hints->ai_next)
            return EAI_BADFLAGS;
    }
    if (flags & ~GAI_FLAGS)
        return EAI_BADFLAGS;
    if (node == NULL && service == NULL)
        return EAI_NONAME;
    if ((flags & AI_CANONNAME) && node == NULL)
        return EAI_BADFLAGS;
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
        return EAI_FAMILY;

    /* The (socktype, protocol) pairs to return for each address. */
    int pairs[3][2];
    int npairs = 0;
    switch (socktype) {
    case 0:
        if (protocol == 0 || protocol == IPPROTO_TCP)
            pairs[npairs][0] = SOCK_STREAM, pairs[npairs++][1] = IPPROTO_TCP;
        if (protocol == 0 || protocol == IPPROTO_UDP)
            pairs[npairs][0] = SOCK_DGRAM, pairs[npairs++][1] = IPPROTO_UDP;
        if (npairs == 0)
            pairs[npairs][0] = SOCK_RAW, pairs[npairs++][1] = protocol;
        break;
    case SOCK_STREAM:
        if (protocol != 0 && protocol != IPPROTO_TCP)
            return EAI_SOCKTYPE;
        pairs[npairs][0] = SOCK_STREAM, pairs[npairs++][1] = IPPROTO_TCP;
        break;
    case SOCK_DGRAM:
        if (protocol != 0 && protocol != IPPROTO_UDP)
            return EAI_SOCKTYPE;
        pairs[npairs][0] = SOCK_DGRAM, pairs[npairs++][1] = IPPROTO_UDP;
        break;
    case SOCK_RAW:
        pairs[npairs][0] = SOCK_RAW, pairs[npairs++][1] = protocol;
        break;
    default:
        return EAI_SOCKTYPE;
    }

    int port;
    int rc = parse_service(service, socktype, protocol, flags, &port);
    if (rc != 0)
        return rc;

    int want4 = family != AF_INET6, want6 = family != AF_INET;
    if ((flags & AI_ADDRCONFIG) && node != NULL) {
        int v4, v6;
        configured_families(&v4, &v6);
        if (family == AF_UNSPEC && (v4 || v6)) {
            want4 = v4;
            want6 = v6;
        } else if ((family == AF_INET && !v4) || (family == AF_INET6 && !v6)) {
            return EAI_NONAME;
        }
    }

    struct gai_addr found[MAX_ADDRS];
    int nfound = 0;
    if (node == NULL) {
        /* musl's order: IPv4 first */
        if (family != AF_INET6) {
            memset(&found[nfound], 0, sizeof found[0]);
            found[nfound].family = AF_INET;
            if (!(flags & AI_PASSIVE)) {
                found[nfound].addr[0] = 127;
                found[nfound].addr[3] = 1;
            }
            nfound++;
        }
        if (family != AF_INET) {
            memset(&found[nfound], 0, sizeof found[0]);
            found[nfound].family = AF_INET6;
            if (!(flags & AI_PASSIVE))
                found[nfound].addr[15] = 1;
            nfound++;
        }
    } else {
        if (*node == '\0')
            return EAI_NONAME;
        int numeric = parse_numeric(node, &found[0]);
        if (numeric < 0)
            return numeric;
        if (numeric) {
            nfound = 1;
        } else if (flags & AI_NUMERICHOST) {
            return EAI_NONAME;
        } else {
            nfound = resolve_name(node, port, found, MAX_ADDRS);
            if (nfound < 0)
                return nfound;
        }
        /* Keep the families asked for; AI_V4MAPPED turns IPv4 answers into
         * ::ffff:a.b.c.d for an AF_INET6 query (all of them with AI_ALL,
         * otherwise only when there is no IPv6 answer). */
        int have6 = 0;
        for (int i = 0; i < nfound; i++)
            have6 |= found[i].family == AF_INET6;
        int map4 = family == AF_INET6 && (flags & AI_V4MAPPED) &&
                   (!have6 || (flags & AI_ALL));
        int kept = 0;
        for (int i = 0; i < nfound; i++) {
            struct gai_addr a = found[i];
            if (a.family == AF_INET && map4) {
                uint8_t v4[4];
                memcpy(v4, a.addr, 4);
                memset(a.addr, 0, 16);
                a.addr[10] = a.addr[11] = 0xff;
                memcpy(a.addr + 12, v4, 4);
                a.family = AF_INET6;
            } else if ((a.family == AF_INET && !want4) || (a.family == AF_INET6 && !want6)) {
                continue;
            }
            found[kept++] = a;
        }
        nfound = kept;
        if (nfound == 0)
            return numeric ? EAI_ADDRFAMILY : EAI_NONAME;
    }

    struct addrinfo *head = NULL, **tail = &head;
    for (int i = 0; i < nfound; i++) {
        for (int p = 0; p < npairs; p++) {
            struct addrinfo *ai = new_node(&found[i], port, pairs[p][0], pairs[p][1]);
            if (ai == NULL) {
                freeaddrinfo(head);
                return EAI_MEMORY;
            }
            *tail = ai;
            tail = &ai->ai_next;
        }
    }
    if (head != NULL && (flags & AI_CANONNAME)) {
        head->ai_canonname = strdup(node);
        if (head->ai_canonname == NULL) {
            freeaddrinfo(head);
            return EAI_MEMORY;
        }
    }
    *res = head;
    return 0;
}

const char *gai_strerror(int code) {
    switch (code) {
    case 0: return "Success";
    case EAI_BADFLAGS: return "Bad value for ai_flags";
    case EAI_NONAME: return "Name or service not known";
    case EAI_AGAIN: return "Temporary failure in name resolution";
    case EAI_FAIL: return "Non-recoverable failure in name resolution";
    case EAI_NODATA: return "No address associated with hostname";
    case EAI_FAMILY: return "ai_family not supported";
    case EAI_SOCKTYPE: return "ai_socktype not supported";
    case EAI_SERVICE: return "Servname not supported for ai_socktype";
    case EAI_ADDRFAMILY: return "Address family for hostname not supported";
    case EAI_MEMORY: return "Memory allocation failure";
    case EAI_SYSTEM: return "System error";
    case EAI_OVERFLOW: return "Argument buffer overflow";
    default: return "Unknown error";
    }
}

/* --- getnameinfo ---------------------------------------------------------------- */

#define GNI_FLAGS (NI_NUMERICHOST | NI_NUMERICSERV | NI_NOFQDN | NI_NAMEREQD | NI_DGRAM | \
                   NI_NUMERICSCOPE)

int getnameinfo(const struct sockaddr *__restrict sa, socklen_t salen, char *__restrict host,
                socklen_t hostlen, char *__restrict serv, socklen_t servlen, int flags) {
    if (flags & ~GNI_FLAGS)
        return EAI_BADFLAGS;
    if (sa == NULL || salen < sizeof(sa_family_t))
        return EAI_FAMILY;
    const void *addr;
    uint16_t port;
    uint32_t scope = 0;
    int family = sa->sa_family;
    int linklocal = 0;
    if (family == AF_INET) {
        if (salen < sizeof(struct sockaddr_in))
            return EAI_FAMILY;
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        addr = &sin->sin_addr;
        port = ntohs(sin->sin_port);
    } else if (family == AF_INET6) {
        if (salen < sizeof(struct sockaddr_in6))
            return EAI_FAMILY;
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        addr = &sin6->sin6_addr;
        port = ntohs(sin6->sin6_port);
        scope = sin6->sin6_scope_id;
        linklocal = IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr) ||
                    IN6_IS_ADDR_MC_LINKLOCAL(&sin6->sin6_addr);
    } else {
        return EAI_FAMILY;
    }
    if (host == NULL && serv == NULL)
        return EAI_NONAME;

    if (host != NULL && hostlen > 0) {
        if (flags & NI_NAMEREQD)
            return EAI_NONAME;
        char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
        if (inet_ntop(family, addr, buf, sizeof buf) == NULL)
            return EAI_FAMILY;
        if (scope != 0) {
            char ifname[IF_NAMESIZE];
            size_t n = strlen(buf);
            if (!(flags & NI_NUMERICSCOPE) && linklocal && if_indextoname(scope, ifname))
                snprintf(buf + n, sizeof buf - n, "%%%s", ifname);
            else
                snprintf(buf + n, sizeof buf - n, "%%%u", scope);
        }
        if (strlen(buf) >= hostlen)
            return EAI_OVERFLOW;
        strcpy(host, buf);
    }
    if (serv != NULL && servlen > 0) {
        char buf[32];
        const struct service *s = NULL;
        if (!(flags & NI_NUMERICSERV))
            s = service_by_port(port, (flags & NI_DGRAM) ? IPPROTO_UDP : IPPROTO_TCP);
        if (s != NULL)
            snprintf(buf, sizeof buf, "%s", s->name);
        else
            snprintf(buf, sizeof buf, "%u", port);
        if (strlen(buf) >= servlen)
            return EAI_OVERFLOW;
        strcpy(serv, buf);
    }
    return 0;
}

/* --- the legacy gethostby* interface --------------------------------------------- */

static int h_errno_value;

int *__h_errno_location(void) {
    return &h_errno_value;
}

const char *hstrerror(int code) {
    switch (code) {
    case 0: return "Resolver Error 0 (no error)";
    case HOST_NOT_FOUND: return "Unknown host";
    case TRY_AGAIN: return "Host name lookup failure";
    case NO_RECOVERY: return "Unknown server error";
    case NO_DATA: return "No address associated with name";
    default: return "Unknown resolver error";
    }
}

void herror(const char *prefix) {
    if (prefix != NULL && *prefix)
        fprintf(stderr, "%s: %s\n", prefix, hstrerror(h_errno));
    else
        fprintf(stderr, "%s\n", hstrerror(h_errno));
}

#define HOSTENT_MAX 16

static struct {
    struct hostent he;
    char name[256];
    char *aliases[1];
    char *addr_list[HOSTENT_MAX + 1];
    uint8_t addrs[HOSTENT_MAX][16];
} hostent_buf;

static struct hostent *fill_hostent(const char *name, int family, const uint8_t (*addrs)[16],
                                    int n) {
    int len = family == AF_INET ? 4 : 16;
    snprintf(hostent_buf.name, sizeof hostent_buf.name, "%s", name);
    hostent_buf.aliases[0] = NULL;
    for (int i = 0; i < n; i++) {
        memcpy(hostent_buf.addrs[i], addrs[i], (size_t)len);
        hostent_buf.addr_list[i] = (char *)hostent_buf.addrs[i];
    }
    hostent_buf.addr_list[n] = NULL;
    hostent_buf.he.h_name = hostent_buf.name;
    hostent_buf.he.h_aliases = hostent_buf.aliases;
    hostent_buf.he.h_addrtype = family;
    hostent_buf.he.h_length = len;
    hostent_buf.he.h_addr_list = hostent_buf.addr_list;
    return &hostent_buf.he;
}

struct hostent *gethostbyname2(const char *name, int family) {
    if (family != AF_INET && family != AF_INET6) {
        h_errno = NO_RECOVERY;
        errno = EAFNOSUPPORT;
        return NULL;
    }
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_CANONNAME;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0) {
        h_errno = rc == EAI_AGAIN ? TRY_AGAIN
                  : rc == EAI_NONAME || rc == EAI_ADDRFAMILY ? HOST_NOT_FOUND
                  : NO_RECOVERY;
        return NULL;
    }
    uint8_t addrs[HOSTENT_MAX][16];
    int n = 0;
    for (struct addrinfo *ai = res; ai != NULL && n < HOSTENT_MAX; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET)
            memcpy(addrs[n++], &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
        else
            memcpy(addrs[n++], &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
    }
    struct hostent *he =
        fill_hostent(res->ai_canonname ? res->ai_canonname : name, family, addrs, n);
    freeaddrinfo(res);
    h_errno = 0;
    return he;
}

struct hostent *gethostbyname(const char *name) {
    return gethostbyname2(name, AF_INET);
}

struct hostent *gethostbyaddr(const void *addr, socklen_t len, int family) {
    /* WASIX has no reverse lookup, so no address has a name. */
    if (addr == NULL || ((family != AF_INET || len != 4) && (family != AF_INET6 || len != 16))) {
        h_errno = NO_RECOVERY;
        errno = EINVAL;
        return NULL;
    }
    h_errno = HOST_NOT_FOUND;
    return NULL;
}
