/*
 * test_daemon.c - vtrackd end to end: a real daemon process on real loopback TCP, with real
 * video files and a real RTSP server (GStreamer's, tests/codec/rtsp_server.py), checked with
 * plain blocking clients. Every test stops the daemon with SIGTERM and requires exit status 0,
 * so a sanitizer report (ASan build) or a leak fails the test that caused it.
 *
 * usage: test_daemon [integration|slow|all]
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testmain.h"
#include "dtest.h"
#include "vt_proto.h"

#define LAB "\"model\":\"lab\",\"log_level\":\"debug\""

static const char *video(void) {
    const char *v = dt_video("v160.mp4", 160, 120, 100, 25);
    ck_assert_msg(v != NULL, "ffmpeg could not make the test video");
    return v;
}

/* A configuration with one camera-paced file stream "cam" (looping, 25 fps, 160x120) with one
 * object, plus `extra` top-level fields (may be ""). */
static char *cam_config(const char *extra, const char *more_streams) {
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "{\"listen\":\"127.0.0.1:@PORT@\"," LAB "%s%s,\"streams\":[{\"name\":\"cam\","
             "\"url\":\"%s\",\"pacing\":\"camera\",\"objects\":[{\"id\":1,\"label\":\"box\","
             "\"box\":[40,30,40,40],\"frame\":0}]}%s]}",
             extra[0] ? "," : "", extra, video(), more_streams ? more_streams : "");
    return buf;
}

static void stop_ok(dt_daemon *d) {
    int64_t ms = 0;
    int code = dt_stop(d, SIGTERM, 5000, &ms);
    ck_assert_msg(code == 0, "vtrackd exited with %d after SIGTERM", code);
    ck_assert_int_lt(ms, 5000);
}

static void expect_error(cJSON *j, const char *code, const char *field) {
    ck_assert_msg(dt_is_type(j, "error"), "no error %s (got %s)", code,
                  j ? cJSON_PrintUnformatted(j) : "nothing");
    ck_assert_str_eq(dt_str(j, "code"), code);
    if (field)
        ck_assert_str_eq(dt_str(j, "field"), field);
    ck_assert_ptr_nonnull(dt_str(j, "message"));
    cJSON_Delete(j);
}

static void hello(dt_conn *c, int port) {
    ck_assert_msg(dt_hello(c, port) == 0, "no greeting of protocol %d", VT_PROTO_VERSION);
}

/* Check one frame event's objects: each mask decodes to the stated size and agrees with the
 * stated area and box (recomputed here from the decoded pixels). Returns the object count. */
static int check_frame_masks(const cJSON *f, int want_masks) {
    int w = (int)dt_num(f, "width", 0), h = (int)dt_num(f, "height", 0);
    const cJSON *objs = cJSON_GetObjectItemCaseSensitive(f, "objects");
    ck_assert(cJSON_IsArray(objs));
    int n = 0;
    for (const cJSON *o = objs->child; o; o = o->next, n++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "mask");
        if (!want_masks) {
            ck_assert_ptr_null(m);
            continue;
        }
        ck_assert_ptr_nonnull(m);
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(m, "size");
        ck_assert_int_eq((int)cJSON_GetArrayItem(size, 0)->valuedouble, h);
        ck_assert_int_eq((int)cJSON_GetArrayItem(size, 1)->valuedouble, w);
        const char *counts = dt_str(m, "counts");
        ck_assert_ptr_nonnull(counts);
        uint8_t *mask = malloc((size_t)w * h);
        char err[128];
        ck_assert_msg(vt_rle_decode_string(counts, strlen(counts), h, w, mask, (size_t)w, err,
                                           sizeof err) == 0,
                      "%s", err);
        long area = 0;
        int x0 = w, y0 = h, x1 = -1, y1 = -1;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (mask[y * w + x]) {
                    area++;
                    x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                    y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
                }
        free(mask);
        ck_assert_int_eq(area, (long)dt_num(o, "area", -1));
        const cJSON *bb = cJSON_GetObjectItemCaseSensitive(o, "bbox");
        /* The bbox is the tracker's box of the object (PROTOCOL.md: its motion filter's, not
         * the mask's own), clipped to the frame: inside the frame, and over the mask when there
         * is one. */
        int b[4];
        for (int k = 0; k < 4; k++)
            b[k] = (int)cJSON_GetArrayItem(bb, k)->valuedouble;
        ck_assert_msg(b[0] >= 0 && b[1] >= 0 && b[2] >= 0 && b[3] >= 0 && b[0] + b[2] <= w &&
                          b[1] + b[3] <= h,
                      "bbox %d,%d,%d,%d outside %dx%d", b[0], b[1], b[2], b[3], w, h);
        if (area)
            ck_assert_msg(b[0] <= x1 && x0 < b[0] + b[2] && b[1] <= y1 && y0 < b[1] + b[3],
                          "bbox %d,%d,%d,%d misses the mask's %d,%d..%d,%d", b[0], b[1], b[2], b[3],
                          x0, y0, x1, y1);
    }
    return n;
}

/* ---------------------------------------------------------------------------------------------
 * Events
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_file_events) {
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cam_config("", NULL), NULL), 0);
    dt_conn a, b;
    hello(&a, d.port);
    hello(&b, d.port);
    dt_expect_reply(dt_command(&a, "{\"op\":\"subscribe\",\"id\":1,\"masks\":true}\n", 5000),
                    "subscribe");
    dt_expect_reply(
        dt_command(&b, "{\"op\":\"subscribe\",\"id\":\"x\",\"streams\":[\"cam\"]}\n", 5000),
        "subscribe");
    int64_t last = -1;
    int frames = 0, with_object = 0;
    while (frames < 30) {
        cJSON *f = dt_wait_type(&a, "frame", NULL, NULL, 5000);
        ck_assert_msg(f != NULL, "no frame event");
        ck_assert_str_eq(dt_str(f, "stream"), "cam");
        ck_assert_int_eq((int)dt_num(f, "width", 0), 160);
        ck_assert_int_eq((int)dt_num(f, "height", 0), 120);
        int64_t fr = (int64_t)dt_num(f, "frame", -1);
        ck_assert_msg(fr > last, "frame %lld after %lld", (long long)fr, (long long)last);
        last = fr;
        with_object += check_frame_masks(f, 1) == 1;
        ck_assert_int_gt(dt_parse_wallclock_ms(dt_str(f, "wallclock")), 0);
        cJSON_Delete(f);
        frames++;
    }
    ck_assert_int_eq(with_object, frames);
    ck_assert_msg(!a.seq_gap, "seq has a gap");
    /* b: the same stream without masks */
    for (int i = 0; i < 5; i++) {
        cJSON *f = dt_wait_type(&b, "frame", NULL, NULL, 5000);
        ck_assert_ptr_nonnull(f);
        check_frame_masks(f, 0);
        cJSON_Delete(f);
    }
    ck_assert(!b.seq_gap);
    /* list and stats agree */
    /* an id beyond 2^53 comes back byte for byte */
    dt_send(&b, "{\"op\":\"list\",\"id\":9007199254740993}\n");
    char *raw = NULL;
    while (dt_read_line(&b, 5000, &raw) == 1 && !strstr(raw, "\"type\":\"reply\""))
        ;
    ck_assert_ptr_nonnull(raw);
    ck_assert_ptr_nonnull(strstr(raw, "\"id\":9007199254740993,"));
    cJSON *l = cJSON_Parse(raw);
    ck_assert(dt_is_type(l, "reply"));
    const cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(l, "streams"), 0);
    ck_assert_str_eq(dt_str(s0, "stream"), "cam");
    ck_assert_str_eq(dt_str(s0, "state"), "up");
    ck_assert_str_eq(dt_str(s0, "pacing"), "camera");
    ck_assert_int_eq((int)dt_num(s0, "width", 0), 160);
    cJSON_Delete(l);
    cJSON *st = dt_command(&b, "{\"op\":\"stats\"}\n", 5000);
    ck_assert(dt_is_type(st, "reply"));
    const cJSON *stats = cJSON_GetObjectItemCaseSensitive(st, "stats");
    ck_assert_int_eq((int)dt_num(stats, "clients", 0), 2);
    const cJSON *ss = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(stats, "streams"), 0);
    ck_assert_int_ge((int)dt_num(ss, "frames", 0), 30);
    /* Paced at 25: never faster than that. How much slower depends on the machine (under
     * ASan, beside other tests, it fell below 10 once), so the floor is only "tracking". */
    ck_assert_msg(dt_num(ss, "fps", 0) > 0 && dt_num(ss, "fps", 0) < 40, "fps %.1f",
                  dt_num(ss, "fps", 0));
    cJSON_Delete(st);
    /* unsubscribe: no more frame events (the reply is the last line) */
    dt_expect_reply(dt_command(&b, "{\"op\":\"unsubscribe\"}\n", 5000), "unsubscribe");
    cJSON *none = dt_wait_type(&b, "frame", NULL, NULL, 500);
    ck_assert_ptr_null(none);
    dt_close(&a);
    dt_close(&b);
    stop_ok(&d);
}
END_TEST

