/* A tiny authoritative DNS responder for tests: answers every A query with
 * the address given on the command line, every other type with no records.
 * Usage: dns_responder ADDRESS [PORT]. Serves until killed. Portable C. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s ADDRESS [PORT]\n", argv[0]);
        return 2;
    }
    struct in_addr answer;
    if (inet_pton(AF_INET, argv[1], &answer) != 1) {
        fprintf(stderr, "bad address %s\n", argv[1]);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in me = {0};
    me.sin_family = AF_INET;
    me.sin_port = htons(argc > 2 ? atoi(argv[2]) : 53);
    if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof me) != 0) {
        perror("bind");
        return 1;
    }
    printf("dns responder ready\n");
    fflush(stdout);
    for (;;) {
        unsigned char buf[512];
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf - 16, 0, (struct sockaddr *)&peer, &len);
        if (n < 12)
            continue;
        size_t q = 12; /* skip the question's name */
        while (q < (size_t)n && buf[q] != 0)
            q += buf[q] + 1;
        if (q + 5 > (size_t)n)
            continue;
        unsigned qtype = (buf[q + 1] << 8) | buf[q + 2];
        size_t end = q + 5;
        buf[2] = 0x84 | (buf[2] & 0x01); /* QR, AA, keep RD */
        buf[3] = 0x00;                   /* RA=0, RCODE=0 */
        buf[6] = 0; buf[7] = qtype == 1 ? 1 : 0; /* ANCOUNT */
        buf[8] = buf[9] = buf[10] = buf[11] = 0;
        if (qtype == 1) {
            unsigned char rr[16] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
            memcpy(rr + 12, &answer, 4);
            memcpy(buf + end, rr, sizeof rr);
            end += sizeof rr;
        }
        printf("query type %u answered\n", qtype);
        fflush(stdout);
        sendto(fd, buf, end, 0, (struct sockaddr *)&peer, len);
    }
}
