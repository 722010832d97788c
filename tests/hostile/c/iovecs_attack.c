/* iovecs_attack — vectored I/O meant to make the host copy far more than it may.
 *
 *   iovecs_attack [ROUNDS [FILE]]
 *
 * Over a TCP connection to itself on loopback (the reader never reads) and
 * a UDP socket, it calls writev/readv/sendmsg/recvmsg with too many iovecs
 * (1025 and two million) and with 256 iovecs of 4 MiB that all point at the
 * same 4 MiB region (1 GiB "of data" from 4 MiB of memory). One line per
 * call: `call NAME RESULT ERRNO_NAME`. The two-million-iovec calls are
 * repeated ROUNDS times (default 3). With FILE, the 256 x 4 MiB writev also
 * goes to that file (`call writev_256x4MiB_file`). Portable C: built with gcc for the
 * Linux reference and with `vnet build` for the guest.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define REGION (4u << 20)
#define BIG_COUNT 256
#define HUGE_COUNT 2000000

static const char *errno_name(int e) {
    switch (e) {
    case 0: return "OK";
    case EINVAL: return "EINVAL";
    case EMSGSIZE: return "EMSGSIZE";
    case EAGAIN: return "EAGAIN";
    case EFAULT: return "EFAULT";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    default: return "OTHER";
    }
}

static void report(const char *name, long result) {
    printf("call %s %ld %s\n", name, result, errno_name(result < 0 ? errno : 0));
    fflush(stdout);
}

static int tcp_pair(int *client, int *server) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(listener, 4) < 0 || getsockname(listener, (struct sockaddr *)&addr, &len) < 0)
        return -1;
    *client = socket(AF_INET, SOCK_STREAM, 0);
    if (*client < 0 || connect(*client, (struct sockaddr *)&addr, sizeof addr) < 0)
        return -1;
    *server = accept(listener, NULL, NULL);
    close(listener);
    return *server < 0 ? -1 : 0;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    int client, server;
    if (tcp_pair(&client, &server) < 0) {
        perror("tcp pair");
        return 1;
    }
    fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK);
    fcntl(server, F_SETFL, fcntl(server, F_GETFL) | O_NONBLOCK);
    char *region = malloc(REGION);
    struct iovec *iov = malloc(sizeof *iov * (size_t)HUGE_COUNT);
    if (region == NULL || iov == NULL) {
        perror("malloc");
        return 1;
    }
    memset(region, 'x', REGION);
    for (size_t i = 0; i < HUGE_COUNT; i++) {
        iov[i].iov_base = region + (i % 64);
        iov[i].iov_len = 1;
    }
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;

    report("writev_1024", writev(client, iov, 1024));
    report("writev_1025", writev(client, iov, 1025));
    report("readv_1025", readv(server, iov, 1025));
    msg.msg_iovlen = 1025;
    report("sendmsg_1025", sendmsg(client, &msg, 0));
    report("recvmsg_1025", recvmsg(server, &msg, 0));
    for (int r = 0; r < rounds; r++) {
        report("writev_2000000", writev(client, iov, HUGE_COUNT));
        report("readv_2000000", readv(server, iov, HUGE_COUNT));
        msg.msg_iovlen = HUGE_COUNT;
        report("sendmsg_2000000", sendmsg(client, &msg, 0));
    }

    /* 256 iovecs of 4 MiB over the same region: a stream takes what fits */
    for (int i = 0; i < BIG_COUNT; i++) {
        iov[i].iov_base = region;
        iov[i].iov_len = REGION;
    }
    long total = 0;
    for (int i = 0; i < 4; i++) {
        long n = writev(client, iov, BIG_COUNT);
        report("writev_256x4MiB_tcp", n);
        if (n > 0)
            total += n;
    }
    printf("queued %ld\n", total);

    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    msg.msg_name = &to;
    msg.msg_namelen = sizeof to;
    msg.msg_iovlen = BIG_COUNT;
    report("sendmsg_256x4MiB_udp", sendmsg(udp, &msg, 0));
    if (argc > 2) {
        int file = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (file < 0) {
            perror(argv[2]);
            return 1;
        }
        report("writev_256x4MiB_file", writev(file, iov, BIG_COUNT));
        close(file);
    }
    printf("done\n");
    return 0;
}