static pid_t g_rtsp_pid;
static int g_rtsp_in = -1, g_rtsp_out = -1;

/* Start GStreamer's RTSP server (tests/codec/rtsp_server.py); port 0: any. Returns the port,
 * or -1 when it cannot run here (the caller skips loudly). */
static int rtsp_start(int port) {
    char script[1024], ps[16];
    snprintf(script, sizeof script, "%s/tests/codec/rtsp_server.py", getenv("VT_SOURCE_ROOT"));
    snprintf(ps, sizeof ps, "%d", port);
    char *argv[] = {"/usr/bin/python3", script, "--port", ps,   "--width", "160",
                    "--height",         "120",  "--fps",  "25", NULL};
    if (access(argv[0], X_OK) != 0)
        return -1;
    g_rtsp_pid = tu_spawn(argv, &g_rtsp_out, &g_rtsp_in);
    if (g_rtsp_pid <= 0)
        return -1;
    char line[64];
    if (tu_read_line(g_rtsp_out, line, sizeof line, 15000) <= 0) {
        tu_kill(g_rtsp_pid, SIGKILL);
        return -1;
    }
    return atoi(line);
}

static void rtsp_kill(void) {
    tu_kill(g_rtsp_pid, SIGKILL);
    close(g_rtsp_in);
    close(g_rtsp_out);
    g_rtsp_pid = 0;
}

START_TEST(test_rtsp_events) {
    int rport = rtsp_start(0);
    ck_assert_msg(rport > 0, "the RTSP server did not start"); /* main saw it start */
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"listen\":\"127.0.0.1:@PORT@\"," LAB ",\"streams\":[{\"name\":\"live\","
             "\"url\":\"rtsp://127.0.0.1:%d/test\"}]}",
             rport);
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cfg, NULL), 0);
    dt_conn c;
    hello(&c, d.port);
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\",\"masks\":true}\n", 5000), "subscribe");
    cJSON *f = dt_wait_type(&c, "frame", NULL, NULL, 15000);
    ck_assert_msg(f != NULL, "no frame from the RTSP stream");
    cJSON_Delete(f);
    dt_expect_reply(dt_command(&c,
                               "{\"op\":\"track\",\"id\":2,\"stream\":\"live\",\"label\":\"ball\","
                               "\"box\":[60,40,40,40]}\n",
                               5000),
                    "track");
    cJSON *added = dt_wait_type(&c, "object", "event", "added", 5000);
    ck_assert_ptr_nonnull(added);
    ck_assert_str_eq(dt_str(added, "label"), "ball");
    cJSON_Delete(added);
    int64_t last = -1;
    for (int i = 0; i < 10; i++) {
        f = dt_wait_type(&c, "frame", NULL, NULL, 5000);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(check_frame_masks(f, 1), 1);
        int64_t fr = (int64_t)dt_num(f, "frame", -1);
        ck_assert_int_gt(fr, last); /* live: gaps allowed, never backwards */
        last = fr;
        cJSON_Delete(f);
    }
    ck_assert(!c.seq_gap);
    dt_close(&c);
    stop_ok(&d);
    rtsp_kill();
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Protocol errors and hostile clients
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_bad_commands) {
    dt_daemon d;
    char down[160]; /* a camera that never answers: its frame size is never known */
    snprintf(down, sizeof down, ",{\"name\":\"down\",\"url\":\"rtsp://127.0.0.1:%d/x\"}",
             tu_free_port());
    ck_assert_int_eq(dt_start(&d, cam_config("\"limits\":{\"line_bytes\":4096}", down), NULL), 0);
    dt_conn c;
    hello(&c, d.port);
    expect_error(dt_command(&c, "{\"op\":\"list\",\"id\":13\n", 5000), "bad_json", NULL);
    expect_error(dt_command(&c, "{\"op\":\"zoom\",\"id\":11}\n", 5000), "bad_request", "op");
    expect_error(dt_command(&c, "{\"op\":\"list\",\"id\":1,\"x\":\"\xff\"}\n", 5000), "bad_utf8",
                 NULL);
    expect_error(dt_command(&c, "{\"op\":\"subscribe\",\"streams\":[\"nope\"]}\n", 5000),
                 "not_found", "streams[0]");
    expect_error(dt_command(&c, "{\"op\":\"track\",\"stream\":\"nope\",\"box\":[1,1,1,1]}\n", 5000),
                 "not_found", "stream");
    expect_error(dt_command(&c, "{\"op\":\"untrack\",\"stream\":\"cam\",\"object\":77}\n", 5000),
                 "not_found", "object");
    expect_error(
        dt_command(&c, "{\"op\":\"add_stream\",\"stream\":\"x\",\"url\":\"rtsp://h/\"}\n", 5000),
        "forbidden", NULL);
    expect_error(dt_command(&c, "{\"op\":\"hello\",\"protocol\":2}\n", 5000), "bad_version",
                 "protocol");
    ck_assert_int_eq(dt_wait_eof(&c, 5000), 1); /* bad_version closes */
    dt_close(&c);

    /* track: a mask RLE of the frame size is accepted; other sizes, past frames are not */
    hello(&c, d.port);
    cJSON *l = NULL;
    for (int i = 0; i < 50; i++) { /* wait until the stream knows its size */
        l = dt_command(&c, "{\"op\":\"list\"}\n", 5000);
        const cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(l, "streams"), 0);
        if (dt_num(s0, "frame", -1) >= 0)
            break;
        cJSON_Delete(l);
        l = NULL;
        tu_sleep_ms(100);
    }
    ck_assert_ptr_nonnull(l);
    cJSON_Delete(l);
    uint8_t mask[120 * 160] = {0};
    for (int y = 10; y < 30; y++)
        for (int x = 100; x < 130; x++)
            mask[y * 160 + x] = 1;
    char rle[4096], cmd[8192];
    size_t rl;
    ck_assert_int_eq(vt_rle_encode_string(mask, 120, 160, 160, rle, sizeof rle, &rl), 0);
    cJSON *js = cJSON_CreateString(rle);
    char *q = cJSON_PrintUnformatted(js);
    snprintf(cmd, sizeof cmd,
             "{\"op\":\"track\",\"id\":5,\"stream\":\"cam\",\"object\":9,\"label\":\"m\","
             "\"mask\":{\"size\":[120,160],\"counts\":%s}}\n",
             q);
    free(q);
    cJSON_Delete(js);
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    cJSON *r = dt_command(&c, cmd, 5000);
    ck_assert(dt_is_type(r, "reply"));
    ck_assert_int_eq((int)dt_num(r, "object", 0), 9);
    cJSON_Delete(r);
    cJSON *added = dt_wait_type(&c, "object", "event", "added", 5000);
    ck_assert_ptr_nonnull(added);
    ck_assert_int_eq((int)dt_num(added, "object", 0), 9);
    cJSON_Delete(added);
    /* the frame the object was added on carries exactly the given mask */
    cJSON *f = dt_wait_type(&c, "frame", NULL, NULL, 5000);
    ck_assert_ptr_nonnull(f);
    cJSON_Delete(f);
    expect_error(dt_command(&c,
                            "{\"op\":\"track\",\"stream\":\"cam\",\"object\":9,"
                            "\"box\":[1,1,5,5]}\n",
                            5000),
                 "conflict", "object");
    expect_error(dt_command(&c,
                            "{\"op\":\"track\",\"stream\":\"cam\",\"mask\":{\"size\":[3,4],"
                            "\"counts\":\"42102\"}}\n",
                            5000),
                 "bad_mask", "mask.size");
    expect_error(dt_command(&c,
                            "{\"op\":\"track\",\"stream\":\"cam\",\"frame\":0,"
                            "\"box\":[1,1,5,5]}\n",
                            5000),
                 "not_found", "frame");
    expect_error(dt_command(&c,
                            "{\"op\":\"track\",\"stream\":\"cam\","
                            "\"box\":[500,500,5,5]}\n",
                            5000),
                 "bad_mask", "box");
    /* shapes that touch the 160x120 frame but cover no pixel centre */
    expect_error(dt_command(&c,
                            "{\"op\":\"track\",\"stream\":\"cam\","
                            "\"box\":[159.9,119.9,0.05,0.05]}\n",
                            5000),
                 "bad_mask", "box");
    expect_error(dt_command(&c,
                            "{\"op\":\"track\",\"stream\":\"cam\","
                            "\"polygon\":[[0,0],[10,10],[20,20]]}\n",
                            5000),
                 "bad_mask", "polygon");
    /* a mask for a stream with no frame yet: nothing to check it against */
    expect_error(dt_command(&c,
                            "{\"op\":\"track\",\"stream\":\"down\",\"mask\":{\"size\":[4096,"
                            "4096],\"counts\":[0,16777216]}}\n",
                            5000),
                 "bad_mask", "mask");
    dt_expect_reply(dt_command(&c, "{\"op\":\"untrack\",\"stream\":\"cam\",\"object\":9}\n", 5000),
                    "untrack");
    cJSON *rem = dt_wait_type(&c, "object", "event", "removed", 5000);
    ck_assert_ptr_nonnull(rem);
    ck_assert_int_eq((int)dt_num(rem, "object", 0), 9);
    ck_assert_str_eq(dt_str(rem, "label"), "m");
    cJSON_Delete(rem);
    /* an object for a frame far ahead is listed as pending, and untrack removes it */
    dt_expect_reply(
        dt_command(&c,
                   "{\"op\":\"track\",\"stream\":\"cam\",\"object\":77,\"label\":\"later\","
                   "\"frame\":100000000,\"box\":[1,1,5,5]}\n",
                   5000),
        "track");
    cJSON *ls = dt_command(&c, "{\"op\":\"list\"}\n", 5000);
    const cJSON *objs = NULL, *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(
                               ls, "streams")) if (strcmp(dt_str(st, "stream"), "cam") == 0) objs =
        cJSON_GetObjectItemCaseSensitive(st, "objects");
    int pending = 0;
    const cJSON *ob;
    cJSON_ArrayForEach(ob, objs) if ((int)dt_num(ob, "id", 0) == 77) {
        ck_assert_str_eq(dt_str(ob, "state"), "pending");
        ck_assert_str_eq(dt_str(ob, "label"), "later");
        pending = 1;
    }
    cJSON_Delete(ls);
    ck_assert_msg(pending, "object 77 is not listed");
    dt_expect_reply(dt_command(&c, "{\"op\":\"untrack\",\"stream\":\"cam\",\"object\":77}\n", 5000),
                    "untrack");
    rem = dt_wait_type(&c, "object", "event", "removed", 5000);
    ck_assert_ptr_nonnull(rem);
    ck_assert_int_eq((int)dt_num(rem, "object", 0), 77);
    ck_assert_str_eq(dt_str(rem, "label"), "later");
    cJSON_Delete(rem);
    ck_assert(!c.seq_gap);

    /* a line over the limit: an error, then the connection closes; others carry on */
    dt_conn big, other;
    hello(&big, d.port);
    hello(&other, d.port);
    char *line = malloc(6000);
    memset(line, 'x', 5999);
    line[5999] = 0;
    dt_send(&big, "{\"op\":\"list\",\"pad\":\"");
    dt_send(&big, line);
    free(line);
    expect_error(dt_read_msg(&big, 5000), "line_too_long", NULL);
    ck_assert_int_eq(dt_wait_eof(&big, 5000), 1);
    dt_expect_reply(dt_command(&other, "{\"op\":\"list\"}\n", 5000), "list");
    dt_close(&big);
    dt_close(&other);
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

