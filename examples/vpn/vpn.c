/*
 * vpn.c — a small point-to-point VPN: IP packets (TUN) or Ethernet frames (TAP)
 * over UDP, authenticated and encrypted with XChaCha20-Poly1305 (Monocypher).
 *
 * Portable Linux C: the same source runs natively against the kernel's
 * /dev/net/tun and as a vnet guest against a TUN/TAP device the sandbox grants
 * (vnet run --guest-tun ...). It opens the device with TUNSETIFF, optionally
 * configures its address, netmask, peer and MTU with the SIOCSIF* ioctls, and
 * moves packets between the device and a UDP socket with select().
 *
 *   vpn -s -p PORT -k KEY [-i tun0] [-a 10.8.0.1/24] [-P 10.8.0.2] [-T] [-m 1400]
 *   vpn -c HOST -p PORT -k KEY [-i tun0] [-a 10.8.0.2/24] [-P 10.8.0.1] [-T]
 *
 * KEY is 64 hex digits (a pre-shared 256-bit key; or the VPN_KEY environment
 * variable). Each direction has its own key, derived with BLAKE2b. A datagram
 * is: type (1 byte), 3 zero bytes, a 64-bit counter, a 24-byte nonce, a
 * 16-byte tag, the ciphertext; the first 12 bytes are authenticated as
 * associated data. Counters start at the sender's wall-clock time in
 * microseconds and only grow, so a receiver drops replays with a 64-packet
 * sliding window, across restarts of the peer too.
 *
 * The client says HELLO every 500 ms until the server answers WELCOME; both
 * send KEEPALIVE every second; a client that hears nothing authentic for
 * 3 s says "tunnel down" and goes back to HELLO, so it reconnects after loss.
 * The server answers whichever address last sent it an authentic packet (the
 * client may move). Events and, at exit (SIGTERM, SIGINT or -x SECONDS), the
 * counters are printed on stdout.
 *
 * Third-party code: Monocypher (BSD-2-Clause or CC0), fetched from the
 * pymonocypher sdist on PyPI by the example build (examples/vpn/third_party.toml).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "monocypher.h"

enum { HELLO = 1, WELCOME = 2, DATA = 3, KEEPALIVE = 4 };
enum { HEADER = 12, NONCE = 24, TAG = 16, OVERHEAD = HEADER + NONCE + TAG, MAX_PACKET = 65536 };

static volatile sig_atomic_t stopping;

static struct {
    unsigned long tun_in, tun_out, udp_in, udp_out, bad_auth, replays, malformed, ups;
} stats;

struct direction {
    uint8_t key[32];
    uint64_t counter;  /* sending: the next counter; receiving: the highest seen */
    uint64_t window;   /* receiving: bit i set = counter (highest - i) seen */
};

static struct direction tx, rx;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

