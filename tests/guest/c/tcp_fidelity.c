/* TCP corner cases where vnet once differed from Linux, one line per call.

   1. a connection reset while it waits in the accept queue: accept() still
      returns it (with the peer's address), recv() says ECONNRESET, then 0;
   2. a refused non-blocking connect(): recv() says ECONNREFUSED, then 0;
      a refused blocking connect(): recv() is ENOTCONN; connect() again after a
      non-blocking one: 0 then EISCONN, or ECONNABORTED when it was refused;
   3. connect() from a bound port to a 4-tuple in TIME-WAIT (timestamps on):
      the TIME-WAIT gives way;
   4. getsockopt(TCP_INFO): the length Linux copies out and the state.
   Everything runs on 127.0.0.1; nothing printed depends on timing. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* errno by name: wasi-libc's strerror() texts are not glibc's */
static const char *errname(int e) {
    switch (e) {
    case ECONNRESET: return "ECONNRESET";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOTCONN: return "ENOTCONN";
    case EINPROGRESS: return "EINPROGRESS";
    case EPIPE: return "EPIPE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EADDRINUSE: return "EADDRINUSE";
    case EAGAIN: return "EAGAIN";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EINVAL: return "EINVAL";
    case EALREADY: return "EALREADY";
    case EISCONN: return "EISCONN";
    case ECONNABORTED: return "ECONNABORTED";
    default: return "other";
    }
}

#define SHOW(name, expr)                                                           \
    do {                                                                           \
        errno = 0;                                                                 \
        long r_ = (long)(expr);                                                    \
        printf("%-40s -> %ld %s\n", name, r_, r_ < 0 ? errname(errno) : "");       \
        fflush(stdout);                                                            \
    } while (0)

static struct sockaddr_in lo(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    return a;
}

static int stream(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct timeval tv = {2, 0};
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (port) {
        struct sockaddr_in a = lo(port);
        if (bind(s, (void *)&a, sizeof a) < 0) perror("bind");
    }
    return s;
}

static void info(const char *name, int fd) {
    unsigned char ti[512];
    socklen_t len = sizeof ti;
    memset(ti, 0xAA, sizeof ti);
    int r = getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len);
    printf("%-40s -> %d len %u state %d\n", name, r, (unsigned)len, ti[0]);
    fflush(stdout);
}

int main(void) {
    char buf[64];
    struct sockaddr_in srv = lo(7300);
    int l = stream(7300);
    listen(l, 8);
    info("TCP_INFO listener", l);

    /* 1 */
    int c = stream(0);
    SHOW("connect", connect(c, (void *)&srv, sizeof srv));
    struct sockaddr_in mine;
    socklen_t ml = sizeof mine;
    getsockname(c, (void *)&mine, &ml);
    struct linger lg = {1, 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c);
    usleep(100000);
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    memset(&peer, 0, sizeof peer);
    int s = accept(l, (void *)&peer, &pl);
    SHOW("accept a connection reset in the queue", s >= 0 ? 0 : -1);
    printf("  peer is the client: %d\n", peer.sin_port == mine.sin_port);
    info("TCP_INFO reset connection", s);
    SHOW("recv on it", recv(s, buf, sizeof buf, 0));
    SHOW("recv on it again", recv(s, buf, sizeof buf, 0));
    SHOW("getpeername on it", getpeername(s, (void *)&peer, &pl));
    close(s);

    /* 2 */
    struct sockaddr_in nobody = lo(7301);
    c = stream(0);
    fcntl(c, F_SETFL, O_NONBLOCK);
    SHOW("non-blocking connect to nobody", connect(c, (void *)&nobody, sizeof nobody));
    usleep(100000);
    fcntl(c, F_SETFL, 0);
    SHOW("recv after the refusal", recv(c, buf, sizeof buf, 0));
    SHOW("recv again", recv(c, buf, sizeof buf, 0));
    SHOW("send", send(c, "x", 1, MSG_NOSIGNAL));
    close(c);
    c = stream(0);
    SHOW("blocking connect to nobody", connect(c, (void *)&nobody, sizeof nobody));
    SHOW("recv after it", recv(c, buf, sizeof buf, 0));
    close(c);

    /* 2b: connect() again goes by the socket's state */
    c = stream(0);
    fcntl(c, F_SETFL, O_NONBLOCK);
    SHOW("non-blocking connect to the listener", connect(c, (void *)&srv, sizeof srv));
    usleep(100000);
    SHOW("connect again (handshake done)", connect(c, (void *)&srv, sizeof srv));
    SHOW("connect once more", connect(c, (void *)&srv, sizeof srv));
    s = accept(l, NULL, NULL);
    close(s);
    close(c);
    c = stream(0);
    fcntl(c, F_SETFL, O_NONBLOCK);
    SHOW("non-blocking connect to nobody", connect(c, (void *)&nobody, sizeof nobody));
    usleep(100000);
    int err = -1;
    socklen_t el = sizeof err;
    getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el);
    printf("  SO_ERROR is ECONNREFUSED: %d\n", err == ECONNREFUSED);
    SHOW("connect again (refused)", connect(c, (void *)&nobody, sizeof nobody));
    SHOW("recv after it", recv(c, buf, sizeof buf, 0));
    close(c);

    /* 3 */
    c = stream(40100);
    SHOW("connect from 40100", connect(c, (void *)&srv, sizeof srv));
    s = accept(l, NULL, NULL);
    info("TCP_INFO established", c);
    close(c);
    SHOW("server sees EOF", recv(s, buf, sizeof buf, 0));
    close(s);
    usleep(100000);
    c = stream(40100);
    SHOW("connect from 40100 again (TIME-WAIT)", connect(c, (void *)&srv, sizeof srv));
    s = accept(l, NULL, NULL);
    SHOW("send on the new one", send(c, "new", 3, 0));
    SHOW("server receives it", recv(s, buf, sizeof buf, 0));
    shutdown(c, SHUT_WR);
    SHOW("server sees EOF", recv(s, buf, sizeof buf, 0));
    info("TCP_INFO after our FIN (FIN-WAIT-2)", c);
    info("TCP_INFO after the peer's FIN (CLOSE-WAIT)", s);
    close(s);
    usleep(100000);
    SHOW("client sees EOF", recv(c, buf, sizeof buf, 0));
    info("TCP_INFO in TIME-WAIT (CLOSE)", c);
    close(c);
    close(l);
    printf("done\n");
    return 0;
}