START_TEST(test_half_open_idle) {
    dt_daemon d;
    ck_assert_int_eq(
        dt_start(&d, cam_config("\"limits\":{\"idle_timeout_s\":1,\"line_timeout_s\":1}", NULL),
                 NULL),
        0);
    /* half-close after a last line without "\n": answered, then closed */
    dt_conn h;
    hello(&h, d.port);
    dt_send(&h, "{\"op\":\"list\",\"id\":1}");
    shutdown(h.fd, SHUT_WR);
    dt_expect_reply(dt_read_msg(&h, 5000), "list");
    ck_assert_int_eq(dt_wait_eof(&h, 5000), 1);
    dt_close(&h);
    /* a half-closed subscriber (`nc`-style) keeps getting events */
    dt_conn s;
    hello(&s, d.port);
    dt_send(&s, "{\"op\":\"subscribe\"}\n");
    shutdown(s.fd, SHUT_WR);
    for (int i = 0; i < 5; i++) {
        cJSON *f = dt_wait_type(&s, "frame", NULL, NULL, 5000);
        ck_assert_msg(f != NULL, "a half-closed subscriber got no events");
        cJSON_Delete(f);
    }
    /* silent client and half a line: a `limit` error and the door */
    dt_conn idle, partial;
    hello(&idle, d.port);
    hello(&partial, d.port);
    dt_send(&partial, "{\"op\":\"li");
    int64_t t0 = tu_now_ms();
    expect_error(dt_read_msg(&idle, 5000), "limit", NULL);
    ck_assert_int_eq(dt_wait_eof(&idle, 5000), 1);
    expect_error(dt_read_msg(&partial, 5000), "limit", NULL);
    ck_assert_int_eq(dt_wait_eof(&partial, 5000), 1);
    ck_assert_int_lt(tu_now_ms() - t0, 4000);
    /* the subscriber was not idle: still served */
    cJSON *f = dt_wait_type(&s, "frame", NULL, NULL, 5000);
    ck_assert_ptr_nonnull(f);
    cJSON_Delete(f);
    ck_assert(!s.seq_gap);
    dt_close(&idle);
    dt_close(&partial);
    dt_close(&s);
    stop_ok(&d);
}
END_TEST

