/* threads_api — the POSIX thread calls vnet's -pthread runtime provides, with output
 * that does not depend on how the threads interleave (tests/test_threads.py compares it
 * with the same program built by gcc -pthread). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int counter, turn;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs;
static pthread_key_t key;
static int destructed;

static void init_once(void) { once_runs++; }
/* atomic: four threads exit at about the same time and run their destructors (natively
 * on several CPUs at once, where a plain ++ is a data race that can lose a count) */
static void destructor(void *value) {
    (void)value;
    __atomic_fetch_add(&destructed, 1, __ATOMIC_SEQ_CST);
}

static void *adder(void *arg) {
    long n = (long)arg;
    pthread_once(&once, init_once);
    pthread_setspecific(key, (void *)(n + 100));
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&lock);
        int seen = counter;
        if (i % 100 == 0) sched_yield(); /* a switch inside the critical section */
        counter = seen + 1;
        pthread_mutex_unlock(&lock);
    }
    usleep(1000);
    long mine = (long)pthread_getspecific(key);
    return (void *)(mine == n + 100 ? n : -1);
}

/* threads take turns 0,1,2,0,1,2 … through one condition variable */
static void *taker(void *arg) {
    long me = (long)arg;
    for (int round = 0; round < 3; round++) {
        pthread_mutex_lock(&lock);
        while (turn % 3 != me) pthread_cond_wait(&cond, &lock);
        printf("turn %d: thread %ld\n", turn, me);
        turn++;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static void *exiter(void *arg) {
    (void)arg;
    pthread_exit((void *)42);
    return NULL;
}

static void *nap(void *arg) {
    long ms = (long)arg;
    struct timespec ts = {0, ms * 1000000L}, t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r = nanosleep(&ts, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long took = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    return (void *)(long)(r == 0 && took >= ms ? 1 : 0);
}

static void *holder(void *arg) {
    pthread_mutex_t *m = arg;
    pthread_mutex_lock(m);
    usleep(20000);
    pthread_mutex_unlock(m);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_key_create(&key, destructor);
    pthread_t ids[4];
    for (long i = 0; i < 4; i++) pthread_create(&ids[i], NULL, adder, (void *)i);
    long sum = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(ids[i], &r);
        sum += (long)r;
    }
    printf("counter %d (want 4000), once ran %d time(s), keys ok %s, destructors %d\n", counter,
           once_runs, sum == 0 + 1 + 2 + 3 ? "yes" : "no", destructed);

    for (long i = 0; i < 3; i++) pthread_create(&ids[i], NULL, taker, (void *)i);
    for (int i = 0; i < 3; i++) pthread_join(ids[i], NULL);

    void *result;
    pthread_create(&ids[0], NULL, exiter, NULL);
    pthread_join(ids[0], &result);
    printf("pthread_exit value %ld\n", (long)result);
    printf("self equal %d, join self %s\n", pthread_equal(pthread_self(), pthread_self()),
           pthread_join(pthread_self(), NULL) == EDEADLK ? "EDEADLK" : "other");

    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_create(&ids[0], NULL, holder, &m);
    usleep(5000);
    printf("trylock while held: %s\n", pthread_mutex_trylock(&m) == EBUSY ? "EBUSY" : "other");
    pthread_join(ids[0], NULL);
    printf("trylock after: %d\n", pthread_mutex_trylock(&m));
    pthread_mutex_unlock(&m);

    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_t r;
    pthread_mutex_init(&r, &attr);
    int a = pthread_mutex_lock(&r), b = pthread_mutex_lock(&r), c = pthread_mutex_trylock(&r);
    int d = pthread_mutex_unlock(&r), e = pthread_mutex_unlock(&r), f = pthread_mutex_unlock(&r);
    int g = pthread_mutex_unlock(&r);
    printf("recursive: %d %d %d %d %d %d %s\n", a, b, c, d, e, f, g == EPERM ? "EPERM" : "other");

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 30 * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&lock);
    int timed = pthread_cond_timedwait(&cond, &lock, &deadline);
    pthread_mutex_unlock(&lock);
    printf("timedwait: %s\n", timed == ETIMEDOUT ? "ETIMEDOUT" : strerror(timed));

    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    pthread_create(&ids[0], &detached, holder, &m);
    usleep(5000);
    pthread_mutex_lock(&m); /* waits for the detached thread to let go */
    pthread_mutex_unlock(&m);
    printf("detached thread done\n");

    /* sleeps in several threads at once each last their own time and return 0 */
    long naps_ok = 0;
    for (long i = 0; i < 3; i++) pthread_create(&ids[i], NULL, nap, (void *)(10 - 3 * i));
    for (int i = 0; i < 3; i++) {
        void *ok;
        pthread_join(ids[i], &ok);
        naps_ok += (long)ok;
    }
    printf("concurrent nanosleeps ok: %ld of 3\n", naps_ok);
    return 0;
}
