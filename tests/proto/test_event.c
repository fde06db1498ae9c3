/*
 * The writers: each message's tail, prefixed with a seq, must be one line that passes the
 * documented schema and parses back to the values that went in (checked field by field with
 * cJSON, an independent parser); the frame tail is shareable across seqs and allocation-free once
 * warm; ids come back byte for byte.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_test.h"
#include "vt_proto.h"

/* prefix(seq) + tail -> checked against the schema -> parsed tree (caller deletes). */
static cJSON *line_of(const vt_proto_buf *b, uint64_t seq, char *out, size_t cap) {
    char prefix[VT_PROTO_SEQ_PREFIX_MAX];
    size_t pl = vt_proto_seq_prefix(prefix, seq);
    ck_assert_uint_lt(pl, VT_PROTO_SEQ_PREFIX_MAX);
    ck_assert_uint_gt(b->len, 1);
    ck_assert_int_eq(b->data[b->len - 1], '\n');
    ck_assert_ptr_null(memchr(b->data, '\n', b->len - 1));
    ck_assert_uint_lt(pl + b->len, cap);
    memcpy(out, prefix, pl);
    memcpy(out + pl, b->data, b->len);
    out[pl + b->len - 1] = '\0'; /* drop the newline */
    char why[256];
    ck_assert_msg(check_server_line(out, strlen(out), why, sizeof why) == 0, "%s: %s", why, out);
    cJSON *o = cJSON_Parse(out);
    ck_assert_ptr_nonnull(o);
    ck_assert_double_eq(cJSON_GetObjectItem(o, "seq")->valuedouble, (double)seq);
    return o;
}

/* The line in b is valid (line_of) and, with its seq prefix, exactly `want`. */
/* The one line in b is `want` (with sequence number seq); b is emptied for the next one. */
static void expect_line(vt_proto_buf *b, uint64_t seq, const char *want) {
    char line[4096];
    cJSON_Delete(line_of(b, seq, line, sizeof line));
    ck_assert_str_eq(line, want);
    b->len = 0;
}

/* A writer's status rc: 0 with the line `want` in b, or (want NULL) -EINVAL, a message missing a
 * required member. b is emptied either way. */
static void expect_written(vt_proto_buf *b, int rc, uint64_t seq, const char *want) {
    ck_assert_int_eq(rc, want ? 0 : -EINVAL);
    if (want)
        expect_line(b, seq, want);
    b->len = 0;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    ck_assert_msg(cJSON_IsString(it), "%s is not a string", k);
    return it->valuestring;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    ck_assert_msg(cJSON_IsNumber(it), "%s is not a number", k);
    return it->valuedouble;
}

START_TEST(test_seq_prefix) {
    char p[VT_PROTO_SEQ_PREFIX_MAX];
    ck_assert_uint_eq(vt_proto_seq_prefix(p, 0), 9);
    ck_assert_str_eq(p, "{\"seq\":0,");
    ck_assert_uint_eq(vt_proto_seq_prefix(p, UINT64_MAX), 28);
    ck_assert_str_eq(p, "{\"seq\":18446744073709551615,");
}
END_TEST

START_TEST(test_hello_dropped) {
    vt_proto_buf b = VT_PROTO_BUF_INIT;
    vt_proto_hello h = {.server = "vtrackd 0.1.0", .auth = 1};
    ck_assert_int_eq(vt_proto_write_hello(&b, &h), 0);
    expect_line(&b, 0,
                "{\"seq\":0,\"type\":\"hello\",\"protocol\":1,\"server\":\"vtrackd "
                "0.1.0\",\"auth\":true,\"max_line\":65536}");
    ck_assert_int_eq(vt_proto_write_dropped(&b, 12345678901234ULL), 0);
    expect_line(&b, 7, "{\"seq\":7,\"type\":\"dropped\",\"count\":12345678901234}");
    /* every cJSON-built message reuses the buffer without growing it */
    size_t cap = b.cap;
    h.server = "vtrackd 0.1.0";
    for (int i = 0; i < 100; i++) {
        b.len = 0;
        ck_assert_int_eq(vt_proto_write_hello(&b, &h), 0);
        ck_assert_int_eq(vt_proto_write_dropped(&b, (uint64_t)i), 0);
    }
    ck_assert_uint_eq(b.cap, cap);
    h.server = NULL;
    ck_assert_int_eq(vt_proto_write_hello(&b, &h), -EINVAL);
    vt_proto_buf_free(&b);
}
END_TEST

