/*
 * tun_probe.c — the TUN device's ioctls, reads and writes, call by call, each
 * printed as "STEP RESULT [ERRNO]" so that a run against Linux's tun driver
 * and a run under vnet can be compared line by line. Portable Linux C.
 *
 *   tun_probe            the comparison: mistakes and their errnos, then (after
 *                        a line on stdin, once tun0 is up with 10.8.0.1/24 and
 *                        tun1 with 10.9.0.1/24) a ping written into each device
 *                        and its answer read with short buffers (tun1 carries
 *                        the 4-byte packet information header)
 *   tun_probe hostile    what a hostile guest tries: a device it was not
 *                        granted, malformed and spoofed packets, oversized writes
 *   tun_probe idle SECS  creates tun0, sleeps without reading, then counts the
 *                        packets that waited for it
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <unistd.h>

static const char *name_of(int e) {
    switch (e) {
    case EINVAL: return "EINVAL";
    case EEXIST: return "EEXIST";
    case EBUSY: return "EBUSY";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOTTY: return "ENOTTY";
    case EIO: return "EIO";
    case EFAULT: return "EFAULT";
#ifdef EBADFD
    case EBADFD: return "EBADFD"; /* Linux; WASI has no EBADFD */
#endif
    default: return "other";
    }
}

static void report(const char *step, long rc) {
    if (rc < 0)
        printf("%s -1 %s\n", step, name_of(errno));
    else
        printf("%s %ld\n", step, rc);
}

static int setiff(int fd, const char *name, int flags, char *out) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, name, strlen(name) < IFNAMSIZ ? strlen(name) : IFNAMSIZ);
    ifr.ifr_flags = (short)flags;
    int rc = ioctl(fd, TUNSETIFF, (void *)&ifr);
    if (out)
        memcpy(out, ifr.ifr_name, IFNAMSIZ);
    return rc;
}

