/* dtest.c - see dtest.h. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dtest.h"

extern char **environ;

const char *dt_build_path(const char *rel) {
    static char buf[8][1024];
    static int slot;
    char *b = buf[slot++ % 8];
    const char *root = getenv("VT_BUILD_ROOT");
    snprintf(b, sizeof buf[0], "%s/%s", root ? root : ".", rel);
    return b;
}

const char *dt_video(const char *name, int w, int h, int frames, int fps) {
    return dt_video_as(name, w, h, frames, fps, "");
}

const char *dt_video_as(const char *name, int w, int h, int frames, int fps, const char *format) {
    const char *p = tu_path(name);
    if (access(p, R_OK) == 0)
        return p;
    /* testsrc2 moves (a scrolling pattern and a counter): real motion for the tracker. */
    const char *enc = tu_have_encoder("libx264") ? "libx264 -preset ultrafast -g 25" : "mpeg4";
    if (tu_ffmpeg("-f lavfi -i testsrc2=size=%dx%d:rate=%d -frames:v %d -pix_fmt yuv420p "
                  "-c:v %s%s%s %s",
                  w, h, fps, frames, enc, *format ? " -f " : "", format, p) != 0)
        return NULL;
    return p;
}

pid_t dt_fork(void) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
    }
    return pid;
}

pid_t dt_spawn_logged(char *const argv[], char *const env[], const char *log, int out_too) {
    pid_t pid = dt_fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out_too) {
            dup2(fd, 1);
        } else {
            int nul = open("/dev/null", O_RDWR);
            dup2(nul, 0);
            dup2(nul, 1);
        }
        dup2(fd, 2);
        execve(argv[0], argv, env ? env : environ);
        _exit(127);
    }
    return pid;
}

