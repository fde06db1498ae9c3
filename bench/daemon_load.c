/*
 * daemon_load - vtrackd's subscriber benchmark client (bench/daemon.md).
 *
 * Opens N subscriber connections (optionally asking for masks), optionally registers boxes on
 * a stream first, then reads every connection for D seconds with poll() and reports the
 * latency of frame events: the client's CLOCK_REALTIME at receipt minus the event's
 * `wallclock` (the server's clock when the frame was decoded; same machine, so the same
 * clock), i.e. frame arrival -> event written and delivered. Prints one JSON line.
 *
 * usage: daemon_load PORT [--subs N] [--masks] [--seconds D] [--warmup W]
 *                         [--track STREAM:X,Y,W,H ...]
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vt_base.h"

#define MAX_SUBS    1024
#define MAX_SAMPLES 2000000

typedef struct sub {
    int fd;
    char *buf;
    size_t len, cap;
    long frames, dropped_msgs, dropped_count;
    unsigned long long next_seq;
    int seq_gap;
} sub;

static long long realtime_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long parse_wallclock(const char *s) {
    struct tm tm = {0};
    int ms = 0;
    if (sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

static void send_all(int fd, const char *s) {
    size_t n = strlen(s), off = 0;
    while (off < n) {
        ssize_t w = write(fd, s + off, n - off);
        if (w <= 0) {
            perror("write");
            exit(1);
        }
        off += (size_t)w;
    }
}

static double *g_lat;
static long g_nlat;
static int g_measuring;

static void on_line(sub *s, char *line) {
    if (strncmp(line, "{\"seq\":", 7) == 0) {
        unsigned long long seq = strtoull(line + 7, NULL, 10);
        if (seq != s->next_seq)
            s->seq_gap = 1;
        s->next_seq = seq + 1;
    }
    if (strstr(line, "\"type\":\"dropped\"")) {
        s->dropped_msgs++;
        const char *c = strstr(line, "\"count\":");
        if (c)
            s->dropped_count += atol(c + 8);
        return;
    }
    if (!strstr(line, "\"type\":\"frame\""))
        return;
    long long now = realtime_ms();
    const char *w = strstr(line, "\"wallclock\":\"");
    if (!w)
        return;
    s->frames += g_measuring;
    if (g_measuring && g_nlat < MAX_SAMPLES)
        g_lat[g_nlat++] = (double)(now - parse_wallclock(w + 13));
}

static int pump(sub *s) {
    if (s->cap - s->len < 65536) {
        s->cap = s->cap ? 2 * s->cap : 1 << 20;
        s->buf = realloc(s->buf, s->cap);
    }
    ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len - 1);
    if (n <= 0)
        return -1;
    s->len += (size_t)n;
    size_t off = 0;
    char *nl;
    while ((nl = memchr(s->buf + off, '\n', s->len - off))) {
        *nl = 0;
        on_line(s, s->buf + off);
        off = (size_t)(nl - s->buf) + 1;
    }
    memmove(s->buf, s->buf + off, s->len - off);
    s->len -= off;
    return 0;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s PORT [--subs N] [--masks] [--seconds D] [--warmup W] "
                "[--track STREAM:X,Y,W,H ...]\n",
                argv[0]);
        return 2;
    }
    int port = atoi(argv[1]), nsubs = 1, masks = 0;
    double seconds = 10, warmup = 2;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--subs") && i + 1 < argc)
            nsubs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--masks"))
            masks = 1;
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
            warmup = atof(argv[++i]);
        else if (!strcmp(argv[i], "--track") && i + 1 < argc) {
            char stream[128];
            double x, y, w, h;
            if (sscanf(argv[++i], "%127[^:]:%lf,%lf,%lf,%lf", stream, &x, &y, &w, &h) != 5) {
                fprintf(stderr, "--track STREAM:X,Y,W,H\n");
                return 2;
            }
            int fd = dial(port);
            char cmd[512];
            snprintf(cmd, sizeof cmd,
                     "{\"op\":\"track\",\"stream\":\"%s\",\"box\":[%g,%g,%g,%g]}\n", stream, x, y,
                     w, h);
            send_all(fd, cmd);
            /* greeting + answer */
            char buf[4096];
            size_t got = 0;
            int lines = 0;
            while (lines < 2 && got < sizeof buf - 1) {
                ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
                if (n <= 0)
                    break;
                for (ssize_t k = 0; k < n; k++)
                    lines += buf[got + k] == '\n';
                got += (size_t)n;
            }
            buf[got] = 0;
            if (!strstr(buf, "\"type\":\"reply\"")) {
                fprintf(stderr, "track failed: %s", buf);
                return 1;
            }
            close(fd);
        } else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (nsubs < 1 || nsubs > MAX_SUBS)
        return 2;
    g_lat = malloc(sizeof *g_lat * MAX_SAMPLES);
    static sub subs[MAX_SUBS];
    static struct pollfd pf[MAX_SUBS];
    for (int i = 0; i < nsubs; i++) {
        subs[i].fd = dial(port);
        send_all(subs[i].fd,
                 masks ? "{\"op\":\"subscribe\",\"masks\":true}\n" : "{\"op\":\"subscribe\"}\n");
        pf[i] = (struct pollfd){subs[i].fd, POLLIN, 0};
    }
    double t0 = vt_mono_s(), t_measure = t0 + warmup, t_end = t_measure + seconds;
    for (;;) {
        double now = vt_mono_s();
        if (now >= t_end)
            break;
        g_measuring = now >= t_measure;
        int rc = poll(pf, (nfds_t)nsubs, 100);
        if (rc < 0 && errno != EINTR)
            break;
        for (int i = 0; i < nsubs && rc > 0; i++)
            if (pf[i].revents && pump(&subs[i]) < 0) {
                fprintf(stderr, "subscriber %d: connection ended\n", i);
                pf[i].fd = -1;
            }
    }
    qsort(g_lat, (size_t)g_nlat, sizeof *g_lat, cmpd);
    long frames = 0, dmsgs = 0, dcount = 0;
    int gaps = 0;
    for (int i = 0; i < nsubs; i++) {
        frames += subs[i].frames;
        dmsgs += subs[i].dropped_msgs;
        dcount += subs[i].dropped_count;
        gaps += subs[i].seq_gap;
    }
#define Q(p) (g_nlat ? g_lat[(long)((p) * (g_nlat - 1) + 0.5)] : 0)
    printf("{\"subs\":%d,\"masks\":%s,\"seconds\":%.1f,\"frames_per_sub\":%.1f,"
           "\"fps_per_sub\":%.2f,\"latency_ms\":{\"p50\":%.1f,\"p95\":%.1f,\"p99\":%.1f,"
           "\"max\":%.1f},\"dropped_notices\":%ld,\"dropped_events\":%ld,\"seq_gaps\":%d}\n",
           nsubs, masks ? "true" : "false", seconds, (double)frames / nsubs,
           (double)frames / nsubs / seconds, Q(0.5), Q(0.95), Q(0.99),
           g_nlat ? g_lat[g_nlat - 1] : 0, dmsgs, dcount, gaps);
    return gaps ? 1 : 0;
}
