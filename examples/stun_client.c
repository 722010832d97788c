/* stun_client — what kind of NAT am I behind? (RFC 5389 Binding, RFC 5780 discovery), IPv4.
 *
 *   stun_client SERVER [PORT]
 *
 * SERVER is the primary address of a stun_server (or any RFC 5780 server
 * with OTHER-ADDRESS), PORT its primary port (default 3478). The tests of
 * RFC 5780 section 4, with a request sent up to three times 300 ms apart:
 *
 *   mapping (4.3)   one socket asks SERVER:PORT, then the other address on
 *                   the same port, then the other address and port: the same
 *                   XOR-MAPPED-ADDRESS everywhere is endpoint-independent,
 *                   the same only per address is address-dependent, else
 *                   address-and-port-dependent.
 *   filtering (4.4) a fresh socket asks SERVER:PORT, then asks for the answer
 *                   from the other address and port (CHANGE-REQUEST): if it
 *                   arrives, endpoint-independent; else from the other port
 *                   only: if that arrives, address-dependent; else
 *                   address-and-port-dependent.
 *   hairpin (4.5)   the first socket sends a Binding request to its own
 *                   mapped address; seeing it come back is hairpinning.
 *                   Behind a NAT whose mapping and filtering are both
 *                   address-and-port-dependent the request is filtered
 *                   whatever the NAT does with it: "unknown".
 *
 * Then one line to parse, e.g.
 *   stun_client: RESULT nat=yes mapping=endpoint-independent filtering=address-dependent
 *                hairpin=yes public=203.0.113.1:40000 local=10.0.0.2:40000
 * (one line). nat=no when the mapped address is the socket's own. Exits 0
 * with a result, 1 when the server does not answer (UDP blocked) or did not
 * honour CHANGE-REQUEST.
 *
 *   gcc -O2 -Wall examples/stun_client.c -o stun_client
 *   vnet build examples/stun_client.c -o stun_client.wasm
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
#include <time.h>
#include <unistd.h>

#define MAGIC_COOKIE 0x2112A442u
#define BINDING_REQUEST 0x0001
#define BINDING_SUCCESS 0x0101
#define ATTR_MAPPED_ADDRESS 0x0001
#define ATTR_CHANGE_REQUEST 0x0003
#define ATTR_XOR_MAPPED_ADDRESS 0x0020
#define ATTR_OTHER_ADDRESS 0x802C
#define CHANGE_IP 0x04
#define CHANGE_PORT 0x02
#define TRIES 3
#define WAIT_MS 300

static const char *EIM = "endpoint-independent", *ADM = "address-dependent",
                  *APDM = "address-and-port-dependent";

static unsigned get16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }
static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

static int same(const struct sockaddr_in *a, const struct sockaddr_in *b) {
    return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static const char *endpoint(const struct sockaddr_in *sa, char *buf, size_t len) {
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
    snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
    return buf;
}

/* A fresh 96-bit transaction id: unique within a run, different between runs. */
static void new_transaction(uint8_t id[12]) {
    static uint32_t counter;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint32_t words[3] = {++counter, (uint32_t)now.tv_nsec, (uint32_t)now.tv_sec};
    memcpy(id, words, 12);
}

/* A Binding request, with a CHANGE-REQUEST attribute when `change` is not 0. */
static size_t request(uint8_t out[28], const uint8_t id[12], unsigned change) {
    put16(out, BINDING_REQUEST);
    put16(out + 2, change ? 8 : 0);
    uint32_t cookie = htonl(MAGIC_COOKIE);
    memcpy(out + 4, &cookie, 4);
    memcpy(out + 8, id, 12);
    if (!change) return 20;
    put16(out + 20, ATTR_CHANGE_REQUEST);
    put16(out + 22, 4);
    memset(out + 24, 0, 4);
    out[27] = (uint8_t)change;
    return 28;
}

/* An IPv4 (XOR-)MAPPED-ADDRESS-style attribute value into `sa`; 0 if it is not one. */
static int parse_address(const uint8_t *value, unsigned len, int xor, struct sockaddr_in *sa) {
    if (len != 8 || value[1] != 0x01) return 0;
    uint16_t port = (uint16_t)get16(value + 2);
    uint32_t addr;
    memcpy(&addr, value + 4, 4);
    addr = ntohl(addr);
    if (xor) {
        port ^= (uint16_t)(MAGIC_COOKIE >> 16);
        addr ^= MAGIC_COOKIE;
    }
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    sa->sin_addr.s_addr = htonl(addr);
    return 1;
}