/* A frame with two objects: one with the 64x64 rectangle mask, one with a label that needs
 * escaping and no mask. */
START_TEST(test_frame) {
    const int H = 64, W = 64;
    uint8_t *m = calloc((size_t)H * W, 1);
    for (int y = 10; y <= 29; y++)
        for (int x = 20; x <= 49; x++)
            m[y * W + x] = 1;
    char rle[512];
    size_t rl;
    uint32_t counts[128];
    size_t nc;
    ck_assert_int_eq(vt_rle_encode_string(m, H, W, W, rle, sizeof rle, &rl), 0);
    ck_assert_int_eq(vt_rle_encode(m, H, W, W, counts, 128, &nc), 0);
    uint8_t *none = calloc((size_t)H * W, 1);
    char rle_none[16];
    size_t rl_none;
    ck_assert_int_eq(vt_rle_encode_string(none, H, W, W, rle_none, sizeof rle_none, &rl_none), 0);
    vt_proto_object objs[3] = {
        {.id = 3,
         .label = "box \"A\"\\\n\xc3\xa9",
         .score = 0.91349f,
         .state = VT_PROTO_OBJ_RECOVERED,
         .rle = rle,
         .rle_len = rl},
        {.id = 2147483647,
         .score = 1.7f,
         .state = VT_PROTO_OBJ_LOST,
         .bbox = {1, 2, 3, 4},
         .area = 9},
        /* hidden: nothing of it is seen, so its mask is empty and its area 0 */
        {.id = 5,
         .score = 0.2f,
         .state = VT_PROTO_OBJ_OCCLUDED,
         .rle = rle_none,
         .rle_len = rl_none},
    };
    objs[0].area = vt_rle_area(counts, nc);
    vt_rle_bbox(counts, nc, H, W, objs[0].bbox);
    vt_proto_frame f = {.stream = "cam1",
                        .frame = 9007199254740993LL,
                        .pts = -5,
                        .tb_num = 1001,
                        .tb_den = 30000,
                        .wallclock_us = 1714564800123999LL,
                        .capture_us = VT_PROTO_NO_CLOCK,
                        .width = W,
                        .height = H,
                        .objects = objs,
                        .nobjects = 3};
    vt_proto_buf b = VT_PROTO_BUF_INIT;
    ck_assert_int_eq(vt_proto_write_frame(&b, &f, 1), 0);
    char line[2048];
    cJSON *o = line_of(&b, 41, line, sizeof line);
    ck_assert_str_eq(str(o, "type"), "frame");
    ck_assert_str_eq(str(o, "stream"), "cam1");
    ck_assert_ptr_nonnull(strstr(line, "\"frame\":9007199254740993,")); /* exact beyond 2^53 */
    ck_assert_double_eq(num(o, "pts"), -5);
    ck_assert_double_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "time_base"), 0)->valuedouble,
                        1001);
    ck_assert_str_eq(str(o, "wallclock"), "2024-05-01T12:00:00.123Z");
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "capture"));
    const cJSON *arr = cJSON_GetObjectItem(o, "objects");
    ck_assert_int_eq(cJSON_GetArraySize(arr), 3);
    const cJSON *o0 = cJSON_GetArrayItem(arr, 0), *o1 = cJSON_GetArrayItem(arr, 1);
    const cJSON *o2 = cJSON_GetArrayItem(arr, 2);
    ck_assert_str_eq(str(o2, "state"), "occluded");
    ck_assert_double_eq(num(o2, "area"), 0);
    ck_assert_str_eq(str(cJSON_GetObjectItem(o2, "mask"), "counts"), rle_none);
    ck_assert_double_eq(num(o0, "id"), 3);
    ck_assert_str_eq(str(o0, "label"), "box \"A\"\\\n\xc3\xa9");
    ck_assert_str_eq(str(o0, "state"), "recovered");
    ck_assert_ptr_nonnull(strstr(line, "\"score\":0.913,"));
    ck_assert_double_eq(num(o0, "area"), 600);
    const cJSON *mask = cJSON_GetObjectItem(o0, "mask");
    ck_assert_str_eq(str(mask, "counts"), rle); /* the backslash survived JSON escaping */
    ck_assert_ptr_nonnull(strchr(rle, '\\'));
    ck_assert_ptr_nonnull(strstr(line, "\"counts\":\"ZX1d0\\\\1"));
    uint8_t *back = malloc((size_t)H * W);
    const char *cs = str(mask, "counts");
    ck_assert_int_eq(vt_rle_decode_string(cs, strlen(cs), H, W, back, W, NULL, 0), 0);
    ck_assert_int_eq(memcmp(back, m, (size_t)H * W), 0);
    ck_assert_double_eq(num(o1, "id"), 2147483647.0);
    ck_assert_ptr_null(cJSON_GetObjectItem(o1, "label"));
    ck_assert_ptr_null(cJSON_GetObjectItem(o1, "mask"));
    ck_assert_ptr_nonnull(strstr(line, "\"score\":1.000,")); /* clamped */
    cJSON_Delete(o);

    /* without masks; pts unknown; with a capture time before 1970 */
    b.len = 0;
    f.pts = VT_PROTO_NO_PTS;
    f.capture_us = -1500;
    ck_assert_int_eq(vt_proto_write_frame(&b, &f, 0), 0);
    o = line_of(&b, 42, line, sizeof line);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "pts")));
    ck_assert_str_eq(str(o, "capture"), "1969-12-31T23:59:59.998Z");
    ck_assert_ptr_null(strstr(line, "mask"));
    cJSON_Delete(o);

    /* no objects */
    b.len = 0;
    f.nobjects = 0;
    ck_assert_int_eq(vt_proto_write_frame(&b, &f, 1), 0);
    o = line_of(&b, 43, line, sizeof line);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "objects")), 0);
    cJSON_Delete(o);

    /* invalid inputs leave the buffer as it was */
    size_t before = b.len;
    f.nobjects = 3;
    f.tb_den = 0;
    ck_assert_int_eq(vt_proto_write_frame(&b, &f, 1), -EINVAL);
    f.tb_den = 30000;
    objs[0].rle = "4210!";
    objs[0].rle_len = 5;
    ck_assert_int_eq(vt_proto_write_frame(&b, &f, 1), -EINVAL);
    ck_assert_int_eq(vt_proto_write_frame(&b, &f, 0), 0); /* masks not written: not checked */
    b.len = before;
    objs[0].rle = rle;
    objs[0].rle_len = rl;
    objs[1].id = 0;
    ck_assert_int_eq(vt_proto_write_frame(&b, &f, 1), -EINVAL);
    objs[1].id = 1;
    objs[2].state = VT_PROTO_OBJ_PENDING; /* a `list` state, not a frame event's */
    ck_assert_int_eq(vt_proto_write_frame(&b, &f, 0), -EINVAL);
    objs[2].state = VT_PROTO_OBJ_STATE_COUNT;
    ck_assert_int_eq(vt_proto_write_frame(&b, &f, 0), -EINVAL);
    objs[2].state = VT_PROTO_OBJ_OCCLUDED;
    f.nobjects = VT_PROTO_OBJECTS_MAX + 1;
    ck_assert_int_eq(vt_proto_write_frame(&b, &f, 1), -EINVAL);
    ck_assert_uint_eq(b.len, before);
    free(none);
    free(back);
    free(m);
    vt_proto_buf_free(&b);
}
END_TEST

