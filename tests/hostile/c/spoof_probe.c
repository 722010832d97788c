/* spoof_probe — a hostile guest trying source addresses it should not have.
 *
 *   spoof_probe OP...
 *
 * OP is one of
 *   tcp,BIND,DST,PORT      TCP socket bound to BIND (or "-": unbound) connects to DST:PORT
 *                          (non-blocking, then poll for 1 s)
 *   udp,BIND,DST,PORT      UDP socket bound to BIND sends one datagram to DST:PORT
 *   ping,BIND,DST          ping socket (SOCK_DGRAM, IPPROTO_ICMP[V6]) bound to BIND sends
 *                          one echo request to DST
 *   pingc,BIND,DST         the same, but connect()s to DST and send()s without an address
 * and prints "OP: ok" or "OP: " and the errno name of the call that failed ("timeout"
 * when a connect was still pending after a second). Names, not strerror(): musl's and
 * glibc's texts differ. Built natively with gcc it runs the same
 * on Linux (ping sockets need net.ipv4.ping_group_range to include the caller).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *errname(int err) {
    static char other[16];
    switch (err) {
    case EINVAL: return "EINVAL";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EADDRINUSE: return "EADDRINUSE";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    default: snprintf(other, sizeof other, "errno %d", err); return other;
    }
}

static int make_addr(const char *text, int port, struct sockaddr_storage *ss, socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    if (strchr(text, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)port);
        *len = sizeof *a;
        return inet_pton(AF_INET6, text, &a->sin6_addr) == 1 ? AF_INET6 : -1;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((unsigned short)port);
    *len = sizeof *a;
    return inet_pton(AF_INET, text, &a->sin_addr) == 1 ? AF_INET : -1;
}

static const char *run(char *op) {
    char *kind = strtok(op, ","), *bind_text = strtok(NULL, ","), *dst_text = strtok(NULL, ",");
    char *port_text = strtok(NULL, ",");
    if (!kind || !bind_text || !dst_text) return "bad op";
    int port = port_text ? atoi(port_text) : 0;
    struct sockaddr_storage dst, local;
    socklen_t dst_len, local_len;
    int family = make_addr(dst_text, port, &dst, &dst_len);
    if (family < 0) return "bad address";
    int type = strcmp(kind, "tcp") == 0 ? SOCK_STREAM : SOCK_DGRAM;
    int ping = strncmp(kind, "ping", 4) == 0;
    int proto = ping ? (family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6) : 0;
    int fd = socket(family, type, proto);
    if (fd < 0) return errname(errno);
    const char *result = "ok";
    if (strcmp(bind_text, "-") != 0) {
        if (make_addr(bind_text, 0, &local, &local_len) < 0) result = "bad address";
        else if (bind(fd, (struct sockaddr *)&local, local_len) < 0) result = errname(errno);
    }
    if (strcmp(result, "ok") != 0) {
        close(fd);
        return result;
    }
    if (type == SOCK_STREAM) {
        fcntl(fd, F_SETFL, O_NONBLOCK);
        if (connect(fd, (struct sockaddr *)&dst, dst_len) < 0) {
            if (errno != EINPROGRESS) {
                result = errname(errno);
            } else {
                struct pollfd p = {fd, POLLOUT, 0};
                if (poll(&p, 1, 1000) == 0) {
                    result = "timeout";
                } else {
                    int err = 0;
                    socklen_t len = sizeof err;
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                    result = err ? errname(err) : "ok";
                }
            }
        }
    } else {
        unsigned char msg[16] = {0};
        size_t n = 5;
        if (proto) {
            msg[0] = family == AF_INET ? 8 : 128; /* echo request, code 0, id/seq: the kernel's */
            msg[7] = 1;
            n = 16;
        } else {
            memcpy(msg, "spoof", 5);
        }
        if (strcmp(kind, "pingc") == 0) {
            if (connect(fd, (struct sockaddr *)&dst, dst_len) < 0) result = errname(errno);
            else if (send(fd, msg, n, 0) < 0) result = errname(errno);
        } else if (sendto(fd, msg, n, 0, (struct sockaddr *)&dst, dst_len) < 0) {
            result = errname(errno);
        }
    }
    close(fd);
    return result;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", argv[i]);
        printf("%s: %s\n", argv[i], run(copy));
    }
    fflush(stdout);
    return 0;
}
