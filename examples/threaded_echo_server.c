/* threaded_echo_server PORT [MAX_CLIENTS] — a TCP echo server, one thread per connection.
 *
 * Listens on PORT (IPv4, every address) and starts a detached POSIX thread
 * for each client it accepts; the thread echoes whatever the client sends
 * until the client closes its side. A mutex guards the counters the threads
 * share; a condition variable tells the main thread when the last connection
 * thread has finished. After MAX_CLIENTS clients (default 0: serve forever)
 * it stops accepting, waits for the connections still open and exits.
 *
 *   gcc -O2 -Wall -pthread examples/threaded_echo_server.c -o threaded_echo_server
 *   vnet build -pthread examples/threaded_echo_server.c -o threaded_echo_server.wasm
 *   ./threaded_echo_server 7000 4 &  ./threaded_client 127.0.0.1 7000 4 3
 *
 * Under vnet the threads are green threads inside the one wasm instance: a
 * thread blocked in accept() or read() lets the others run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_done = PTHREAD_COND_INITIALIZER;
static int active;           /* connection threads still running */
static int most_active;      /* the most that ran at once */
static long long total_bytes;

struct connection {
    int fd;
    int number;
};

static int write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void *serve(void *arg) {
    struct connection *conn = arg;
    char buf[4096];
    long long echoed = 0;
    for (;;) {
        ssize_t n = read(conn->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* 0: the client closed its side; <0: it went away */
        if (write_all(conn->fd, buf, (size_t)n) != 0) break;
        echoed += n;
    }
    close(conn->fd);
    printf("threaded_echo_server: connection %d done, %lld bytes echoed\n", conn->number, echoed);
    pthread_mutex_lock(&lock);
    total_bytes += echoed;
    if (--active == 0) pthread_cond_signal(&all_done);
    pthread_mutex_unlock(&lock);
    free(conn);
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, even into a pipe */
    if (argc < 2) {
        fprintf(stderr, "usage: threaded_echo_server PORT [MAX_CLIENTS]\n");
        return 2;
    }
    int max_clients = argc > 2 ? atoi(argv[2]) : 0;
    signal(SIGPIPE, SIG_IGN);

    int one = 1;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[1]));
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(listener, 64) != 0) {
        perror("threaded_echo_server: listen");
        return 1;
    }
    printf("threaded_echo_server: listening on port %d\n", atoi(argv[1]));

    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    int accepted = 0;
    while (max_clients == 0 || accepted < max_clients) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            perror("threaded_echo_server: accept");
            return 1;
        }
        struct connection *conn = malloc(sizeof *conn);
        conn->fd = fd;
        conn->number = ++accepted;
        pthread_mutex_lock(&lock);
        active++;
        if (active > most_active) most_active = active;
        pthread_mutex_unlock(&lock);
        pthread_t thread;
        int err = pthread_create(&thread, &detached, serve, conn);
        if (err != 0) {
            fprintf(stderr, "threaded_echo_server: pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    close(listener);
    pthread_mutex_lock(&lock);
    while (active > 0) pthread_cond_wait(&all_done, &lock);
    printf("threaded_echo_server: served %d clients, %lld bytes, up to %d at once\n", accepted,
           total_bytes, most_active);
    pthread_mutex_unlock(&lock);
    pthread_attr_destroy(&detached);
    return 0;
}
