/* test_codec_live.c - codec/ integration tests against real servers on loopback: GStreamer's
 * RTSP server (tests/codec/rtsp_server.py) over TCP and UDP, server loss and restart,
 * unreachable ports, stalls, cancelling blocked reads and opens, HTTP and HLS (Python's
 * http.server), and open/read/close cycles of every source kind. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/error.h>
#include <libavutil/log.h>

#include "testmain.h"
#include "codec_test_util.h"
#include "vt_codec.h"

#define PYTHON "/usr/bin/python3"

static char rtsp_script[1024], http_script[1024];

/* ---------------------------------------------------------------------------------------------
 * Servers
 * ------------------------------------------------------------------------------------------- */

typedef struct server {
    pid_t pid;
    int out, in;
    int port;
} server;

/* Servers of this process, killed at exit even when a failed assertion skipped stop_server():
 * one that a test froze with SIGSTOP would not notice its stdin closing. */
#define MAX_SERVERS 8
static pid_t live_pids[MAX_SERVERS];

static void kill_servers(void) {
    for (int i = 0; i < MAX_SERVERS; i++)
        if (live_pids[i] > 0) {
            kill(live_pids[i], SIGCONT);
            tu_kill(live_pids[i], SIGKILL);
            live_pids[i] = 0;
        }
}

static void track_pid(pid_t pid, pid_t replace) {
    for (int i = 0; i < MAX_SERVERS; i++)
        if (live_pids[i] == replace) {
            live_pids[i] = pid;
            return;
        }
}

static int start_script(server *sv, char *const argv[]) {
    char line[64];
    memset(sv, 0, sizeof(*sv));
    sv->pid = tu_spawn(argv, &sv->out, &sv->in);
    if (sv->pid <= 0)
        return -1;
    track_pid(sv->pid, 0);
    if (tu_read_line(sv->out, line, sizeof(line), 10000) <= 0) {
        tu_kill(sv->pid, SIGKILL);
        track_pid(0, sv->pid);
        close(sv->out);
        close(sv->in);
        sv->pid = 0;
        return -1;
    }
    sv->port = atoi(line);
    return tu_wait_port(sv->port, 5000);
}

static void start_rtsp(server *sv, int port) {
    char p[16];
    char *argv[] = {PYTHON, rtsp_script, "--port", p, NULL};
    snprintf(p, sizeof(p), "%d", port);
    ck_assert_msg(start_script(sv, argv) == 0, "the RTSP server did not start (%s)", rtsp_script);
}

/* The RTSP server playing a recording (an MP4 file) instead of its live pattern. */
static void start_rtsp_file(server *sv, int port, const char *file) {
    char p[16];
    char *argv[] = {PYTHON, rtsp_script, "--port", p, "--file", (char *)file, NULL};
    snprintf(p, sizeof(p), "%d", port);
    ck_assert_msg(start_script(sv, argv) == 0, "the RTSP server did not start (%s)", rtsp_script);
}

static void start_http(server *sv, const char *dir) {
    char *argv[] = {PYTHON, http_script, (char *)dir, NULL};
    ck_assert_msg(start_script(sv, argv) == 0, "the HTTP server did not start");
}

static void stop_server(server *sv) {
    if (sv->pid > 0) {
        kill(sv->pid, SIGCONT);
        tu_kill(sv->pid, SIGKILL);
        track_pid(0, sv->pid);
        close(sv->out);
        close(sv->in);
    }
    sv->pid = 0;
}

/* ---------------------------------------------------------------------------------------------
 * A reader thread that records state changes
 * ------------------------------------------------------------------------------------------- */

#define MAX_EVENTS 256

typedef struct live {
    vt_source *s;
    pthread_t th;
    pthread_mutex_t mu;
    int nev;
    vt_source_state ev[MAX_EVENTS];
    int64_t ev_ms[MAX_EVENTS];
    char reason[MAX_EVENTS][160];
    int64_t frames, last_session;
    int ret;
    int64_t done_ms;
    int w, h;
    int64_t captures; /* frames with a sender capture time */
    int64_t capture_skew_ms;
} live;

