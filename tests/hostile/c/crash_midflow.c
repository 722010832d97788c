/* crash_midflow — a TCP server that dies mid-transfer, and the peer that must notice.
 *
 *   crash_midflow serve PORT HOW     accept one client, then (HOW):
 *       close        close the connection at once and stay alive for 3 s
 *       trap-read    read 64 KiB of what the client writes, then trap (__builtin_trap)
 *       trap-write   write 64 KiB to the client, then trap
 *       exit-unread  wait 200 ms, read 10 of the client's bytes, exit(3) with the
 *                    rest unread and the socket open
 *   crash_midflow write HOST PORT    write 1 KiB every 100 ms until an error
 *   crash_midflow flood HOST PORT    write 16 KiB chunks as fast as possible until an error
 *   crash_midflow read HOST PORT     read until EOF or an error
 *   crash_midflow sendwait HOST PORT send 100 bytes, then read until EOF or an error
 *
 * The peers print one line: "write error: ENAME after N writes",
 * "EOF after N bytes" or "read error: ENAME after N bytes", and exit 0.
 * Built natively (gcc), a trap is SIGILL and the kernel closes the dead
 * process's sockets: that is the reference the vnet run is compared with.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

static const char *errname(int e) {
    switch (e) {
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOTCONN: return "ENOTCONN";
    default: return "other";
    }
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int serve(int port, const char *how) {
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 4) < 0) {
        perror("listen");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    int conn = accept(fd, NULL, NULL);
    if (conn < 0) {
        perror("accept");
        return 1;
    }
    static char buf[65536];
    if (strcmp(how, "close") == 0) {
        close(conn);
        sleep_ms(3000);
        printf("closed\n");
        return 0;
    }
    if (strcmp(how, "trap-read") == 0) {
        size_t got = 0;
        while (got < sizeof buf) {
            ssize_t n = read(conn, buf, sizeof buf - got);
            if (n <= 0) return 1;
            got += (size_t)n;
        }
        __builtin_trap();
    }
    if (strcmp(how, "trap-write") == 0) {
        memset(buf, 'x', sizeof buf);
        size_t sent = 0;
        while (sent < sizeof buf) {
            ssize_t n = write(conn, buf + sent, sizeof buf - sent);
            if (n <= 0) return 1;
            sent += (size_t)n;
        }
        __builtin_trap();
    }
    if (strcmp(how, "exit-unread") == 0) {
        sleep_ms(200);
        if (read(conn, buf, 10) != 10) return 1;
        exit(3);
    }
    fprintf(stderr, "unknown HOW %s\n", how);
    return 2;
}

static int dial(const char *host, const char *port) {
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) return -1;
    int fd = socket(res->ai_family, res->ai_socktype, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        perror("connect");
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int read_until_end(int fd) {
    static char buf[16384];
    long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0) {
            printf("EOF after %ld bytes\n", total);
            return 0;
        }
        if (n < 0) {
            printf("read error: %s after %ld bytes\n", errname(errno), total);
            return 0;
        }
        total += n;
    }
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "serve") == 0) return serve(atoi(argv[2]), argv[3]);
    if (argc != 4) {
        fprintf(stderr, "usage: see the source\n");
        return 2;
    }
    int fd = dial(argv[2], argv[3]);
    if (fd < 0) return 1;
    static char chunk[16384];
    memset(chunk, 'c', sizeof chunk);
    if (strcmp(argv[1], "write") == 0 || strcmp(argv[1], "flood") == 0) {
        int slow = strcmp(argv[1], "write") == 0;
        size_t size = slow ? 1024 : sizeof chunk;
        long writes = 0;
        if (slow) sleep_ms(100);
        for (;;) {
            ssize_t n = send(fd, chunk, size, MSG_NOSIGNAL);
            if (n < 0) {
                printf("write error: %s after %ld writes\n", errname(errno), writes);
                return 0;
            }
            writes++;
            if (slow) sleep_ms(100);
        }
    }
    if (strcmp(argv[1], "read") == 0) return read_until_end(fd);
    if (strcmp(argv[1], "sendwait") == 0) {
        if (send(fd, chunk, 100, MSG_NOSIGNAL) != 100) return 1;
        return read_until_end(fd);
    }
    return 2;
}
