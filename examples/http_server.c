/* http_server DIR PORT [MAX_CONNECTIONS] — serve a directory over HTTP/1.1.
 *
 * GET and HEAD for the files under DIR, with Content-Length and a
 * Content-Type guessed from the extension; "/" and other directories serve
 * their index.html. Missing files get 404, other methods 405, and any path
 * that tries to climb out of DIR ("..", %2e%2e, backslashes, NUL) gets 403 —
 * the check happens before the file system is touched. Connections are
 * kept alive (HTTP/1.1's default) until the client says "Connection: close"
 * or stays idle for 5 s; connections are served one at a time. With
 * MAX_CONNECTIONS the server exits after that many (default 0: never).
 * Each request is logged as "METHOD PATH STATUS BYTES".
 *
 * Under vnet, DIR is a directory the guest was given (a WASI preopen, e.g.
 * `vnet run --dir ./site::/www http_server.wasm /www 8080`): the guest can
 * reach nothing else, whatever this program did.
 *
 *   gcc -O2 -Wall examples/http_server.c -o http_server
 *   vnet build examples/http_server.c -o http_server.wasm
 *   ./http_server ./site 8080 &  curl -i http://localhost:8080/
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define IDLE_MS 5000

static const char *root;

static int listen_on(int port) {
    int one = 1, zero = 0;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 addr;
    memset(&addr, 0, sizeof addr);
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons((unsigned short)port);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static const char *content_type(const char *path) {
    static const char *const types[][2] = {
        {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"}, {".css", "text/css"},
        {".js", "text/javascript"},            {".json", "application/json"},
        {".png", "image/png"},                 {".jpg", "image/jpeg"},
        {".svg", "image/svg+xml"},             {".wasm", "application/wasm"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(dot, types[i][0]) == 0) return types[i][1];
    return "application/octet-stream";
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode %XX escapes and cut the query string off, in place. Then refuse
 * anything that is not a plain path below the root: it must start with '/',
 * and no segment may be "." or "..", nor may it hold a backslash or NUL.
 * Returns 0 if the path is acceptable. */
static int clean_path(char *target) {
    char *q = strchr(target, '?');
    if (q) *q = '\0';
    char *out = target;
    for (char *in = target; *in; in++) {
        if (*in == '%') {
            int hi = hex_value(in[1]), lo = hi < 0 ? -1 : hex_value(in[2]);
            if (lo < 0) return -1;
            char c = (char)(hi * 16 + lo);
            if (c == '\0') return -1;
            *out++ = c;
            in += 2;
        } else {
            *out++ = *in;
        }
    }
    *out = '\0';
    if (target[0] != '/' || strchr(target, '\\') != NULL) return -1;
    for (char *seg = target; seg != NULL; seg = strchr(seg + 1, '/')) {
        const char *s = seg + 1;
        size_t len = strcspn(s, "/");
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) return -1;
    }
    return 0;
}

static void send_simple(int fd, int status, const char *reason, int head_only, int keep_alive,
                        const char *extra_header) {
    char body[128], head[512];
    int body_len = snprintf(body, sizeof body, "%d %s\n", status, reason);
    int head_len = snprintf(head, sizeof head,
                            "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: %d\r\n%sConnection: %s\r\n\r\n",
                            status, reason, body_len, extra_header ? extra_header : "",
                            keep_alive ? "keep-alive" : "close");
    write_all(fd, head, (size_t)head_len);
    if (!head_only) write_all(fd, body, (size_t)body_len);
}

