/*
 * simpletun.c — a point-to-point tunnel in the style of the classic
 * simpletun: a TUN (or TAP) device on each end, packets carried over one TCP
 * connection, each prefixed with its length (2 bytes, network order).
 * Portable Linux C: builds natively with gcc and runs under vnet unchanged.
 *
 *   simpletun -i IFNAME [-s | -c SERVER] [-p PORT] [-a] [-n COUNT]
 *     -s        server: wait for one peer on PORT
 *     -c ADDR   client: connect to ADDR:PORT (retrying until it answers)
 *     -a        TAP (Ethernet frames) instead of TUN (IP packets)
 *     -n COUNT  stop after COUNT packets in each direction (0: run forever)
 *
 * Prints "tunnel up on IFNAME" once connected, and on exit how many packets
 * went each way.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSIZE 2048

static int tun_alloc(char *dev, int flags) {
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR);
    if (fd < 0) {
        perror("open /dev/net/tun");
        return -1;
    }
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = (short)flags;
    if (*dev)
        strncpy(ifr.ifr_name, dev, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, (void *)&ifr) < 0) {
        perror("ioctl TUNSETIFF");
        close(fd);
        return -1;
    }
    strcpy(dev, ifr.ifr_name);
    return fd;
}

/* read exactly n bytes; 0 at end of stream, -1 on error */
static int read_n(int fd, unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return (int)r;
        got += (size_t)r;
    }
    return 1;
}

static int write_all(int fd, const unsigned char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: simpletun -i IFNAME [-s | -c SERVER] [-p PORT] [-a] [-n COUNT]\n");
    exit(2);
}

int main(int argc, char **argv) {
    char ifname[IFNAMSIZ] = "";
    const char *server = NULL;
    int listen_mode = 0, flags = IFF_TUN, port = 55555, limit = 0, opt;
    while ((opt = getopt(argc, argv, "i:sc:p:an:")) != -1) {
        switch (opt) {
        case 'i': strncpy(ifname, optarg, IFNAMSIZ - 1); break;
        case 's': listen_mode = 1; break;
        case 'c': server = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'a': flags = IFF_TAP; break;
        case 'n': limit = atoi(optarg); break;
        default: usage();
        }
    }
    if (listen_mode == (server != NULL))
        usage();
    int tap_fd = tun_alloc(ifname, flags | IFF_NO_PI);
    if (tap_fd < 0)
        return 1;

    int net_fd;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (listen_mode) {
        int one = 1;
        int sock = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        addr.sin_addr.s_addr = htonl(INADDR_ANY);
        if (sock < 0 || bind(sock, (struct sockaddr *)&addr, sizeof addr) < 0 ||
            listen(sock, 1) < 0) {
            perror("listen");
            return 1;
        }
        net_fd = accept(sock, NULL, NULL);
        if (net_fd < 0) {
            perror("accept");
            return 1;
        }
        close(sock);
    } else {
        if (inet_pton(AF_INET, server, &addr.sin_addr) != 1)
            usage();
        for (;;) {
            net_fd = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(net_fd, (struct sockaddr *)&addr, sizeof addr) == 0)
                break;
            close(net_fd);
            usleep(100000);
        }
    }
    printf("tunnel up on %s\n", ifname);
    fflush(stdout);

    unsigned char buf[BUFSIZE + 2];
    long to_net = 0, from_net = 0;
    int maxfd = tap_fd > net_fd ? tap_fd : net_fd;
    while (limit == 0 || to_net < limit || from_net < limit) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(tap_fd, &rd);
        FD_SET(net_fd, &rd);
        if (select(maxfd + 1, &rd, NULL, NULL, NULL) < 0) {
            if (errno == EINTR)
                continue;
            perror("select");
            break;
        }
        if (FD_ISSET(tap_fd, &rd)) {
            ssize_t n = read(tap_fd, buf + 2, BUFSIZE);
            if (n < 0) {
                perror("read tun");
                break;
            }
            buf[0] = (unsigned char)(n >> 8);
            buf[1] = (unsigned char)n;
            if (write_all(net_fd, buf, (size_t)n + 2) < 0) {
                perror("write net");
                break;
            }
            to_net++;
        }
        if (FD_ISSET(net_fd, &rd)) {
            unsigned char len[2];
            int r = read_n(net_fd, len, 2);
            if (r <= 0)
                break; /* the peer went away */
            size_t n = ((size_t)len[0] << 8) | len[1];
            if (n > BUFSIZE || read_n(net_fd, buf, n) <= 0)
                break;
            if (write(tap_fd, buf, n) < 0)
                perror("write tun"); /* a packet the device refused: keep going */
            from_net++;
        }
    }
    printf("packets: %ld to the peer, %ld from the peer\n", to_net, from_net);
    return 0;
}