START_TEST(test_frame_shared_and_warm) {
    /* One tail, many connections: each gets its own seq in front of the same bytes. And once
     * the buffer has grown, writing the next frame event does not allocate. */
    vt_proto_object obj = {.id = 1, .label = "x", .score = 0.5f, .rle = "6", .rle_len = 1};
    vt_proto_frame f = {.stream = "s",
                        .tb_num = 1,
                        .tb_den = 25,
                        .width = 3,
                        .height = 2,
                        .capture_us = VT_PROTO_NO_CLOCK,
                        .objects = &obj,
                        .nobjects = 1};
    vt_proto_buf b = VT_PROTO_BUF_INIT;
    ck_assert_int_eq(vt_proto_write_frame(&b, &f, 1), 0);
    char line[1024];
    for (uint64_t seq = 0; seq < 1000; seq += 333) {
        cJSON *o = line_of(&b, seq, line, sizeof line);
        cJSON_Delete(o);
    }
    char *data = b.data;
    size_t cap = b.cap;
    for (int i = 0; i < 1000; i++) {
        b.len = 0;
        f.frame = i;
        ck_assert_int_eq(vt_proto_write_frame(&b, &f, 1), 0);
    }
    ck_assert_ptr_eq(b.data, data);
    ck_assert_uint_eq(b.cap, cap);
    vt_proto_buf_free(&b);
}
END_TEST

