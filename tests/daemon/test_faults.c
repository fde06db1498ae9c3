/*
 * test_faults.c - vtrackd under faults that must not lose anything: cameras that accept a
 * connection and then say nothing or talk garbage, a source whose timestamps jump back or
 * whose frame size changes, and a storm of hostile clients beside two well-behaved
 * subscribers. A real daemon process on loopback TCP, as in test_daemon.c; every test ends
 * with SIGTERM and requires exit status 0 (so an ASan report fails the test that caused it).
 *
 * usage: test_faults [sources|clients|all]
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testmain.h"
#include "dtest.h"

#define LAB "\"model\":\"lab\",\"log_level\":\"debug\""
/* Short timeouts and backoff for the faulty cameras: many attempts within a few seconds. */
#define FAST_RETRY                                                                                 \
    "\"reconnect\":true,\"connect_timeout_s\":0.5,\"read_timeout_s\":0.5,\"stall_timeout_s\":1,"   \
    "\"backoff_min_s\":0.1,\"backoff_max_s\":0.3"

/* vtrackd with the lab model and the streams `fmt` gives (printf: the members of the array);
 * clients may add streams that read local files (add_lossless). */
static void start_streams(dt_daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void start_streams(dt_daemon *d, const char *fmt, ...) {
    char streams[3072], cfg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(streams, sizeof streams, fmt, ap);
    va_end(ap);
    snprintf(cfg, sizeof cfg,
             "{\"listen\":\"127.0.0.1:@PORT@\"," LAB ",\"clients\":{\"allow_add_streams\":true,"
             "\"allow_local_urls\":true},\"streams\":[%s]}",
             streams);
    ck_assert_int_eq(dt_start(d, cfg, NULL), 0);
}

static const char *video(void) {
    const char *v = dt_video("v160.mp4", 160, 120, 100, 25);
    ck_assert_msg(v != NULL, "ffmpeg could not make the test video");
    return v;
}

static void stop_ok(dt_daemon *d) {
    int64_t ms = 0;
    int code = dt_stop(d, SIGTERM, 10000, &ms);
    ck_assert_msg(code == 0, "vtrackd exited with %d after SIGTERM", code);
}

static void subscribe(dt_conn *c, int port, int masks) {
    ck_assert_int_eq(dt_hello(c, port), 0);
    dt_expect_reply(
        dt_command(c,
                   masks ? "{\"op\":\"subscribe\",\"masks\":true}\n" : "{\"op\":\"subscribe\"}\n",
                   5000),
        "subscribe");
}

/* ---------------------------------------------------------------------------------------------
 * A faulty camera: a loopback TCP server that accepts and then stays silent, or answers with
 * random bytes (after an HTTP header, or straight away), on its own thread.
 * ------------------------------------------------------------------------------------------- */

enum { CAM_SILENT, CAM_HTTP_GARBAGE, CAM_GARBAGE };
#define CAM_CONNS 16

typedef struct fault_cam {
    int lfd, port, mode;
    pthread_t thr;
    atomic_int stop, accepted;
} fault_cam;

static void *cam_main(void *arg) {
    fault_cam *fc = arg;
    int fds[CAM_CONNS], n = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    static const char header[] = "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\n"
                                 "Connection: close\r\n\r\n";
    char buf[16384];
    while (!atomic_load(&fc->stop)) {
        struct pollfd p[1 + CAM_CONNS];
        p[0] = (struct pollfd){fc->lfd, POLLIN, 0};
        for (int i = 0; i < n; i++)
            p[1 + i] = (struct pollfd){fds[i], POLLIN | (fc->mode != CAM_SILENT ? POLLOUT : 0), 0};
        if (poll(p, (nfds_t)(1 + n), 20) <= 0)
            continue;
        for (int i = n - 1; i >= 0; i--) {
            short ev = p[1 + i].revents;
            int gone = 0;
            if (ev & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = read(fds[i], buf, sizeof buf); /* the request: ignored */
                gone = r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR);
            }
            if (!gone && (ev & POLLOUT)) {
                for (size_t k = 0; k + 8 <= sizeof buf; k += 8) {
                    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
                    uint64_t v = rng * 0x2545F4914F6CDD1Dull;
                    memcpy(buf + k, &v, 8);
                }
                gone = send(fds[i], buf, sizeof buf, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
                       errno != EAGAIN;
            }
            if (gone) {
                close(fds[i]);
                fds[i] = fds[--n];
            }
        }
        if (p[0].revents & POLLIN) {
            int fd = accept4(fc->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                atomic_fetch_add(&fc->accepted, 1);
                if (n == CAM_CONNS)
                    close(fds[--n]);
                if (fc->mode == CAM_HTTP_GARBAGE)
                    send(fd, header, sizeof header - 1, MSG_NOSIGNAL);
                fds[n++] = fd;
            }
        }
        if (fc->mode != CAM_SILENT)
            tu_sleep_ms(2); /* at most ~8 MB/s of garbage per connection */
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return NULL;
}

static void cam_start(fault_cam *fc, int mode) {
    memset(fc, 0, sizeof *fc);
    fc->mode = mode;
    fc->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fc->lfd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fc->lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fc->lfd, 16), 0);
    ck_assert_int_eq(getsockname(fc->lfd, (struct sockaddr *)&a, &len), 0);
    fc->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&fc->thr, NULL, cam_main, fc), 0);
}

