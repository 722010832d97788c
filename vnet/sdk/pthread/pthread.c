/*
 * vnet's POSIX threads for guests built with `vnet cc -pthread`.
 *
 * Threads are cooperative green threads inside the one wasm instance: the
 * module is transformed by Binaryen's Asyncify after linking, so a host call
 * that would block (accept, recv, poll, sleep, a futex wait) unwinds the wasm
 * stack into a per-thread buffer and vnet's host (vnet/guest/threads.py) runs
 * another thread, rewinding it where it left off. A thread switch therefore
 * happens only inside a host call: code between two host calls runs without
 * interruption, which is why the mutexes and condition variables below need no
 * atomics. Every thread has its own C stack (malloc'ed, so it counts against
 * the guest's memory limit) and its own Asyncify buffer.
 *
 * Imports: module "vnet_threads" (spawn, register_main, futex_wait,
 * futex_wake, exit_thread, yield); export: vnet_thread_start, where every new
 * thread begins. See vnet/sdk/ABI.md.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VT_IMPORT(name) __attribute__((__import_module__("vnet_threads"), __import_name__(#name)))

VT_IMPORT(spawn) int __vnet_thread_spawn(void *thread, void *stack_top, void *unwind_buf,
                                         uint32_t unwind_size, uint32_t *tid);
VT_IMPORT(register_main) int __vnet_thread_register_main(void *thread, void *unwind_buf,
                                                         uint32_t unwind_size, void **current);
VT_IMPORT(futex_wait) int __vnet_futex_wait(volatile int *addr, int expected, int64_t timeout_ns);
VT_IMPORT(futex_wake) int __vnet_futex_wake(volatile int *addr, uint32_t count);
VT_IMPORT(exit_thread) int __vnet_thread_exit(void);
VT_IMPORT(yield) int __vnet_thread_yield(void);

#define VT_KEYS 128
#define VT_UNWIND_SIZE (64 * 1024)
#define VT_DEFAULT_STACK (256 * 1024)
#define VT_MIN_STACK (16 * 1024)

struct vnet_thread {
    void *(*start)(void *);
    void *arg;
    void *result;
    volatile int done;       /* 1 once the thread has ended (futex word for join) */
    int detached;
    int joined;
    uint32_t tid;
    void *stack;
    void *unwind;
    void *keys[VT_KEYS];
    struct vnet_thread *next_zombie;
};

static struct vnet_thread main_thread;
static unsigned char main_unwind[VT_UNWIND_SIZE] __attribute__((aligned(16)));
static struct vnet_thread *current = &main_thread; /* written by the host at each switch */
static int registered;
static struct vnet_thread *zombies; /* detached threads that ended: freed by the next create */

static void vt_register(void) {
    if (!registered) {
        registered = 1;
        __vnet_thread_register_main(&main_thread, main_unwind, sizeof main_unwind,
                                    (void **)&current);
    }
}

__attribute__((constructor)) static void vt_init(void) { vt_register(); }

static void vt_reap(void) {
    while (zombies) {
        struct vnet_thread *t = zombies;
        zombies = t->next_zombie;
        free(t->stack);
        free(t->unwind);
        free(t);
    }
}

static void vt_run_key_destructors(struct vnet_thread *self);

static void vt_finish(struct vnet_thread *self, void *result) {
    self->result = result;
    vt_run_key_destructors(self);
    self->done = 1;
    __vnet_futex_wake(&self->done, UINT32_MAX);
    if (self->detached) {
        self->next_zombie = zombies;
        zombies = self;
    }
}

__attribute__((export_name("vnet_thread_start"))) void vnet_thread_start(struct vnet_thread *self) {
    vt_finish(self, self->start(self->arg));
}