static void on_state(void *opaque, vt_source_state st, const char *reason) {
    live *l = opaque;
    pthread_mutex_lock(&l->mu);
    if (l->nev < MAX_EVENTS) {
        l->ev[l->nev] = st;
        l->ev_ms[l->nev] = tu_now_ms();
        snprintf(l->reason[l->nev], sizeof(l->reason[0]), "%s", reason);
        l->nev++;
    }
    pthread_mutex_unlock(&l->mu);
}

static void *reader_main(void *arg) {
    live *l = arg;
    const vt_frame *f;
    while ((l->ret = vt_source_read(l->s, &f)) == 0) {
        pthread_mutex_lock(&l->mu);
        l->frames++;
        l->last_session = f->session;
        l->w = f->width;
        l->h = f->height;
        if (f->capture_realtime_us > 0) {
            l->captures++;
            l->capture_skew_ms = (f->arrival_realtime_us - f->capture_realtime_us) / 1000;
        }
        pthread_mutex_unlock(&l->mu);
    }
    l->done_ms = tu_now_ms();
    return NULL;
}

/* Retry delays min, 2 min, ... up to max, without jitter: what a test can count. */
static void exact_backoff(vt_source_opts *o, int64_t min_ms, int64_t max_ms) {
    o->backoff_min_ms = min_ms;
    o->backoff_max_ms = max_ms;
    o->backoff_jitter = 0;
}

static void live_opts(vt_source_opts *o, live *l) {
    vt_source_opts_default(o);
    o->on_state = on_state;
    o->opaque = l;
    o->decoder_threads = 1;
}

static void live_start(live *l, const char *url, const vt_source_opts *o) {
    char err[512];
    pthread_mutex_init(&l->mu, NULL);
    ck_assert_msg(vt_source_new(&l->s, url, o, err, sizeof(err)) == 0, "%s", err);
    pthread_create(&l->th, NULL, reader_main, l);
}