struct answer {
    struct sockaddr_in source;  /* where the response came from */
    struct sockaddr_in mapped;  /* XOR-MAPPED-ADDRESS (else MAPPED-ADDRESS) */
    struct sockaddr_in other;   /* OTHER-ADDRESS, port 0 if absent */
};

/* Waits up to `ms` for a datagram on fd that is a STUN message of `type` with
 * transaction `id`; 1 and *got filled in, or 0. Other datagrams are skipped. */
static int await_message(int fd, unsigned type, const uint8_t id[12], int ms,
                         struct answer *got) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= ms) return 0;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(ms - elapsed)) <= 0) return 0;
        uint8_t in[1500];
        socklen_t len = sizeof got->source;
        ssize_t n = recvfrom(fd, in, sizeof in, 0, (struct sockaddr *)&got->source, &len);
        uint32_t cookie;
        if (n < 20) continue;
        memcpy(&cookie, in + 4, 4);
        if (get16(in) != type || ntohl(cookie) != MAGIC_COOKIE || memcmp(in + 8, id, 12) != 0 ||
            20 + get16(in + 2) != (size_t)n)
            continue;
        int have_xor = 0, have_plain = 0;
        struct sockaddr_in plain;
        memset(&got->other, 0, sizeof got->other);
        for (size_t at = 20; at + 4 <= (size_t)n;) {
            unsigned attr = get16(in + at), alen = get16(in + at + 2);
            if (at + 4 + alen > (size_t)n) break;
            const uint8_t *value = in + at + 4;
            if (attr == ATTR_XOR_MAPPED_ADDRESS)
                have_xor = parse_address(value, alen, 1, &got->mapped);
            else if (attr == ATTR_MAPPED_ADDRESS)
                have_plain = parse_address(value, alen, 0, &plain);
            else if (attr == ATTR_OTHER_ADDRESS)
                parse_address(value, alen, 0, &got->other);
            at += 4 + ((alen + 3) & ~3u);
        }
        if (!have_xor && have_plain) got->mapped = plain;
        if (type != BINDING_SUCCESS || have_xor || have_plain) return 1;
    }
}

/* One Binding transaction from fd to `to`: 1 and *got when a response came. */
static int binding(int fd, const struct sockaddr_in *to, unsigned change, struct answer *got) {
    uint8_t id[12], out[28];
    new_transaction(id);
    size_t len = request(out, id, change);
    for (int attempt = 0; attempt < TRIES; attempt++) {
        if (sendto(fd, out, len, 0, (const struct sockaddr *)to, sizeof *to) < 0) {
            perror("stun_client: sendto");
            return 0;
        }
        if (await_message(fd, BINDING_SUCCESS, id, WAIT_MS, got)) return 1;
    }
    return 0;
}

