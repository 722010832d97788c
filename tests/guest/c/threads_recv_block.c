/* threads_recv_block — a thread blocked in recv() lets the guest's other threads run.
 *
 * A reader thread blocks in recv() on a UDP socket; the main thread then runs,
 * counts, sleeps, and only afterwards sends the datagram that wakes the reader. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fd;
static volatile int main_progress;
static int progress_when_woken = -1;

static void *reader(void *arg) {
    (void)arg;
    char buf[64];
    printf("reader: blocking in recv\n");
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    progress_when_woken = main_progress;
    buf[n > 0 ? n : 0] = 0;
    printf("reader: got \"%s\"\n", buf);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(9999);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("bind");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    usleep(10000); /* the reader runs and blocks */
    for (int i = 0; i < 5; i++) {
        main_progress++;
        printf("main: step %d while the reader waits\n", i);
        usleep(1000);
    }
    int out = socket(AF_INET, SOCK_DGRAM, 0);
    sendto(out, "wake up", 7, 0, (struct sockaddr *)&addr, sizeof addr);
    pthread_join(t, NULL);
    printf("main: reader woke after %d steps\n", progress_when_woken);
    return 0;
}