static int64_t live_frames(live *l) {
    int64_t n;
    pthread_mutex_lock(&l->mu);
    n = l->frames;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* Wait until state `st` is recorded at index >= from; returns its index or -1. */
static int wait_state(live *l, vt_source_state st, int from, int timeout_ms) {
    int64_t end = tu_now_ms() + timeout_ms;
    do {
        pthread_mutex_lock(&l->mu);
        for (int i = from; i < l->nev; i++)
            if (l->ev[i] == st) {
                pthread_mutex_unlock(&l->mu);
                return i;
            }
        pthread_mutex_unlock(&l->mu);
        tu_sleep_ms(5);
    } while (tu_now_ms() < end);
    return -1;
}

static int wait_frames(live *l, int64_t n, int timeout_ms) {
    int64_t end = tu_now_ms() + timeout_ms;
    while (live_frames(l) < n) {
        if (tu_now_ms() > end)
            return -1;
        tu_sleep_ms(5);
    }
    return 0;
}

static void dump_events(live *l) {
    for (int i = 0; i < l->nev; i++)
        fprintf(stderr, "  %6lld ms %-10s %s\n", (long long)(l->ev_ms[i] - l->ev_ms[0]),
                vt_source_state_name(l->ev[i]), l->reason[i]);
}

/* Cancel, join, and return how long the reader took to notice. */
static int64_t live_stop(live *l) {
    int64_t t = tu_now_ms();
    vt_source_cancel(l->s);
    pthread_join(l->th, NULL);
    return l->done_ms - t;
}

static void live_free(live *l) {
    vt_source_free(&l->s);
    pthread_mutex_destroy(&l->mu);
}

static void rtsp_url(char *buf, size_t len, int port) {
    snprintf(buf, len, "rtsp://127.0.0.1:%d/test", port);
}

/* An H.264 MP4 of `seconds` (160x120, 25 fps) for the RTSP server to play as a recording. */
static const char *recording(const char *name, int seconds) {
    const char *path = tu_path(name);
    ck_assert_int_eq(tu_ffmpeg("-f lavfi -i testsrc=s=160x120:r=25:d=%d -c:v libx264 -g 5 "
                               "-pix_fmt yuv420p %s",
                               seconds, path),
                     0);
    return path;
}

/* Options for a source that notices a dead server within a second and retries quickly. */
static void quick_retry_opts(vt_source_opts *o, live *l) {
    live_opts(o, l);
    o->read_timeout_ms = 1000;
    o->connect_timeout_ms = 1000;
    o->backoff_min_ms = 100;
    o->backoff_max_ms = 400;
}

/* After a backoff recorded at event i_back (the server restarted since): up again, and frames
 * flow. */
static void expect_up_again(live *l, int i_back) {
    const int i_up = wait_state(l, VT_SOURCE_STATE_UP, i_back, 6000);
    if (i_up < 0)
        dump_events(l);
    ck_assert_msg(i_up > i_back, "not up again after the restart");
    const int64_t n = live_frames(l);
    ck_assert_int_eq(wait_frames(l, n + 10, 5000), 0);
}

/* ---------------------------------------------------------------------------------------------
 * RTSP
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_rtsp_frames) {
    server sv;
    live l = {0};
    vt_source_opts o;
    vt_source_info info;
    char url[128];
    int64_t lat;

    start_rtsp(&sv, 0);
    rtsp_url(url, sizeof(url), sv.port);
    live_opts(&o, &l);
    o.rtsp_transport = _i ? VT_SOURCE_TRANSPORT_UDP : VT_SOURCE_TRANSPORT_TCP;
    o.proc_width = 160;
    live_start(&l, url, &o);
    ck_assert_msg(wait_frames(&l, 40, 8000) == 0, "%s: %lld frames", _i ? "udp" : "tcp",
                  (long long)live_frames(&l));
    /* RTCP sender reports arrive every few seconds: wait for one (start_time_realtime). */
    for (int i = 0; i < 60 && !l.captures; i++)
        tu_sleep_ms(100);
    lat = live_stop(&l);
    ck_assert_int_eq(l.ret, AVERROR_EXIT);
    /* Here the reader may be decoding a frame when cancelled (test_cancel_* check blocking). */
    ck_assert_int_lt(lat, 1000);
    ck_assert_int_eq(l.w, 320);
    ck_assert_int_eq(l.h, 240);
    ck_assert_int_eq(l.last_session, 1);
    ck_assert_int_ge(l.nev, 3);
    ck_assert_int_eq(l.ev[0], VT_SOURCE_STATE_CONNECTING);
    ck_assert_int_eq(l.ev[1], VT_SOURCE_STATE_UP);
    ck_assert_int_eq(l.ev[l.nev - 1], VT_SOURCE_STATE_ENDED);
    ck_assert_int_eq(vt_source_get_info(l.s, &info), 0);
    ck_assert_str_eq(info.codec_name, "h264");
    ck_assert_int_eq(info.kind, VT_SOURCE_KIND_RTSP);
    ck_assert_int_eq(info.duration_us, -1);
    /* Same machine, same clock: the capture time is a wall-clock time shortly before arrival
     * (by the pipeline's latency, seconds under valgrind), not a pts or garbage. */
    ck_assert_msg(l.captures > 0, "no frame carried an RTCP capture time");
    ck_assert_msg(l.capture_skew_ms >= -200 && l.capture_skew_ms < 5000, "skew %lld ms",
                  (long long)l.capture_skew_ms);
    fprintf(stderr, "%s: capture -> arrival %lld ms\n", _i ? "udp" : "tcp",
            (long long)l.capture_skew_ms);
    live_free(&l);
    stop_server(&sv);
}
END_TEST

/* Server killed: backoff within the read timeout; server back: up again on the same port. */
START_TEST(test_rtsp_restart) {
    server sv;
    live l = {0};
    vt_source_opts o;
    char url[128];
    int64_t t_kill;
    int port, i_back;

    start_rtsp(&sv, 0);
    port = sv.port;
    rtsp_url(url, sizeof(url), port);
    quick_retry_opts(&o, &l);
    live_start(&l, url, &o);
    ck_assert_int_eq(wait_frames(&l, 10, 8000), 0);

    t_kill = tu_now_ms();
    stop_server(&sv);
    i_back = wait_state(&l, VT_SOURCE_STATE_BACKOFF, 0, 3000);
    ck_assert_msg(i_back >= 0, "no backoff after the server died");
    ck_assert_msg(l.ev_ms[i_back] - t_kill <= o.read_timeout_ms + 200,
                  "backoff %lld ms after the kill (read timeout %lld)",
                  (long long)(l.ev_ms[i_back] - t_kill), (long long)o.read_timeout_ms);

    tu_sleep_ms(300);
    start_rtsp(&sv, port);
    expect_up_again(&l, i_back);
    live_stop(&l);
    ck_assert_int_ge(l.last_session, 2);
    {
        vt_source_stats st;
        vt_source_get_stats(l.s, &st);
        ck_assert_int_ge(st.reconnects, 1);
    }
    live_free(&l);
    stop_server(&sv);
}
END_TEST