START_TEST(test_replies) {
    vt_proto_buf b = VT_PROTO_BUF_INIT;
    char line[2048];
    vt_proto_id big = {"18446744073709551615"}, sid = {"\"a\\\"b\""};
    vt_proto_reply r = {.op = VT_PROTO_OP_SUBSCRIBE, .id = &big};
    ck_assert_int_eq(vt_proto_write_reply(&b, &r), 0);
    expect_line(&b, 1,
                "{\"seq\":1,\"type\":\"reply\",\"id\":18446744073709551615,\"op\":"
                "\"subscribe\",\"ok\":true}");

    r = (vt_proto_reply){
        .op = VT_PROTO_OP_TRACK, .id = &sid, .stream = "cam1", .object = 5, .frame = -1};
    ck_assert_int_eq(vt_proto_write_reply(&b, &r), 0);
    cJSON *o = line_of(&b, 2, line, sizeof line);
    ck_assert_str_eq(str(o, "id"), "a\"b");
    ck_assert_double_eq(num(o, "object"), 5);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "frame")));
    cJSON_Delete(o);

    b.len = 0;
    r = (vt_proto_reply){.op = VT_PROTO_OP_HELLO}; /* no id: no "id" field */
    ck_assert_int_eq(vt_proto_write_reply(&b, &r), 0);
    o = line_of(&b, 3, line, sizeof line);
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "id"));
    cJSON_Delete(o);

    b.len = 0;
    vt_proto_object_info oi[4] = {{.id = 1, .label = "a"},
                                  {.id = 2, .state = VT_PROTO_OBJ_LOST},
                                  {.id = 3, .state = VT_PROTO_OBJ_OCCLUDED},
                                  {.id = 4, .state = VT_PROTO_OBJ_PENDING}};
    vt_proto_stream_info si[3] = {
        {.name = "cam1",
         .url = "rtsp://admin:p@ss@192.0.2.1:554/x?u=a@b",
         .state = VT_PROTO_STREAM_UP,
         .pacing = VT_PROTO_PACING_LIVE,
         .tracker = VT_PROTO_TRACKER_MAST,
         .profile = VT_PROTO_PROFILE_REALTIME,
         .width = 640,
         .height = 480,
         .frame = 10,
         .objects = oi,
         .nobjects = 4},
        {.name = "f", .url = "/srv/a@b.mp4", .state = VT_PROTO_STREAM_CONNECTING, .frame = -1},
        {.name = "g", .url = "http://host/p@x", .state = VT_PROTO_STREAM_ENDED, .frame = -1},
    };
    r = (vt_proto_reply){.op = VT_PROTO_OP_LIST, .streams = si, .nstreams = 3};
    ck_assert_int_eq(vt_proto_write_reply(&b, &r), 0);
    o = line_of(&b, 4, line, sizeof line);
    const cJSON *arr = cJSON_GetObjectItem(o, "streams");
    ck_assert_str_eq(str(cJSON_GetArrayItem(arr, 0), "url"), "rtsp://***@192.0.2.1:554/x?u=a@b");
    ck_assert_str_eq(str(cJSON_GetArrayItem(arr, 1), "url"), "/srv/a@b.mp4");
    ck_assert_str_eq(str(cJSON_GetArrayItem(arr, 2), "url"), "http://host/p@x");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 1), "width")));
    const cJSON *lobjs = cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "objects");
    ck_assert_int_eq(cJSON_GetArraySize(lobjs), 4);
    ck_assert_str_eq(str(cJSON_GetArrayItem(lobjs, 2), "state"), "occluded");
    ck_assert_str_eq(str(cJSON_GetArrayItem(lobjs, 3), "state"), "pending");
    ck_assert_ptr_null(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 1), "pacing"));
    cJSON_Delete(o);

    b.len = 0;
    vt_proto_stream_stats ss = {
        .name = "cam1", .frames = 10, .skipped = 2, .fps = 24.999, .latency_ms = 12.345};
    vt_proto_stats st = {
        .uptime_s = 1.23456, .clients = 3, .dropped = 4, .streams = &ss, .nstreams = 1};
    r = (vt_proto_reply){.op = VT_PROTO_OP_STATS, .stats = &st};
    ck_assert_int_eq(vt_proto_write_reply(&b, &r), 0);
    o = line_of(&b, 5, line, sizeof line);
    const cJSON *s0 =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "stats"), "streams"), 0);
    ck_assert_double_eq_tol(num(s0, "fps"), 25.0, 1e-9);
    ck_assert_double_eq_tol(num(s0, "latency_ms"), 12.3, 1e-9);
    ck_assert_double_eq_tol(num(cJSON_GetObjectItem(o, "stats"), "uptime_s"), 1.235, 1e-9);
    cJSON_Delete(o);

    /* missing payloads are caller errors */
    size_t before = b.len;
    r = (vt_proto_reply){.op = VT_PROTO_OP_TRACK};
    ck_assert_int_eq(vt_proto_write_reply(&b, &r), -EINVAL);
    r = (vt_proto_reply){.op = VT_PROTO_OP_NONE};
    ck_assert_int_eq(vt_proto_write_reply(&b, &r), -EINVAL);
    r = (vt_proto_reply){.op = VT_PROTO_OP_STATS};
    ck_assert_int_eq(vt_proto_write_reply(&b, &r), -EINVAL);
    si[2].url = NULL; /* one bad entry: no partial list */
    r = (vt_proto_reply){.op = VT_PROTO_OP_LIST, .streams = si, .nstreams = 3};
    ck_assert_int_eq(vt_proto_write_reply(&b, &r), -EINVAL);
    si[2].url = "x";
    si[1].nobjects = 1; /* objects missing */
    ck_assert_int_eq(vt_proto_write_reply(&b, &r), -EINVAL);
    ck_assert_uint_eq(b.len, before);
    vt_proto_buf_free(&b);
}
END_TEST