static void cam_stop(fault_cam *fc) {
    atomic_store(&fc->stop, 1);
    pthread_join(fc->thr, NULL);
    close(fc->lfd);
}

/* What a subscriber saw of the streams over a while. */
#define WATCH_MAX 4
typedef struct watch {
    const char *names[WATCH_MAX]; /* streams expected to fail: their state events */
    int n;
    int reconnecting[WATCH_MAX], connecting[WATCH_MAX], up[WATCH_MAX], other[WATCH_MAX];
    int no_reason[WATCH_MAX]; /* reconnecting without a reason */
    int bad_frames;           /* frame events of a failing stream */
    int frames;               /* frame events of "cam" */
    int64_t max_gap_ms;       /* longest wait for the next "cam" frame event */
} watch;

static void watch_for(dt_conn *c, watch *w, int ms) {
    int64_t end = tu_now_ms() + ms, last = tu_now_ms();
    for (;;) {
        int left = (int)(end - tu_now_ms());
        if (left <= 0)
            break;
        cJSON *m = dt_read_msg(c, left);
        if (!m)
            break;
        const char *st = dt_str(m, "stream");
        int k = -1;
        for (int i = 0; st && i < w->n; i++)
            if (strcmp(st, w->names[i]) == 0)
                k = i;
        if (dt_is_type(m, "frame") && k >= 0) {
            w->bad_frames++;
        } else if (dt_is_type(m, "frame") && st && strcmp(st, "cam") == 0) {
            int64_t now = tu_now_ms();
            if (now - last > w->max_gap_ms)
                w->max_gap_ms = now - last;
            last = now;
            w->frames++;
        } else if (dt_is_type(m, "stream") && k >= 0) {
            const char *s = dt_str(m, "state"), *why = dt_str(m, "reason");
            if (strcmp(s, "reconnecting") == 0) {
                w->reconnecting[k]++;
                w->no_reason[k] += !why || !*why;
                if (w->reconnecting[k] <= 2)
                    fprintf(stderr, "%s: reconnecting: %s\n", st, why ? why : "(no reason)");
            } else if (strcmp(s, "connecting") == 0) {
                w->connecting[k]++;
            } else if (strcmp(s, "up") == 0) {
                w->up[k]++;
            } else {
                w->other[k]++;
                fprintf(stderr, "%s: %s: %s\n", st, s, why ? why : "(no reason)");
            }
        }
        cJSON_Delete(m);
    }
    if (tu_now_ms() - last > w->max_gap_ms)
        w->max_gap_ms = tu_now_ms() - last;
}

/* The stats entry of `stream` (a detached copy, caller frees), via connection c. */
static cJSON *stream_stats(dt_conn *c, const char *stream) {
    cJSON *r = dt_command(c, "{\"op\":\"stats\",\"id\":\"st\"}\n", 5000);
    ck_assert_msg(dt_is_type(r, "reply"), "stats did not answer");
    const cJSON *arr =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "stats"), "streams");
    cJSON *found = NULL;
    for (const cJSON *e = arr ? arr->child : NULL; e; e = e->next)
        if (dt_str(e, "stream") && strcmp(dt_str(e, "stream"), stream) == 0)
            found = cJSON_Duplicate(e, 1);
    cJSON_Delete(r);
    ck_assert_msg(found != NULL, "stats has no stream %s", stream);
    return found;
}

/* Run a daemon with the file stream "cam" plus one stream per faulty camera (name, URL) for
 * `ms`, and check: each faulty stream retries (reconnecting with a reason, again and again;
 * the camera saw the attempts), never comes up and never yields a frame, while "cam" keeps
 * producing frame events; stats answers; SIGTERM stops it promptly with status 0. */
