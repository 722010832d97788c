/* thread_bomb MODE — attacks on vnet's -pthread runtime.
 *
 *   bomb   create threads that block forever until pthread_create refuses;
 *          print how many were created and the error, then exit 0.
 *   spin   start a thread that computes forever without a host call; main
 *          joins it (blocks), so the guest never ends by itself.
 *   fds    four threads open UDP sockets until EMFILE: print the total.
 *   wait   three threads wait forever and main joins them: every thread blocked.
 *   badjmp longjmp to a jmp_buf no setjmp filled (garbage), then to one another
 *          thread filled. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

static void *wait_forever(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) pthread_cond_wait(&never, &lock);
    return NULL;
}

static volatile unsigned long long spins;

static void *spin(void *arg) {
    (void)arg;
    for (;;) spins++;
    return NULL;
}

static int opened;
static int last_error;

static void *open_until_refused(void *arg) {
    (void)arg;
    for (;;) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        if (fd < 0) {
            last_error = errno;
            return NULL;
        }
        opened++;
        sched_yield(); /* the other threads open theirs in between */
    }
}

static jmp_buf theirs;

static void *fill_theirs(void *arg) {
    (void)arg;
    setjmp(theirs);
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "bomb";
    pthread_t t;
    if (strcmp(mode, "spin") == 0) {
        pthread_create(&t, NULL, spin, NULL);
        printf("spinning\n");
        pthread_join(t, NULL);
        return 0;
    }
    if (strcmp(mode, "fds") == 0) {
        pthread_t ids[4];
        for (int i = 0; i < 4; i++) pthread_create(&ids[i], NULL, open_until_refused, NULL);
        for (int i = 0; i < 4; i++) pthread_join(ids[i], NULL);
        printf("opened %d sockets, then: %s\n", opened, strerror(last_error));
        return 0;
    }
    if (strcmp(mode, "wait") == 0) {
        for (int i = 0; i < 3; i++) pthread_create(&t, NULL, wait_forever, NULL);
        printf("waiting\n");
        pthread_join(t, NULL);
        return 0;
    }
    if (strcmp(mode, "badjmp") == 0 || strcmp(mode, "otherjmp") == 0) {
        jmp_buf garbage;
        memset(garbage, 0x55, sizeof garbage);
        if (strcmp(mode, "otherjmp") == 0) {
            pthread_create(&t, NULL, fill_theirs, NULL);
            pthread_join(t, NULL);
            longjmp(theirs, 1);
        }
        longjmp(garbage, 1);
    }
    int created = 0, err;
    while ((err = pthread_create(&t, NULL, wait_forever, NULL)) == 0 && created < 100000)
        created++;
    printf("created %d threads, then: %s\n", created, strerror(err));
    return 0;
}
