/* memory_attack — make the host hold as much socket memory as it will.
 *
 *   memory_attack PAIRS UDP_SOCKETS [HOLD_MS [GROW_MIB]]
 *
 * Opens UDP_SOCKETS UDP sockets and PAIRS TCP connections to itself over
 * loopback, asks every socket for the largest buffers (SO_RCVBUFFORCE and
 * SO_SNDBUFFORCE, which need CAP_NET_ADMIN, then SO_RCVBUF/SO_SNDBUF of
 * INT_MAX), also tries SO_PRIORITY 7 (needs CAP_NET_ADMIN) and 6, fills every
 * connection (non-blocking sends until EAGAIN; nothing is ever read), then
 * sends 16 datagrams of 60000 bytes to every UDP socket. With GROW_MIB, it
 * then allocates and touches up to that many MiB of its own memory (`grown N`
 * MiB). It then holds everything for HOLD_MS (default 2000) and exits.
 *
 * Prints `call NAME RESULT ERRNO_NAME` for the options (first socket),
 * `rcvbuf N` / `sndbuf N` as getsockopt reports them, `pairs N` (how many
 * connections it got), `queued N` (bytes the TCP sends accepted),
 * `datagrams N` (datagrams sent), then `done`. If a socket, connect or accept
 * fails, `call pair_socket|pair_connect|pair_accept -1 ERRNO` says why.
 * Portable C: gcc for the Linux reference, `vnet build` for the guest.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_SNDBUFFORCE
#define SO_SNDBUFFORCE 32
#endif
#ifndef SO_RCVBUFFORCE
#define SO_RCVBUFFORCE 33
#endif

static const char *errno_name(int e) {
    switch (e) {
    case 0: return "OK";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EAGAIN: return "EAGAIN";
    case ENOBUFS: return "ENOBUFS";
    case EMFILE: return "EMFILE";
    default: return "OTHER";
    }
}

static void set_option(int fd, int name, int value, const char *label, int print) {
    int r = setsockopt(fd, SOL_SOCKET, name, &value, sizeof value);
    if (print)
        printf("call %s %d %s\n", label, r, errno_name(r < 0 ? errno : 0));
}

static void max_buffers(int fd, int print) {
    set_option(fd, SO_RCVBUFFORCE, 1 << 30, "so_rcvbufforce", print);
    set_option(fd, SO_SNDBUFFORCE, 1 << 30, "so_sndbufforce", print);
    set_option(fd, SO_RCVBUF, INT_MAX, "so_rcvbuf", print);
    set_option(fd, SO_SNDBUF, INT_MAX, "so_sndbuf", print);
    if (print) {
        set_option(fd, SO_PRIORITY, 7, "so_priority_7", print);
        set_option(fd, SO_PRIORITY, 6, "so_priority_6", print);
        int value = 0;
        socklen_t len = sizeof value;
        getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, &len);
        printf("rcvbuf %d\n", value);
        getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &value, &len);
        printf("sndbuf %d\n", value);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: memory_attack PAIRS UDP_SOCKETS [HOLD_MS]\n");
        return 2;
    }
    int pairs = atoi(argv[1]);
    int udp_count = atoi(argv[2]);
    int hold_ms = argc > 3 ? atoi(argv[3]) : 2000;
    int grow_mib = argc > 4 ? atoi(argv[4]) : 0;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    static char chunk[65536];
    memset(chunk, 'm', sizeof chunk);
    /* the UDP sockets first, so that they exist when the TCP queues have filled */
    struct sockaddr_in *udp_addrs = calloc((size_t)udp_count + 1, sizeof *udp_addrs);
    int udp_open = 0;
    for (; udp_open < udp_count; udp_open++) {
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        if (u < 0)
            break;
        max_buffers(u, 0);
        struct sockaddr_in *uaddr = &udp_addrs[udp_open];
        uaddr->sin_family = AF_INET;
        uaddr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t ulen = sizeof *uaddr;
        if (bind(u, (struct sockaddr *)uaddr, sizeof *uaddr) < 0 ||
            getsockname(u, (struct sockaddr *)uaddr, &ulen) < 0)
            break;
    }
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    max_buffers(listener, 1);  /* accepted sockets inherit the listener's buffers */
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 64) < 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &len) < 0) {
        perror("listener");
        return 1;
    }
    int *clients = calloc((size_t)pairs, sizeof *clients);
    int got = 0;
    for (; got < pairs; got++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0) {
            printf("call pair_socket -1 %s\n", errno_name(errno));
            break;
        }
        max_buffers(c, 0);
        if (connect(c, (struct sockaddr *)&addr, sizeof addr) < 0) {
            printf("call pair_connect -1 %s\n", errno_name(errno));
            close(c);
            break;
        }
        int s = accept(listener, NULL, NULL);
        if (s < 0) {
            printf("call pair_accept -1 %s\n", errno_name(errno));
            close(c);
            break;
        }
        fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
        clients[got] = c;
    }
    printf("pairs %d\n", got);
    long queued = 0;
    for (int i = 0; i < got; i++) {
        for (;;) {
            ssize_t n = send(clients[i], chunk, sizeof chunk, 0);
            if (n <= 0)
                break;
            queued += n;
        }
    }
    printf("queued %ld\n", queued);

    int sender = socket(AF_INET, SOCK_DGRAM, 0);
    long datagrams = 0;
    for (int i = 0; i < udp_open; i++)
        for (int k = 0; k < 16; k++)
            if (sendto(sender, chunk, 60000, 0, (struct sockaddr *)&udp_addrs[i],
                       sizeof udp_addrs[i]) == 60000)
                datagrams++;
    printf("datagrams %ld\n", datagrams);
    int grown = 0;
    char *volatile keep = NULL;  /* so the compiler cannot drop the allocations */
    for (; grown < grow_mib; grown++) {
        char *block = malloc(1 << 20);
        if (block == NULL)
            break;
        memset(block, grown & 0xff, 1 << 20);
        keep = block;
        datagrams += keep[grown];
    }
    if (grow_mib)
        printf("grown %d\n", grown);
    fflush(stdout);
    struct timespec hold = {hold_ms / 1000, (long)(hold_ms % 1000) * 1000000L};
    nanosleep(&hold, NULL);
    printf("done\n");
    return 0;
}