/* Answer one request; returns the status it sent and stores the body size. */
static int respond(int fd, const char *method, char *target, int keep_alive, long long *sent) {
    int head_only = strcmp(method, "HEAD") == 0;
    *sent = 0;
    if (!head_only && strcmp(method, "GET") != 0) {
        send_simple(fd, 405, "Method Not Allowed", 0, keep_alive, "Allow: GET, HEAD\r\n");
        return 405;
    }
    if (clean_path(target) != 0) {
        send_simple(fd, 403, "Forbidden", head_only, keep_alive, NULL);
        return 403;
    }
    char path[1024];
    struct stat st;
    int too_long = snprintf(path, sizeof path, "%s%s", root, target) >= (int)sizeof path;
    if (!too_long && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t len = strlen(path);
        too_long = snprintf(path + len, sizeof path - len, "%sindex.html",
                            path[len - 1] == '/' ? "" : "/") >= (int)(sizeof path - len);
    }
    int file = too_long ? -1 : open(path, O_RDONLY);
    if (file < 0 || fstat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (file >= 0) close(file);
        send_simple(fd, 404, "Not Found", head_only, keep_alive, NULL);
        return 404;
    }
    char head[512];
    int head_len = snprintf(head, sizeof head,
                            "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %lld\r\n"
                            "Connection: %s\r\n\r\n",
                            content_type(path), (long long)st.st_size,
                            keep_alive ? "keep-alive" : "close");
    write_all(fd, head, (size_t)head_len);
    if (!head_only) {
        char buf[16384];
        ssize_t n;
        while ((n = read(file, buf, sizeof buf)) > 0 && write_all(fd, buf, (size_t)n) == 0)
            *sent += n;
    }
    close(file);
    return 200;
}

/* Serve requests on one connection until it closes or asks to. */
static void serve(int fd) {
    char buf[HEAD_MAX + 1];
    size_t used = 0;
    for (;;) {
        char *end;
        buf[used] = '\0';
        while ((end = strstr(buf, "\r\n\r\n")) == NULL) {
            if (used == HEAD_MAX) {
                send_simple(fd, 431, "Request Header Fields Too Large", 0, 0, NULL);
                return;
            }
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            if (poll(&pfd, 1, IDLE_MS) <= 0) return; /* idle keep-alive connection */
            ssize_t n = read(fd, buf + used, HEAD_MAX - used);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            used += (size_t)n;
            buf[used] = '\0';
        }
        *end = '\0';
        size_t head_len = (size_t)(end - buf) + 4;

        /* Request line: METHOD SP TARGET SP VERSION */
        char method[16], target[2048], version[16];
        if (sscanf(buf, "%15s %2047s %15s", method, target, version) != 3 ||
            strncmp(version, "HTTP/1.", 7) != 0) {
            send_simple(fd, 400, "Bad Request", 0, 0, NULL);
            return;
        }
        /* HTTP/1.1 keeps the connection by default, HTTP/1.0 closes it. */
        int keep_alive = strcmp(version, "HTTP/1.1") == 0;
        for (char *line = strstr(buf, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
            if (strncasecmp(line + 2, "Connection:", 11) != 0) continue;
            const char *value = line + 13;
            while (*value == ' ') value++;
            if (strncasecmp(value, "close", 5) == 0) keep_alive = 0;
            if (strncasecmp(value, "keep-alive", 10) == 0) keep_alive = 1;
        }
        char logged[2048];
        snprintf(logged, sizeof logged, "%s", target);
        long long body = 0;
        int status = respond(fd, method, target, keep_alive, &body);
        printf("http_server: %s %s %d %lld\n", method, logged, status, body);

        memmove(buf, buf + head_len, used - head_len); /* a pipelined next request */
        used -= head_len;
        if (!keep_alive) return;
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: http_server DIR PORT [MAX_CONNECTIONS]\n");
        return 2;
    }
    root = argv[1];
    int max_conns = argc > 3 ? atoi(argv[3]) : 0;
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "http_server: %s is not a directory\n", root);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int listener = listen_on(atoi(argv[2]));
    if (listener < 0) {
        perror("http_server: listen");
        return 1;
    }
    printf("http_server: serving %s on port %d\n", root, atoi(argv[2]));
    for (int served = 0; max_conns == 0 || served < max_conns;) {
        int conn = accept(listener, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            perror("http_server: accept");
            return 1;
        }
        serve(conn);
        close(conn);
        served++;
    }
    printf("http_server: bye\n");
    close(listener);
    return 0;
}