int pthread_create(pthread_t *restrict out, const pthread_attr_t *restrict attr,
                   void *(*start)(void *), void *restrict arg) {
    vt_register();
    vt_reap();
    size_t stack_size = VT_DEFAULT_STACK;
    int detached = 0;
    if (attr) {
        size_t asked = 0;
        int state = PTHREAD_CREATE_JOINABLE;
        pthread_attr_getstacksize(attr, &asked);
        pthread_attr_getdetachstate(attr, &state);
        if (asked >= VT_MIN_STACK) stack_size = (asked + 15) & ~(size_t)15;
        detached = state == PTHREAD_CREATE_DETACHED;
    }
    struct vnet_thread *t = calloc(1, sizeof *t);
    void *stack = malloc(stack_size);
    void *unwind = malloc(VT_UNWIND_SIZE);
    if (!t || !stack || !unwind) {
        free(t);
        free(stack);
        free(unwind);
        return EAGAIN;
    }
    t->start = start;
    t->arg = arg;
    t->detached = detached;
    t->stack = stack;
    t->unwind = unwind;
    int err = __vnet_thread_spawn(t, (char *)stack + stack_size, unwind, VT_UNWIND_SIZE, &t->tid);
    if (err) {
        free(t);
        free(stack);
        free(unwind);
        return err;
    }
    *out = (pthread_t)t;
    return 0;
}

pthread_t pthread_self(void) { return (pthread_t)current; }

int (pthread_equal)(pthread_t a, pthread_t b) { return a == b; }

int pthread_join(pthread_t thread, void **result) {
    struct vnet_thread *t = (struct vnet_thread *)thread;
    if (t == current) return EDEADLK;
    if (t->detached || t->joined) return EINVAL;
    t->joined = 1;
    while (!t->done) __vnet_futex_wait(&t->done, 0, -1);
    if (result) *result = t->result;
    if (t != &main_thread) {
        free(t->stack);
        free(t->unwind);
        free(t);
    }
    return 0;
}

int pthread_detach(pthread_t thread) {
    struct vnet_thread *t = (struct vnet_thread *)thread;
    if (t->detached || t->joined) return EINVAL;
    t->detached = 1;
    if (t->done && t != &main_thread) {
        t->next_zombie = zombies;
        zombies = t;
    }
    return 0;
}

_Noreturn void pthread_exit(void *result) {
    vt_finish(current, result);
    for (;;) __vnet_thread_exit();
}

int sched_yield(void) {
    __vnet_thread_yield();
    return 0;
}

/* --- mutexes: the word `locked` is the futex; no atomics (see the top) --- */

struct vt_mutex { volatile int locked; int waiters; struct vnet_thread *owner; int count; int type; };
_Static_assert(sizeof(struct vt_mutex) <= sizeof(pthread_mutex_t), "mutex fits");

int pthread_mutexattr_init(pthread_mutexattr_t *a) { memset(a, 0, sizeof *a); return 0; }
int pthread_mutexattr_destroy(pthread_mutexattr_t *a) { (void)a; return 0; }
int pthread_mutexattr_settype(pthread_mutexattr_t *a, int type) {
    if (type < PTHREAD_MUTEX_NORMAL || type > PTHREAD_MUTEX_ERRORCHECK) return EINVAL;
    memcpy(a, &type, sizeof type);
    return 0;
}
int pthread_mutexattr_gettype(const pthread_mutexattr_t *restrict a, int *restrict type) {
    memcpy(type, a, sizeof *type);
    return 0;
}

int pthread_mutex_init(pthread_mutex_t *restrict m, const pthread_mutexattr_t *restrict a) {
    memset(m, 0, sizeof *m);
    if (a) pthread_mutexattr_gettype(a, &((struct vt_mutex *)m)->type);
    return 0;
}
int pthread_mutex_destroy(pthread_mutex_t *m) {
    return ((struct vt_mutex *)m)->locked ? EBUSY : 0;
}

static int vt_mutex_lock(struct vt_mutex *m, int64_t deadline_ns, int try_only) {
    if (m->locked && m->owner == current) {
        if (m->type == PTHREAD_MUTEX_RECURSIVE) {
            m->count++;
            return 0;
        }
        if (m->type == PTHREAD_MUTEX_ERRORCHECK) return EDEADLK;
        if (try_only) return EBUSY;
    }
    while (m->locked) {
        if (try_only) return EBUSY;
        int64_t timeout = -1;
        if (deadline_ns >= 0) {
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            timeout = deadline_ns - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
            if (timeout <= 0) return ETIMEDOUT;
        }
        m->waiters++;
        __vnet_futex_wait(&m->locked, 1, timeout);
        m->waiters--;
    }
    m->locked = 1;
    m->owner = current;
    m->count = 1;
    return 0;
}

