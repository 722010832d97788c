/* tun_flood — write forged UDP packets into a TUN device as fast as the host takes them.
 *
 *   tun_flood IFNAME DST_IPV4 SIZE
 *
 * A hostile VPN guest: every packet (source 10.8.0.2, to DST port 9) is
 * routed by its host to the network; it never blocks, never sleeps and
 * ignores every error. Portable Linux C.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: tun_flood IFNAME DST_IPV4 SIZE\n");
        return 2;
    }
    int fd = open("/dev/net/tun", O_RDWR);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    if (fd < 0 || ioctl(fd, TUNSETIFF, (void *)&ifr) < 0) {
        perror("tun_flood: TUNSETIFF");
        return 1;
    }
    size_t size = (size_t)atol(argv[3]);
    if (size < 28 || size > 1500)
        size = 1200;
    unsigned char *p = calloc(size, 1);
    p[0] = 0x45;
    p[2] = (unsigned char)(size >> 8);
    p[3] = (unsigned char)size;
    p[8] = 64;
    p[9] = 17;
    inet_pton(AF_INET, "10.8.0.2", p + 12);
    inet_pton(AF_INET, argv[2], p + 16);
    unsigned long sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += (unsigned long)(p[i] << 8 | p[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    p[10] = (unsigned char)(~sum >> 8);
    p[11] = (unsigned char)~sum;
    p[20] = 0x10; /* source port 4096 */
    p[23] = 9;
    p[24] = (unsigned char)((size - 20) >> 8);
    p[25] = (unsigned char)(size - 20);
    printf("tun_flood: flooding %s through %s\n", argv[2], ifr.ifr_name);
    fflush(stdout);
    for (;;)
        (void)write(fd, p, size);
}
