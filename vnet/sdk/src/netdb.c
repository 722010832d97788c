/*
 * netdb.c — vnet SDK: name and service lookup (<netdb.h>).
 *
 * getaddrinfo, freeaddrinfo, gai_strerror, getnameinfo, gethostbyname,
 * gethostbyname2, gethostbyaddr (always HOST_NOT_FOUND), h_errno, herror, hstrerror,
 * getservbyname, getservbyport, getprotobyname, getprotobynumber.
 * wasi-libc has none of them for preview1.
 *
 * Host names are resolved on the wire when the guest's host has resolvers:
 * vnet then shows the guest a read-only /etc whose resolv.conf starts with
 * VNET_RESOLV_MARK and lists them. A name in /etc/hosts (localhost, the
 * host's own name) is answered from there; any other name is asked with
 * real DNS queries (AAAA, then A, as the families asked for require) over
 * UDP to each nameserver in turn, each waited for 1 s, twice round the list,
 * and again over TCP (2-byte length prefix) when an answer comes back
 * truncated. Answers are checked (ID, question, source) and CNAME chains
 * followed; a server that answered SERVFAIL or REFUSED (or whose port is
 * closed) is not asked that question again. NXDOMAIN is EAI_NONAME, no address of any asked type
 * EAI_NODATA, no answer or only SERVFAIL/REFUSED EAI_AGAIN. A resolv.conf
 * without the mark (a host directory preopened as /etc) is not vnet's and
 * is ignored, so a lookup never aims at the real machine's resolver.
 *
 * Without resolvers, names are resolved by the host (WASIX `resolve`): the
 * names of the virtual topology and "localhost", never on the wire.
 * Numeric addresses and ports are parsed here and never reach the host.
 * Results keep the answer's order (for AF_UNSPEC, IPv6 first). There is
 * no /etc/services: named services come from a small built-in table.
 *
 * getnameinfo and gethostbyaddr ask a PTR query (in-addr.arpa, ip6.arpa)
 * when there are resolvers and NI_NUMERICHOST is not set; without
 * resolvers (WASIX has no reverse lookup) getnameinfo gives numeric hosts,
 * and with NI_NAMEREQD fails with EAI_NONAME.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the GNU/BSD declarations, whatever the program's flags */
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <net/if.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* --- DNS on the wire ------------------------------------------------------------- */

#define VNET_RESOLV_MARK "# vnet resolv.conf"
#define DNS_MAX_SERVERS 3
#define DNS_TIMEOUT_MS 1000
#define DNS_ROUNDS 2
#define DNS_MAX_REPLY 65535
#define DNS_NAME_MAX 256

enum { DNS_T_A = 1, DNS_T_CNAME = 5, DNS_T_PTR = 12, DNS_T_AAAA = 28 };

struct dns_servers {
    int count;
    struct sockaddr_storage addr[DNS_MAX_SERVERS];
    socklen_t len[DNS_MAX_SERVERS];
};

/* The nameservers of vnet's /etc/resolv.conf; 0 if there is none. */
static int dns_read_servers(struct dns_servers *out) {
    out->count = 0;
    FILE *f = fopen("/etc/resolv.conf", "r");
    if (f == NULL)
        return 0;
    char line[256], text[128];
    int first = 1, ours = 0;
    while (fgets(line, sizeof line, f) != NULL && out->count < DNS_MAX_SERVERS) {
        if (first) {
            ours = strncmp(line, VNET_RESOLV_MARK, sizeof VNET_RESOLV_MARK - 1) == 0;
            first = 0;
            if (!ours)
                break;
        }
        if (sscanf(line, "nameserver %127s", text) != 1)
            continue;
        struct sockaddr_storage *ss = &out->addr[out->count];
        memset(ss, 0, sizeof *ss);
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
            sin->sin_port = htons(53);
            out->len[out->count++] = sizeof *sin;
        } else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons(53);
            out->len[out->count++] = sizeof *sin6;
        }
    }
    fclose(f);
    return ours ? out->count : 0;
}

