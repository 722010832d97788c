/* http_get HOST PORT PATH — fetch one page over HTTP/1.1 and print a summary.
 *
 * Looks HOST up with getaddrinfo (under vnet: another virtual host's name),
 * sends "GET PATH", reads the whole response (Connection: close), and prints
 * the status line, the body length and a 32-bit FNV-1a hash of the body, so
 * two runs can be compared at a glance. Exits 0 on a 200 response.
 *
 *   gcc -O2 -Wall examples/http_get.c -o http_get
 *   vnet build examples/http_get.c -o http_get.wasm
 */
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int connect_to(const char *host, const char *port) {
    struct addrinfo hints = {0}, *res, *ai;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "http_get: %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) perror("http_get: connect");
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: http_get HOST PORT PATH\n");
        return 2;
    }
    int fd = connect_to(argv[1], argv[2]);
    if (fd < 0) return 1;
    char request[1024];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", argv[3], argv[1]);
    if (n < 0 || (size_t)n >= sizeof request || send(fd, request, (size_t)n, 0) != n) {
        perror("http_get: send");
        return 1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len == cap) buf = realloc(buf, cap *= 2);
        ssize_t got = recv(fd, buf + len, cap - len, 0);
        if (got < 0) { perror("http_get: recv"); return 1; }
        if (got == 0) break;
        len += (size_t)got;
    }
    close(fd);
    char *end = NULL;
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) { end = buf + i; break; }
    if (!end) { fprintf(stderr, "http_get: no HTTP header in %zu bytes\n", len); return 1; }
    char *eol = memchr(buf, '\r', (size_t)(end - buf) + 1);
    size_t body_len = len - (size_t)(end + 4 - buf);
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < body_len; i++) hash = (hash ^ (unsigned char)end[4 + i]) * 16777619u;
    printf("%.*s, %zu body bytes, fnv1a %08x\n", (int)(eol - buf), buf, body_len, hash);
    return strncmp(buf + 9, "200", 3) == 0 ? 0 : 1;
}
