/*
 * sdk_lookup.c — name lookups through the libc API only (getaddrinfo,
 * getnameinfo, gethostbyaddr), as ordinary programs make them.
 *
 *   sdk_lookup NAME...        getaddrinfo(NAME, AF_UNSPEC, SOCK_STREAM): one line per address
 *   sdk_lookup -r ADDRESS...  getnameinfo(NI_NAMEREQD) and gethostbyaddr of ADDRESS
 *
 * Prints "NAME ADDRESS" per result, or "NAME error: gai_strerror" (the EAI code too).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    int reverse = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-r") == 0) {
            reverse = 1;
            continue;
        }
        if (reverse) {
            struct sockaddr_storage ss;
            memset(&ss, 0, sizeof ss);
            socklen_t len;
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            const void *raw;
            int family;
            if (inet_pton(AF_INET, argv[i], &sin->sin_addr) == 1) {
                sin->sin_family = family = AF_INET;
                len = sizeof *sin;
                raw = &sin->sin_addr;
            } else if (inet_pton(AF_INET6, argv[i], &sin6->sin6_addr) == 1) {
                sin6->sin6_family = family = AF_INET6;
                len = sizeof *sin6;
                raw = &sin6->sin6_addr;
            } else {
                printf("%s: not an address\n", argv[i]);
                continue;
            }
            char host[NI_MAXHOST];
            int rc = getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, NULL, 0,
                                 NI_NAMEREQD);
            if (rc == 0)
                printf("%s getnameinfo %s\n", argv[i], host);
            else
                printf("%s getnameinfo error %d: %s\n", argv[i], rc, gai_strerror(rc));
            struct hostent *he = gethostbyaddr(raw, family == AF_INET ? 4 : 16, family);
            printf("%s gethostbyaddr %s\n", argv[i], he ? he->h_name : hstrerror(h_errno));
            continue;
        }
        struct addrinfo hints, *res;
        memset(&hints, 0, sizeof hints);
        hints.ai_socktype = SOCK_STREAM;
        int rc = getaddrinfo(argv[i], "80", &hints, &res);
        if (rc != 0) {
            printf("%s error %d: %s\n", argv[i], rc, gai_strerror(rc));
            continue;
        }
        for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
            char text[INET6_ADDRSTRLEN];
            const void *a = ai->ai_family == AF_INET
                                ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
            inet_ntop(ai->ai_family, a, text, sizeof text);
            printf("%s %s\n", argv[i], text);
        }
        freeaddrinfo(res);
    }
    return 0;
}