START_TEST(test_errors_round_trip) {
    /* parser error -> error message: code, field, op and the exact id come back */
    const char *cmd =
        "{\"op\":\"track\",\"id\":9007199254740993,\"stream\":\"a\",\"box\":[0,0,0,1]}";
    vt_proto_cmd *c;
    vt_proto_err e;
    ck_assert_int_eq(vt_proto_cmd_parse(cmd, strlen(cmd), &c, &e), -EINVAL);
    vt_proto_buf b = VT_PROTO_BUF_INIT;
    ck_assert_int_eq(vt_proto_write_error(&b, &e), 0);
    char line[1024];
    cJSON *o = line_of(&b, 9, line, sizeof line);
    ck_assert_ptr_nonnull(strstr(line, "\"id\":9007199254740993,"));
    ck_assert_str_eq(str(o, "code"), "bad_request");
    ck_assert_str_eq(str(o, "field"), "box[2]");
    ck_assert_str_eq(str(o, "op"), "track");
    ck_assert_str_eq(str(o, "message"), e.message);
    cJSON_Delete(o);

    /* errors set by the daemon, and the framing errors */
    b.len = 0;
    vt_proto_err d = {.op = VT_PROTO_OP_ADD_STREAM};
    ck_assert_int_eq(
        vt_proto_err_set(&d, VT_PROTO_CODE_CONFLICT, "stream", "a stream named %s exists", "cam1"),
        -EINVAL);
    ck_assert_int_eq(vt_proto_write_error(&b, &d), 0);
    o = line_of(&b, 10, line, sizeof line);
    ck_assert_str_eq(str(o, "message"), "a stream named cam1 exists");
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "id"));
    cJSON_Delete(o);
    b.len = 0;
    vt_proto_err_framing(&d, -EMSGSIZE, NULL, 0, 1000);
    ck_assert_int_eq(vt_proto_write_error(&b, &d), 0);
    expect_line(&b, 11,
                "{\"seq\":11,\"type\":\"error\",\"code\":\"line_too_long\",\"message\":"
                "\"line longer than 1000 bytes\"}");
    vt_proto_err_framing(&d, -EILSEQ, "ab\xff", 3, 0);
    ck_assert_int_eq(d.code, VT_PROTO_CODE_BAD_UTF8);
    ck_assert_str_eq(d.message, "invalid UTF-8 at byte 2 of the line");

    /* a message cut at a UTF-8 boundary stays valid UTF-8 */
    char longmsg[400];
    for (int i = 0; i < 199; i++)
        memcpy(longmsg + 2 * i, "\xc3\xa9", 2);
    longmsg[398] = '\0';
    vt_proto_err_set(&d, VT_PROTO_CODE_INTERNAL, NULL, "xy%s", longmsg);
    ck_assert_int_eq(vt_utf8_check(d.message, strlen(d.message), NULL), 0);
    ck_assert_uint_eq(strlen(d.message), VT_PROTO_MESSAGE_MAX - 2);
    d.code = VT_PROTO_CODE_OK;
    ck_assert_int_eq(vt_proto_write_error(&b, &d), -EINVAL);
    vt_proto_buf_free(&b);
}
END_TEST