/*
 * A recording served over RTSP (its 20 s announced) whose server dies 2 s in: a dropped
 * connection, not the end of the recording. The source backs off and comes back up when the
 * server does, instead of ending.
 */
START_TEST(test_rtsp_recording_drop) {
    server sv;
    live l = {0};
    vt_source_opts o;
    vt_source_info info;
    char url[128];
    const char *rec = recording("rec.mp4", 20);
    start_rtsp_file(&sv, 0, rec);
    const int port = sv.port;
    rtsp_url(url, sizeof(url), port);
    quick_retry_opts(&o, &l);
    live_start(&l, url, &o);
    ck_assert_int_eq(wait_frames(&l, 50, 8000), 0);
    ck_assert_int_eq(vt_source_get_info(l.s, &info), 0);
    ck_assert_msg(info.duration_us > 19000000 && info.duration_us < 21000000,
                  "the server announced %lld us, not the recording's 20 s: nothing is tested",
                  (long long)info.duration_us);
    stop_server(&sv);
    const int i_back = wait_state(&l, VT_SOURCE_STATE_BACKOFF, 0, 3000);
    if (i_back < 0)
        dump_events(&l);
    ck_assert_msg(i_back >= 0, "no backoff after the server died 2 s into a 20 s recording");
    ck_assert_int_lt(wait_state(&l, VT_SOURCE_STATE_ENDED, 0, 10), 0);
    tu_sleep_ms(300);
    start_rtsp_file(&sv, port, rec);
    expect_up_again(&l, i_back);
    live_stop(&l);
    live_free(&l);
    stop_server(&sv);
}
END_TEST

/* The same kind of recording (3 s) played to its end: that is the end, with no reconnect. */
START_TEST(test_rtsp_recording_end) {
    server sv;
    live l = {0};
    vt_source_opts o;
    char url[128];
    const char *rec = recording("rec3.mp4", 3);
    start_rtsp_file(&sv, 0, rec);
    rtsp_url(url, sizeof(url), sv.port);
    live_opts(&o, &l);
    o.read_timeout_ms = 1000;
    live_start(&l, url, &o);
    const int i_end = wait_state(&l, VT_SOURCE_STATE_ENDED, 0, 15000);
    if (i_end < 0)
        dump_events(&l);
    ck_assert_msg(i_end >= 0, "a 3 s recording played to its end did not end");
    ck_assert_int_lt(wait_state(&l, VT_SOURCE_STATE_BACKOFF, 0, 10), 0);
    ck_assert_int_ge(live_frames(&l), 70); /* 75 frames, give or take the last few */
    live_stop(&l);
    ck_assert_int_eq(l.ret, AVERROR_EOF);
    live_free(&l);
    stop_server(&sv);
}
END_TEST