/* A UDP socket on `local`'s address and a port of the system's choosing; its endpoint in *bound. */
static int open_socket(const struct sockaddr_in *local, struct sockaddr_in *bound) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = *local;
    any.sin_port = 0;
    socklen_t len = sizeof *bound;
    if (fd < 0 || bind(fd, (struct sockaddr *)&any, sizeof any) != 0 ||
        getsockname(fd, (struct sockaddr *)bound, &len) != 0) {
        perror("stun_client: socket");
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: stun_client SERVER [PORT]\n");
        return 2;
    }
    struct sockaddr_in server;
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)(argc > 2 ? atoi(argv[2]) : 3478));
    if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) {
        fprintf(stderr, "stun_client: %s is not an IPv4 address\n", argv[1]);
        return 2;
    }
    /* The address this host sends from towards the server: a connected probe socket's. */
    struct sockaddr_in local;
    socklen_t local_len = sizeof local;
    int probe = socket(AF_INET, SOCK_DGRAM, 0);
    if (probe < 0 || connect(probe, (struct sockaddr *)&server, sizeof server) != 0 ||
        getsockname(probe, (struct sockaddr *)&local, &local_len) != 0) {
        perror("stun_client: no route to the server");
        return 1;
    }
    close(probe);

    char a[32], b[32], c[32];
    struct sockaddr_in bound;
    int fd = open_socket(&local, &bound);
    struct answer first, second, third;
    if (!binding(fd, &server, 0, &first)) {
        printf("stun_client: no answer from %s: UDP blocked\n", endpoint(&server, a, sizeof a));
        printf("stun_client: RESULT udp=blocked\n");
        return 1;
    }
    int nat = !same(&first.mapped, &bound);
    printf("stun_client: %s is mapped to %s (%s); the server's other address is %s\n",
           endpoint(&bound, a, sizeof a), endpoint(&first.mapped, b, sizeof b),
           nat ? "behind a NAT" : "no NAT", endpoint(&first.other, c, sizeof c));
    if (first.other.sin_port == 0 || first.other.sin_addr.s_addr == server.sin_addr.s_addr) {
        printf("stun_client: the server has no other address (no OTHER-ADDRESS): "
               "cannot discover NAT behaviour\n");
        return 1;
    }

    /* Mapping (RFC 5780 4.3) */
    const char *mapping = EIM;
    struct sockaddr_in alternate = first.other; /* other address, other port */
    struct sockaddr_in other_address = server;  /* other address, same port */
    other_address.sin_addr = first.other.sin_addr;
    if (!binding(fd, &other_address, 0, &second)) {
        printf("stun_client: no answer from %s\n", endpoint(&other_address, a, sizeof a));
        return 1;
    }
    printf("stun_client: to %s: mapped to %s\n", endpoint(&other_address, a, sizeof a),
           endpoint(&second.mapped, b, sizeof b));
    if (!same(&second.mapped, &first.mapped)) {
        if (!binding(fd, &alternate, 0, &third)) {
            printf("stun_client: no answer from %s\n", endpoint(&alternate, a, sizeof a));
            return 1;
        }
        printf("stun_client: to %s: mapped to %s\n", endpoint(&alternate, a, sizeof a),
               endpoint(&third.mapped, b, sizeof b));
        mapping = same(&third.mapped, &second.mapped) ? ADM : APDM;
    }

    /* Filtering (RFC 5780 4.4), from a socket that has sent to SERVER:PORT only */
    struct sockaddr_in fresh_bound;
    int fresh = open_socket(&local, &fresh_bound);
    struct answer got;
    if (!binding(fresh, &server, 0, &got)) {
        printf("stun_client: no answer from %s\n", endpoint(&server, a, sizeof a));
        return 1;
    }
    const char *filtering;
    if (binding(fresh, &server, CHANGE_IP | CHANGE_PORT, &got)) {
        if (got.source.sin_addr.s_addr == server.sin_addr.s_addr || got.source.sin_port ==
            server.sin_port) {
            printf("stun_client: the server answered from %s, ignoring CHANGE-REQUEST\n",
                   endpoint(&got.source, a, sizeof a));
            return 1;
        }
        filtering = EIM;
    } else if (binding(fresh, &server, CHANGE_PORT, &got)) {
        if (got.source.sin_port == server.sin_port) {
            printf("stun_client: the server answered from %s, ignoring CHANGE-REQUEST\n",
                   endpoint(&got.source, a, sizeof a));
            return 1;
        }
        filtering = ADM;
    } else {
        filtering = APDM;
    }
    printf("stun_client: answers from the other address and port %s, from the other port %s\n",
           filtering == EIM ? "pass" : "are filtered", filtering == APDM ? "are filtered" : "pass");
    close(fresh);

    /* Hairpinning (RFC 5780 4.5): a Binding request to our own mapped address */
    const char *hairpin;
    uint8_t id[12], out[28];
    new_transaction(id);
    size_t len = request(out, id, 0);
    int seen = 0;
    for (int attempt = 0; attempt < TRIES && !seen; attempt++) {
        sendto(fd, out, len, 0, (struct sockaddr *)&first.mapped, sizeof first.mapped);
        seen = await_message(fd, BINDING_REQUEST, id, WAIT_MS, &got);
    }
    if (seen)
        hairpin = "yes";
    else if (mapping == APDM && filtering == APDM)
        hairpin = "unknown";
    else
        hairpin = "no";
    printf("stun_client: a request to our own mapped address %s\n",
           seen ? "came back (hairpinning)" : "did not come back");
    close(fd);
    printf("stun_client: RESULT nat=%s mapping=%s filtering=%s hairpin=%s public=%s local=%s\n",
           nat ? "yes" : "no", mapping, filtering, hairpin,
           endpoint(&first.mapped, a, sizeof a), endpoint(&bound, b, sizeof b));
    return 0;
}