START_TEST(test_lifecycle_and_state) {
    vt_proto_buf b = VT_PROTO_BUF_INIT;
    char line[512];
    vt_proto_object_event oe = {.stream = "cam1",
                                .id = 4,
                                .event = VT_PROTO_LIFECYCLE_REMOVED,
                                .frame = -1,
                                .reason = "stream removed"};
    ck_assert_int_eq(vt_proto_write_object_event(&b, &oe), 0);
    expect_line(&b, 1,
                "{\"seq\":1,\"type\":\"object\",\"stream\":\"cam1\",\"object\":4,"
                "\"event\":\"removed\",\"frame\":null,\"reason\":\"stream removed\"}");
    for (int ev = 0; ev < VT_PROTO_LIFECYCLE_COUNT; ev++) {
        b.len = 0;
        oe = (vt_proto_object_event){
            .stream = "s", .id = 1, .label = "l", .event = (vt_proto_lifecycle)ev, .frame = 77};
        ck_assert_int_eq(vt_proto_write_object_event(&b, &oe), 0);
        cJSON *o = line_of(&b, 2, line, sizeof line);
        ck_assert_str_eq(str(o, "event"), vt_proto_lifecycle_name((vt_proto_lifecycle)ev));
        cJSON_Delete(o);
    }
    for (int st = 0; st < 5; st++) {
        b.len = 0;
        vt_proto_stream_event se = {.stream = "s",
                                    .state = (vt_proto_stream_state)st,
                                    .width = st == 1 ? 1920 : 0,
                                    .height = st == 1 ? 1080 : 0,
                                    .reason = st == 4 ? "end of file" : NULL};
        ck_assert_int_eq(vt_proto_write_stream_event(&b, &se), 0);
        cJSON *o = line_of(&b, 3, line, sizeof line);
        ck_assert_str_eq(str(o, "state"), vt_proto_stream_state_name((vt_proto_stream_state)st));
        ck_assert_int_eq(cJSON_GetObjectItem(o, "width") != NULL, st == 1);
        cJSON_Delete(o);
    }
    oe.event = VT_PROTO_LIFECYCLE_COUNT;
    ck_assert_int_eq(vt_proto_write_object_event(&b, &oe), -EINVAL);
    oe.event = (vt_proto_lifecycle)9;
    ck_assert_int_eq(vt_proto_write_object_event(&b, &oe), -EINVAL);
    vt_proto_stream_event bad = {.stream = NULL};
    ck_assert_int_eq(vt_proto_write_stream_event(&b, &bad), -EINVAL);
    vt_proto_buf_free(&b);
}
END_TEST