int pthread_mutex_lock(pthread_mutex_t *m) { return vt_mutex_lock((struct vt_mutex *)m, -1, 0); }
int pthread_mutex_trylock(pthread_mutex_t *m) { return vt_mutex_lock((struct vt_mutex *)m, -1, 1); }
int pthread_mutex_timedlock(pthread_mutex_t *restrict m, const struct timespec *restrict at) {
    return vt_mutex_lock((struct vt_mutex *)m, (int64_t)at->tv_sec * 1000000000 + at->tv_nsec, 0);
}

int pthread_mutex_unlock(pthread_mutex_t *mutex) {
    struct vt_mutex *m = (struct vt_mutex *)mutex;
    if (!m->locked) return m->type == PTHREAD_MUTEX_NORMAL ? 0 : EPERM;
    if (m->owner != current && m->type != PTHREAD_MUTEX_NORMAL) return EPERM;
    if (m->type == PTHREAD_MUTEX_RECURSIVE && --m->count > 0) return 0;
    m->locked = 0;
    m->owner = 0;
    if (m->waiters) __vnet_futex_wake(&m->locked, 1);
    return 0;
}

/* --- condition variables: `seq` changes at every signal; waiters wait on it --- */

struct vt_cond { volatile int seq; int waiters; int clock; };
_Static_assert(sizeof(struct vt_cond) <= sizeof(pthread_cond_t), "cond fits");

int pthread_condattr_init(pthread_condattr_t *a) { memset(a, 0, sizeof *a); return 0; }
int pthread_condattr_destroy(pthread_condattr_t *a) { (void)a; return 0; }
int pthread_condattr_setclock(pthread_condattr_t *a, clockid_t clock) {
    int which = clock == CLOCK_MONOTONIC ? 1 : 0;
    if (clock != CLOCK_MONOTONIC && clock != CLOCK_REALTIME) return EINVAL;
    memcpy(a, &which, sizeof which);
    return 0;
}

int pthread_cond_init(pthread_cond_t *restrict c, const pthread_condattr_t *restrict a) {
    memset(c, 0, sizeof *c);
    if (a) memcpy(&((struct vt_cond *)c)->clock, a, sizeof(int));
    return 0;
}
int pthread_cond_destroy(pthread_cond_t *c) { (void)c; return 0; }

int pthread_cond_timedwait(pthread_cond_t *restrict cond, pthread_mutex_t *restrict mutex,
                           const struct timespec *restrict at) {
    struct vt_cond *c = (struct vt_cond *)cond;
    struct vt_mutex *m = (struct vt_mutex *)mutex;
    if (!m->locked || (m->owner != current && m->type != PTHREAD_MUTEX_NORMAL)) return EPERM;
    int64_t timeout = -1;
    if (at) {
        struct timespec now;
        clock_gettime(c->clock ? CLOCK_MONOTONIC : CLOCK_REALTIME, &now);
        timeout = ((int64_t)at->tv_sec - now.tv_sec) * 1000000000 + (at->tv_nsec - now.tv_nsec);
        if (timeout < 0) timeout = 0;
    }
    int seq = c->seq;
    int count = m->count;
    m->count = 1;
    pthread_mutex_unlock(mutex);
    c->waiters++;
    int err = 0;
    while (c->seq == seq) {
        if (__vnet_futex_wait(&c->seq, seq, timeout) == ETIMEDOUT) {
            err = ETIMEDOUT;
            break;
        }
    }
    c->waiters--;
    vt_mutex_lock(m, -1, 0);
    m->count = count;
    return err;
}

int pthread_cond_wait(pthread_cond_t *restrict c, pthread_mutex_t *restrict m) {
    return pthread_cond_timedwait(c, m, 0);
}

int pthread_cond_signal(pthread_cond_t *cond) {
    struct vt_cond *c = (struct vt_cond *)cond;
    if (c->waiters) {
        c->seq++;
        __vnet_futex_wake(&c->seq, 1);
    }
    return 0;
}

int pthread_cond_broadcast(pthread_cond_t *cond) {
    struct vt_cond *c = (struct vt_cond *)cond;
    if (c->waiters) {
        c->seq++;
        __vnet_futex_wake(&c->seq, UINT32_MAX);
    }
    return 0;
}

/* --- once and keys --- */

int pthread_once(pthread_once_t *once, void (*init)(void)) {
    /* 0: not run, 1: running, 2: done. Another thread that finds it running waits. */
    volatile int *state = (volatile int *)once;
    while (*state == 1) __vnet_futex_wait(state, 1, -1);
    if (*state == 0) {
        *state = 1;
        init();
        *state = 2;
        __vnet_futex_wake(state, UINT32_MAX);
    }
    return 0;
}