static void faulty_cameras(int n, const char *const *names, const char *const *urls,
                           fault_cam *const *cams, int ms) {
    char more[2048] = "";
    for (int i = 0; i < n; i++) {
        size_t o = strlen(more);
        snprintf(more + o, sizeof more - o, ",{\"name\":\"%s\",\"url\":\"%s\"," FAST_RETRY "}",
                 names[i], urls[i]);
    }
    dt_daemon d;
    start_streams(&d,
                  "{\"name\":\"cam\",\"url\":\"%s\",\"pacing\":\"camera\",\"objects\":[{\"box\":"
                  "[40,30,40,40]}]}%s",
                  video(), more);
    dt_conn c;
    subscribe(&c, d.port, 1);
    watch w = {.n = n};
    for (int i = 0; i < n; i++)
        w.names[i] = names[i];
    watch_for(&c, &w, ms);
    fprintf(stderr, "cam: %d frames, longest gap %lld ms\n", w.frames, (long long)w.max_gap_ms);
    for (int i = 0; i < n; i++) {
        cJSON *e = stream_stats(&c, names[i]);
        fprintf(stderr,
                "%s: %d reconnecting, %d connecting, %d up, %d other; camera accepted %d; "
                "stats frames %.0f reconnects %.0f\n",
                names[i], w.reconnecting[i], w.connecting[i], w.up[i], w.other[i],
                atomic_load(&cams[i]->accepted), dt_num(e, "frames", -1),
                dt_num(e, "reconnects", -1));
        ck_assert_msg(w.reconnecting[i] >= 3, "%s: %d reconnecting events", names[i],
                      w.reconnecting[i]);
        ck_assert_int_eq(w.no_reason[i], 0);
        ck_assert_int_eq(w.up[i], 0);
        ck_assert_int_ge(atomic_load(&cams[i]->accepted), 3);
        ck_assert_int_eq((int)dt_num(e, "frames", -1), 0);
        /* `reconnects` counts every attempt after the first, also of a camera that never came
         * up: one per `reconnecting` but the last (whose retry may not have started yet) */
        ck_assert_int_ge((int)dt_num(e, "reconnects", -1), w.reconnecting[i] - 1);
        cJSON_Delete(e);
    }
    ck_assert_int_eq(w.bad_frames, 0);
    /* the healthy stream went on (at 25 fps, or as fast as a sanitized build tracks) */
    ck_assert_int_ge(w.frames, ms / 40 / 10);
    ck_assert_msg(w.max_gap_ms < 2000, "cam: %lld ms without a frame event",
                  (long long)w.max_gap_ms);
    ck_assert(!c.seq_gap);
    dt_close(&c);
    int64_t t0 = tu_now_ms();
    stop_ok(&d);
    ck_assert_int_lt(tu_now_ms() - t0, 5000);
}

/* One faulty camera of each kind of source (HTTP, RTSP), named PREFIX-http and PREFIX-rtsp. */
static void http_and_rtsp(int http_kind, int rtsp_kind, const char *prefix) {
    fault_cam http, rtsp;
    cam_start(&http, http_kind);
    cam_start(&rtsp, rtsp_kind);
    char u1[128], u2[128], n1[32], n2[32];
    snprintf(u1, sizeof u1, "http://127.0.0.1:%d/live.ts", http.port);
    snprintf(u2, sizeof u2, "rtsp://127.0.0.1:%d/live", rtsp.port);
    snprintf(n1, sizeof n1, "%s-http", prefix);
    snprintf(n2, sizeof n2, "%s-rtsp", prefix);
    const char *names[] = {n1, n2}, *urls[] = {u1, u2};
    fault_cam *cams[] = {&http, &rtsp};
    faulty_cameras(2, names, urls, cams, 6000);
    cam_stop(&http);
    cam_stop(&rtsp);
}

START_TEST(test_silent_camera) {
    http_and_rtsp(CAM_SILENT, CAM_SILENT, "mute");
}
END_TEST

START_TEST(test_garbage_camera) {
    http_and_rtsp(CAM_HTTP_GARBAGE, CAM_GARBAGE, "junk");
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Sources whose timestamps jump back, or whose frame size changes
 * ------------------------------------------------------------------------------------------- */

/* An MPEG-TS file of `n` testsrc2 frames (H.264 without B-frames, or MPEG-4), made once. */
static const char *ts_segment(const char *name, int w, int h, int n) {
    const char *p = dt_video_as(name, w, h, n, 25, "mpegts");
    ck_assert_ptr_nonnull(p);
    return p;
}

/* A lossless stream `name` reading `url`, with object 1 at `box` (JSON), added by a client after
 * `sub` subscribed to every stream: so `sub` sees every frame from the first. (A stream in the
 * configuration starts with the daemon, and may track its first frame before any client has
 * connected.) The commands go over a second connection, whose reads would swallow events. */
static void add_lossless(const dt_daemon *d, const char *name, const char *url, const char *box) {
    dt_conn ctl;
    char cmd[2048];
    ck_assert_int_eq(dt_hello(&ctl, d->port), 0);
    snprintf(cmd, sizeof cmd,
             "{\"op\":\"add_stream\",\"stream\":\"%s\",\"url\":\"%s\",\"pacing\":"
             "\"lossless\"}\n",
             name, url);
    dt_expect_reply(dt_command(&ctl, cmd, 5000), "add_stream");
    snprintf(cmd, sizeof cmd, "{\"op\":\"track\",\"stream\":\"%s\",\"object\":1,\"box\":%s}\n",
             name, box);
    dt_expect_reply(dt_command(&ctl, cmd, 5000), "track");
    dt_close(&ctl);
}

/* `a` then `b`, byte for byte (MPEG-TS allows it), as `name`. */
static const char *ts_concat(const char *name, const char *a, const char *b) {
    const char *out = tu_path(name);
    FILE *o = fopen(out, "wb");
    ck_assert_ptr_nonnull(o);
    const char *in[2] = {a, b};
    char buf[65536];
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(in[i], "rb");
        ck_assert_ptr_nonnull(f);
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            ck_assert_uint_eq(fwrite(buf, 1, n, o), n);
        fclose(f);
    }
    ck_assert_int_eq(fclose(o), 0);
    return out;
}

