/* setjmp_longjmp — setjmp/longjmp as C programs use them (error recovery from deep
 * recursion, longjmp(env, 0), volatile locals, one jmp_buf per thread with thread
 * switches in between). tests/test_threads.py compares the output with gcc's. */
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static jmp_buf recover;
static int deepest;

static int parse(const char *text, int depth) {
    char frame[32];
    snprintf(frame, sizeof frame, "%d:%s", depth, text);
    deepest = depth;
    if (text[0] == '!') longjmp(recover, 100 + depth); /* the error, deep down */
    if (text[0] == 0) return (int)strlen(frame);
    return parse(text + 1, depth + 1);
}

static void *worker(void *arg) {
    long id = (long)arg;
    jmp_buf here;
    volatile int attempts = 0;
    int got = setjmp(here);
    attempts++;
    usleep(1000 * (unsigned)(3 - id)); /* the other threads run in between */
    if (got < 3) longjmp(here, got + 1);
    printf("thread %ld: setjmp came back %d times, last value %d\n", id, attempts, got);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *inputs[] = {"abc", "ab!cd", "abcdef!", ""};
    for (int i = 0; i < 4; i++) {
        int code = setjmp(recover);
        if (code == 0) {
            printf("parse \"%s\": %d\n", inputs[i], parse(inputs[i], 0));
        } else {
            printf("parse \"%s\": error %d (deepest %d)\n", inputs[i], code, deepest);
        }
    }
    volatile int zero_seen = 0;
    jmp_buf env;
    int r = setjmp(env);
    if (r == 0) longjmp(env, 0);
    zero_seen = r;
    printf("longjmp(env, 0) makes setjmp return %d\n", zero_seen);

    pthread_t t[3];
    for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    printf("done\n");
    return 0;
}