/* Per-camera adaptation: the `model` event, the reset_model reply and a stream's `adapt` stats. */
START_TEST(test_adapt_messages) {
    vt_proto_buf b = {0};
    vt_proto_model_event me = {.stream = "cam1",
                               .model = "adapted",
                               .reason = "accepted",
                               .provenance = "50 steps of mast",
                               .checked = 1,
                               .before = 0.9912345,
                               .after = 0.9923456};
    expect_written(
        &b, vt_proto_write_model_event(&b, &me), 4,
        "{\"seq\":4,\"type\":\"model\",\"stream\":\"cam1\",\"model\":\"adapted\","
        "\"reason\":\"accepted\",\"provenance\":\"50 steps of mast\",\"before\":0.991235,"
        "\"after\":0.992346}");
    me = (vt_proto_model_event){.stream = "cam1", .model = "shipped", .reason = "reset"};
    expect_written(&b, vt_proto_write_model_event(&b, &me), 5,
                   "{\"seq\":5,\"type\":\"model\",\"stream\":\"cam1\",\"model\":\"shipped\","
                   "\"reason\":\"reset\"}");
    me.model = NULL;
    expect_written(&b, vt_proto_write_model_event(&b, &me), 0, NULL);
    vt_proto_reply r = {.op = VT_PROTO_OP_RESET_MODEL, .stream = "cam1"};
    expect_written(&b, vt_proto_write_reply(&b, &r), 6,
                   "{\"seq\":6,\"type\":\"reply\",\"op\":\"reset_model\",\"ok\":true,"
                   "\"stream\":\"cam1\"}");
    r.stream = NULL;
    expect_written(&b, vt_proto_write_reply(&b, &r), 0, NULL);
    vt_proto_adapt_stats as = {.model = "shipped",
                               .samples = 3,
                               .capacity = 81,
                               .bytes = 786528,
                               .budget_bytes = 67108864,
                               .offered = 3,
                               .runs = 1,
                               .rejected = 1,
                               .checked = 1,
                               .before = 0.5,
                               .after = 0.25,
                               .last = "rejected"};
    vt_proto_stream_stats ss[2] = {{.name = "a", .adapt = &as}, {.name = "b"}};
    vt_proto_stats st = {.streams = ss, .nstreams = 2};
    r = (vt_proto_reply){.op = VT_PROTO_OP_STATS, .stats = &st};
    ck_assert_int_eq(vt_proto_write_reply(&b, &r), 0);
    char line[4096];
    cJSON *o = line_of(&b, 7, line, sizeof line);
    const cJSON *arr = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "stats"), "streams");
    const cJSON *ad = cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "adapt");
    ck_assert_ptr_nonnull(ad);
    ck_assert_str_eq(str(ad, "model"), "shipped");
    ck_assert_double_eq(num(cJSON_GetObjectItem(ad, "reservoir"), "capacity"), 81);
    ck_assert_double_eq(num(cJSON_GetObjectItem(ad, "last"), "after"), 0.25);
    ck_assert_ptr_null(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 1), "adapt")); /* off */
    cJSON_Delete(o);
    vt_proto_buf_free(&b);
}
END_TEST

/* The schema's bbox rules (PROTOCOL.md, "frame"): the tracker's estimate, not the mask's box,
 * but inside the frame and either a real box or [0,0,0,0]; area is still the mask's. */