/* Connection refused: attempts are spaced by the backoff, not a busy loop. */
START_TEST(test_unreachable) {
    live l = {0};
    vt_source_opts o;
    vt_source_stats st;
    char url[192];
    int64_t lat;

    /* with credentials, which no message may show */
    char plain[128];
    rtsp_url(plain, sizeof(plain), tu_free_port());
    ck_assert(strncmp(plain, "rtsp://", 7) == 0);
    snprintf(url, sizeof(url), "rtsp://admin:hunter2@%s", plain + 7);
    live_opts(&o, &l);
    exact_backoff(&o, 50, 200);
    live_start(&l, url, &o);
    tu_sleep_ms(1500);
    lat = live_stop(&l);
    vt_source_get_stats(l.s, &st);
    /* Delays 50, 100, 200, 200...: about 9 attempts in 1.5 s; a busy loop makes thousands. */
    ck_assert_msg(st.connect_attempts >= 6 && st.connect_attempts <= 11, "%lld attempts",
                  (long long)st.connect_attempts);
    ck_assert_int_lt(lat, 100);
    ck_assert_int_eq(l.ret, AVERROR_EXIT);
    ck_assert_int_eq(l.frames, 0);
    ck_assert_int_eq(l.ev[0], VT_SOURCE_STATE_CONNECTING);
    ck_assert_int_eq(l.ev[1], VT_SOURCE_STATE_BACKOFF);
    char shown[192];
    snprintf(shown, sizeof(shown), "rtsp://***@%s", plain + 7);
    ck_assert_msg(strstr(l.reason[1], "Connection refused") && strstr(l.reason[1], shown), "%s",
                  l.reason[1]);
    for (int i = 0; i < l.nev; i++)
        ck_assert_msg(!strstr(l.reason[i], "hunter2"), "a message shows the password: %s",
                      l.reason[i]);
    live_free(&l);
}
END_TEST

/* The backoff doubles up to its cap while the camera is away, and starts again from the
 * minimum once the source has been up for backoff_reset_ms. */
START_TEST(test_backoff_reset) {
    server sv;
    live l = {0};
    vt_source_opts o;
    char url[128];
    int port = tu_free_port(), i, i_up, i_back;

    rtsp_url(url, sizeof(url), port);
    live_opts(&o, &l);
    exact_backoff(&o, 50, 400);
    o.backoff_reset_ms = 500;
    live_start(&l, url, &o);
    tu_sleep_ms(1300); /* 50, 100, 200, 400, 400 ms */
    pthread_mutex_lock(&l.mu);
    for (i = l.nev - 1; i >= 0 && l.ev[i] != VT_SOURCE_STATE_BACKOFF; i--)
        ;
    ck_assert_int_ge(i, 0);
    ck_assert_msg(strstr(l.reason[i], "retrying in 0.40 s"), "%s", l.reason[i]);
    pthread_mutex_unlock(&l.mu);

    start_rtsp(&sv, port);
    i_up = wait_state(&l, VT_SOURCE_STATE_UP, 0, 6000);
    ck_assert_int_ge(i_up, 0);
    ck_assert_int_eq(wait_frames(&l, 1, 5000), 0);
    tu_sleep_ms(700); /* up longer than backoff_reset_ms */
    stop_server(&sv);
    i_back = wait_state(&l, VT_SOURCE_STATE_BACKOFF, i_up, 3000);
    ck_assert_int_gt(i_back, i_up);
    ck_assert_msg(strstr(l.reason[i_back], "retrying in 0.05 s"), "%s", l.reason[i_back]);
    live_stop(&l);
    live_free(&l);
}
END_TEST

/* A frozen server (SIGSTOP): stalled, backoff; thawed: up again. */
START_TEST(test_stall) {
    server sv;
    live l = {0};
    vt_source_opts o;
    char url[128];
    int i_stall, i_up;
    int64_t t_stop;

    start_rtsp(&sv, 0);
    rtsp_url(url, sizeof(url), sv.port);
    live_opts(&o, &l);
    o.read_timeout_ms = 600;
    o.connect_timeout_ms = 600;
    o.backoff_min_ms = 100;
    o.backoff_max_ms = 200;
    live_start(&l, url, &o);
    ck_assert_int_eq(wait_frames(&l, 10, 8000), 0);
    t_stop = tu_now_ms();
    kill(sv.pid, SIGSTOP);
    i_stall = wait_state(&l, VT_SOURCE_STATE_STALLED, 0, 3000);
    ck_assert_msg(i_stall >= 0, "no stall reported");
    /* Within the read timeout, not the minutes TCP would wait: a read that began just before
     * the stop may run its whole timeout after it, and under ASan on a loaded machine a stall
     * once came 1207 ms after it; two timeouts and 300 ms still tell the two apart. */
    ck_assert_int_le(l.ev_ms[i_stall] - t_stop, 2 * 600 + 300);
    ck_assert_msg(strstr(l.reason[i_stall], "read timeout"), "%s", l.reason[i_stall]);
    /* the next state is the backoff; the event may still be on its way when the stall is seen */
    ck_assert_int_eq(wait_state(&l, VT_SOURCE_STATE_BACKOFF, i_stall, 3000), i_stall + 1);
    kill(sv.pid, SIGCONT);
    i_up = wait_state(&l, VT_SOURCE_STATE_UP, i_stall, 8000);
    if (i_up < 0)
        dump_events(&l);
    ck_assert_int_gt(i_up, i_stall);
    live_stop(&l);
    live_free(&l);

    /* Packets but no pictures (the decoder told to skip everything): the stall detector. */
    memset(&l, 0, sizeof(l));
    live_opts(&o, &l);
    o.stall_ms = 500;
    o.av_options = "skip_frame=all";
    live_start(&l, url, &o);
    i_stall = wait_state(&l, VT_SOURCE_STATE_STALLED, 0, 5000);
    ck_assert_msg(i_stall >= 0, "stall detector silent");
    ck_assert_msg(strstr(l.reason[i_stall], "no decoded frame for 500 ms"), "%s",
                  l.reason[i_stall]);
    /* as above: the backoff event may still be on its way */
    ck_assert_int_eq(wait_state(&l, VT_SOURCE_STATE_BACKOFF, i_stall, 3000), i_stall + 1);
    live_stop(&l);
    live_free(&l);
    stop_server(&sv);
}
END_TEST