static void (*key_destructors[VT_KEYS])(void *);
static unsigned char key_used[VT_KEYS];

int pthread_key_create(pthread_key_t *key, void (*destructor)(void *)) {
    for (unsigned i = 0; i < VT_KEYS; i++) {
        if (!key_used[i]) {
            key_used[i] = 1;
            key_destructors[i] = destructor;
            *key = i;
            return 0;
        }
    }
    return EAGAIN;
}

int pthread_key_delete(pthread_key_t key) {
    if (key >= VT_KEYS || !key_used[key]) return EINVAL;
    key_used[key] = 0;
    key_destructors[key] = 0;
    return 0;
}

void *pthread_getspecific(pthread_key_t key) {
    return key < VT_KEYS ? current->keys[key] : 0;
}

int pthread_setspecific(pthread_key_t key, const void *value) {
    if (key >= VT_KEYS || !key_used[key]) return EINVAL;
    current->keys[key] = (void *)value;
    return 0;
}

static void vt_run_key_destructors(struct vnet_thread *self) {
    for (int round = 0; round < 4; round++) {
        int any = 0;
        for (unsigned i = 0; i < VT_KEYS; i++) {
            void *value = self->keys[i];
            if (value && key_used[i] && key_destructors[i]) {
                self->keys[i] = 0;
                key_destructors[i](value);
                any = 1;
            }
        }
        if (!any) break;
    }
}

/* --- attributes the programs above read --- */

int pthread_attr_init(pthread_attr_t *a) { memset(a, 0, sizeof *a); return 0; }
int pthread_attr_destroy(pthread_attr_t *a) { (void)a; return 0; }
int pthread_attr_setstacksize(pthread_attr_t *a, size_t size) {
    if (size < VT_MIN_STACK) return EINVAL;
    memcpy(&a->__u.__s[0], &size, sizeof size);
    return 0;
}
int pthread_attr_getstacksize(const pthread_attr_t *restrict a, size_t *restrict size) {
    size_t value;
    memcpy(&value, &a->__u.__s[0], sizeof value);
    *size = value ? value : VT_DEFAULT_STACK;
    return 0;
}
int pthread_attr_setdetachstate(pthread_attr_t *a, int state) {
    if (state != PTHREAD_CREATE_DETACHED && state != PTHREAD_CREATE_JOINABLE) return EINVAL;
    a->__u.__i[3 * sizeof(size_t) / sizeof(int)] = state;
    return 0;
}
int pthread_attr_getdetachstate(const pthread_attr_t *a, int *state) {
    *state = a->__u.__i[3 * sizeof(size_t) / sizeof(int)];
    return 0;
}

/* sleep(), usleep() and nanosleep() are wasi-libc's: they end in poll_oneoff, which
 * vnet's host makes switch threads like any blocking call. */

/* --- setjmp/longjmp (see vnet/sdk/pthread/include/setjmp.h) --- */

VT_IMPORT(setjmp) int __vnet_setjmp(void *env);
VT_IMPORT(longjmp) int __vnet_longjmp(void *env, int value);

struct vt_jmp_buf { unsigned serial, tid, reserved[2]; };

__attribute__((__returns_twice__)) int setjmp(struct vt_jmp_buf *env) {
    vt_register();
    return __vnet_setjmp(env);
}

_Noreturn void longjmp(struct vt_jmp_buf *env, int value) {
    __vnet_longjmp(env, value);
    static const char message[] = "vnet: longjmp to a jmp_buf that setjmp did not fill "
                                  "on this thread\n";
    write(2, message, sizeof message - 1);
    abort();
}

__attribute__((__returns_twice__)) int _setjmp(struct vt_jmp_buf *env) {
    vt_register();
    return __vnet_setjmp(env);
}
_Noreturn void _longjmp(struct vt_jmp_buf *env, int value) { longjmp(env, value); }
__attribute__((__returns_twice__)) int sigsetjmp(struct vt_jmp_buf *env, int save_mask) {
    (void)save_mask; /* WASI has no signal mask to save */
    vt_register();
    return __vnet_setjmp(env);
}
_Noreturn void siglongjmp(struct vt_jmp_buf *env, int value) { longjmp(env, value); }