START_TEST(test_many_clients) {
    enum { N = 200, LIMIT = 150 };
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cam_config("\"limits\":{\"clients\":150}", NULL), NULL), 0);
    dt_conn sub;
    hello(&sub, d.port);
    dt_expect_reply(dt_command(&sub, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    static dt_conn c[N];
    /* connect all at once, then read */
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(dt_connect(&c[i], d.port, 0), 0);
    int served = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        cJSON *h = dt_read_msg(&c[i], 10000);
        ck_assert_msg(dt_is_type(h, "hello"), "client %d: no greeting", i);
        cJSON_Delete(h);
        /* a refused client gets `limit` and is closed; a served one answers list */
        dt_send(&c[i], "{\"op\":\"list\"}\n");
        cJSON *a = dt_read_msg(&c[i], 10000);
        ck_assert_msg(a != NULL, "client %d: no answer", i);
        if (dt_is_type(a, "error")) {
            ck_assert_str_eq(dt_str(a, "code"), "limit");
            ck_assert_int_eq(dt_wait_eof(&c[i], 5000), 1);
            refused++;
        } else {
            ck_assert(dt_is_type(a, "reply"));
            served++;
        }
        cJSON_Delete(a);
    }
    ck_assert_int_eq(served, LIMIT - 1);
    ck_assert_int_eq(refused, N - LIMIT + 1);
    /* the subscriber kept receiving */
    for (int i = 0; i < 3; i++) {
        cJSON *f = dt_wait_type(&sub, "frame", NULL, NULL, 5000);
        ck_assert_ptr_nonnull(f);
        cJSON_Delete(f);
    }
    ck_assert(!sub.seq_gap);
    for (int i = 0; i < N; i++)
        dt_close(&c[i]);
    dt_close(&sub);
    stop_ok(&d);
}
END_TEST

START_TEST(test_auth) {
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cam_config("\"token\":\"s3cret\"", NULL), NULL), 0);
    dt_conn c;
    ck_assert_int_eq(dt_connect(&c, d.port, 0), 0);
    cJSON *h = dt_read_msg(&c, 5000);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "auth")));
    cJSON_Delete(h);
    expect_error(dt_command(&c, "{\"op\":\"list\"}\n", 5000), "unauthorized", NULL);
    expect_error(dt_command(&c, "{\"op\":\"hello\",\"token\":\"guess\"}\n", 5000), "unauthorized",
                 "token");
    dt_expect_reply(
        dt_command(&c, "{\"op\":\"hello\",\"token\":\"s3cret\",\"protocol\":1}\n", 5000), "hello");
    dt_expect_reply(dt_command(&c, "{\"op\":\"list\"}\n", 5000), "list");
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

/* Reload with `token` (NULL: none); the log must say `said`; `gone`, if given, is closed by it. */
static void reload_token(dt_daemon *d, const char *token, const char *said, dt_conn *gone) {
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"listen\":\"127.0.0.1:@PORT@\",\"model\":\"lab\"%s%s%s}",
             token ? ",\"token\":\"" : "", token ? token : "", token ? "\"" : "");
    ck_assert_int_eq(dt_rewrite_config(d, cfg), 0);
    kill(d->pid, SIGHUP);
    ck_assert(dt_wait_log(d, said, 5000));
    if (gone) {
        ck_assert_int_eq(dt_wait_eof(gone, 5000), 1);
        dt_close(gone);
    }
}

/* A reload that sets, changes or removes the token applies to the clients already connected:
 * authorised ones are disconnected when the token is set or changed; none needs one after it
 * is removed. */
START_TEST(test_sighup_token) {
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, "{\"listen\":\"127.0.0.1:@PORT@\",\"model\":\"lab\"}", NULL), 0);
    dt_conn open_c, early;
    hello(&open_c, d.port); /* authorised without a token */
    reload_token(&d, "a", "reload: token set: 1 authorised client disconnected", &open_c);

    dt_conn a, pre;
    ck_assert_int_eq(dt_connect(&a, d.port, 0), 0);
    cJSON_Delete(dt_read_msg(&a, 5000));
    dt_expect_reply(dt_command(&a, "{\"op\":\"hello\",\"token\":\"a\"}\n", 5000), "hello");
    ck_assert_int_eq(dt_connect(&pre, d.port, 0), 0); /* greeted, no hello yet */
    cJSON_Delete(dt_read_msg(&pre, 5000));
    reload_token(&d, "b", "reload: token changed: 1 authorised client disconnected", &a);
    expect_error(dt_command(&pre, "{\"op\":\"hello\",\"token\":\"a\"}\n", 5000), "unauthorized",
                 "token");
    dt_expect_reply(dt_command(&pre, "{\"op\":\"hello\",\"token\":\"b\"}\n", 5000), "hello");
    dt_expect_reply(dt_command(&pre, "{\"op\":\"list\"}\n", 5000), "list");

    ck_assert_int_eq(dt_connect(&early, d.port, 0), 0); /* connected under token b, no hello */
    cJSON_Delete(dt_read_msg(&early, 5000));
    expect_error(dt_command(&early, "{\"op\":\"list\"}\n", 5000), "unauthorized", NULL);
    reload_token(&d, NULL, "reload: token removed", NULL);
    dt_expect_reply(dt_command(&early, "{\"op\":\"list\"}\n", 5000), "list");
    dt_expect_reply(dt_command(&pre, "{\"op\":\"list\"}\n", 5000), "list");
    dt_close(&early);
    dt_close(&pre);
    stop_ok(&d);
}
END_TEST

/* Listening on IPv4 and IPv6 loopback at once: a client of each family is served. */
START_TEST(test_ipv6_listen) {
    dt_daemon d;
    ck_assert_int_eq(
        dt_start(&d, "{\"listen\":[\"127.0.0.1:@PORT@\",\"[::1]:@PORT@\"],\"model\":\"lab\"}",
                 NULL),
        0);
    dt_conn c4, c6;
    ck_assert_int_eq(dt_connect(&c4, d.port, 0), 0);
    ck_assert_int_eq(dt_connect6(&c6, d.port), 0);
    dt_expect_reply(dt_command(&c6, "{\"op\":\"list\"}\n", 5000), "list");
    dt_expect_reply(dt_command(&c4, "{\"op\":\"list\"}\n", 5000), "list");
    dt_close(&c4);
    dt_close(&c6);
    stop_ok(&d);
}
END_TEST

START_TEST(test_add_remove_stream) {
    char extra[256];
    snprintf(extra, sizeof extra, "\"clients\":{\"allow_add_streams\":true}");
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cam_config(extra, NULL), NULL), 0);
    dt_conn c;
    hello(&c, d.port);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "{\"op\":\"add_stream\",\"stream\":\"f2\",\"url\":\"%s\"}\n",
             video());
    expect_error(dt_command(&c, cmd, 5000), "forbidden", "url"); /* no local files for clients */
    int dead = tu_free_port();
    snprintf(cmd, sizeof cmd,
             "{\"op\":\"add_stream\",\"id\":3,\"stream\":\"net\",\"url\":"
             "\"rtsp://127.0.0.1:%d/none\",\"options\":{\"rtsp_flags\":\"prefer_tcp\"}}\n",
             dead);
    dt_expect_reply(dt_command(&c, cmd, 5000), "add_stream");
    expect_error(dt_command(&c, cmd, 5000), "conflict", "stream");
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\",\"streams\":[\"net\"]}\n", 5000),
                    "subscribe");
    cJSON *l = dt_command(&c, "{\"op\":\"list\"}\n", 5000);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(l, "streams")), 2);
    cJSON_Delete(l);
    dt_expect_reply(dt_command(&c, "{\"op\":\"remove_stream\",\"stream\":\"net\"}\n", 5000),
                    "remove_stream");
    cJSON *e = dt_wait_type(&c, "stream", "state", "ended", 5000);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(dt_str(e, "stream"), "net");
    ck_assert_str_eq(dt_str(e, "reason"), "removed");
    cJSON_Delete(e);
    expect_error(dt_command(&c, "{\"op\":\"remove_stream\",\"stream\":\"net\"}\n", 5000),
                 "not_found", "stream");
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

/*
 * A stream that has ended (a lossless file read to its end) runs no command any more: each is
 * answered at once. Forty track/untrack rounds (the way a client script found this) are all
 * refused with the reason and leave the object count alone; an untrack of the object the stream
 * still lists is applied then and there, and `list` agrees.
 */