/* A read blocked on a silent server returns within 100 ms of cancel. */
START_TEST(test_cancel_blocked_read) {
    server sv;
    char url[128];
    int64_t worst = 0;

    start_rtsp(&sv, 0);
    rtsp_url(url, sizeof(url), sv.port);
    for (int trial = 0; trial < 3; trial++) {
        live l = {0};
        vt_source_opts o;
        int64_t n, lat;
        live_opts(&o, &l);
        o.rtsp_transport = _i ? VT_SOURCE_TRANSPORT_UDP : VT_SOURCE_TRANSPORT_TCP;
        o.read_timeout_ms = 30000;
        o.stall_ms = 0;
        live_start(&l, url, &o);
        ck_assert_int_eq(wait_frames(&l, 5, 8000), 0);
        kill(sv.pid, SIGSTOP);
        /* Wait until the frames already in flight are through and the reader really blocks
         * (no new frame for 300 ms); the trial's offset varies the phase against FFmpeg's
         * 100 ms poll period. */
        n = -1;
        for (int waited = 0; live_frames(&l) != n && waited < 5000; waited += 300 + 37 * trial) {
            n = live_frames(&l);
            tu_sleep_ms(300 + 37 * trial);
        }
        ck_assert_int_eq(live_frames(&l), n);
        lat = live_stop(&l);
        ck_assert_int_eq(l.ret, AVERROR_EXIT);
        if (lat > worst)
            worst = lat;
        live_free(&l);
        kill(sv.pid, SIGCONT);
    }
    fprintf(stderr, "cancel of a blocked %s read: worst %lld ms\n", _i ? "udp" : "tcp",
            (long long)worst);
    ck_assert_msg(worst < 100, "cancel took %lld ms", (long long)worst);
    stop_server(&sv);
}
END_TEST

typedef struct opener {
    vt_source *s;
    int ret;
    int64_t done_ms;
    char err[512];
} opener;

static void *open_main(void *arg) {
    opener *op = arg;
    op->ret = vt_source_open(op->s, op->err, sizeof(op->err));
    op->done_ms = tu_now_ms();
    return NULL;
}

static void cancel_opener(void *arg) {
    vt_source_cancel(((opener *)arg)->s);
}

