/* codec_test_util.c - see codec_test_util.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec_test_util.h"
#include "vt_base.h"

extern char **environ;

static char scratch[256];

static pid_t scratch_owner;

static void cleanup_at_exit(void) {
    if (getpid() == scratch_owner)
        tu_cleanup();
}

/* Check runs each test in a forked child: a folder first asked for there is the child's, and
 * the child removes it when it exits (the parent's tu_cleanup() never sees its name). */
const char *tu_dir(void) {
    if (!scratch[0]) {
        snprintf(scratch, sizeof(scratch), "/tmp/vtcodec-test-XXXXXX");
        if (!mkdtemp(scratch)) {
            perror("mkdtemp");
            exit(2);
        }
        if (scratch_owner == 0)
            atexit(cleanup_at_exit);
        scratch_owner = getpid();
    }
    return scratch;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void tu_cleanup(void) {
    if (scratch[0])
        nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    scratch[0] = 0;
}

const char *tu_path(const char *name) {
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ & 7];
    snprintf(b, sizeof(bufs[0]), "%s/%s", tu_dir(), name);
    return b;
}

int tu_ffmpeg(const char *fmt, ...) {
    char args[4096], cmd[4400];
    va_list ap;
    int st;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "ffmpeg -hide_banner -nostdin -loglevel error -y %s </dev/null",
             args);
    st = system(cmd);
    if (st != 0)
        fprintf(stderr, "command failed (%d): %s\n", st, cmd);
    return st;
}

long tu_file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

int tu_truncate(const char *path, long size) {
    return truncate(path, size);
}

int tu_scribble(const char *path, long offset, long len) {
    FILE *f = fopen(path, "r+b");
    uint32_t x = 0x12345678;
    if (!f)
        return -1;
    if (fseek(f, offset, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    for (long i = 0; i < len; i++) {
        x = x * 1664525u + 1013904223u;
        fputc((int)(x >> 24), f);
    }
    return fclose(f);
}

int tu_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    if (fwrite(data, 1, len, f) != len) {
        fclose(f);
        return -1;
    }
    return fclose(f);
}

pid_t tu_spawn(char *const argv[], int *out_fd, int *in_fd) {
    posix_spawn_file_actions_t fa;
    int p[2], q[2];
    pid_t pid;
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(q, O_CLOEXEC) != 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, q[0], 0);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    close(q[0]);
    if (pid < 0) {
        close(p[0]);
        close(q[1]);
        return -1;
    }
    *out_fd = p[0];
    *in_fd = q[1];
    return pid;
}

int tu_read_line(int fd, char *buf, int len, int timeout_ms) {
    int n = 0;
    int64_t end = tu_now_ms() + timeout_ms;
    while (n < len - 1) {
        struct pollfd pf = {fd, POLLIN, 0};
        int left = (int)(end - tu_now_ms());
        char c;
        if (left <= 0 || poll(&pf, 1, left) <= 0)
            return -1;
        if (read(fd, &c, 1) != 1)
            return -1;
        if (c == '\n')
            break;
        buf[n++] = c;
    }
    buf[n] = 0;
    return n;
}

void tu_kill(pid_t pid, int sig) {
    if (pid <= 0)
        return;
    kill(pid, sig);
    if (sig == SIGKILL || sig == SIGTERM)
        waitpid(pid, NULL, 0);
}

int tu_free_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int tu_wait_port(int port, int timeout_ms) {
    int64_t end = tu_now_ms() + timeout_ms;
    do {
        struct sockaddr_in a;
        int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (ok)
            return 0;
        tu_sleep_ms(20);
    } while (tu_now_ms() < end);
    return -1;
}

int64_t tu_now_ms(void) {
    return vt_mono_us() / 1000;
}

void tu_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int tu_have_encoder(const char *name) {
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ffmpeg -hide_banner -encoders 2>/dev/null | grep -qw '%s'", name);
    return system(cmd) == 0;
}

int64_t tu_cancel_blocked(void *(*fn)(void *), void (*cancel)(void *), void *arg,
                          const int64_t *done_ms) {
    pthread_t th;
    if (pthread_create(&th, NULL, fn, arg) != 0)
        return INT64_MAX;
    tu_sleep_ms(300);
    int64_t t = tu_now_ms();
    cancel(arg);
    pthread_join(th, NULL);
    return *done_ms - t;
}
