/* escape_sender — a hostile guest that tries to get UDP out of an interface.
 *
 *   escape_sender [--wait] IFNAME PORT DEST...
 *
 * With --wait it prints "ready" and waits for a line on stdin first (so that
 * the listeners it is aimed at can be set up once its interfaces exist).
 * For each DEST (IPv4 or IPv6, e.g. 255.255.255.255, 224.0.0.1, 239.1.2.3,
 * ff02::1) it opens a UDP socket bound to IFNAME with SO_BINDTODEVICE,
 * allows broadcast, points multicast at IFNAME's index, and sends
 * "escape DEST" to DEST:PORT three times. It prints one line per DEST:
 * "DEST ok" or "DEST " and strerror() of the first failing call's errno.
 * Built natively with gcc it runs the same on Linux.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int send_one(const char *ifname, int port, const char *dest) {
    unsigned ifindex = if_nametoindex(ifname);
    struct sockaddr_storage ss;
    socklen_t len;
    int v6 = strchr(dest, ':') != NULL;
    memset(&ss, 0, sizeof ss);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)port);
        if (inet_pton(AF_INET6, dest, &a->sin6_addr) != 1) return EINVAL;
        a->sin6_scope_id = ifindex;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)port);
        if (inet_pton(AF_INET, dest, &a->sin_addr) != 1) return EINVAL;
        len = sizeof *a;
    }
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0) {
        int err = errno;
        close(fd);
        return err;
    }
    if (v6) {
        int idx = (int)ifindex;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx) < 0) {
            int err = errno;
            close(fd);
            return err;
        }
    }
    char msg[80];
    snprintf(msg, sizeof msg, "escape %s", dest);
    int err = 0;
    for (int i = 0; i < 3 && !err; i++)
        if (sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&ss, len) < 0) err = errno;
    close(fd);
    return err;
}

int main(int argc, char **argv) {
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--wait") == 0) {
        char line[64];
        printf("ready\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin)) return 3;
        first = 2;
    }
    if (argc < first + 3) {
        fprintf(stderr, "usage: escape_sender [--wait] IFNAME PORT DEST...\n");
        return 2;
    }
    for (int i = first + 2; i < argc; i++) {
        int err = send_one(argv[first], atoi(argv[first + 1]), argv[i]);
        if (err) printf("%s %s\n", argv[i], strerror(err));
        else printf("%s ok\n", argv[i]);
    }
    fflush(stdout);
    return 0;
}