/* Addresses /etc/hosts gives `name` (of the families wanted); -1 if it has no line. */
static int hosts_file_lookup(const char *name, int want4, int want6, struct gai_addr *out,
                             int max) {
    FILE *f = fopen("/etc/hosts", "r");
    if (f == NULL)
        return -1;
    char line[512];
    int n = 0, named = 0;
    while (fgets(line, sizeof line, f) != NULL && n < max) {
        char *save, *addr = strtok_r(line, " \t\r\n", &save);
        if (addr == NULL || addr[0] == '#')
            continue;
        for (char *alias = strtok_r(NULL, " \t\r\n", &save); alias != NULL;
             alias = strtok_r(NULL, " \t\r\n", &save)) {
            if (alias[0] == '#')
                break;
            if (strcasecmp(alias, name) != 0)
                continue;
            named = 1;
            struct gai_addr a;
            if (parse_numeric(addr, &a) == 1 && ((a.family == AF_INET && want4) ||
                                                 (a.family == AF_INET6 && want6)))
                out[n++] = a;
            break;
        }
    }
    fclose(f);
    /* IPv6 first, as the host call (and glibc's default policy table) orders them */
    struct gai_addr sorted[MAX_ADDRS];
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n && k < MAX_ADDRS; i++)
            if ((out[i].family == AF_INET6) == (pass == 0))
                sorted[k++] = out[i];
    memcpy(out, sorted, (size_t)k * sizeof sorted[0]);
    return named ? n : -1;
}

static int dns_build_query(uint8_t *buf, size_t size, uint16_t id, const char *name,
                           int type) {
    size_t n = 12;
    if (size < 12)
        return -1;
    memset(buf, 0, 12);
    buf[0] = (uint8_t)(id >> 8), buf[1] = (uint8_t)id;
    buf[2] = 0x01; /* RD */
    buf[5] = 1;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 0 && dot != NULL && dot[1] == '\0')
            break; /* a trailing dot */
        if (len == 0 || len > 63 || n + len + 6 > size)
            return -1;
        buf[n++] = (uint8_t)len;
        memcpy(buf + n, p, len);
        n += len;
        p += len + (dot ? 1 : 0);
    }
    if (n - 12 > 253)
        return -1;
    buf[n++] = 0;
    buf[n++] = (uint8_t)(type >> 8), buf[n++] = (uint8_t)type;
    buf[n++] = 0, buf[n++] = 1;
    return (int)n;
}

/* The name at *pos (compression followed backwards only); -1 if malformed. */
static int dns_read_name(const uint8_t *msg, int len, int *pos, char *out, size_t size) {
    int p = *pos, jumped = 0, floor = *pos;
    size_t o = 0;
    for (;;) {
        if (p >= len)
            return -1;
        uint8_t l = msg[p];
        if ((l & 0xc0) == 0xc0) {
            if (p + 1 >= len)
                return -1;
            int target = ((l & 0x3f) << 8) | msg[p + 1];
            if (target >= floor)
                return -1; /* forward or looping */
            if (!jumped)
                *pos = p + 2;
            jumped = 1;
            p = floor = target;
            continue;
        }
        if (l & 0xc0)
            return -1;
        if (l == 0)
            break;
        if (p + 1 + l > len || o + l + 2 > size)
            return -1;
        if (o)
            out[o++] = '.';
        memcpy(out + o, msg + p + 1, l);
        o += l;
        p += 1 + l;
    }
    if (!jumped)
        *pos = p + 1;
    out[o] = '\0';
    return 0;
}

static int dns_wait(int fd, int ms) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, ms);
}

static int dns_read_all(int fd, uint8_t *buf, int n) {
    int got = 0;
    while (got < n) {
        if (dns_wait(fd, DNS_TIMEOUT_MS) <= 0)
            return -1;
        ssize_t r = recv(fd, buf + got, (size_t)(n - got), 0);
        if (r <= 0)
            return -1;
        got += (int)r;
    }
    return got;
}

/* Does `reply` answer `query` (same ID and question, QR set)? */
static int dns_matches(const uint8_t *query, int qlen, const uint8_t *reply, int rlen) {
    if (rlen < qlen || !(reply[2] & 0x80) || reply[0] != query[0] || reply[1] != query[1] ||
        reply[4] != 0 || reply[5] != 1)
        return 0;
    for (int i = 12; i < qlen; i++) /* the question, compared case-insensitively */
        if (tolower(reply[i]) != tolower(query[i]))
            return 0;
    return 1;
}