START_TEST(test_ended_stream_commands) {
    char more[1024];
    snprintf(more, sizeof more,
             ",{\"name\":\"once\",\"url\":\"%s\",\"pacing\":\"lossless\",\"objects\":"
             "[{\"id\":1,\"box\":[40,30,40,40]}]}",
             video());
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cam_config("", more), NULL), 0);
    dt_conn c;
    hello(&c, d.port);
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\",\"streams\":[\"once\"]}\n", 5000),
                    "subscribe");
    cJSON *e = dt_wait_type(&c, "stream", "state", "ended", 60000);
    ck_assert_msg(e != NULL, "the file stream did not end");
    cJSON_Delete(e);
    for (int round = 0; round < 40; round++) {
        cJSON *r =
            dt_command(&c, "{\"op\":\"track\",\"stream\":\"once\",\"box\":[10,10,20,20]}\n", 5000);
        ck_assert_msg(r && strstr(dt_str(r, "message") ? dt_str(r, "message") : "", "ended"),
                      "round %d: %s", round, r ? cJSON_PrintUnformatted(r) : "nothing");
        expect_error(r, "not_found", "stream");
        expect_error(
            dt_command(&c, "{\"op\":\"untrack\",\"stream\":\"once\",\"object\":2}\n", 5000),
            "not_found", "object");
    }
    dt_expect_reply(dt_command(&c, "{\"op\":\"untrack\",\"stream\":\"once\",\"object\":1}\n", 5000),
                    "untrack");
    e = dt_wait_type(&c, "object", "event", "removed", 5000);
    ck_assert_msg(e != NULL, "no removed event");
    ck_assert_int_eq((int)dt_num(e, "object", 0), 1);
    ck_assert_str_eq(dt_str(e, "reason"), "untrack");
    cJSON_Delete(e);
    cJSON *l = dt_command(&c, "{\"op\":\"list\"}\n", 5000);
    ck_assert(dt_is_type(l, "reply"));
    const cJSON *s0 = NULL, *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(
                               l, "streams")) if (strcmp(dt_str(it, "stream"), "once") == 0) s0 =
        it;
    ck_assert_ptr_nonnull(s0);
    ck_assert_str_eq(dt_str(s0, "state"), "ended");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s0, "objects")), 0);
    cJSON_Delete(l);
    expect_error(dt_command(&c, "{\"op\":\"untrack\",\"stream\":\"once\",\"object\":1}\n", 5000),
                 "not_found", "object");
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

/* limits.streams counts client-added streams at a reload too: a configuration that would
 * pass it is not applied to the streams. */
START_TEST(test_reload_stream_limit) {
    const char *extra = "\"clients\":{\"allow_add_streams\":true},\"limits\":{\"streams\":2}";
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cam_config(extra, NULL), NULL), 0);
    dt_conn c;
    hello(&c, d.port);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "{\"op\":\"add_stream\",\"stream\":\"net\",\"url\":\"rtsp://127.0.0.1:%d/none\"}\n",
             tu_free_port());
    dt_expect_reply(dt_command(&c, cmd, 5000), "add_stream");
    char more[1024];
    snprintf(more, sizeof more, ",{\"name\":\"cam2\",\"url\":\"%s\"}", video());
    ck_assert_int_eq(dt_rewrite_config(&d, cam_config(extra, more)), 0);
    kill(d.pid, SIGHUP);
    ck_assert(dt_wait_log(&d, "exceed limits.streams (2)", 5000));
    cJSON *l = dt_command(&c, "{\"op\":\"list\"}\n", 5000);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(l, "streams")), 2);
    cJSON_Delete(l);
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Signals and the service manager
 * ------------------------------------------------------------------------------------------- */

/* Wait for a frame event of `stream`. */
static void expect_frame(dt_conn *c, const char *stream, int timeout_ms) {
    cJSON *f = dt_wait_type(c, "frame", "stream", stream, timeout_ms);
    ck_assert_msg(f != NULL, "no frame of stream %s", stream);
    cJSON_Delete(f);
}

/* Wait for `stream` to end, for `reason` (NULL: any). */
static void expect_ended(dt_conn *c, const char *stream, const char *reason, int timeout_ms) {
    cJSON *e = dt_wait_type(c, "stream", "stream", stream, timeout_ms);
    ck_assert_msg(e != NULL, "no state event of stream %s", stream);
    ck_assert_str_eq(dt_str(e, "state"), "ended");
    if (reason)
        ck_assert_str_eq(dt_str(e, "reason"), reason);
    cJSON_Delete(e);
}

START_TEST(test_sighup_reload) {
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cam_config("", NULL), NULL), 0);
    dt_conn c;
    hello(&c, d.port);
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    expect_frame(&c, "cam", 5000);
    /* cam removed, two added */
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"listen\":\"127.0.0.1:@PORT@\"," LAB ",\"streams\":[{\"name\":\"b\",\"url\":"
             "\"%s\",\"pacing\":\"camera\"},{\"name\":\"c\",\"url\":\"%s\",\"pacing\":\"camera\"}"
             "]}",
             video(), video());
    ck_assert_int_eq(dt_rewrite_config(&d, cfg), 0);
    kill(d.pid, SIGHUP);
    expect_ended(&c, "cam", "removed from the configuration", 5000);
    expect_frame(&c, "b", 5000);
    /* c unchanged across a reload that only removes b */
    snprintf(cfg, sizeof cfg,
             "{\"listen\":\"127.0.0.1:@PORT@\"," LAB ",\"streams\":[{\"name\":\"c\",\"url\":\"%s\","
             "\"pacing\":\"camera\"}]}",
             video());
    cJSON *lb = dt_command(&c, "{\"op\":\"list\"}\n", 5000);
    const cJSON *cs = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(lb, "streams"), 1);
    ck_assert_str_eq(dt_str(cs, "stream"), "c");
    double frame_before = dt_num(cs, "frame", -1);
    cJSON_Delete(lb);
    ck_assert_int_eq(dt_rewrite_config(&d, cfg), 0);
    kill(d.pid, SIGHUP);
    expect_ended(&c, "b", NULL, 5000);
    cJSON *la = dt_command(&c, "{\"op\":\"list\"}\n", 5000);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(la, "streams")), 1);
    cs = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(la, "streams"), 0);
    ck_assert_double_ge(dt_num(cs, "frame", -1), frame_before); /* not restarted */
    cJSON_Delete(la);
    /* a bad configuration is logged and ignored */
    ck_assert_int_eq(dt_rewrite_config(&d, "{\"streams\":[{\"name\":\"c\"}]}"), 0);
    kill(d.pid, SIGHUP);
    tu_sleep_ms(500);
    expect_frame(&c, "c", 5000);
    ck_assert(dt_log_has(&d, "streams[0].url: missing"));
    ck_assert(dt_log_has(&d, "keeping the running configuration"));
    ck_assert(!c.seq_gap);
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

/* SIGHUP naming another model: it is loaded off the loop, the configured stream restarts with
 * it (its subscribers see `ended`, reason "model changed", then frames again), a stream a client
 * added keeps running; a model that does not load is logged and the running one kept. */