/* An open blocked on a server that accepts and never answers returns within 100 ms. */
START_TEST(test_cancel_blocked_open) {
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    opener op = {0};
    vt_source_opts o;
    char url[128], err[512];
    int64_t t;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 4), 0); /* the kernel completes connects; nobody answers */
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(url, sizeof(url), "rtsp://127.0.0.1:%d/silent", ntohs(a.sin_port));
    vt_source_opts_default(&o);
    o.connect_timeout_ms = 30000;
    ck_assert_int_eq(vt_source_new(&op.s, url, &o, err, sizeof(err)), 0);
    int64_t took = tu_cancel_blocked(open_main, cancel_opener, &op, &op.done_ms);
    ck_assert_int_eq(op.ret, AVERROR_EXIT);
    ck_assert_msg(took < 100, "cancel took %lld ms", (long long)took);
    ck_assert_int_eq(vt_source_get_state(op.s), VT_SOURCE_STATE_ENDED);
    vt_source_free(&op.s);

    /* The connect timeout bounds the same open without a cancel. */
    vt_source_opts_default(&o);
    o.connect_timeout_ms = 300;
    o.reconnect = 0;
    ck_assert_int_eq(vt_source_new(&op.s, url, &o, err, sizeof(err)), 0);
    t = tu_now_ms();
    ck_assert_int_eq(vt_source_open(op.s, err, sizeof(err)), AVERROR(ETIMEDOUT));
    ck_assert_int_lt(tu_now_ms() - t, 300 + 250);
    ck_assert_msg(strstr(err, "connect timeout (300 ms)") && strstr(err, url), "%s", err);
    vt_source_free(&op.s);
    close(fd);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * HTTP and HLS
 * ------------------------------------------------------------------------------------------- */

static void make_http_media(void) {
    mkdir(tu_path("www"), 0755);
    if (tu_ffmpeg("-f lavfi -i testsrc=size=320x240:rate=25 -frames:v 50 -c:v mpeg4 -q:v 4 "
                  "-movflags +faststart %s",
                  tu_path("www/clip.mp4")) != 0 ||
        tu_ffmpeg("-f lavfi -i testsrc=size=320x240:rate=25 -frames:v 75 -c:v libx264 -g 25 "
                  "-pix_fmt yuv420p "
                  "-f hls -hls_time 1 -hls_list_size 0 -hls_playlist_type vod "
                  "-hls_segment_filename %s %s",
                  tu_path("www/seg%d.ts"), tu_path("www/index.m3u8")) != 0)
        exit(2);
    /* A playlist that points at a local file: a client URL must not get it read. */
    {
        char pl[2048];
        int n = snprintf(pl, sizeof(pl),
                         "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n"
                         "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:1.0,\nfile://%s\n#EXT-X-ENDLIST\n",
                         tu_path("www/seg0.ts"));
        tu_write_file(tu_path("www/evil.m3u8"), pl, (size_t)n);
    }
}

static int count_url(const char *url, int allow_local, int *ret, char *err, size_t errlen) {
    vt_source_opts o;
    vt_source *s = NULL;
    const vt_frame *f;
    int n = 0;
    vt_source_opts_default(&o);
    o.allow_local = allow_local;
    o.reconnect = 0; /* one try: a 404 would otherwise be retried for ever, as for a camera */
    o.connect_timeout_ms = 3000;
    o.read_timeout_ms = 3000;
    ck_assert_int_eq(vt_source_new(&s, url, &o, err, errlen), 0);
    while ((*ret = vt_source_read(s, &f)) == 0)
        n++;
    snprintf(err, errlen, "%s", vt_source_last_error(s));
    vt_source_free(&s);
    return n;
}