/* What one stream's events said, in order. */
typedef struct seen {
    int frames, ended, up, stalled, reconnecting, removed;
    int64_t first, last; /* frame indexes */
    double last_pts;
    int not_increasing;      /* a frame index not above the one before */
    int pts_back;            /* pts below the one before */
    int sizes[4][2], nsizes; /* the frame sizes in order of appearance */
    int bad_geometry;        /* a mask or bbox that does not fit its frame */
    int objects_after;       /* objects in the last frame event */
    int64_t max_gap_ms;
    char removed_reason[256];
    char added_reason[256]; /* of the last `added` with a reason */
    /* object 1's box on the last frame of the first size and on the first of the second */
    int box_before[4], box_after[4], have_after;
} seen;

static void seen_frame(seen *s, const cJSON *m) {
    int64_t f = (int64_t)dt_num(m, "frame", -1);
    double pts = dt_num(m, "pts", -1);
    int w = (int)dt_num(m, "width", 0), h = (int)dt_num(m, "height", 0);
    if (s->frames == 0)
        s->first = f;
    else if (f <= s->last)
        s->not_increasing++;
    if (s->frames && pts < s->last_pts)
        s->pts_back++;
    s->last_pts = pts;
    s->last = f;
    s->frames++;
    if (!s->nsizes || s->sizes[s->nsizes - 1][0] != w || s->sizes[s->nsizes - 1][1] != h) {
        if (s->nsizes < 4) {
            s->sizes[s->nsizes][0] = w, s->sizes[s->nsizes][1] = h;
            s->nsizes++;
        }
    }
    const cJSON *objs = cJSON_GetObjectItemCaseSensitive(m, "objects");
    s->objects_after = cJSON_GetArraySize(objs);
    for (const cJSON *o = objs ? objs->child : NULL; o; o = o->next) {
        const cJSON *bb = cJSON_GetObjectItemCaseSensitive(o, "bbox");
        int b[4];
        for (int k = 0; k < 4; k++)
            b[k] = (int)cJSON_GetArrayItem(bb, k)->valuedouble;
        if (b[0] < 0 || b[1] < 0 || b[0] + b[2] > w || b[1] + b[3] > h)
            s->bad_geometry++;
        const cJSON *size =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "mask"), "size");
        if (size && ((int)cJSON_GetArrayItem(size, 0)->valuedouble != h ||
                     (int)cJSON_GetArrayItem(size, 1)->valuedouble != w))
            s->bad_geometry++;
        if (dt_num(o, "area", 0) > (double)w * h)
            s->bad_geometry++;
        if (dt_num(o, "id", 0) == 1 && s->nsizes == 1)
            memcpy(s->box_before, b, sizeof b);
        if (dt_num(o, "id", 0) == 1 && s->nsizes == 2 && !s->have_after++)
            memcpy(s->box_after, b, sizeof b);
    }
}

/* Read `c` until stream `name` has ended (or timeout_ms), filling *s. */
static void follow(dt_conn *c, const char *name, seen *s, int timeout_ms) {
    memset(s, 0, sizeof *s);
    int64_t end = tu_now_ms() + timeout_ms, last = tu_now_ms();
    while (!s->ended && tu_now_ms() < end) {
        cJSON *m = dt_read_msg(c, (int)(end - tu_now_ms()));
        if (!m)
            break;
        const char *st = dt_str(m, "stream");
        if (st && strcmp(st, name) == 0) {
            if (dt_is_type(m, "frame")) {
                int64_t now = tu_now_ms();
                if (s->frames && now - last > s->max_gap_ms)
                    s->max_gap_ms = now - last;
                last = now;
                seen_frame(s, m);
            } else if (dt_is_type(m, "stream")) {
                const char *state = dt_str(m, "state");
                s->ended += strcmp(state, "ended") == 0;
                s->up += strcmp(state, "up") == 0;
                s->stalled += strcmp(state, "stalled") == 0;
                s->reconnecting += strcmp(state, "reconnecting") == 0;
            } else if (dt_is_type(m, "object") && dt_str(m, "event") &&
                       strcmp(dt_str(m, "event"), "added") == 0 && dt_str(m, "reason")) {
                snprintf(s->added_reason, sizeof s->added_reason, "%s", dt_str(m, "reason"));
            } else if (dt_is_type(m, "object") && dt_str(m, "event") &&
                       strcmp(dt_str(m, "event"), "removed") == 0) {
                s->removed++;
                snprintf(s->removed_reason, sizeof s->removed_reason, "%s",
                         dt_str(m, "reason") ? dt_str(m, "reason") : "");
            }
        }
        cJSON_Delete(m);
    }
}