START_TEST(test_sighup_model) {
    char weights[4096];
    snprintf(weights, sizeof weights, "%s/weights/default.safetensors", getenv("VT_SOURCE_ROOT"));
    ck_assert_msg(access(weights, R_OK) == 0, "%s: the shipped weights are missing", weights);
    const char *allow = "\"clients\":{\"allow_add_streams\":true}";
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cam_config(allow, NULL), NULL), 0);
    dt_conn c;
    hello(&c, d.port);
    char cmd[1024];
    int dead = tu_free_port();
    snprintf(cmd, sizeof cmd,
             "{\"op\":\"add_stream\",\"stream\":\"net\",\"url\":\"rtsp://127.0.0.1:%d/none\"}\n",
             dead);
    dt_expect_reply(dt_command(&c, cmd, 5000), "add_stream");
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    expect_frame(&c, "cam", 5000);

    /* the same configuration with the trained weights instead of lab */
    char *cfg = strdup(cam_config(allow, NULL)), *at = strstr(cfg, "\"model\":\"lab\"");
    ck_assert_ptr_nonnull(at);
    char buf[16384];
    snprintf(buf, sizeof buf, "%.*s\"model\":\"%s\"%s", (int)(at - cfg), cfg, weights,
             at + strlen("\"model\":\"lab\""));
    ck_assert_int_eq(dt_rewrite_config(&d, buf), 0);
    kill(d.pid, SIGHUP);
    expect_ended(&c, "cam", "model changed", 10000);
    expect_frame(&c, "cam", 10000);
    ck_assert(dt_log_has(&d, "compact-s8"));
    cJSON *l = dt_command(&c, "{\"op\":\"list\"}\n", 5000);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(l, "streams")), 2);
    cJSON_Delete(l);

    /* a model that does not load: logged, nothing restarts */
    snprintf(buf, sizeof buf, "%.*s\"model\":\"%s.missing\"%s", (int)(at - cfg), cfg, weights,
             at + strlen("\"model\":\"lab\""));
    ck_assert_int_eq(dt_rewrite_config(&d, buf), 0);
    kill(d.pid, SIGHUP);
    dt_wait_log(&d, "reload: model:", 5000);
    ck_assert(dt_log_has(&d, "keeping"));
    expect_frame(&c, "cam", 5000);
    ck_assert(!c.seq_gap);
    free(cfg);
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

/* 1 once nothing accepts on 127.0.0.1:port (within timeout_ms). */
static int refused(int port, int timeout_ms) {
    int64_t end = tu_now_ms() + timeout_ms;
    do {
        dt_conn o;
        if (dt_connect(&o, port, 0) < 0)
            return 1;
        dt_close(&o);
        tu_sleep_ms(20);
    } while (tu_now_ms() < end);
    return 0;
}

/* SIGHUP with other listen addresses: the new one accepts, the old one no longer does, a client
 * connected before is still served; when one address cannot be bound, the running ones stay. */
START_TEST(test_sighup_listen) {
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, "{\"listen\":\"127.0.0.1:@PORT@\",\"model\":\"lab\"}", NULL), 0);
    dt_conn c;
    hello(&c, d.port);
    int p2 = tu_free_port();
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"listen\":\"127.0.0.1:%d\",\"model\":\"lab\"}", p2);
    ck_assert_int_eq(dt_rewrite_config(&d, cfg), 0);
    kill(d.pid, SIGHUP);
    ck_assert_msg(tu_wait_port(p2, 5000) == 0, "the new address does not accept");
    ck_assert_msg(refused(d.port, 5000), "the old address still accepts");
    dt_expect_reply(dt_command(&c, "{\"op\":\"list\"}\n", 5000), "list");

    /* p4 is free, p3 is taken by this test: the reload binds p4, fails on p3, closes p4 again
     * and keeps p2 */
    int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), p3 = tu_free_port();
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p3)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(busy, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(busy, 1), 0);
    int p4 = tu_free_port();
    snprintf(cfg, sizeof cfg, "{\"listen\":[\"127.0.0.1:%d\",\"127.0.0.1:%d\"],\"model\":\"lab\"}",
             p4, p3);
    ck_assert_int_eq(dt_rewrite_config(&d, cfg), 0);
    kill(d.pid, SIGHUP);
    ck_assert(dt_wait_log(&d, "keeping the running addresses", 5000));
    ck_assert_msg(refused(p4, 2000), "a half-applied address accepts");
    ck_assert_int_eq(tu_wait_port(p2, 1000), 0);
    close(busy);
    dt_expect_reply(dt_command(&c, "{\"op\":\"list\"}\n", 5000), "list");
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

START_TEST(test_sigterm) {
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cam_config("", NULL), NULL), 0);
    dt_conn c;
    hello(&c, d.port);
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    cJSON *f = dt_wait_type(&c, "frame", NULL, NULL, 5000);
    ck_assert_ptr_nonnull(f);
    cJSON_Delete(f);
    kill(d.pid, SIGTERM);
    /* subscribers hear the end of the objects and of the stream, then EOF */
    cJSON *rem = dt_wait_type(&c, "object", "event", "removed", 5000);
    ck_assert_ptr_nonnull(rem);
    ck_assert_str_eq(dt_str(rem, "reason"), "stream removed");
    cJSON_Delete(rem);
    cJSON *e = dt_wait_type(&c, "stream", "state", "ended", 5000);
    ck_assert_ptr_nonnull(e);
    cJSON_Delete(e);
    ck_assert_int_eq(dt_wait_eof(&c, 5000), 1);
    ck_assert(!c.seq_gap);
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

START_TEST(test_config_error) {
    dt_daemon d;
    ck_assert_int_ne(
        dt_start(&d, "{\"listen\":\"127.0.0.1:@PORT@\",\"limits\":{\"clients\":-1}}", NULL), 0);
    ck_assert(dt_log_has(&d, "limits.clients: must be an integer"));
    /* the exit status: run it again and wait */
    char *argv[] = {(char *)dt_build_path("daemon/vtrackd"), "--config", d.config, NULL};
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(nul, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 78);
    /* a stream URL the codec refuses is a configuration error too */
    ck_assert_int_ne(dt_start(&d,
                              "{\"listen\":\"127.0.0.1:@PORT@\",\"model\":\"lab\",\"streams\":"
                              "[{\"name\":\"a\",\"url\":\"gopher://x\"}]}",
                              NULL),
                     0);
    ck_assert(dt_log_has(&d, "streams[0] (a)"));
}
END_TEST

