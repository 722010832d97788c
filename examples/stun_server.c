/* stun_server — a STUN server for NAT behaviour discovery (RFC 5389 + RFC 5780), IPv4.
 *
 *   stun_server ADDR1 ADDR2 [PORT1 [PORT2 [COUNT]]]
 *
 * Listens on four UDP endpoints: ADDR1 and ADDR2 (two addresses of this
 * host), each on PORT1 (default 3478) and PORT2 (default 3479). Every
 * Binding request gets a success response carrying the source the request
 * came from (XOR-MAPPED-ADDRESS, and MAPPED-ADDRESS for RFC 3489 clients),
 * the endpoint the response is sent from (RESPONSE-ORIGIN) and the
 * endpoint on the other address and the other port (OTHER-ADDRESS). A
 * CHANGE-REQUEST attribute asks for the response from the other address
 * (flag 0x04) and/or the other port (0x02): that is how a client behind a
 * NAT learns what its NAT lets in. A request with an unknown
 * comprehension-required attribute gets a 420 error; anything that is not a
 * well-formed STUN Binding request is ignored. Exits after COUNT requests (default: never).
 *
 *   gcc -O2 -Wall examples/stun_server.c -o stun_server
 *   vnet build examples/stun_server.c -o stun_server.wasm
 *   ./stun_server 127.0.0.1 127.0.0.2 &  ./stun_client 127.0.0.1
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAGIC_COOKIE 0x2112A442u
#define BINDING_REQUEST 0x0001
#define BINDING_SUCCESS 0x0101
#define BINDING_ERROR 0x0111
#define ATTR_MAPPED_ADDRESS 0x0001
#define ATTR_CHANGE_REQUEST 0x0003
#define ATTR_ERROR_CODE 0x0009
#define ATTR_UNKNOWN_ATTRIBUTES 0x000A
#define ATTR_XOR_MAPPED_ADDRESS 0x0020
#define ATTR_SOFTWARE 0x8022
#define ATTR_RESPONSE_ORIGIN 0x802B
#define ATTR_OTHER_ADDRESS 0x802C
#define CHANGE_IP 0x04
#define CHANGE_PORT 0x02

static unsigned get16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }
static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

/* A response being built: header, then attributes appended one by one. */
struct message {
    uint8_t data[512];
    size_t len;
};

static void begin(struct message *m, unsigned type, const uint8_t *transaction) {
    put16(m->data, type);
    put16(m->data + 2, 0);
    uint32_t cookie = htonl(MAGIC_COOKIE);
    memcpy(m->data + 4, &cookie, 4);
    memcpy(m->data + 8, transaction, 12);
    m->len = 20;
}

static void attribute(struct message *m, unsigned type, const void *value, size_t len) {
    put16(m->data + m->len, type);
    put16(m->data + m->len + 2, (unsigned)len);
    memcpy(m->data + m->len + 4, value, len);
    size_t padded = (len + 3) & ~(size_t)3;
    memset(m->data + m->len + 4 + len, 0, padded - len);
    m->len += 4 + padded;
    put16(m->data + 2, (unsigned)(m->len - 20));
}

/* MAPPED-ADDRESS-style value (family 1 = IPv4); `xor` applies the magic cookie. */
static void address_attribute(struct message *m, unsigned type, const struct sockaddr_in *sa,
                              int xor) {
    uint8_t value[8] = {0, 0x01};
    uint16_t port = ntohs(sa->sin_port);
    uint32_t addr = ntohl(sa->sin_addr.s_addr);
    if (xor) {
        port ^= (uint16_t)(MAGIC_COOKIE >> 16);
        addr ^= MAGIC_COOKIE;
    }
    put16(value + 2, port);
    uint32_t net = htonl(addr);
    memcpy(value + 4, &net, 4);
    attribute(m, type, value, sizeof value);
}

