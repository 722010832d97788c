/* udp_flood — send UDP datagrams to HOST:PORT as fast as the host allows, forever.
 *
 *   udp_flood HOST PORT SIZE
 *
 * A hostile neighbour: it never blocks, never sleeps and ignores every error.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: udp_flood HOST PORT SIZE\n");
        return 2;
    }
    struct addrinfo hints, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0) {
        fprintf(stderr, "udp_flood: cannot resolve %s\n", argv[1]);
        return 1;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    size_t size = (size_t)atol(argv[3]);
    char *buf = calloc(size ? size : 1, 1);
    printf("udp_flood: flooding %s:%s with %zu-byte datagrams\n", argv[1], argv[2], size);
    fflush(stdout);
    for (unsigned long long seq = 0;; seq++) {
        memcpy(buf, &seq, size < sizeof seq ? size : sizeof seq);
        sendto(fd, buf, size, 0, ai->ai_addr, ai->ai_addrlen);
    }
}