static uint64_t now_us(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int parse_key(const char *hex, uint8_t key[32]) {
    if (hex == NULL || strlen(hex) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        unsigned int byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
            return -1;
        key[i] = (uint8_t)byte;
    }
    return 0;
}

static void derive(const uint8_t psk[32], const char *label, uint8_t out[32]) {
    crypto_blake2b_keyed(out, 32, psk, 32, (const uint8_t *)label, strlen(label));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Seals `len` bytes of payload (already at out + OVERHEAD) into a datagram. */
static size_t seal(uint8_t *out, int type, size_t len) {
    memset(out, 0, HEADER);
    out[0] = (uint8_t)type;
    put_u64(out + 4, tx.counter++);
    uint8_t *nonce = out + HEADER, *tag = nonce + NONCE, *text = tag + TAG;
    if (getentropy(nonce, NONCE) != 0) {
        perror("vpn: getentropy");
        exit(1);
    }
    crypto_aead_lock(text, tag, tx.key, nonce, out, HEADER, text, len);
    return OVERHEAD + len;
}

/* Opens a datagram in place: returns the payload length, or -1 (and counts why). */
static long unseal(uint8_t *in, size_t len, int *type) {
    if (len < OVERHEAD || in[0] < HELLO || in[0] > KEEPALIVE || in[1] || in[2] || in[3]) {
        stats.malformed++;
        return -1;
    }
    uint64_t counter = get_u64(in + 4);
    if (rx.counter && counter <= rx.counter &&
        (rx.counter - counter >= 64 || (rx.window >> (rx.counter - counter)) & 1)) {
        stats.replays++;
        return -1;
    }
    uint8_t *nonce = in + HEADER, *tag = nonce + NONCE, *text = tag + TAG;
    if (crypto_aead_unlock(text, tag, rx.key, nonce, in, HEADER, text, len - OVERHEAD)) {
        stats.bad_auth++;
        return -1;
    }
    if (counter > rx.counter) {  /* slide the window */
        uint64_t shift = counter - rx.counter;
        rx.window = shift >= 64 ? 1 : (rx.window << shift) | 1;
        rx.counter = counter;
    } else {
        rx.window |= 1ull << (rx.counter - counter);
    }
    *type = in[0];
    return (long)(len - OVERHEAD);
}

static int tun_open(const char *name, int tap, char actual[IFNAMSIZ]) {
    int fd = open("/dev/net/tun", O_RDWR);
    if (fd < 0) {
        perror("vpn: open /dev/net/tun");
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = (short)((tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI);
    memcpy(ifr.ifr_name, name, strnlen(name, IFNAMSIZ - 1));
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        perror("vpn: TUNSETIFF");
        close(fd);
        return -1;
    }
    memcpy(actual, ifr.ifr_name, IFNAMSIZ);
    return fd;
}

static int set_sockaddr(struct ifreq *ifr, const char *text) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr->ifr_addr;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    return inet_pton(AF_INET, text, &sin->sin_addr) == 1 ? 0 : -1;
}

/* Configures the device as `ip addr add CIDR [peer PEER] dev NAME; ip link set NAME mtu
 * MTU up` would, with the classic SIOCSIF* ioctls on a datagram socket. */
static int configure(const char *name, const char *cidr, const char *peer, int mtu) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, name, strnlen(name, IFNAMSIZ - 1));
    char address[64];
    int prefix = 32;
    snprintf(address, sizeof address, "%s", cidr);
    char *slash = strchr(address, '/');
    if (slash) {
        *slash = 0;
        prefix = atoi(slash + 1);
    }
    int rc = 0;
    if (set_sockaddr(&ifr, address) || ioctl(s, SIOCSIFADDR, &ifr) < 0) {
        perror("vpn: SIOCSIFADDR");
        rc = -1;
    }
    uint32_t mask = prefix ? htonl(~0u << (32 - prefix)) : 0;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_netmask;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = mask;
    if (!rc && ioctl(s, SIOCSIFNETMASK, &ifr) < 0) {
        perror("vpn: SIOCSIFNETMASK");
        rc = -1;
    }
    if (!rc && peer && (set_sockaddr(&ifr, peer) || ioctl(s, SIOCSIFDSTADDR, &ifr) < 0)) {
        perror("vpn: SIOCSIFDSTADDR");
        rc = -1;
    }
    ifr.ifr_mtu = mtu;
    if (!rc && ioctl(s, SIOCSIFMTU, &ifr) < 0) {
        perror("vpn: SIOCSIFMTU");
        rc = -1;
    }
    if (!rc && ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        perror("vpn: SIOCGIFFLAGS");
        rc = -1;
    }
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (!rc && ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
        perror("vpn: SIOCSIFFLAGS");
        rc = -1;
    }
    close(s);
    return rc;
}

static int resolve(const char *host, const char *port, struct sockaddr_storage *out,
                   socklen_t *len) {
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "vpn: %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static const char *endpoint(const struct sockaddr_storage *ss, char *buf, size_t len) {
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        port = ntohs(sin6->sin6_port);
    }
    snprintf(buf, len, "%s:%d", host, port);
    return buf;
}

