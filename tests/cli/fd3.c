/* Reports what fd 3 is (the socket `--tcplisten`/`-S tcplisten=` hands over),
 * or sleeps for argv[1] seconds first when given. Portable C. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc > 1) {
        sleep((unsigned)atoi(argv[1]));
        puts("slept");
        return 0;
    }
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int listening = 0;
    socklen_t olen = sizeof listening;
    if (getsockname(3, (struct sockaddr *)&a, &len) != 0 ||
        getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) != 0) {
        perror("fd 3");
        return 1;
    }
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
    printf("fd 3: %s:%d listening=%d\n", text, ntohs(a.sin_port), listening);
    return 0;
}
