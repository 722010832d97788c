/* holepunch — UDP hole punching through NATs, with a rendezvous server (IPv4).
 *
 *   holepunch rendezvous PORT              introduce peers to each other (runs forever)
 *   holepunch peer SERVER PORT NAME OTHER [TIMEOUT_S [LOCAL_PORT]]
 *
 * A peer registers with the rendezvous server at SERVER:PORT from its one
 * UDP socket ("REGISTER NAME OTHER", repeated every 250 ms until answered).
 * The server sees the peer's public endpoint (its NAT's mapping) as the
 * datagram's source; once both NAME and OTHER have registered it sends each
 * "PEER ADDR PORT", the other's public endpoint. Then each peer sends
 * "PUNCH NAME" to that endpoint every 100 ms: the first punches open its own
 * NAT's filter towards the other; the other's punches get through once it has.
 * Once a datagram from OTHER arrives, a peer sends "HELLO NAME" ("I hear
 * you") instead, to whatever endpoint that datagram really came from (behind
 * an address-and-port-dependent mapping it is not the endpoint the server
 * saw). It is done when it has heard the other and had its HELLO: datagrams
 * got through both NATs both ways. It prints one line to parse,
 *
 *   holepunch: RESULT connected name=NAME peer=OTHER via=ADDR:PORT
 *   holepunch: RESULT timeout name=NAME peer=OTHER registered=0|1 heard=0|1
 *
 * and exits 0 or 1. TIMEOUT_S (default 10) counts from the start;
 * LOCAL_PORT (default: any) is the port the peer's socket binds.
 *
 *   gcc -O2 -Wall examples/holepunch.c -o holepunch
 *   vnet build examples/holepunch.c -o holepunch.wasm
 *   ./holepunch rendezvous 7400 &
 *   ./holepunch peer 127.0.0.1 7400 alice bob &  ./holepunch peer 127.0.0.1 7400 bob alice
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

#define MAX_PEERS 64
#define NAME_MAX_LEN 32

static const char *endpoint(const struct sockaddr_in *sa, char *buf, size_t len) {
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
    snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(sa->sin_port));
    return buf;
}

static long now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int udp_socket(int port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any;
    memset(&any, 0, sizeof any);
    any.sin_family = AF_INET;
    any.sin_port = htons((uint16_t)port);
    if (fd < 0 || bind(fd, (struct sockaddr *)&any, sizeof any) != 0) {
        perror("holepunch: bind");
        exit(1);
    }
    return fd;
}

struct registration {
    char name[NAME_MAX_LEN + 1], wants[NAME_MAX_LEN + 1];
    struct sockaddr_in public;
};

static void introduce(int fd, const struct registration *to, const struct registration *about) {
    char msg[64], who[32], where[32], ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &about->public.sin_addr, ip, sizeof ip);
    int len = snprintf(msg, sizeof msg, "PEER %s %u", ip,
                       (unsigned)ntohs(about->public.sin_port));
    sendto(fd, msg, (size_t)len, 0, (const struct sockaddr *)&to->public, sizeof to->public);
    printf("holepunch: told %s (%s) about %s at %s\n", to->name,
           endpoint(&to->public, who, sizeof who), about->name,
           endpoint(&about->public, where, sizeof where));
}

static int rendezvous(int port) {
    static struct registration known[MAX_PEERS];
    int count = 0;
    int fd = udp_socket(port);
    printf("holepunch: rendezvous on port %d\n", port);
    for (;;) {
        char buf[256], name[NAME_MAX_LEN + 1], wants[NAME_MAX_LEN + 1];
        struct sockaddr_in from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &from_len);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("holepunch: recvfrom");
            return 1;
        }
        buf[n] = '\0';
        if (sscanf(buf, "REGISTER %32s %32s", name, wants) != 2) continue;
        int me = -1, other = -1;
        for (int i = 0; i < count; i++) {
            if (strcmp(known[i].name, name) == 0) me = i;
            if (strcmp(known[i].name, wants) == 0) other = i;
        }
        int fresh = me < 0 || !(known[me].public.sin_addr.s_addr == from.sin_addr.s_addr &&
                                known[me].public.sin_port == from.sin_port);
        if (me < 0) {
            if (count == MAX_PEERS) continue;
            me = count++;
        }
        strcpy(known[me].name, name);
        strcpy(known[me].wants, wants);
        known[me].public = from;
        if (fresh) {
            char where[32];
            printf("holepunch: %s registered from %s, looking for %s\n", name,
                   endpoint(&from, where, sizeof where), wants);
        }
        if (other < 0) {
            sendto(fd, "WAIT", 4, 0, (struct sockaddr *)&from, from_len);
            continue;
        }
        introduce(fd, &known[me], &known[other]);
        if (fresh && strcmp(known[other].wants, name) == 0)
            introduce(fd, &known[other], &known[me]);
    }
}

static int peer(const char *server_ip, int port, const char *name, const char *other,
                int timeout_s, int local_port) {
    struct sockaddr_in server, target, from;
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, server_ip, &server.sin_addr) != 1) {
        fprintf(stderr, "holepunch: %s is not an IPv4 address\n", server_ip);
        return 2;
    }
    int fd = udp_socket(local_port);
    char where[32], msg[128];
    int registered = 0, heard = 0, acknowledged = 0;
    long start = now_ms(), next_send = start, deadline = start + 1000L * timeout_s;
    while (!(heard && acknowledged)) {
        long now = now_ms();
        if (now >= deadline) {
            printf("holepunch: RESULT timeout name=%s peer=%s registered=%d heard=%d\n", name, other,
                   registered, heard);
            close(fd);
            return 1;
        }
        if (now >= next_send) {
            int len;
            if (!registered) {
                len = snprintf(msg, sizeof msg, "REGISTER %s %s", name, other);
                sendto(fd, msg, (size_t)len, 0, (struct sockaddr *)&server, sizeof server);
                next_send = now + 250;
            } else {
                len = heard ? snprintf(msg, sizeof msg, "HELLO %s", name)
                            : snprintf(msg, sizeof msg, "PUNCH %s", name);
                sendto(fd, msg, (size_t)len, 0, (struct sockaddr *)&target, sizeof target);
                next_send = now + 100;
            }
        }
        long wait = (next_send < deadline ? next_send : deadline) - now;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(wait > 0 ? wait : 0)) <= 0) continue;
        char buf[256], word[16], who[NAME_MAX_LEN + 1];
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &from_len);
        if (n < 0) continue; /* e.g. an ICMP error for an earlier punch */
        buf[n] = '\0';
        char ip[INET_ADDRSTRLEN];
        unsigned peer_port;
        if (from.sin_addr.s_addr == server.sin_addr.s_addr && from.sin_port == server.sin_port) {
            if (!registered && sscanf(buf, "PEER %15s %u", ip, &peer_port) == 2) {
                memset(&target, 0, sizeof target);
                target.sin_family = AF_INET;
                target.sin_port = htons((uint16_t)peer_port);
                inet_pton(AF_INET, ip, &target.sin_addr);
                registered = 1;
                next_send = now_ms();
                printf("holepunch: %s is at %s, punching\n", other,
                       endpoint(&target, where, sizeof where));
            }
            continue;
        }
        if (sscanf(buf, "%15s %32s", word, who) != 2 || strcmp(who, other) != 0)
            continue;
        if (!registered) continue;
        if (strcmp(word, "PUNCH") != 0 && strcmp(word, "HELLO") != 0) continue;
        if (from.sin_addr.s_addr != target.sin_addr.s_addr || from.sin_port != target.sin_port) {
            printf("holepunch: %s answers from %s, not the endpoint the server saw\n", other,
                   endpoint(&from, where, sizeof where));
            target = from; /* its NAT gave it another mapping towards us */
        }
        if (strcmp(word, "HELLO") == 0) {
            if (!heard) printf("holepunch: HELLO from %s at %s\n", other,
                               endpoint(&from, where, sizeof where));
            heard = acknowledged = 1;
        } else if (!heard) {
            heard = 1;
            printf("holepunch: PUNCH from %s at %s\n", other, endpoint(&from, where, sizeof where));
        }
        next_send = now_ms(); /* answer at once */
    }
    /* The other may still wait for our acknowledgement: say it a few more times. */
    int len = snprintf(msg, sizeof msg, "HELLO %s", name);
    for (int i = 0; i < 3; i++)
        sendto(fd, msg, (size_t)len, 0, (struct sockaddr *)&target, sizeof target);
    printf("holepunch: RESULT connected name=%s peer=%s via=%s\n", name, other,
           endpoint(&target, where, sizeof where));
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "rendezvous") == 0) return rendezvous(atoi(argv[2]));
    if (argc >= 6 && argc <= 8 && strcmp(argv[1], "peer") == 0)
        return peer(argv[2], atoi(argv[3]), argv[4], argv[5], argc > 6 ? atoi(argv[6]) : 10,
                    argc > 7 ? atoi(argv[7]) : 0);
    fprintf(stderr, "usage: holepunch rendezvous PORT\n"
                    "       holepunch peer SERVER PORT NAME OTHER [TIMEOUT_S [LOCAL_PORT]]\n");
    return 2;
}
