/*
 * own_resolver.c — a guest that brings its own DNS client, as mongoose and most
 * P2P stacks do: it never calls getaddrinfo. It reads the first `nameserver`
 * of /etc/resolv.conf, builds each query itself (RFC 1035), sends it over UDP
 * (two tries, 1 s apart), asks again over TCP (2-byte length prefix) when the
 * answer comes back truncated, and parses the answer, following CNAMEs.
 *
 *   own_resolver [-t] [-c PORT] NAME:TYPE ...     TYPE: a aaaa txt srv mx ptr cname
 *
 * -t asks over TCP from the start. -c PORT connects (TCP) to the first
 * address each A query found, to see what a firewall makes of it.
 * Prints one line per answer record and one `rcode` line per query.
 * Portable C: builds natively with cc and to wasm with vnet build.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_storage server;
static socklen_t server_len;
static uint16_t next_id = 0x4a21;

static int read_resolv_conf(void) {
    FILE *f = fopen("/etc/resolv.conf", "r");
    char line[256], addr[128];
    if (f == NULL) {
        perror("/etc/resolv.conf");
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "nameserver %127s", addr) != 1)
            continue;
        struct sockaddr_in *sin = (struct sockaddr_in *)&server;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&server;
        memset(&server, 0, sizeof server);
        if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
            sin->sin_port = htons(53);
            server_len = sizeof *sin;
        } else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons(53);
            server_len = sizeof *sin6;
        } else {
            continue;
        }
        fclose(f);
        printf("resolver %s\n", addr);
        return 0;
    }
    fclose(f);
    fprintf(stderr, "no nameserver in /etc/resolv.conf\n");
    return -1;
}

static int type_number(const char *t) {
    static const struct { const char *name; int number; } types[] = {
        {"a", 1}, {"cname", 5}, {"ptr", 12}, {"mx", 15}, {"txt", 16}, {"aaaa", 28}, {"srv", 33}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, t) == 0)
            return types[i].number;
    return -1;
}

/* The query for name/type into buf; its length, or -1. */
static int build_query(uint8_t *buf, size_t size, uint16_t id, const char *name, int type) {
    size_t n = 12;
    memset(buf, 0, 12);
    buf[0] = id >> 8, buf[1] = id & 0xff;
    buf[2] = 0x01; /* RD */
    buf[5] = 1;    /* QDCOUNT */
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 0 || len > 63 || n + len + 6 > size)
            return -1;
        buf[n++] = (uint8_t)len;
        memcpy(buf + n, p, len);
        n += len;
        p += len + (dot ? 1 : 0);
    }
    buf[n++] = 0;
    buf[n++] = (uint8_t)(type >> 8), buf[n++] = (uint8_t)type;
    buf[n++] = 0, buf[n++] = 1; /* IN */
    return (int)n;
}

/* Read the (possibly compressed) name at *pos into out; -1 if malformed. */
static int read_name(const uint8_t *msg, int len, int *pos, char *out, size_t outsize) {
    int p = *pos, jumped = 0, hops = 0;
    size_t o = 0;
    for (;;) {
        if (p >= len || hops > 32)
            return -1;
        uint8_t l = msg[p];
        if ((l & 0xc0) == 0xc0) {
            if (p + 1 >= len)
                return -1;
            if (!jumped)
                *pos = p + 2;
            jumped = 1;
            hops++;
            p = ((l & 0x3f) << 8) | msg[p + 1];
            continue;
        }
        if (l == 0) {
            if (!jumped)
                *pos = p + 1;
            break;
        }
        if (p + 1 + l > len || o + l + 2 > outsize)
            return -1;
        if (o)
            out[o++] = '.';
        memcpy(out + o, msg + p + 1, l);
        o += l;
        p += 1 + l;
    }
    out[o] = '\0';
    return 0;
}

static int wait_readable(int fd, int ms) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, ms);
}

static int exchange_udp(const uint8_t *q, int qlen, uint8_t *reply, int size) {
    int fd = socket(server.ss_family, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&server, server_len) != 0) {
        perror("udp socket");
        return -1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (send(fd, q, (size_t)qlen, 0) != qlen) {
            perror("send");
            break;
        }
        while (wait_readable(fd, 1000) > 0) {
            int n = (int)recv(fd, reply, (size_t)size, 0);
            if (n >= 12 && reply[0] == q[0] && reply[1] == q[1]) { /* our ID */
                close(fd);
                return n;
            }
        }
        printf("timeout, attempt %d\n", attempt + 1);
    }
    close(fd);
    return -1;
}

static int read_all(int fd, uint8_t *buf, int n) {
    int got = 0;
    while (got < n) {
        int r = (int)recv(fd, buf + got, (size_t)(n - got), 0);
        if (r <= 0)
            return -1;
        got += r;
    }
    return got;
}

static int exchange_tcp(const uint8_t *q, int qlen, uint8_t *reply, int size) {
    int fd = socket(server.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&server, server_len) != 0) {
        perror("tcp connect");
        return -1;
    }
    uint8_t framed[2 + 512];
    framed[0] = (uint8_t)(qlen >> 8), framed[1] = (uint8_t)qlen;
    memcpy(framed + 2, q, (size_t)qlen);
    uint8_t prefix[2];
    int n = -1;
    if (send(fd, framed, (size_t)qlen + 2, 0) == qlen + 2 && read_all(fd, prefix, 2) == 2) {
        n = (prefix[0] << 8) | prefix[1];
        if (n > size || read_all(fd, reply, n) != n)
            n = -1;
    }
    close(fd);
    return n;
}