static unsigned short checksum(const unsigned char *p, int n) {
    unsigned long sum = 0;
    for (int i = 0; i + 1 < n; i += 2)
        sum += (unsigned long)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        sum += (unsigned long)(p[n - 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (unsigned short)~sum;
}

/* An IPv4 packet src → dst with `protocol` and `len` bytes in all; UDP gets ports 4000→9999. */
static int ip_packet(unsigned char *p, const char *src, const char *dst, int protocol,
                     int len) {
    memset(p, 0, (size_t)len);
    p[0] = 0x45;
    p[2] = (unsigned char)(len >> 8);
    p[3] = (unsigned char)len;
    p[8] = 64;
    p[9] = (unsigned char)protocol;
    inet_pton(AF_INET, src, p + 12);
    inet_pton(AF_INET, dst, p + 16);
    unsigned short c = checksum(p, 20);
    p[10] = (unsigned char)(c >> 8);
    p[11] = (unsigned char)c;
    unsigned char *l4 = p + 20;
    if (protocol == 1) { /* echo request, id 7 seq 1 */
        l4[0] = 8;
        l4[5] = 7;
        l4[7] = 1;
        c = checksum(l4, len - 20);
        l4[2] = (unsigned char)(c >> 8);
        l4[3] = (unsigned char)c;
    } else if (protocol == 17) { /* no UDP checksum (0 is allowed in IPv4) */
        l4[0] = 4000 >> 8; l4[1] = 4000 & 0xff;
        l4[2] = 9999 >> 8; l4[3] = 9999 & 0xff;
        l4[4] = (unsigned char)((len - 20) >> 8);
        l4[5] = (unsigned char)(len - 20);
        memcpy(l4 + 8, src, strlen(src) < (size_t)(len - 28) ? strlen(src) : 0);
    }
    return len;
}

static int compare(void) {
    char name[IFNAMSIZ + 1] = {0};
    unsigned char pkt[4096];
    int fd = open("/dev/net/tun", O_RDWR);
    report("open", fd < 0 ? -1 : 0);
    unsigned int features = 0;
    int rc = ioctl(fd, TUNGETFEATURES, &features);
    printf("features %d tun=%d tap=%d no_pi=%d\n", rc, !!(features & IFF_TUN),
           !!(features & IFF_TAP), !!(features & IFF_NO_PI));
    report("setiff_no_kind", setiff(fd, "", IFF_NO_PI, NULL));
    report("setiff_lo", setiff(fd, "lo", IFF_TUN | IFF_NO_PI, NULL));
    report("setiff_bad_name", setiff(fd, "a/b", IFF_TUN | IFF_NO_PI, NULL));
    report("read_unattached", read(fd, pkt, sizeof pkt));
    rc = setiff(fd, "tun0", IFF_TUN | IFF_NO_PI, name);
    report("setiff", rc);
    printf("name %s\n", name);
    report("setiff_again", setiff(fd, "tun0", IFF_TUN | IFF_NO_PI, NULL));
    int other = open("/dev/net/tun", O_RDWR);
    report("setiff_busy", setiff(other, "tun0", IFF_TUN | IFF_NO_PI, NULL));
    report("setiff_other_kind", setiff(other, "tun0", IFF_TAP | IFF_NO_PI, NULL));
    int longfd = open("/dev/net/tun", O_RDWR);
    rc = setiff(longfd, "longname0123456X", IFF_TUN | IFF_NO_PI, name);
    report("setiff_long_name", rc);
    printf("long name %s\n", name);
    close(longfd);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    report("getiff", ioctl(fd, TUNGETIFF, (void *)&ifr));
    printf("getiff %s flags %#x\n", ifr.ifr_name, (unsigned)(unsigned short)ifr.ifr_flags);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    report("read_empty", read(fd, pkt, sizeof pkt));
    report("write_empty", write(fd, pkt, 0));
    report("ioctl_on_stdout", ioctl(1, TUNSETIFF, (void *)&ifr));
    int pi = open("/dev/net/tun", O_RDWR);
    report("setiff_pi", setiff(pi, "tun1", IFF_TUN, name));
    printf("created\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin))
        return 1;
    memset(pkt, 0x70, 20);
    report("write_bad_version", write(fd, pkt, 20));
    int len = ip_packet(pkt, "10.8.0.2", "10.8.0.1", 1, 84);
    report("write_ping", write(fd, pkt, (size_t)len));
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct timeval tv = {2, 0};
    report("select", select(fd + 1, &rd, NULL, NULL, &tv));
    report("read_zero", read(fd, pkt, 0));
    memset(pkt, 0, sizeof pkt);
    report("read_tiny", read(fd, pkt, 10));
    printf("tiny first byte %#x protocol %d\n", pkt[0], pkt[9]);
    report("read_rest", read(fd, pkt, sizeof pkt));

    /* tun1: with the 4-byte packet information header (no IFF_NO_PI) */
    fcntl(pi, F_SETFL, fcntl(pi, F_GETFL) | O_NONBLOCK);
    report("pi_write_short", write(pi, pkt, 2));
    for (int round = 0; round < 2; round++) {
        unsigned char framed[4 + 84] = {0, 0, 0x08, 0x00};
        len = ip_packet(framed + 4, "10.9.0.2", "10.9.0.1", 1, 84);
        report("pi_write_ping", write(pi, framed, (size_t)len + 4));
        FD_ZERO(&rd);
        FD_SET(pi, &rd);
        struct timeval wait = {2, 0};
        report("pi_select", select(pi + 1, &rd, NULL, NULL, &wait));
        if (round == 0) {
            report("pi_read_3", read(pi, pkt, 3));
        } else {
            memset(pkt, 0, sizeof pkt);
            report("pi_read_10", read(pi, pkt, 10));
            printf("pi header %02x%02x%02x%02x first byte %#x\n", pkt[0], pkt[1], pkt[2],
                   pkt[3], pkt[4]);
        }
        report("pi_read_rest", read(pi, pkt, sizeof pkt));
    }
    return 0;
}

static int hostile(void) {
    char name[IFNAMSIZ + 1] = {0};
    unsigned char pkt[70000];
    int fd = open("/dev/net/tun", O_RDWR);
    report("setiff", setiff(fd, "tun0", IFF_TUN | IFF_NO_PI, name));
    int second = open("/dev/net/tun", O_RDWR);
    report("setiff_ungranted", setiff(second, "tun1", IFF_TUN | IFF_NO_PI, NULL));
    report("setiff_ungranted_auto", setiff(second, "", IFF_TUN | IFF_NO_PI, NULL));
    report("setiff_ungranted_tap", setiff(second, "tun0x", IFF_TAP | IFF_NO_PI, NULL));
    report("setiff_eth0", setiff(second, "eth0", IFF_TUN | IFF_NO_PI, NULL));
    report("setiff_multiqueue", setiff(second, "tun9", IFF_TUN | IFF_MULTI_QUEUE, NULL));
    report("persist", ioctl(fd, TUNSETPERSIST, 1));
    report("not_persist", ioctl(fd, TUNSETPERSIST, 0));
    report("write_empty", write(fd, pkt, 0));
    memset(pkt, 0x70, 40);
    report("write_bad_version", write(fd, pkt, 40));
    pkt[0] = 0x45;
    report("write_runt", write(fd, pkt, 1));
    int len = ip_packet(pkt, "10.8.0.2", "10.8.0.1", 17, 60);
    pkt[10] ^= 0xff; /* a bad header checksum */
    report("write_bad_checksum", write(fd, pkt, (size_t)len));
    len = ip_packet(pkt, "10.66.0.1", "10.8.0.1", 17, 60);
    report("write_spoofed", write(fd, pkt, (size_t)len));
    len = ip_packet(pkt, "10.8.0.2", "10.8.0.1", 17, 60);
    report("write_legit", write(fd, pkt, (size_t)len));
    len = ip_packet(pkt, "10.8.0.2", "10.8.0.1", 17, 3000);
    report("write_over_mtu", write(fd, pkt, (size_t)len));
    report("write_over_64k", write(fd, pkt, sizeof pkt));
    for (int i = 0; i < 3; i++) { /* three packets queued for a reader that reads 10 bytes */
        len = ip_packet(pkt, "10.8.0.2", "10.8.0.1", 1, 84);
        if (write(fd, pkt, (size_t)len) != len)
            printf("ping %d not written\n", i);
    }
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct timeval tv = {2, 0};
    select(fd + 1, &rd, NULL, NULL, &tv);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int tiny = 0;
    while (read(fd, pkt, 1) == 1)
        tiny++;
    printf("tiny reads %d then %s\n", tiny, name_of(errno));
    return 0;
}

/* Create tun0, sleep (never reading), then count what waited in the device. */
static int idle(int seconds) {
    char name[IFNAMSIZ + 1] = {0};
    unsigned char pkt[2048];
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
    report("setiff", setiff(fd, "tun0", IFF_TUN | IFF_NO_PI, name));
    fflush(stdout);
    sleep((unsigned)seconds);
    int queued = 0;
    while (read(fd, pkt, sizeof pkt) > 0)
        queued++;
    printf("queued %d then %s\n", queued, name_of(errno));
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "hostile") == 0)
        return hostile();
    if (argc > 2 && strcmp(argv[1], "idle") == 0)
        return idle(atoi(argv[2]));
    return compare();
}