START_TEST(test_http) {
    server sv;
    char url[256], err[512];
    int ret, n;

    start_http(&sv, tu_path("www"));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/clip.mp4", sv.port);
    n = count_url(url, 0, &ret, err, sizeof(err));
    ck_assert_msg(n == 50 && ret == AVERROR_EOF, "%s: %d frames, %s", url, n, err);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/index.m3u8", sv.port);
    n = count_url(url, 0, &ret, err, sizeof(err));
    ck_assert_msg(n == 75 && ret == AVERROR_EOF, "%s: %d frames, %s", url, n, err);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/missing.mp4", sv.port);
    n = count_url(url, 0, &ret, err, sizeof(err));
    ck_assert_int_eq(n, 0);
    ck_assert_msg(strstr(err, "404") && strstr(err, "missing.mp4"), "%s", err);

    /* The whitelist holds inside FFmpeg: the HLS demuxer may not open the file: segment. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/evil.m3u8", sv.port);
    n = count_url(url, 0, &ret, err, sizeof(err));
    ck_assert_msg(n == 0 && ret < 0, "local segment read through a client URL: %d frames", n);
    /* ...which it does when local files are allowed (so the check above can fail). */
    n = count_url(url, 1, &ret, err, sizeof(err));
    ck_assert_msg(n == 25 && ret == AVERROR_EOF, "allowed local segment: %d frames, %s", n, err);
    stop_server(&sv);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Open / read / close cycles over every kind (for ASan and valgrind)
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_cycles) {
    server rt, web;
    char urls[7][512];
    int transport[7] = {0, 0, 0, 1, 0, 0, 0};
    start_rtsp(&rt, 0);
    start_http(&web, tu_path("www"));
    snprintf(urls[0], sizeof(urls[0]), "%s", tu_path("www/clip.mp4"));
    snprintf(urls[1], sizeof(urls[1]), "%s", tu_path("frames"));
    rtsp_url(urls[2], sizeof(urls[2]), rt.port);
    rtsp_url(urls[3], sizeof(urls[3]), rt.port);
    snprintf(urls[4], sizeof(urls[4]), "http://127.0.0.1:%d/clip.mp4", web.port);
    snprintf(urls[5], sizeof(urls[5]), "http://127.0.0.1:%d/index.m3u8", web.port);
    snprintf(urls[6], sizeof(urls[6]), "/dev/video77");
    for (int cycle = 0; cycle < 3; cycle++) {
        for (int k = 0; k < 7; k++) {
            vt_source_opts o;
            vt_source *s = NULL;
            const vt_frame *f;
            char err[512];
            int ret = 0;
            vt_source_opts_default(&o);
            o.allow_local = 1;
            o.reconnect = 0;
            o.proc_width = 64;
            o.rtsp_transport = transport[k] ? VT_SOURCE_TRANSPORT_UDP : VT_SOURCE_TRANSPORT_TCP;
            ck_assert_msg(vt_source_new(&s, urls[k], &o, err, sizeof(err)) == 0, "%s", err);
            for (int i = 0; i < 3 && ret == 0; i++)
                ret = vt_source_read(s, &f);
            if (k == 6)
                ck_assert_int_eq(ret, AVERROR(ENOENT));
            else
                ck_assert_msg(ret == 0, "%s: %s", urls[k], vt_source_last_error(s));
            vt_source_free(&s);
        }
    }
    stop_server(&rt);
    stop_server(&web);
}
END_TEST

static Suite *live_suite(void) {
    Suite *s = suite_create("codec-live");
    TCase *tc = tm_add_case(s, "rtsp", 40, test_rtsp_restart, test_rtsp_recording_drop,
                            test_rtsp_recording_end, test_unreachable, test_backoff_reset,
                            test_stall, test_cancel_blocked_open, NULL);
    tcase_add_loop_test(tc, test_rtsp_frames, 0, 2);
    tcase_add_loop_test(tc, test_cancel_blocked_read, 0, 2);
    tm_add_case(s, "http", 40, test_http, test_cycles, NULL);
    return s;
}

int main(void) {
    const char *root = getenv("VT_SOURCE_ROOT");
    av_log_set_level(getenv("VT_TEST_AVLOG") ? AV_LOG_INFO : AV_LOG_QUIET);
    atexit(kill_servers); /* inherited by Check's forked test processes */
    snprintf(rtsp_script, sizeof(rtsp_script), "%s/tests/codec/rtsp_server.py", root ? root : ".");
    snprintf(http_script, sizeof(http_script), "%s/tests/codec/http_server.py", root ? root : ".");
    if (system(PYTHON " -c \"import gi; gi.require_version('GstRtspServer', '1.0'); "
                      "from gi.repository import GstRtspServer\" 2>/dev/null") != 0) {
        fprintf(stderr,
                "FAIL: %s cannot import GstRtspServer (install python3-gi and "
                "gir1.2-gst-rtsp-server-1.0: ./dev setup)\n",
                PYTHON);
        return 1;
    }
    make_http_media();
    mkdir(tu_path("frames"), 0755);
    if (tu_ffmpeg("-f lavfi -i testsrc=size=128x96:rate=25 -frames:v 5 -start_number 0 %s",
                  tu_path("frames/%05d.jpg")) != 0)
        return 2;
    int status = tm_run(live_suite());
    tu_cleanup();
    return status;
}
