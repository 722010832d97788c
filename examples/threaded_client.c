/* threaded_client HOST PORT THREADS MESSAGES — many echo clients at once, one per thread.
 *
 * Starts THREADS POSIX threads; each connects to the echo server at HOST:PORT
 * (an IPv4 address) and waits until every thread is connected (a condition
 * variable the main thread broadcasts on), so all connections are open at
 * the same time. Then each sends MESSAGES lines, reads each echo back and
 * checks it, and adds what it did to counters a mutex guards. The main thread
 * joins them all and prints the totals. Exits 0 if every echo matched.
 *
 *   gcc -O2 -Wall -pthread examples/threaded_client.c -o threaded_client
 *   vnet build -pthread examples/threaded_client.c -o threaded_client.wasm
 *   ./threaded_echo_server 7000 4 &  ./threaded_client 127.0.0.1 7000 4 3
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_THREADS 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int connected, go, matched, failed;
static long long bytes;
static struct sockaddr_in server;
static int messages;

static int read_exactly(int fd, char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void *client(void *arg) {
    long id = (long)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&server, sizeof server) == 0;
    pthread_mutex_lock(&lock);
    connected++;
    pthread_cond_broadcast(&changed);
    while (!go) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    int good = 0;
    long long sent = 0;
    for (int i = 0; ok && i < messages; i++) {
        char line[96], echo[96];
        int len = snprintf(line, sizeof line, "thread %ld message %d\n", id, i);
        if (write(fd, line, (size_t)len) != len || read_exactly(fd, echo, (size_t)len) != 0) {
            ok = 0;
            break;
        }
        if (memcmp(line, echo, (size_t)len) == 0) good++;
        sent += len;
    }
    if (fd >= 0) close(fd);
    printf("threaded_client: thread %ld: %d of %d echoes matched\n", id, good, messages);
    pthread_mutex_lock(&lock);
    matched += good;
    failed += messages - good;
    bytes += sent;
    pthread_mutex_unlock(&lock);
    return (void *)(long)good;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 5) {
        fprintf(stderr, "usage: threaded_client HOST PORT THREADS MESSAGES\n");
        return 2;
    }
    int threads = atoi(argv[3]);
    messages = atoi(argv[4]);
    if (threads < 1 || threads > MAX_THREADS || messages < 0) {
        fprintf(stderr, "threaded_client: THREADS must be 1..%d\n", MAX_THREADS);
        return 2;
    }
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) {
        fprintf(stderr, "threaded_client: %s: not an IPv4 address\n", argv[1]);
        return 2;
    }
    pthread_t ids[MAX_THREADS];
    for (long i = 0; i < threads; i++) {
        int err = pthread_create(&ids[i], NULL, client, (void *)i);
        if (err != 0) {
            fprintf(stderr, "threaded_client: pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    pthread_mutex_lock(&lock);
    while (connected < threads) pthread_cond_wait(&changed, &lock);
    printf("threaded_client: %d threads connected\n", connected);
    go = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    long joined_good = 0;
    for (int i = 0; i < threads; i++) {
        void *good;
        pthread_join(ids[i], &good);
        joined_good += (long)good;
    }
    printf("threaded_client: %d echoes matched (%ld by join), %d failed, %lld bytes\n", matched,
           joined_good, failed, bytes);
    return failed == 0 && matched == threads * messages ? 0 : 1;
}