static int dns_exchange_tcp(const struct dns_servers *sv, int i, const uint8_t *q, int qlen,
                            uint8_t *reply, int size) {
    int fd = socket(sv->addr[i].ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int n = -1;
    uint8_t framed[2 + 512], prefix[2];
    framed[0] = (uint8_t)(qlen >> 8), framed[1] = (uint8_t)qlen;
    memcpy(framed + 2, q, (size_t)qlen);
    if (connect(fd, (const struct sockaddr *)&sv->addr[i], sv->len[i]) == 0 &&
        send(fd, framed, (size_t)qlen + 2, 0) == qlen + 2 && dns_read_all(fd, prefix, 2) == 2) {
        n = (prefix[0] << 8) | prefix[1];
        if (n > size || dns_read_all(fd, reply, n) != n || !dns_matches(q, qlen, reply, n))
            n = -1;
    }
    close(fd);
    return n;
}

/* Ask the servers; the reply's length (and it in `reply`), or an EAI_* code. */
static int dns_ask(const struct dns_servers *sv, const char *name, int type, uint8_t *reply,
                   int size) {
    uint8_t q[512];
    uint16_t id;
    if (getentropy(&id, sizeof id) != 0)
        id = 0x5a5a;
    int qlen = dns_build_query(q, sizeof q, id, name, type);
    if (qlen < 0)
        return EAI_NONAME;
    int fds[DNS_MAX_SERVERS]; /* -1: no socket, or the server refused or failed this query */
    for (int i = 0; i < sv->count; i++) {
        fds[i] = socket(sv->addr[i].ss_family, SOCK_DGRAM, 0);
        if (fds[i] >= 0 &&
            connect(fds[i], (const struct sockaddr *)&sv->addr[i], sv->len[i]) != 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
    int result = EAI_AGAIN;
    for (int round = 0; round < DNS_ROUNDS && result == EAI_AGAIN; round++) {
        for (int i = 0; i < sv->count && result == EAI_AGAIN; i++) {
            if (fds[i] < 0 || send(fds[i], q, (size_t)qlen, 0) != qlen)
                continue;
            while (dns_wait(fds[i], DNS_TIMEOUT_MS) > 0) {
                ssize_t n = recv(fds[i], reply, (size_t)size, 0);
                if (n < 0) { /* ECONNREFUSED: nobody serves there */
                    close(fds[i]);
                    fds[i] = -1;
                    break;
                }
                if (!dns_matches(q, qlen, reply, (int)n))
                    continue; /* someone else's, or forged: keep waiting */
                if (reply[2] & 0x02)
                    n = dns_exchange_tcp(sv, i, q, qlen, reply, size);
                int rcode = n >= 12 ? reply[3] & 0x0f : -1;
                if (rcode == 0 || rcode == 3) {
                    result = (int)n;
                } else { /* SERVFAIL, REFUSED, a failed TCP retry: not this server again */
                    close(fds[i]);
                    fds[i] = -1;
                }
                break;
            }
        }
    }
    for (int i = 0; i < sv->count; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return result;
}

/* Records of `type` at the end of the CNAME chain from `name`, into out. */
static int dns_collect(const uint8_t *msg, int len, const char *name, int type,
                       struct gai_addr *out, int max, char *ptr_name, size_t ptr_size) {
    char want[DNS_NAME_MAX], owner[DNS_NAME_MAX], target[DNS_NAME_MAX];
    snprintf(want, sizeof want, "%s", name);
    size_t wl = strlen(want);
    if (wl > 0 && want[wl - 1] == '.')
        want[wl - 1] = '\0';
    int an = (msg[6] << 8) | msg[7], pos = 12, n = 0;
    if (dns_read_name(msg, len, &pos, owner, sizeof owner) < 0)
        return 0;
    pos += 4;
    for (int i = 0; i < an && pos < len; i++) {
        if (dns_read_name(msg, len, &pos, owner, sizeof owner) < 0 || pos + 10 > len)
            break;
        int rtype = (msg[pos] << 8) | msg[pos + 1];
        int rclass = (msg[pos + 2] << 8) | msg[pos + 3];
        int rdlen = (msg[pos + 8] << 8) | msg[pos + 9];
        int rd = pos + 10;
        pos = rd + rdlen;
        if (pos > len)
            break;
        if (rclass != 1 || strcasecmp(owner, want) != 0)
            continue;
        if (rtype == DNS_T_CNAME && type != DNS_T_CNAME) {
            int p = rd;
            if (dns_read_name(msg, len, &p, target, sizeof target) == 0)
                snprintf(want, sizeof want, "%s", target);
        } else if (rtype == type && type == DNS_T_PTR && ptr_name != NULL) {
            int p = rd;
            if (dns_read_name(msg, len, &p, target, sizeof target) == 0) {
                snprintf(ptr_name, ptr_size, "%s", target);
                return 1;
            }
        } else if (rtype == type && n < max &&
                   ((type == DNS_T_A && rdlen == 4) || (type == DNS_T_AAAA && rdlen == 16))) {
            memset(&out[n], 0, sizeof out[n]);
            out[n].family = type == DNS_T_A ? AF_INET : AF_INET6;
            memcpy(out[n].addr, msg + rd, (size_t)rdlen);
            n++;
        }
    }
    return n;
}

/* Resolve through vnet's resolvers: the number of addresses, an EAI_* code, or
 * -1000 when the host has no resolvers (then the host call answers). */
#define NO_RESOLVERS (-1000)
static int dns_resolve(const char *node, int q4, int q6, struct gai_addr *out, int max) {
    struct dns_servers sv;
    if (dns_read_servers(&sv) == 0)
        return NO_RESOLVERS;
    int local = hosts_file_lookup(node, q4, q6, out, max);
    if (local >= 0)
        return local > 0 ? local : EAI_NODATA;
    uint8_t *reply = malloc(DNS_MAX_REPLY);
    if (reply == NULL)
        return EAI_MEMORY;
    int n = 0, nxdomain = 0, answered = 0, failure = 0;
    const int types[2] = {DNS_T_AAAA, DNS_T_A};
    const int asked[2] = {q6, q4};
    for (int t = 0; t < 2 && !nxdomain; t++) {
        if (!asked[t])
            continue;
        int len = dns_ask(&sv, node, types[t], reply, DNS_MAX_REPLY);
        if (len < 0) {
            failure = len;
            continue;
        }
        answered = 1;
        if ((reply[3] & 0x0f) == 3)
            nxdomain = 1;
        else
            n += dns_collect(reply, len, node, types[t], out + n, max - n, NULL, 0);
    }
    free(reply);
    if (n > 0)
        return n;
    if (nxdomain)
        return EAI_NONAME;
    return answered ? EAI_NODATA : failure ? failure : EAI_AGAIN;
}

/* The PTR name of an address through vnet's resolvers: 0, an EAI_* code, or NO_RESOLVERS. */
static int dns_reverse(int family, const void *addr, char *name, size_t size) {
    struct dns_servers sv;
    if (dns_read_servers(&sv) == 0)
        return NO_RESOLVERS;
    char q[DNS_NAME_MAX];
    const uint8_t *a = addr;
    if (family == AF_INET) {
        snprintf(q, sizeof q, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
    } else {
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;
        for (int i = 15; i >= 0; i--) {
            q[o++] = hex[a[i] & 15], q[o++] = '.';
            q[o++] = hex[a[i] >> 4], q[o++] = '.';
        }
        snprintf(q + o, sizeof q - o, "ip6.arpa");
    }
    uint8_t *reply = malloc(DNS_MAX_REPLY);
    if (reply == NULL)
        return EAI_MEMORY;
    int len = dns_ask(&sv, q, DNS_T_PTR, reply, DNS_MAX_REPLY);
    int rc = len < 0 ? len : (reply[3] & 0x0f) == 3 ? EAI_NONAME
             : dns_collect(reply, len, q, DNS_T_PTR, NULL, 0, name, size) == 1 ? 0
             : EAI_NONAME;
    free(reply);
    return rc;
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
            int q4 = want4 || (family == AF_INET6 && (flags & AI_V4MAPPED));
            int q6 = want6 && family != AF_INET;
            nfound = dns_resolve(node, q4, q6, found, MAX_ADDRS);
            if (nfound == NO_RESOLVERS)
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

    if (host != NULL && hostlen > 0 && !(flags & NI_NUMERICHOST)) {
        char name[DNS_NAME_MAX];
        int rc = dns_reverse(family, addr, name, sizeof name);
        if (rc == 0) {
            if (flags & NI_NOFQDN) {
                char *dot = strchr(name, '.');
                if (dot != NULL)
                    *dot = '\0';
            }
            if (strlen(name) >= hostlen)
                return EAI_OVERFLOW;
            strcpy(host, name);
            host = NULL; /* done */
        } else if (rc != NO_RESOLVERS && rc != EAI_NONAME && (flags & NI_NAMEREQD)) {
            return rc;
        }
    }
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
    /* A PTR query through vnet's resolvers; without them (WASIX has no reverse
     * lookup) no address has a name. */
    if (addr == NULL || ((family != AF_INET || len != 4) && (family != AF_INET6 || len != 16))) {
        h_errno = NO_RECOVERY;
        errno = EINVAL;
        return NULL;
    }
    char name[DNS_NAME_MAX];
    int rc = dns_reverse(family, addr, name, sizeof name);
    if (rc != 0) {
        h_errno = rc == EAI_AGAIN ? TRY_AGAIN : HOST_NOT_FOUND;
        return NULL;
    }
    uint8_t copy[1][16];
    memcpy(copy[0], addr, len);
    h_errno = 0;
    return fill_hostent(name, family, (const uint8_t(*)[16])copy, 1);
}