static void subst(char *out, size_t cap, const char *json, int port, int http_port) {
    char ps[16], hs[16];
    snprintf(ps, sizeof ps, "%d", port);
    snprintf(hs, sizeof hs, "%d", http_port);
    size_t o = 0;
    for (const char *s = json; *s && o + 8 < cap;) {
        if (strncmp(s, "@PORT@", 6) == 0) {
            o += (size_t)snprintf(out + o, cap - o, "%s", ps);
            s += 6;
        } else if (strncmp(s, "@HTTP_PORT@", 11) == 0) {
            o += (size_t)snprintf(out + o, cap - o, "%s", hs);
            s += 11;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = 0;
}

int dt_rewrite_config(dt_daemon *d, const char *json) {
    size_t cap = strlen(json) + 256;
    char *text = malloc(cap);
    subst(text, cap, json, d->port, d->http_port);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", d->config);
    int rc = tu_write_file(tmp, text, strlen(text));
    free(text);
    return rc == 0 ? rename(tmp, d->config) : -1;
}

int dt_start(dt_daemon *d, const char *json, char *const *extra_env) {
    static int serial;
    memset(d, 0, sizeof *d);
    d->port = tu_free_port();
    do
        d->http_port = tu_free_port();
    while (d->http_port == d->port);
    snprintf(d->config, sizeof d->config, "%s/vtrackd-%d-%d.json", tu_dir(), (int)getpid(),
             ++serial);
    snprintf(d->log, sizeof d->log, "%s/vtrackd-%d-%d.log", tu_dir(), (int)getpid(), serial);
    if (dt_rewrite_config(d, json) < 0)
        return -1;
    /* environment: ours plus extra_env */
    int n = 0, ne = 0;
    while (environ[n])
        n++;
    while (extra_env && extra_env[ne])
        ne++;
    char **env = calloc((size_t)(n + ne + 1), sizeof *env);
    memcpy(env, environ, sizeof *env * (size_t)n);
    for (int i = 0; i < ne; i++)
        env[n + i] = extra_env[i];
    char *argv[] = {(char *)dt_build_path("daemon/vtrackd"), "--config", d->config, NULL};
    d->pid = dt_spawn_logged(argv, env, d->log, 0);
    free(env);
    if (d->pid < 0) {
        fprintf(stderr, "cannot start %s: %s\n", argv[0], strerror(errno));
        return -1;
    }
    int64_t end = tu_now_ms() + 20000;
    while (tu_now_ms() < end) {
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            fprintf(stderr, "vtrackd exited early (status %d)\n",
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            d->pid = 0;
            dt_log_dump(d);
            return -1;
        }
        if (tu_wait_port(d->port, 50) == 0)
            return 0;
    }
    fprintf(stderr, "vtrackd did not listen on %d in time\n", d->port);
    dt_log_dump(d);
    return -1;
}

int dt_stop(dt_daemon *d, int sig, int timeout_ms, int64_t *elapsed_ms) {
    if (d->pid <= 0)
        return -1;
    int64_t t0 = tu_now_ms();
    kill(d->pid, sig);
    int st = 0;
    for (;;) {
        pid_t w = waitpid(d->pid, &st, WNOHANG);
        if (w == d->pid)
            break;
        if (tu_now_ms() - t0 > timeout_ms) {
            fprintf(stderr, "vtrackd did not exit within %d ms of signal %d\n", timeout_ms, sig);
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &st, 0);
            d->pid = 0;
            dt_log_dump(d);
            return -1;
        }
        tu_sleep_ms(10);
    }
    if (elapsed_ms)
        *elapsed_ms = tu_now_ms() - t0;
    d->pid = 0;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (code != 0)
        dt_log_dump(d);
    return code;
}

int dt_log_has(const dt_daemon *d, const char *needle) {
    FILE *f = fopen(d->log, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int dt_wait_log(const dt_daemon *d, const char *needle, int timeout_ms) {
    int64_t end = tu_now_ms() + timeout_ms;
    while (!dt_log_has(d, needle)) {
        if (tu_now_ms() >= end)
            return 0;
        tu_sleep_ms(20);
    }
    return 1;
}

void dt_log_dump(const dt_daemon *d) {
    FILE *f = fopen(d->log, "r");
    if (!f)
        return;
    fprintf(stderr, "---- %s ----\n", d->log);
    char line[4096];
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fprintf(stderr, "----\n");
    fclose(f);
}

/* ------------------------------------------------------------------------------------------ */

static int connect_to(dt_conn *c, const struct sockaddr *a, socklen_t len, int rcvbuf) {
    memset(c, 0, sizeof *c);
    c->fd = socket(a->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (connect(c->fd, a, len) < 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

int dt_connect(dt_conn *c, int port, int rcvbuf) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return connect_to(c, (struct sockaddr *)&a, sizeof a, rcvbuf);
}

int dt_connect6(dt_conn *c, int port) {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    a.sin6_addr = in6addr_loopback;
    return connect_to(c, (struct sockaddr *)&a, sizeof a, 0);
}

int dt_have_ipv6_loopback(void) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = 0};
    a.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

void dt_close(dt_conn *c) {
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

int dt_send(dt_conn *c, const char *data) {
    size_t n = strlen(data), off = 0;
    while (off < n) {
        ssize_t w = send(c->fd, data + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

static void check_seq(dt_conn *c, const char *line) {
    if (strncmp(line, "{\"seq\":", 7) != 0) {
        c->seq_gap = 1;
        return;
    }
    uint64_t seq = strtoull(line + 7, NULL, 10);
    if (seq != c->next_seq)
        c->seq_gap = 1;
    c->next_seq = seq + 1;
}

int dt_read_line(dt_conn *c, int timeout_ms, char **line) {
    int64_t end = tu_now_ms() + timeout_ms;
    for (;;) {
        char *nl = c->len > c->off ? memchr(c->buf + c->off, '\n', c->len - c->off) : NULL;
        if (nl) {
            *nl = 0;
            *line = c->buf + c->off;
            c->off = (size_t)(nl - c->buf) + 1;
            check_seq(c, *line);
            return 1;
        }
        if (c->off) {
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        if (c->cap - c->len < 65536) {
            c->cap = c->cap ? 2 * c->cap : 262144;
            c->buf = realloc(c->buf, c->cap);
        }
        int left = (int)(end - tu_now_ms());
        struct pollfd p = {c->fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -2;
        ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        c->len += (size_t)n;
    }
}

cJSON *dt_read_msg(dt_conn *c, int timeout_ms) {
    char *line;
    if (dt_read_line(c, timeout_ms, &line) != 1)
        return NULL;
    cJSON *j = cJSON_Parse(line);
    if (!j)
        fprintf(stderr, "not JSON: %.300s\n", line);
    return j;
}

cJSON *dt_wait_type(dt_conn *c, const char *type, const char *field, const char *value,
                    int timeout_ms) {
    int64_t end = tu_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(end - tu_now_ms());
        if (left <= 0)
            return NULL;
        cJSON *j = dt_read_msg(c, left);
        if (!j)
            return NULL;
        const char *t = dt_str(j, "type");
        if (t && strcmp(t, type) == 0 &&
            (!field || (dt_str(j, field) && strcmp(dt_str(j, field), value) == 0)))
            return j;
        cJSON_Delete(j);
    }
}

cJSON *dt_command(dt_conn *c, const char *line, int timeout_ms) {
    if (dt_send(c, line) < 0)
        return NULL;
    int64_t end = tu_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(end - tu_now_ms());
        cJSON *j = left > 0 ? dt_read_msg(c, left) : NULL;
        if (!j)
            return NULL;
        const char *t = dt_str(j, "type");
        if (t && (strcmp(t, "reply") == 0 || strcmp(t, "error") == 0))
            return j;
        cJSON_Delete(j);
    }
}

int dt_wait_eof(dt_conn *c, int timeout_ms) {
    int64_t end = tu_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(end - tu_now_ms());
        if (left <= 0)
            return 0;
        char *line;
        int rc = dt_read_line(c, left, &line);
        if (rc == 0)
            return 1;
        if (rc == -2)
            return 0;
    }
}

const char *dt_str(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

double dt_num(const cJSON *o, const char *k, double dflt) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : dflt;
}

int64_t dt_realtime_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t dt_parse_wallclock_ms(const char *s) {
    struct tm tm = {0};
    int ms = 0;
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double dt_quantile(double *v, int n, double p) {
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmpd);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

int dt_hello(dt_conn *c, int port) {
    if (dt_connect(c, port, 0) < 0)
        return -1;
    cJSON *h = dt_read_msg(c, 5000);
    int ok = dt_is_type(h, "hello") && dt_num(h, "protocol", 0) == 1;
    cJSON_Delete(h);
    return ok ? 0 : -1;
}

int dt_is_type(const cJSON *j, const char *t) {
    return j && dt_str(j, "type") && strcmp(dt_str(j, "type"), t) == 0;
}

void dt_expect_reply(cJSON *j, const char *op) {
    ck_assert_msg(dt_is_type(j, "reply") && dt_str(j, "op") && strcmp(dt_str(j, "op"), op) == 0,
                  "no reply to %s (got %s)", op, j ? cJSON_PrintUnformatted(j) : "nothing");
    cJSON_Delete(j);
}