static void try_connect(const uint8_t *addr, int port) {
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char text[INET_ADDRSTRLEN];
    memcpy(&sin.sin_addr, addr, 4);
    inet_ntop(AF_INET, addr, text, sizeof text);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0)
        printf("connect %s:%d ok\n", text, port);
    else
        printf("connect %s:%d failed: %s\n", text, port, strerror(errno));
    close(fd);
}

static int lookup(const char *name, const char *type_text, int tcp, int connect_port) {
    int type = type_number(type_text);
    uint8_t q[512], reply[65536];
    int qlen = type < 0 ? -1 : build_query(q, sizeof q, next_id++, name, type);
    if (qlen < 0) {
        fprintf(stderr, "bad query %s:%s\n", name, type_text);
        return 1;
    }
    int n = tcp ? exchange_tcp(q, qlen, reply, sizeof reply) : exchange_udp(q, qlen, reply,
                                                                          sizeof reply);
    if (n > 0 && !tcp && (reply[2] & 0x02)) {
        printf("%s %s: truncated, asking over tcp\n", name, type_text);
        n = exchange_tcp(q, qlen, reply, sizeof reply);
    }
    if (n < 12 || !(reply[2] & 0x80)) {
        printf("%s %s: no answer\n", name, type_text);
        return 1;
    }
    int rcode = reply[3] & 0x0f;
    int qd = (reply[4] << 8) | reply[5], an = (reply[6] << 8) | reply[7];
    int pos = 12;
    char owner[256], value[256], want[256];
    snprintf(want, sizeof want, "%s", name);
    for (int i = 0; i < qd; i++) {
        if (read_name(reply, n, &pos, owner, sizeof owner) < 0)
            return 1;
        pos += 4;
    }
    int connected = 0;
    for (int i = 0; i < an && pos < n; i++) {
        if (read_name(reply, n, &pos, owner, sizeof owner) < 0 || pos + 10 > n)
            return 1;
        int rtype = (reply[pos] << 8) | reply[pos + 1];
        uint32_t ttl = ((uint32_t)reply[pos + 4] << 24) | ((uint32_t)reply[pos + 5] << 16) |
                       ((uint32_t)reply[pos + 6] << 8) | reply[pos + 7];
        int rdlen = (reply[pos + 8] << 8) | reply[pos + 9];
        int rd = pos + 10;
        pos = rd + rdlen;
        if (pos > n)
            return 1;
        if (strcasecmp(owner, want) != 0)
            continue; /* not on our chain */
        int p = rd;
        if (rtype == 1 && rdlen == 4) {
            inet_ntop(AF_INET, reply + rd, value, sizeof value);
            printf("%s A %s ttl=%u\n", owner, value, ttl);
            if (connect_port && !connected++)
                try_connect(reply + rd, connect_port);
        } else if (rtype == 28 && rdlen == 16) {
            inet_ntop(AF_INET6, reply + rd, value, sizeof value);
            printf("%s AAAA %s ttl=%u\n", owner, value, ttl);
        } else if (rtype == 5 || rtype == 12) {
            if (read_name(reply, n, &p, value, sizeof value) < 0)
                return 1;
            printf("%s %s %s\n", owner, rtype == 5 ? "CNAME" : "PTR", value);
            if (rtype == 5)
                snprintf(want, sizeof want, "%s", value);
        } else if (rtype == 15) {
            p += 2;
            if (read_name(reply, n, &p, value, sizeof value) < 0)
                return 1;
            printf("%s MX %d %s\n", owner, (reply[rd] << 8) | reply[rd + 1], value);
        } else if (rtype == 33) {
            p += 6;
            if (read_name(reply, n, &p, value, sizeof value) < 0)
                return 1;
            printf("%s SRV %d %d %d %s\n", owner, (reply[rd] << 8) | reply[rd + 1],
                   (reply[rd + 2] << 8) | reply[rd + 3], (reply[rd + 4] << 8) | reply[rd + 5],
                   value);
        } else if (rtype == 16) {
            while (p < rd + rdlen) {
                int l = reply[p];
                printf("%s TXT \"%.*s\"\n", owner, l, (const char *)reply + p + 1);
                p += 1 + l;
            }
        }
    }
    printf("%s %s: rcode %d\n", name, type_text, rcode);
    return 0;
}

int main(int argc, char **argv) {
    int tcp = 0, port = 0, failures = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (read_resolv_conf() != 0)
        return 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0) {
            tcp = 1;
        } else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else {
            char name[256];
            snprintf(name, sizeof name, "%s", argv[i]);
            char *colon = strrchr(name, ':');
            if (colon == NULL) {
                fprintf(stderr, "NAME:TYPE expected, not %s\n", argv[i]);
                return 2;
            }
            *colon = '\0';
            failures += lookup(name, colon + 1, tcp, port);
        }
    }
    return failures ? 1 : 0;
}