/* A unix datagram socket standing in for systemd's notify socket. */
static int notify_socket(char *path, size_t len) {
    snprintf(path, len, "%s/notify-%d", tu_dir(), (int)getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    ck_assert_uint_lt(strlen(path), sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Collect notifications for up to ms; stops early once `until` was seen. */
static int notify_read(int fd, char *all, size_t cap, int ms, const char *until) {
    int64_t end = tu_now_ms() + ms;
    size_t n = strlen(all);
    while (tu_now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        char msg[512];
        ssize_t r = recv(fd, msg, sizeof msg - 1, 0);
        if (r <= 0)
            continue;
        msg[r] = 0;
        n += (size_t)snprintf(all + n, cap > n ? cap - n : 0, "%s\n", msg);
        if (until && strstr(msg, until))
            return 1;
    }
    return 0;
}

START_TEST(test_sd_notify) {
    char path[256], env1[300];
    int fd = notify_socket(path, sizeof path);
    snprintf(env1, sizeof env1, "NOTIFY_SOCKET=%s", path);
    char *env[] = {env1, "WATCHDOG_USEC=400000", NULL};
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cam_config("", NULL), env), 0);
    static char all[65536];
    all[0] = 0;
    ck_assert_msg(notify_read(fd, all, sizeof all, 5000, "READY=1"), "no READY=1: %s", all);
    /* the stream comes up: STATUS says so; the watchdog is pinged every ~200 ms */
    notify_read(fd, all, sizeof all, 1500, NULL);
    ck_assert_msg(strstr(all, "STATUS=1/1 streams up"), "STATUS: %s", all);
    int pings = 0;
    for (const char *p = all; (p = strstr(p, "WATCHDOG=1")); p++)
        pings++;
    ck_assert_msg(pings >= 4, "%d watchdog pings in 1.5 s", pings);
    dt_conn c;
    hello(&c, d.port);
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    all[0] = 0;
    ck_assert_msg(notify_read(fd, all, sizeof all, 3000, "1 subscriber"), "%s", all);
    dt_close(&c);
    kill(d.pid, SIGHUP);
    all[0] = 0;
    ck_assert_msg(notify_read(fd, all, sizeof all, 3000, "READY=1"), "reload: %s", all);
    ck_assert_ptr_nonnull(strstr(all, "RELOADING=1"));
    all[0] = 0;
    kill(d.pid, SIGTERM);
    ck_assert_msg(notify_read(fd, all, sizeof all, 5000, "STOPPING=1"), "%s", all);
    stop_ok(&d);
    close(fd);
    unlink(path);
}
END_TEST

/* Socket activation: the daemon serves on the socket it was handed as fd 3. */
START_TEST(test_socket_activation) {
    /* systemd's part: bind, listen, pass as fd 3 with LISTEN_FDS/LISTEN_PID */
    int port = tu_free_port();
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(ls, 16), 0);
    char cfgpath[512];
    snprintf(cfgpath, sizeof cfgpath, "%s/act.json", tu_dir());
    const char *cfg = "{\"listen\":\"127.0.0.1:1\",\"model\":\"lab\"}"; /* not used */
    tu_write_file(cfgpath, cfg, strlen(cfg));
    char logpath[512];
    snprintf(logpath, sizeof logpath, "%s/act.log", tu_dir());
    pid_t pid = dt_fork();
    if (pid == 0) {
        dup2(ls, 3);
        char lp[32];
        snprintf(lp, sizeof lp, "%d", (int)getpid());
        setenv("LISTEN_PID", lp, 1);
        setenv("LISTEN_FDS", "1", 1);
        int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(log, 2);
        execl(dt_build_path("daemon/vtrackd"), "vtrackd", "--config", cfgpath, (char *)NULL);
        _exit(127);
    }
    close(ls);
    dt_conn c;
    ck_assert_int_eq(dt_connect(&c, port, 0), 0);
    cJSON *h = dt_read_msg(&c, 10000);
    ck_assert_msg(dt_is_type(h, "hello"), "no greeting on the activated socket");
    cJSON_Delete(h);
    dt_expect_reply(dt_command(&c, "{\"op\":\"stats\"}\n", 5000), "stats");
    dt_close(&c);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Slow: flow control and latency, RTSP outage
 * ------------------------------------------------------------------------------------------- */

/* Frame-event latency (client receipt - frame decode wallclock) over `ms` on `c`. */
static int collect_latency(dt_conn *c, int ms, double *lat, int cap) {
    int n = 0;
    int64_t end = tu_now_ms() + ms;
    while (tu_now_ms() < end && n < cap) {
        char *line;
        int rc = dt_read_line(c, (int)(end - tu_now_ms()), &line);
        if (rc != 1)
            break;
        int64_t now = dt_realtime_ms();
        if (!strstr(line, "\"type\":\"frame\""))
            continue;
        const char *w = strstr(line, "\"wallclock\":\"");
        ck_assert_ptr_nonnull(w);
        lat[n++] = (double)(now - dt_parse_wallclock_ms(w + 13));
    }
    return n;
}

START_TEST(test_slow_subscribers) {
    /* Small queues so that the limits are reached in seconds: a 320x240 stream at 50 fps with
     * masks. */
    const char *v = dt_video("v320.mp4", 320, 240, 250, 50);
    ck_assert_ptr_nonnull(v);
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"listen\":\"127.0.0.1:@PORT@\"," LAB ",\"limits\":{\"soft_queue_bytes\":16384,"
             "\"hard_queue_bytes\":131072,\"send_buffer_bytes\":8192},\"streams\":[{\"name\":"
             "\"cam\",\"url\":\"%s\","
             "\"pacing\":\"camera\",\"objects\":[{\"box\":[20,20,100,80]},{\"box\":[160,100,"
             "120,100]},{\"box\":[50,150,60,60]}]}]}",
             v);
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cfg, NULL), 0);
    dt_conn fast;
    hello(&fast, d.port);
    dt_expect_reply(dt_command(&fast, "{\"op\":\"subscribe\",\"masks\":true}\n", 5000),
                    "subscribe");
    static double base[4096], loaded[4096];
    collect_latency(&fast, 1000, base, 4096); /* warm-up */
    int nb = collect_latency(&fast, 4000, base, 4096);
    /* enough frames for a p95 (200 at 50 fps; a loaded machine's tracker gives fewer: this is
     * not a speed test) */
    ck_assert_int_gt(nb, 20);

    /* A client that never reads, and one that reads a little every 100 ms. Small receive
     * buffers so that the kernel does not absorb megabytes first. */
    dt_conn dead, slow;
    ck_assert_int_eq(dt_connect(&dead, d.port, 4096), 0);
    ck_assert_int_eq(dt_connect(&slow, d.port, 4096), 0);
    dt_send(&dead, "{\"op\":\"subscribe\",\"masks\":true}\n");
    dt_send(&slow, "{\"op\":\"subscribe\",\"masks\":true}\n");
    int nl = 0, dropped_seen = 0;
    int64_t end = tu_now_ms() + 5000;
    while (tu_now_ms() < end && nl < 4096) {
        nl += collect_latency(&fast, 100, loaded + nl, 4096 - nl);
        /* the slow one: at most 4 KiB per 100 ms */
        struct pollfd p = {slow.fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0) {
            char buf[4096];
            ssize_t r = recv(slow.fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r > 0 && memmem(buf, (size_t)r, "\"type\":\"dropped\"", 16))
                dropped_seen = 1;
        }
    }
    double p95b = dt_quantile(base, nb, 0.95), p95l = dt_quantile(loaded, nl, 0.95);
    fprintf(stderr,
            "fast subscriber latency p95: %.1f ms alone, %.1f ms with a slow and a dead "
            "one (%d / %d frames)\n",
            p95b, p95l, nb, nl);
    ck_assert_int_gt(nl, 20);
    /* Held behind the others, the fast subscriber would fall behind by up to a hard queue's
     * worth of frames (seconds); on its own it stays within a few frame periods. The bound is 3
     * periods of this 50 fps stream (60 ms): the suite runs tests in parallel on a machine whose
     * load varies, and 10 ms proved too tight for that (32 -> 50 ms once, with nothing held). */
    ck_assert_msg(p95l - p95b <= 60.0, "p95 latency grew from %.1f to %.1f ms", p95b, p95l);
    ck_assert(!fast.seq_gap);

    /* the slow reader got `dropped` notices (seen raw above, or when it reads the rest now) */
    cJSON *st = dt_command(&fast, "{\"op\":\"stats\"}\n", 5000);
    int clients = (int)dt_num(cJSON_GetObjectItemCaseSensitive(st, "stats"), "clients", 0);
    cJSON_Delete(st);
    ck_assert_msg(clients == 2, "%d clients: the one that never reads should be gone", clients);
    ck_assert(dt_log_has(&d, "fell behind by more than limits.hard_queue_bytes"));
    /* the dead one: what the kernel held, then EOF */
    ck_assert_int_eq(dt_wait_eof(&dead, 5000), 1);
    ck_assert(!dead.seq_gap);
    /* the slow one, read fully now: dropped notices, and still no seq gap */
    int64_t e2 = tu_now_ms() + 2000;
    while (tu_now_ms() < e2 && !dropped_seen) {
        cJSON *m = dt_read_msg(&slow, 500);
        if (!m)
            break;
        if (dt_is_type(m, "dropped")) {
            ck_assert_int_gt((int)dt_num(m, "count", 0), 0);
            dropped_seen = 1;
        }
        cJSON_Delete(m);
    }
    ck_assert_msg(dropped_seen, "the slow subscriber never got `dropped`");
    dt_close(&dead);
    dt_close(&slow);
    dt_close(&fast);
    stop_ok(&d);
}
END_TEST

/* A client closed while an event is being sent to every subscriber (here: the one that never
 * reads, at the hard limit) must not cost the others that event. Clients are kept newest first,
 * so the closed one sits before the reader in the list. Lossless pacing: every frame number
 * must reach the reader. */