static void usage(void) {
    fprintf(stderr, "usage: vpn -s|-c HOST -p PORT -k KEY [-i NAME] [-T] [-a CIDR] [-P PEER] "
                    "[-m MTU] [-x SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int server = 0, tap = 0, mtu = 1400, opt;
    double run_for = 0;
    const char *remote = NULL, *port = NULL, *key_hex = getenv("VPN_KEY");
    const char *name = "", *cidr = NULL, *peer = NULL;
    while ((opt = getopt(argc, argv, "sc:p:k:i:Ta:P:m:x:")) != -1) {
        switch (opt) {
        case 's': server = 1; break;
        case 'c': remote = optarg; break;
        case 'p': port = optarg; break;
        case 'k': key_hex = optarg; break;
        case 'i': name = optarg; break;
        case 'T': tap = 1; break;
        case 'a': cidr = optarg; break;
        case 'P': peer = optarg; break;
        case 'm': mtu = atoi(optarg); break;
        case 'x': run_for = atof(optarg); break;
        default: usage();
        }
    }
    if (server == (remote != NULL) || port == NULL)
        usage();
    uint8_t psk[32];
    if (parse_key(key_hex, psk)) {
        fprintf(stderr, "vpn: the key must be 64 hex digits (-k or VPN_KEY)\n");
        return 2;
    }
    derive(psk, server ? "vpn server to client" : "vpn client to server", tx.key);
    derive(psk, server ? "vpn client to server" : "vpn server to client", rx.key);
    crypto_wipe(psk, sizeof psk);
    tx.counter = now_us(CLOCK_REALTIME);

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    char ifname[IFNAMSIZ];
    int tun = tun_open(name, tap, ifname);
    if (tun < 0)
        return 1;
    if (cidr && configure(ifname, cidr, peer, mtu))
        return 1;

    struct sockaddr_storage peer_addr;
    socklen_t peer_len = 0;
    int udp;
    if (server) {
        struct sockaddr_in6 any;
        memset(&any, 0, sizeof any);
        any.sin6_family = AF_INET6;
        any.sin6_port = htons((uint16_t)atoi(port));
        udp = socket(AF_INET6, SOCK_DGRAM, 0);
        int off = 0;
        setsockopt(udp, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
        if (udp < 0 || bind(udp, (struct sockaddr *)&any, sizeof any) < 0) {
            perror("vpn: bind");
            return 1;
        }
    } else {
        if (resolve(remote, port, &peer_addr, &peer_len))
            return 1;
        udp = socket(peer_addr.ss_family, SOCK_DGRAM, 0);
        if (udp < 0) {
            perror("vpn: socket");
            return 1;
        }
    }
    printf("vpn: %s %s on %s, %s\n", server ? "server" : "client", tap ? "tap" : "tun",
           ifname, server ? "waiting for a client" : "connecting");

    static uint8_t buf[OVERHEAD + MAX_PACKET];
    char where[80];
    int up = 0;
    uint64_t start = now_us(CLOCK_MONOTONIC), last_heard = 0, last_sent = 0;
    while (!stopping) {
        uint64_t now = now_us(CLOCK_MONOTONIC);
        if (run_for > 0 && now - start >= (uint64_t)(run_for * 1e6))
            break;
        if (!server && up && now - last_heard > 3000000) {
            up = 0;
            printf("vpn: tunnel down (nothing heard for 3 s)\n");
        }
        if (peer_len && (!up ? now - last_sent >= 500000 : now - last_sent >= 1000000)) {
            int type = server ? KEEPALIVE : (up ? KEEPALIVE : HELLO);
            if (!server || up) {
                size_t n = seal(buf, type, 0);
                if (sendto(udp, buf, n, 0, (struct sockaddr *)&peer_addr, peer_len) >= 0)
                    stats.udp_out++;
                last_sent = now;
            }
        }
        fd_set readable;
        FD_ZERO(&readable);
        FD_SET(udp, &readable);
        if (up)
            FD_SET(tun, &readable);
        struct timeval tv = {0, 100000};
        int ready = select((tun > udp ? tun : udp) + 1, &readable, NULL, NULL, &tv);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            perror("vpn: select");
            break;
        }
        if (FD_ISSET(udp, &readable)) {
            struct sockaddr_storage from;
            socklen_t from_len = sizeof from;
            ssize_t n = recvfrom(udp, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
            int type = 0;
            long len = n > 0 ? unseal(buf, (size_t)n, &type) : -1;
            if (len >= 0) {
                stats.udp_in++;
                last_heard = now_us(CLOCK_MONOTONIC);
                if (server) {  /* answer whoever sent the latest authentic datagram */
                    if (peer_len == 0 || memcmp(&from, &peer_addr, from_len))
                        printf("vpn: client at %s\n", endpoint(&from, where, sizeof where));
                    memcpy(&peer_addr, &from, from_len);
                    peer_len = from_len;
                    if (!up && type != HELLO)
                        printf("vpn: tunnel up\n");
                    up = up || type != HELLO;
                }
                if (type == HELLO && server) {
                    size_t out = seal(buf, WELCOME, 0);
                    if (sendto(udp, buf, out, 0, (struct sockaddr *)&peer_addr, peer_len) >= 0)
                        stats.udp_out++;
                    last_sent = last_heard;
                    if (!up)
                        printf("vpn: tunnel up\n");
                    up = 1;
                } else if (type == WELCOME && !server) {
                    if (stats.ups++ == 0)
                        printf("vpn: tunnel up (server %s)\n",
                               endpoint(&peer_addr, where, sizeof where));
                    else
                        printf("vpn: reconnected\n");
                    up = 1;
                } else if (type == DATA && len > 0) {
                    if (write(tun, buf + OVERHEAD, (size_t)len) == len)
                        stats.tun_out++;
                }
            }
        }
        if (up && FD_ISSET(tun, &readable)) {
            ssize_t n = read(tun, buf + OVERHEAD, MAX_PACKET);
            if (n > 0 && peer_len) {
                stats.tun_in++;
                size_t out = seal(buf, DATA, (size_t)n);
                if (sendto(udp, buf, out, 0, (struct sockaddr *)&peer_addr, peer_len) >= 0)
                    stats.udp_out++;
                last_sent = now_us(CLOCK_MONOTONIC);
            }
        }
    }
    printf("vpn: stats tun_in=%lu tun_out=%lu udp_in=%lu udp_out=%lu bad_auth=%lu "
           "replays=%lu malformed=%lu\n", stats.tun_in, stats.tun_out, stats.udp_in,
           stats.udp_out, stats.bad_auth, stats.replays, stats.malformed);
    close(tun);
    close(udp);
    return 0;
}