START_TEST(test_schema_bbox) {
    static const struct {
        const char *bbox;
        int area, ok;
    } cases[] = {
        {"[1,1,2,2]", 4, 1}, /* the mask's own box */
        {"[0,0,4,3]", 4, 1}, /* beyond the mask: the hidden part of the object */
        {"[2,2,1,1]", 4, 1}, /* smaller: stray mask pixels outside it */
        {"[0,0,0,0]", 4, 1}, /* no estimate */
        {"[1,1,0,2]", 4, 0}, /* empty but not [0,0,0,0] */
        {"[2,1,3,2]", 4, 0}, /* past the right edge */
        {"[-1,0,2,2]", 4, 0}, {"[1,1,2,2]", 3, 0}, /* area is not the mask's */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[512], why[256];
        snprintf(line, sizeof line,
                 "{\"seq\":1,\"type\":\"frame\",\"stream\":\"s\",\"frame\":0,\"pts\":null,"
                 "\"time_base\":[1,25],\"wallclock\":\"2024-05-01T12:00:00.123Z\",\"width\":4,"
                 "\"height\":3,\"objects\":[{\"id\":1,\"state\":\"occluded\",\"score\":0.5,"
                 "\"area\":%d,\"bbox\":%s,\"mask\":{\"size\":[3,4],\"counts\":\"42102\"}}]}",
                 cases[i].area, cases[i].bbox);
        int rc = check_server_line(line, strlen(line), why, sizeof why);
        ck_assert_msg((rc == 0) == cases[i].ok, "case %zu (%s, area %d): %s", i, cases[i].bbox,
                      cases[i].area, rc ? why : "accepted");
    }
}
END_TEST

START_TEST(test_names) {
    ck_assert_str_eq(vt_proto_op_name(VT_PROTO_OP_REMOVE_STREAM), "remove_stream");
    ck_assert_str_eq(vt_proto_op_name((vt_proto_op)99), "?");
    ck_assert_str_eq(vt_proto_code_name(VT_PROTO_CODE_LINE_TOO_LONG), "line_too_long");
    ck_assert_str_eq(vt_proto_code_name((vt_proto_code)-1), "?");
    ck_assert_str_eq(vt_proto_pacing_name(VT_PROTO_PACING_LOSSLESS), "lossless");
    ck_assert_str_eq(vt_proto_tracker_name(VT_PROTO_TRACKER_COLORIZE), "colorize");
    ck_assert_str_eq(vt_proto_profile_name(VT_PROTO_PROFILE_REALTIME), "realtime");
    ck_assert_str_eq(vt_proto_obj_state_name(VT_PROTO_OBJ_RECOVERED), "recovered");
    ck_assert_str_eq(vt_proto_obj_state_name(VT_PROTO_OBJ_OCCLUDED), "occluded");
    ck_assert_str_eq(vt_proto_obj_state_name(VT_PROTO_OBJ_PENDING), "pending");
    ck_assert_str_eq(vt_proto_obj_state_name(VT_PROTO_OBJ_STATE_COUNT), "?");
    ck_assert_str_eq(vt_proto_lifecycle_name(VT_PROTO_LIFECYCLE_OCCLUDED), "occluded");
    ck_assert_str_eq(vt_proto_lifecycle_name(VT_PROTO_LIFECYCLE_REMOVED), "removed");
    ck_assert_str_eq(vt_proto_lifecycle_name(VT_PROTO_LIFECYCLE_COUNT), "?");
    /* every value has a name (names.c's static checks catch a missing last one only) */
    for (int i = 0; i < VT_PROTO_OBJ_STATE_COUNT; i++)
        ck_assert_msg(vt_proto_obj_state_name((vt_proto_obj_state)i)[0] != '?', "state %d", i);
    for (int i = 0; i < VT_PROTO_LIFECYCLE_COUNT; i++)
        ck_assert_msg(vt_proto_lifecycle_name((vt_proto_lifecycle)i)[0] != '?', "event %d", i);
}
END_TEST

Suite *event_suite(void) {
    Suite *s = suite_create("event");
    tm_add_case(s, "writers", 0, test_seq_prefix, test_hello_dropped, test_frame,
                test_frame_shared_and_warm, test_replies, test_errors_round_trip,
                test_lifecycle_and_state, test_adapt_messages, test_schema_bbox, test_names, NULL);
    return s;
}