START_TEST(test_close_during_send) {
    const char *v = dt_video("v320b.mp4", 320, 240, 300, 25);
    ck_assert_ptr_nonnull(v);
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"listen\":\"127.0.0.1:@PORT@\"," LAB ",\"limits\":{\"soft_queue_bytes\":8192,"
             "\"hard_queue_bytes\":32768,\"send_buffer_bytes\":8192},\"streams\":[{\"name\":"
             "\"cam\",\"url\":\"%s\",\"pacing\":\"lossless\",\"objects\":[{\"box\":[20,20,"
             "100,80]},{\"box\":[160,100,120,100]}]}]}",
             v);
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cfg, NULL), 0);
    dt_conn reader, dead;
    hello(&reader, d.port);
    dt_expect_reply(dt_command(&reader, "{\"op\":\"subscribe\",\"masks\":true}\n", 5000),
                    "subscribe");
    ck_assert_int_eq(dt_connect(&dead, d.port, 4096), 0);
    dt_send(&dead, "{\"op\":\"subscribe\",\"masks\":true}\n");
    int64_t last = -1;
    int missing = 0, frames = 0;
    for (;;) {
        cJSON *m = dt_read_msg(&reader, 10000);
        ck_assert_msg(m != NULL, "the stream stopped without `ended`");
        if (dt_is_type(m, "stream") && strcmp(dt_str(m, "state"), "ended") == 0) {
            cJSON_Delete(m);
            break;
        }
        if (dt_is_type(m, "frame")) {
            int64_t f = (int64_t)dt_num(m, "frame", -1);
            if (last >= 0 && f != last + 1) {
                fprintf(stderr, "reader: frame %lld after %lld\n", (long long)f, (long long)last);
                missing += (int)(f - last - 1);
            }
            last = f;
            frames++;
        }
        cJSON_Delete(m);
    }
    ck_assert(dt_log_has(&d, "fell behind by more than limits.hard_queue_bytes"));
    ck_assert_msg(missing == 0, "the reader missed %d frame events (of %d)", missing, frames);
    ck_assert_int_ge(frames, 290);
    ck_assert(!reader.seq_gap);
    dt_close(&dead);
    dt_close(&reader);
    stop_ok(&d);
}
END_TEST

START_TEST(test_rtsp_restart) {
    int rport = rtsp_start(0);
    ck_assert_msg(rport > 0, "the RTSP server did not start"); /* main saw it start */
    char more[512];
    snprintf(more, sizeof more,
             ",{\"name\":\"live\",\"url\":\"rtsp://127.0.0.1:%d/test\",\"read_timeout_s\":1,"
             "\"stall_timeout_s\":1,\"connect_timeout_s\":1,\"backoff_min_s\":0.2,"
             "\"backoff_max_s\":0.5,\"objects\":[{\"id\":3,\"label\":\"ball\",\"box\":"
             "[60,40,40,40]}]}",
             rport);
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, cam_config("", more), NULL), 0);
    dt_conn c;
    hello(&c, d.port);
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    cJSON *f = dt_wait_type(&c, "frame", "stream", "live", 15000);
    ck_assert_msg(f != NULL, "no frames from the RTSP stream");
    cJSON_Delete(f);

    rtsp_kill();
    /* the live stream reports trouble; the file stream keeps going meanwhile */
    int cam_frames = 0, trouble = 0;
    int64_t end = tu_now_ms() + 8000;
    while (tu_now_ms() < end && !(trouble && cam_frames > 25)) {
        cJSON *m = dt_read_msg(&c, 1000);
        if (!m)
            continue;
        const char *s = dt_str(m, "stream");
        if (dt_is_type(m, "frame") && s && strcmp(s, "cam") == 0)
            cam_frames++;
        if (dt_is_type(m, "stream") && s && strcmp(s, "live") == 0) {
            const char *state = dt_str(m, "state");
            ck_assert_str_ne(state, "ended");
            trouble |= strcmp(state, "stalled") == 0 || strcmp(state, "reconnecting") == 0;
        }
        cJSON_Delete(m);
    }
    ck_assert_msg(trouble, "no stalled/reconnecting state for the dead RTSP stream");
    ck_assert_msg(cam_frames > 25, "the file stream stalled too (%d frames)", cam_frames);

    ck_assert_int_eq(rtsp_start(rport), rport);
    cJSON *up = dt_wait_type(&c, "stream", "state", "up", 15000);
    ck_assert_msg(up != NULL, "the RTSP stream did not come back");
    ck_assert_str_eq(dt_str(up, "stream"), "live");
    cJSON_Delete(up);
    /* tracking resumes: frames of the live stream with its object */
    f = dt_wait_type(&c, "frame", "stream", "live", 10000);
    ck_assert_ptr_nonnull(f);
    const cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(f, "objects"), 0);
    ck_assert_int_eq((int)dt_num(o, "id", 0), 3);
    cJSON_Delete(f);
    cJSON *st = dt_command(&c, "{\"op\":\"stats\"}\n", 5000);
    const cJSON *ss = cJSON_GetArrayItem(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "stats"), "streams"),
        1);
    ck_assert_int_ge((int)dt_num(ss, "reconnects", 0), 1);
    cJSON_Delete(st);
    ck_assert(!c.seq_gap);
    dt_close(&c);
    stop_ok(&d);
    rtsp_kill();
}
END_TEST

static Suite *integration_suite(void) {
    Suite *s = suite_create("daemon");
    tm_add_case(s, "events", 60, test_file_events, NULL);
    tm_add_case(s, "clients", 60, test_bad_commands, test_half_open_idle, test_many_clients,
                test_auth, test_add_remove_stream, test_ended_stream_commands, NULL);
    tm_add_case(s, "fanout", 60, test_close_during_send, NULL);
    tm_add_case(s, "service", 60, test_sighup_reload, test_sighup_listen, test_sighup_model,
                test_sighup_token, test_reload_stream_limit, test_sigterm, test_config_error,
                test_sd_notify, test_socket_activation, NULL);
    return s;
}

static Suite *slow_suite(void) {
    Suite *s = suite_create("daemon-slow");
    tm_add_case(s, "slow", 90, test_slow_subscribers, NULL);
    return s;
}

/* What needs more than this machine may have: a suite each, run only where main finds the
 * RTSP server (GStreamer through python3-gi) or an IPv6 loopback, and else reported skipped. */
static Suite *rtsp_suite(void) {
    Suite *s = suite_create("daemon-rtsp");
    tm_add_case(s, "rtsp", 90, test_rtsp_events, test_rtsp_restart, NULL);
    return s;
}

static Suite *ipv6_suite(void) {
    Suite *s = suite_create("daemon-ipv6");
    tm_add_case(s, "ipv6", 60, test_ipv6_listen, NULL);
    return s;
}

static int have_rtsp(void) {
    if (rtsp_start(0) <= 0)
        return 0;
    rtsp_kill();
    return 1;
}

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "all";
    int all = strcmp(which, "all") == 0;
    int integration = all || strcmp(which, "integration") == 0;
    int slow = all || strcmp(which, "slow") == 0;
    int rtsp = all || strcmp(which, "rtsp") == 0;
    int ipv6 = all || strcmp(which, "ipv6") == 0;
    if (!integration && !slow && !rtsp && !ipv6) {
        fprintf(stderr, "usage: %s [integration|slow|rtsp|ipv6|all]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (rtsp && !have_rtsp()) {
        fprintf(stderr, "test_daemon: the GStreamer RTSP server (python3-gi, "
                        "gir1.2-gst-rtsp-server-1.0) cannot run: its tests are skipped\n");
        rtsp = 0;
    }
    if (ipv6 && !dt_have_ipv6_loopback()) {
        fprintf(stderr, "test_daemon: this machine cannot bind [::1]: its test is skipped\n");
        ipv6 = 0;
    }
    if (!all && !integration && !slow && !rtsp && !ipv6) {
        tu_cleanup();
        return 77;
    }
    Suite *suites[] = {integration ? integration_suite() : NULL, slow ? slow_suite() : NULL,
                       rtsp ? rtsp_suite() : NULL, ipv6 ? ipv6_suite() : NULL};
    int status = tm_run_suites(suites, TM_LEN(suites));
    tu_cleanup();
    return status;
}
