/* threads_pipe — two threads of one program talk through a pipe: a writer sends
 * 1 MiB (much more than the pipe holds) with a write loop, a reader reads it to the
 * end and checks every byte. tests/test_threads.py compares the output with gcc's. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define TOTAL (1024 * 1024)

static int ends[2];
static unsigned char data[TOTAL];

static void *writer(void *arg) {
    (void)arg;
    size_t done = 0;
    while (done < TOTAL) {
        ssize_t n = write(ends[1], data + done, TOTAL - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    close(ends[1]);
    return (void *)done;
}

int main(void) {
    for (int i = 0; i < TOTAL; i++) data[i] = (unsigned char)(i * 7 + i / 4096);
    if (pipe(ends) != 0) {
        perror("pipe");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    unsigned char buf[8192];
    size_t got = 0, wrong = 0;
    for (;;) {
        ssize_t n = read(ends[0], buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) wrong += buf[i] != data[got + (size_t)i];
        got += (size_t)n;
    }
    void *written;
    pthread_join(t, &written);
    printf("written %zu, read %zu, wrong %zu\n", (size_t)written, got, wrong);
    return got == TOTAL && wrong == 0 ? 0 : 1;
}