/* Two 50-frame segments that both start at the same pts, one after the other: pts go back by
 * two seconds at frame 50. Read at once (lossless: every frame) and at the native rate
 * (camera: the pacing must not wait two seconds, or forever, for the old time to come back). */
START_TEST(test_pts_backwards) {
    const char *a = ts_segment("a160.ts", 160, 120, 50);
    const char *v = ts_concat("back.ts", a, a);
    dt_daemon d;
    start_streams(&d,
                  "{\"name\":\"paced\",\"url\":\"%s\",\"pacing\":\"camera\",\"objects\":"
                  "[{\"box\":[40,30,40,40]}]}",
                  v);
    dt_conn c1, c2;
    /* one subscriber per stream: c1 for `all`, added once it listens */
    ck_assert_int_eq(dt_hello(&c1, d.port), 0);
    ck_assert_int_eq(dt_hello(&c2, d.port), 0);
    dt_expect_reply(dt_command(&c1, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    add_lossless(&d, "all", v, "[40,30,40,40]");
    seen all, paced;
    follow(&c1, "all", &all, 30000);
    fprintf(stderr, "lossless: %d frames %lld..%lld, pts back %d times, ended %d\n", all.frames,
            (long long)all.first, (long long)all.last, all.pts_back, all.ended);
    ck_assert_int_eq(all.ended, 1);
    ck_assert_int_eq(all.frames, 100);
    ck_assert_int_eq((int)all.last - (int)all.first, 99);
    ck_assert_int_eq(all.not_increasing, 0);
    ck_assert_int_ge(all.pts_back, 1);
    ck_assert_int_eq(all.objects_after, 1);
    ck_assert_int_eq(all.removed, 0);
    /* camera pacing, subscribed now (live from here): the file loops, and its pts go back once
     * a loop (4 s); over 6 s it plays on without stalling */
    dt_expect_reply(
        dt_command(&c2, "{\"op\":\"subscribe\",\"streams\":[\"paced\"],\"masks\":true}\n", 5000),
        "subscribe");
    int64_t t0 = tu_now_ms();
    follow(&c2, "paced", &paced, 6000);
    fprintf(stderr, "camera: %d frames %lld..%lld in %lld ms, pts back %d times, gap %lld ms\n",
            paced.frames, (long long)paced.first, (long long)paced.last,
            (long long)(tu_now_ms() - t0), paced.pts_back, (long long)paced.max_gap_ms);
    ck_assert_int_eq(paced.ended, 0);
    ck_assert_int_eq(paced.stalled + paced.reconnecting, 0);
    ck_assert_int_eq(paced.not_increasing, 0);
    ck_assert_int_ge(paced.pts_back, 1);
    ck_assert_int_ge(paced.frames, 15); /* 6 s at 25 fps is 150; a sanitized build tracks
                                           about 5 a second */
    ck_assert_msg(paced.max_gap_ms < 1000, "camera: %lld ms without a frame",
                  (long long)paced.max_gap_ms);
    ck_assert_int_eq(paced.bad_geometry, 0);
    ck_assert(!c1.seq_gap && !c2.seq_gap);
    dt_close(&c1);
    dt_close(&c2);
    stop_ok(&d);
}
END_TEST

/* 50 frames at 160x120, then 50 at 320x240, in one stream, with an object. Every frame comes,
 * with the new size, and masks and boxes fit it; the object goes on from its box scaled to the
 * new size (twice the old one here, within the few pixels a box-to-mask placement moves it),
 * and its new `added` event says why. */
START_TEST(test_size_change) {
    const char *a = ts_segment("a160.ts", 160, 120, 50);
    const char *b = ts_segment("b320.ts", 320, 240, 50);
    const char *v = ts_concat("resize.ts", a, b);
    dt_daemon d;
    start_streams(&d, "%s", "");
    dt_conn c;
    subscribe(&c, d.port, 1);
    add_lossless(&d, "cam", v, "[40,30,40,40]");
    seen s;
    follow(&c, "cam", &s, 30000);
    fprintf(stderr, "size change: %d frames %lld..%lld, sizes", s.frames, (long long)s.first,
            (long long)s.last);
    for (int i = 0; i < s.nsizes; i++)
        fprintf(stderr, " %dx%d", s.sizes[i][0], s.sizes[i][1]);
    fprintf(stderr, "; objects at the end %d, removed %d (%s); bad geometry %d\n", s.objects_after,
            s.removed, s.removed_reason, s.bad_geometry);
    ck_assert_int_eq(s.ended, 1);
    ck_assert_int_eq(s.frames, 100);
    ck_assert_int_eq(s.not_increasing, 0);
    ck_assert_int_eq(s.nsizes, 2);
    ck_assert_int_eq(s.sizes[0][0], 160);
    ck_assert_int_eq(s.sizes[1][0], 320);
    ck_assert_int_eq(s.sizes[1][1], 240);
    ck_assert_int_eq(s.bad_geometry, 0);
    ck_assert_int_eq(s.removed, 0);
    ck_assert_int_eq(s.objects_after, 1);
    ck_assert_msg(strstr(s.added_reason, "frame size changed from 160x120 to 320x240"),
                  "added reason: %s", s.added_reason);
    ck_assert(s.have_after);
    const int *p = s.box_before, *q = s.box_after;
    fprintf(stderr, "box before [%d,%d,%d,%d], after [%d,%d,%d,%d]\n", p[0], p[1], p[2], p[3], q[0],
            q[1], q[2], q[3]);
    /* centres: 2x within 8 px; sizes: 2x within 25 % */
    ck_assert_int_le(abs((2 * p[0] + p[2]) - (q[0] + q[2] / 2)), 8);
    ck_assert_int_le(abs((2 * p[1] + p[3]) - (q[1] + q[3] / 2)), 8);
    ck_assert(q[2] > 1.5 * p[2] && q[2] < 2.5 * p[2] && q[3] > 1.5 * p[3] && q[3] < 2.5 * p[3]);
    ck_assert(!c.seq_gap);
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Client storm
 * ------------------------------------------------------------------------------------------- */

#define LAT_CAP 4096
enum { BEFORE, DURING, AFTER };

typedef struct sub_reader {
    dt_conn c;
    int masks;
    pthread_t thr;
    atomic_int stop;
    const atomic_int *phase;
    double lat[2][LAT_CAP]; /* BEFORE, DURING */
    int nlat[2];
    int64_t last_rx, max_gap_ms; /* longest wait for a frame event during the storm */
    int frames, dropped, mask_mismatch, eof, errors;
} sub_reader;

static void *sub_main(void *arg) {
    sub_reader *r = arg;
    while (!atomic_load(&r->stop)) {
        char *line;
        int rc = dt_read_line(&r->c, 200, &line);
        if (rc == -2)
            continue;
        if (rc != 1) {
            r->eof = 1;
            break;
        }
        int64_t now = dt_realtime_ms(), mono = tu_now_ms();
        int phase = atomic_load(r->phase);
        if (strstr(line, "\"type\":\"dropped\""))
            r->dropped++;
        if (strstr(line, "\"type\":\"error\""))
            r->errors++;
        if (!strstr(line, "\"type\":\"frame\""))
            continue;
        r->frames++;
        /* the one object is there, with a mask exactly when subscribed with masks */
        if ((strstr(line, "\"mask\":") != NULL) != r->masks)
            r->mask_mismatch++;
        const char *w = strstr(line, "\"wallclock\":\"");
        if (w && phase < AFTER && r->nlat[phase] < LAT_CAP)
            r->lat[phase][r->nlat[phase]++] = (double)(now - dt_parse_wallclock_ms(w + 13));
        if (phase == DURING && r->last_rx && mono - r->last_rx > r->max_gap_ms)
            r->max_gap_ms = mono - r->last_rx;
        r->last_rx = mono;
    }
    return NULL;
}

typedef struct storm {
    int port;
    pthread_t thr;
    int cycles, connect_fail, refused, answered, unanswered;
} storm;

#define STORM_CYCLES 1000
#define STORM_BATCH  24
#define STORM_MS     5000

static void rst_close(dt_conn *c) {
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    dt_close(c);
}

/* Open STORM_BATCH connections at once, then drop each its own way: at once, after half a
 * line, with a reset, or after a command whose answer (a reply, or `limit` when the server is
 * full) it waits for; STORM_CYCLES connections spread over about STORM_MS (unpaced, the
 * loop would open tens of thousands a second, and run the machine out of ports). */
static void *storm_main(void *arg) {
    storm *s = arg;
    int64_t t0 = tu_now_ms();
    static dt_conn c[STORM_BATCH];
    for (int batch = 0; s->cycles < STORM_CYCLES; batch++) {
        int64_t due = t0 + (int64_t)batch * STORM_MS * STORM_BATCH / STORM_CYCLES;
        if (due > tu_now_ms())
            tu_sleep_ms((int)(due - tu_now_ms()));
        for (int i = 0; i < STORM_BATCH; i++)
            if (dt_connect(&c[i], s->port, 0) < 0)
                s->connect_fail++;
        for (int i = 0; i < STORM_BATCH; i++, s->cycles++) {
            if (c[i].fd < 0)
                continue;
            switch (s->cycles % 4) {
            case 0:
                dt_close(&c[i]);
                break;
            case 1:
                dt_send(&c[i], "{\"op\":\"li");
                dt_close(&c[i]);
                break;
            case 2:
                rst_close(&c[i]);
                break;
            default: {
                dt_send(&c[i], "{\"op\":\"list\",\"id\":\"storm\"}\n");
                int done = 0;
                for (int k = 0; k < 3 && !done; k++) {
                    cJSON *m = dt_read_msg(&c[i], 5000);
                    if (!m)
                        break;
                    if (dt_is_type(m, "error") && dt_str(m, "code") &&
                        strcmp(dt_str(m, "code"), "limit") == 0)
                        s->refused++, done = 1;
                    else if (dt_is_type(m, "reply"))
                        s->answered++, done = 1;
                    cJSON_Delete(m);
                }
                s->unanswered += !done;
                rst_close(&c[i]);
            }
            }
        }
    }
    return NULL;
}

/* A client that sends valid commands one byte at a time, with pauses, during the storm. */
typedef struct byte_client {
    dt_conn c;
    pthread_t thr;
    const atomic_int *phase;
    int sent, ok, bad;
} byte_client;

static void *bytes_main(void *arg) {
    byte_client *b = arg;
    while (atomic_load(b->phase) == DURING || b->sent < 3) {
        char line[64], id[32];
        snprintf(id, sizeof id, "bytes-%d", b->sent);
        snprintf(line, sizeof line, "{\"op\":\"list\",\"id\":\"%s\"}\n", id);
        int fail = 0;
        for (const char *p = line; *p && !fail; p++) {
            char one[2] = {*p, 0};
            fail = dt_send(&b->c, one) < 0;
            tu_sleep_ms(3);
        }
        b->sent++;
        cJSON *a = fail ? NULL : dt_read_msg(&b->c, 10000);
        if (dt_is_type(a, "reply") && dt_str(a, "op") && strcmp(dt_str(a, "op"), "list") == 0 &&
            dt_str(a, "id") && strcmp(dt_str(a, "id"), id) == 0)
            b->ok++;
        else
            b->bad++;
        cJSON_Delete(a);
        if (fail || !a)
            break;
    }
    return NULL;
}

#define CLIENTS_LIMIT 64
#define HALF_OPEN     50

START_TEST(test_client_storm) {
    char cfg[2048];
    /* Long idle and line timeouts: the half-open connections stay for the whole test. The
     * client limit leaves 11 free places beside the 3 good clients and the 50 half-open ones,
     * so every storm batch meets it. */
    snprintf(cfg, sizeof cfg,
             "{\"listen\":\"127.0.0.1:@PORT@\"," LAB ",\"limits\":{\"clients\":%d,"
             "\"idle_timeout_s\":300,\"line_timeout_s\":300},\"streams\":[{\"name\":\"cam\","
             "\"url\":\"%s\",\"pacing\":\"camera\",\"objects\":[{\"id\":1,\"box\":[40,30,40,"
             "40],\"frame\":0}]}]}",
             CLIENTS_LIMIT, video());
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cfg, NULL), 0);
    atomic_int phase = BEFORE;
    static sub_reader subs[2];
    static byte_client bc;
    memset(subs, 0, sizeof subs);
    memset(&bc, 0, sizeof bc);
    for (int i = 0; i < 2; i++) {
        subs[i].masks = i == 0;
        subs[i].phase = &phase;
        subscribe(&subs[i].c, d.port, subs[i].masks);
    }
    bc.phase = &phase;
    ck_assert_int_eq(dt_hello(&bc.c, d.port), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&subs[i].thr, NULL, sub_main, &subs[i]), 0);
    tu_sleep_ms(4000); /* the baseline (its first quarter is warm-up, thrown away below) */

    /* Half-open: connected and silent, half a line and silent, subscribed and never reading
     * (a small receive buffer). */
    static dt_conn half[HALF_OPEN];
    for (int i = 0; i < HALF_OPEN; i++) {
        ck_assert_int_eq(dt_connect(&half[i], d.port, i % 3 == 2 ? 4096 : 0), 0);
        if (i % 3 == 1)
            dt_send(&half[i], "{\"op\":\"sta");
        else if (i % 3 == 2)
            dt_send(&half[i], "{\"op\":\"subscribe\",\"masks\":true}\n");
    }
    atomic_store(&phase, DURING);
    int64_t t0 = tu_now_ms();
    storm st = {.port = d.port};
    ck_assert_int_eq(pthread_create(&st.thr, NULL, storm_main, &st), 0);
    ck_assert_int_eq(pthread_create(&bc.thr, NULL, bytes_main, &bc), 0);
    pthread_join(st.thr, NULL);
    int64_t storm_ms = tu_now_ms() - t0;
    atomic_store(&phase, AFTER);
    pthread_join(bc.thr, NULL);
    tu_sleep_ms(1000);
    for (int i = 0; i < 2; i++) {
        atomic_store(&subs[i].stop, 1);
        pthread_join(subs[i].thr, NULL);
    }
    for (int i = 0; i < HALF_OPEN; i++)
        dt_close(&half[i]);

    fprintf(stderr,
            "storm: %d connections in %lld ms (%d failed to connect), %d answered, %d refused "
            "(limit), %d unanswered; byte-by-byte commands: %d ok of %d\n",
            st.cycles, (long long)storm_ms, st.connect_fail, st.answered, st.refused, st.unanswered,
            bc.ok, bc.sent);
    for (int i = 0; i < 2; i++) {
        sub_reader *r = &subs[i];
        /* drop the first quarter of the baseline: warm-up */
        int skip = r->nlat[BEFORE] / 4;
        double p95b = dt_quantile(r->lat[BEFORE] + skip, r->nlat[BEFORE] - skip, 0.95);
        double p95s = dt_quantile(r->lat[DURING], r->nlat[DURING], 0.95);
        fprintf(stderr,
                "subscriber %d (masks %d): %d frames; latency p95 %.1f ms before (%d), %.1f ms "
                "during the storm (%d); longest gap %lld ms; dropped %d\n",
                i, r->masks, r->frames, p95b, r->nlat[BEFORE] - skip, p95s, r->nlat[DURING],
                (long long)r->max_gap_ms, r->dropped);
        ck_assert(!r->eof);
        ck_assert(!r->c.seq_gap);
        ck_assert_int_eq(r->dropped, 0);
        ck_assert_int_eq(r->errors, 0);
        ck_assert_int_eq(r->mask_mismatch, 0);
        ck_assert_int_ge(r->nlat[BEFORE] - skip, 10);
        ck_assert_int_ge(r->nlat[DURING], 10);
        ck_assert_msg(r->max_gap_ms < 2000, "subscriber %d: no frame event for %lld ms", i,
                      (long long)r->max_gap_ms);
        ck_assert_msg(p95s <= 2 * p95b + 100, "subscriber %d: p95 latency %.1f -> %.1f ms", i, p95b,
                      p95s);
    }
    ck_assert_int_ge(st.cycles, STORM_CYCLES);
    ck_assert_int_eq(st.connect_fail, 0);
    ck_assert_int_eq(st.unanswered, 0);
    ck_assert_int_gt(st.refused, 0);  /* the storm met limits.clients */
    ck_assert_int_gt(st.answered, 0); /* and was served below it */
    ck_assert_int_ge(bc.sent, 3);
    ck_assert_int_eq(bc.bad, 0);
    ck_assert(!bc.c.seq_gap);

    /* Every storm and half-open connection is gone from the server: only the two subscribers
     * and the byte-by-byte client are left. */
    int clients = -1;
    for (int64_t end = tu_now_ms() + 10000; tu_now_ms() < end; tu_sleep_ms(100)) {
        cJSON *r = dt_command(&subs[0].c, "{\"op\":\"stats\"}\n", 5000);
        ck_assert_msg(dt_is_type(r, "reply"), "stats did not answer after the storm");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "stats");
        clients = (int)dt_num(s, "clients", -1);
        ck_assert_int_eq((int)dt_num(s, "dropped", -1), 0);
        cJSON_Delete(r);
        if (clients == 3)
            break;
    }
    ck_assert_int_eq(clients, 3);
    ck_assert(!subs[0].c.seq_gap);
    for (int i = 0; i < 2; i++)
        dt_close(&subs[i].c);
    dt_close(&bc.c);
    stop_ok(&d);
}
END_TEST

static int have_ffmpeg(void) {
    return system("ffmpeg -hide_banner -version >/dev/null 2>&1") == 0;
}

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "all";
    int all = strcmp(which, "all") == 0;
    if (!all && strcmp(which, "sources") != 0 && strcmp(which, "clients") != 0) {
        fprintf(stderr, "usage: %s [sources|clients|all]\n", argv[0]);
        return 2;
    }
    if (!have_ffmpeg()) {
        fprintf(stderr, "test_faults: no ffmpeg tool to make the test media: skipped\n");
        return 77;
    }
    Suite *s = suite_create("daemon-faults");
    if (all || strcmp(which, "sources") == 0) {
        tm_add_case(s, "sources", 60, test_silent_camera, test_garbage_camera, test_pts_backwards,
                    test_size_change, NULL);
    }
    if (all || strcmp(which, "clients") == 0) {
        tm_add_case(s, "clients", 90, test_client_storm, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
    int status = tm_run(s);
    tu_cleanup();
    return status;
}