static const char *endpoint(const struct sockaddr_in *sa, char *buf, size_t len) {
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
    snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
    return buf;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3 || argc > 6) {
        fprintf(stderr, "usage: stun_server ADDR1 ADDR2 [PORT1 [PORT2 [COUNT]]]\n");
        return 2;
    }
    int ports[2] = {argc > 3 ? atoi(argv[3]) : 3478, argc > 4 ? atoi(argv[4]) : 3479};
    long count = argc > 5 ? atol(argv[5]) : 0;
    /* fds[a][p]: address a (0 = ADDR1, 1 = ADDR2), port p (0 = PORT1, 1 = PORT2) */
    struct sockaddr_in local[2][2];
    int fds[2][2];
    struct pollfd pfds[4];
    for (int a = 0; a < 2; a++) {
        for (int p = 0; p < 2; p++) {
            struct sockaddr_in *sa = &local[a][p];
            memset(sa, 0, sizeof *sa);
            sa->sin_family = AF_INET;
            sa->sin_port = htons((uint16_t)ports[p]);
            if (inet_pton(AF_INET, argv[1 + a], &sa->sin_addr) != 1) {
                fprintf(stderr, "stun_server: %s is not an IPv4 address\n", argv[1 + a]);
                return 2;
            }
            int fd = socket(AF_INET, SOCK_DGRAM, 0);
            char where[32];
            if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof *sa) != 0) {
                fprintf(stderr, "stun_server: bind %s: %s\n", endpoint(sa, where, sizeof where),
                        strerror(errno));
                return 1;
            }
            fds[a][p] = fd;
            pfds[a * 2 + p] = (struct pollfd){.fd = fd, .events = POLLIN};
        }
    }
    printf("stun_server: listening on %s and %s, ports %d and %d\n", argv[1], argv[2],
           ports[0], ports[1]);
    for (long served = 0; count == 0 || served < count;) {
        if (poll(pfds, 4, -1) < 0) {
            if (errno == EINTR) continue;
            perror("stun_server: poll");
            return 1;
        }
        for (int i = 0; i < 4; i++) {
            if (!(pfds[i].revents & POLLIN)) continue;
            int a = i / 2, p = i % 2;
            uint8_t in[1500];
            struct sockaddr_in peer;
            socklen_t peer_len = sizeof peer;
            ssize_t n = recvfrom(fds[a][p], in, sizeof in, 0, (struct sockaddr *)&peer,
                                 &peer_len);
            if (n < 20 || peer.sin_family != AF_INET) continue;
            uint32_t cookie;
            memcpy(&cookie, in + 4, 4);
            size_t body = get16(in + 2);
            if (get16(in) != BINDING_REQUEST || ntohl(cookie) != MAGIC_COOKIE ||
                body % 4 != 0 || 20 + body != (size_t)n)
                continue; /* not a STUN Binding request: ignored (RFC 5389 7.3) */
            unsigned change = 0;
            uint8_t unknown[16];
            size_t unknown_len = 0;
            int malformed = 0;
            for (size_t at = 20; at < (size_t)n;) {
                unsigned type = get16(in + at), len = get16(in + at + 2);
                if (at + 4 + len > (size_t)n) {
                    malformed = 1; /* an attribute running past the end */
                    break;
                }
                if (type == ATTR_CHANGE_REQUEST && len == 4)
                    change = in[at + 7] & (CHANGE_IP | CHANGE_PORT);
                else if (type < 0x8000 && unknown_len < sizeof unknown) {
                    put16(unknown + unknown_len, type); /* comprehension-required, unknown */
                    unknown_len += 2;
                }
                at += 4 + ((len + 3) & ~3u);
            }
            if (malformed) continue; /* discarded, unanswered */
            int ra = change & CHANGE_IP ? 1 - a : a, rp = change & CHANGE_PORT ? 1 - p : p;
            struct message out;
            if (unknown_len) {
                begin(&out, BINDING_ERROR, in + 8);
                uint8_t error[24] = {0, 0, 4, 20};
                memcpy(error + 4, "Unknown Attribute", 17);
                attribute(&out, ATTR_ERROR_CODE, error, 21);
                attribute(&out, ATTR_UNKNOWN_ATTRIBUTES, unknown, unknown_len);
                ra = a;
                rp = p;
            } else {
                begin(&out, BINDING_SUCCESS, in + 8);
                address_attribute(&out, ATTR_XOR_MAPPED_ADDRESS, &peer, 1);
                address_attribute(&out, ATTR_MAPPED_ADDRESS, &peer, 0);
                address_attribute(&out, ATTR_RESPONSE_ORIGIN, &local[ra][rp], 0);
                address_attribute(&out, ATTR_OTHER_ADDRESS, &local[1 - a][1 - p], 0);
                attribute(&out, ATTR_SOFTWARE, "vnet example stun_server", 24);
            }
            char from[32], to[32], via[32];
            printf("stun_server: binding request from %s to %s%s%s, answered from %s\n",
                   endpoint(&peer, from, sizeof from), endpoint(&local[a][p], to, sizeof to),
                   change & CHANGE_IP ? " change-ip" : "",
                   change & CHANGE_PORT ? " change-port" : "",
                   endpoint(&local[ra][rp], via, sizeof via));
            if (sendto(fds[ra][rp], out.data, out.len, 0, (struct sockaddr *)&peer,
                       sizeof peer) < 0)
                perror("stun_server: sendto");
            served++;
        }
    }
    for (int i = 0; i < 4; i++) close(pfds[i].fd);
    return 0;
}
