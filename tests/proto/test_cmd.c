/*
 * The command parser: valid commands of every op with every field checked in the struct, request
 * ids (exact beyond 2^53), and a table of malformed lines, each with its error code and field.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_test.h"
#include "vt_proto.h"

static vt_proto_cmd *parse_ok(const char *line) {
    vt_proto_cmd *cmd = NULL;
    vt_proto_err err;
    int rc = vt_proto_cmd_parse(line, strlen(line), &cmd, &err);
    ck_assert_msg(rc == 0, "'%s' failed: %s %s: %s", line, vt_proto_code_name(err.code), err.field,
                  err.message);
    ck_assert_int_eq(err.code, VT_PROTO_CODE_OK);
    ck_assert_ptr_nonnull(cmd);
    return cmd;
}

START_TEST(test_hello) {
    vt_proto_cmd *c = parse_ok("{\"op\":\"hello\"}");
    ck_assert_int_eq(c->op, VT_PROTO_OP_HELLO);
    ck_assert_ptr_null(c->hello.token);
    ck_assert_int_eq(c->hello.protocol, 0);
    ck_assert_str_eq(c->id.json, "");
    vt_proto_cmd_free(&c);
    ck_assert_ptr_null(c);
    vt_proto_cmd_free(&c);
    vt_proto_cmd_free(NULL);
    c = parse_ok(" {\"protocol\":1,\"token\":\"s3cr\\u00e9t\",\"op\":\"hello\",\"id\":1}\r\n ");
    ck_assert_str_eq(c->hello.token, "s3cr\xc3\xa9t");
    ck_assert_int_eq(c->hello.protocol, 1);
    ck_assert_str_eq(c->id.json, "1");
    vt_proto_cmd_free(&c);
}
END_TEST

START_TEST(test_subscribe) {
    vt_proto_cmd *c = parse_ok("{\"op\":\"subscribe\",\"id\":\"s-1\"}");
    ck_assert_int_eq(c->op, VT_PROTO_OP_SUBSCRIBE);
    ck_assert_ptr_null(c->subscribe.streams);
    ck_assert_int_eq(c->subscribe.nstreams, 0);
    ck_assert_int_eq(c->subscribe.masks, 0);
    ck_assert_str_eq(c->id.json, "\"s-1\"");
    vt_proto_cmd_free(&c);
    c = parse_ok("{\"op\":\"subscribe\",\"streams\":[\"cam1\",\"dock-2.b_c\"],\"masks\":true}");
    ck_assert_int_eq(c->subscribe.nstreams, 2);
    ck_assert_str_eq(c->subscribe.streams[0], "cam1");
    ck_assert_str_eq(c->subscribe.streams[1], "dock-2.b_c");
    ck_assert_int_eq(c->subscribe.masks, 1);
    vt_proto_cmd_free(&c);
    c = parse_ok("{\"op\":\"unsubscribe\",\"streams\":[\"cam1\"]}");
    ck_assert_int_eq(c->op, VT_PROTO_OP_UNSUBSCRIBE);
    ck_assert_int_eq(c->subscribe.nstreams, 1);
    vt_proto_cmd_free(&c);
    c = parse_ok("{\"op\":\"unsubscribe\"}");
    ck_assert_int_eq(c->subscribe.nstreams, 0);
    vt_proto_cmd_free(&c);
}
END_TEST

START_TEST(test_list_stats) {
    vt_proto_cmd *c = parse_ok("{\"op\":\"list\"}");
    ck_assert_int_eq(c->op, VT_PROTO_OP_LIST);
    vt_proto_cmd_free(&c);
    c = parse_ok("{\"id\":-3,\"op\":\"stats\"}");
    ck_assert_int_eq(c->op, VT_PROTO_OP_STATS);
    ck_assert_str_eq(c->id.json, "-3");
    vt_proto_cmd_free(&c);
}
END_TEST

START_TEST(test_add_remove_stream) {
    vt_proto_cmd *c = parse_ok(
        "{\"op\":\"add_stream\",\"stream\":\"cam1\",\"url\":\"rtsp://u:p@10.0.0.1/s\","
        "\"options\":{\"rtsp_transport\":\"tcp\",\"stimeout\":\"5000000\"},\"pacing\":\"camera\","
        "\"tracker\":\"colorize\",\"profile\":\"accurate\"}");
    ck_assert_int_eq(c->op, VT_PROTO_OP_ADD_STREAM);
    ck_assert_str_eq(c->add_stream.stream, "cam1");
    ck_assert_str_eq(c->add_stream.url, "rtsp://u:p@10.0.0.1/s");
    ck_assert_int_eq(c->add_stream.noptions, 2);
    ck_assert_str_eq(c->add_stream.options[0].key, "rtsp_transport");
    ck_assert_str_eq(c->add_stream.options[0].value, "tcp");
    ck_assert_str_eq(c->add_stream.options[1].key, "stimeout");
    ck_assert_str_eq(c->add_stream.options[1].value, "5000000");
    ck_assert_int_eq(c->add_stream.pacing, VT_PROTO_PACING_CAMERA);
    ck_assert_int_eq(c->add_stream.tracker, VT_PROTO_TRACKER_COLORIZE);
    ck_assert_int_eq(c->add_stream.profile, VT_PROTO_PROFILE_ACCURATE);
    vt_proto_cmd_free(&c);
    c = parse_ok("{\"op\":\"add_stream\",\"stream\":\"f\",\"url\":\"/v/a b.mp4\",\"options\":{}}");
    ck_assert_int_eq(c->add_stream.noptions, 0);
    ck_assert_int_eq(c->add_stream.pacing, VT_PROTO_PACING_DEFAULT);
    ck_assert_int_eq(c->add_stream.tracker, VT_PROTO_TRACKER_DEFAULT);
    ck_assert_int_eq(c->add_stream.profile, VT_PROTO_PROFILE_DEFAULT);
    vt_proto_cmd_free(&c);
    c = parse_ok("{\"op\":\"remove_stream\",\"stream\":\"cam1\",\"id\":0}");
    ck_assert_str_eq(c->remove_stream.stream, "cam1");
    ck_assert_str_eq(c->id.json, "0");
    vt_proto_cmd_free(&c);
    c = parse_ok("{\"op\":\"reset_model\",\"stream\":\"cam1\"}");
    ck_assert_int_eq(c->op, VT_PROTO_OP_RESET_MODEL);
    ck_assert_str_eq(c->reset_model.stream, "cam1");
    vt_proto_cmd_free(&c);
}
END_TEST

START_TEST(test_track) {
    vt_proto_cmd *c = parse_ok("{\"op\":\"track\",\"stream\":\"cam1\",\"object\":7,\"label\":"
                               "\"caf\\u00e9 \\\"A\\\"\",\"frame\":9007199254740991,"
                               "\"mask\":{\"size\":[64,64],\"counts\":\"ZX1d0\\\\100000000000000"
                               "0000000000000000000000000000000000000000000fk0\"}}");
    ck_assert_int_eq(c->op, VT_PROTO_OP_TRACK);
    ck_assert_str_eq(c->track.stream, "cam1");
    ck_assert_uint_eq(c->track.object, 7);
    ck_assert_str_eq(c->track.label, "caf\xc3\xa9 \"A\"");
    ck_assert_int_eq(c->track.frame, 9007199254740991LL);
    ck_assert_int_eq(c->track.shape, VT_PROTO_SHAPE_MASK);
    ck_assert_int_eq(c->track.mask.h, 64);
    ck_assert_int_eq(c->track.mask.w, 64);
    ck_assert_uint_eq(c->track.mask.ncounts, 61);
    ck_assert_uint_eq(c->track.mask.counts[0], 1290);
    ck_assert_uint_eq(c->track.mask.counts[60], 930);
    ck_assert_uint_eq(vt_rle_area(c->track.mask.counts, c->track.mask.ncounts), 600);
    vt_proto_cmd_free(&c);

    c = parse_ok("{\"op\":\"track\",\"stream\":\"cam1\",\"mask\":{\"counts\":[4,2,1,2,3],"
                 "\"size\":[3,4]}}");
    ck_assert_uint_eq(c->track.object, 0);
    ck_assert_ptr_null(c->track.label);
    ck_assert_int_eq(c->track.frame, -1);
    ck_assert_uint_eq(c->track.mask.ncounts, 5);
    ck_assert_uint_eq(c->track.mask.counts[4], 3);
    vt_proto_cmd_free(&c);

    c = parse_ok("{\"op\":\"track\",\"stream\":\"cam1\",\"box\":[-5.5,0,10,2e2],\"frame\":0}");
    ck_assert_int_eq(c->track.shape, VT_PROTO_SHAPE_BOX);
    ck_assert_double_eq(c->track.box[0], -5.5);
    ck_assert_double_eq(c->track.box[3], 200.0);
    ck_assert_int_eq(c->track.frame, 0);
    vt_proto_cmd_free(&c);

    c = parse_ok("{\"op\":\"track\",\"stream\":\"cam1\",\"polygon\":[[0,0],[10,0],[5,8.5]]}");
    ck_assert_int_eq(c->track.shape, VT_PROTO_SHAPE_POLYGON);
    ck_assert_int_eq(c->track.polygon.npoints, 3);
    ck_assert_double_eq(c->track.polygon.points[2][0], 5.0);
    ck_assert_double_eq(c->track.polygon.points[2][1], 8.5);
    vt_proto_cmd_free(&c);

    c = parse_ok("{\"op\":\"untrack\",\"stream\":\"cam1\",\"object\":2147483647}");
    ck_assert_int_eq(c->op, VT_PROTO_OP_UNTRACK);
    ck_assert_uint_eq(c->untrack.object, 2147483647u);
    vt_proto_cmd_free(&c);
}
END_TEST

START_TEST(test_ids_exact) {
    static const char *const ids[] = {
        "9007199254740993",     /* 2^53 + 1: a double would give ...992 */
        "18446744073709551615", /* UINT64_MAX */
        "-9223372036854775808", /* INT64_MIN */
        "99999999999999999999", /* 20 digits */
        "\"x\"",
        "\"\\u00e9\\\"\\\\\"", /* escapes are kept as written */
        "\"\"",
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char line[256];
        snprintf(line, sizeof line, "{\"op\":\"list\",\"id\" : %s }", ids[i]);
        vt_proto_cmd *c = parse_ok(line);
        ck_assert_str_eq(c->id.json, ids[i]);
        vt_proto_cmd_free(&c);
        /* and the id is known in errors too */
        snprintf(line, sizeof line, "{\"id\":%s,\"op\":\"list\",\"x\":1}", ids[i]);
        vt_proto_err err;
        ck_assert_int_eq(vt_proto_cmd_parse(line, strlen(line), &c, &err), -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_str_eq(err.id.json, ids[i]);
        ck_assert_int_eq(err.op, VT_PROTO_OP_LIST);
    }
    /* an escaped key "\u0069d" is the key "id" */
    vt_proto_cmd *c = parse_ok("{\"op\":\"list\",\"\\u0069d\":12345678901234567890}");
    ck_assert_str_eq(c->id.json, "12345678901234567890");
    vt_proto_cmd_free(&c);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Malformed commands
 * ------------------------------------------------------------------------------------------- */

static const struct bad_cmd {
    const char *line;
    vt_proto_code code;
    const char *field;
    const char *id; /* the id the error must echo, "" = none */
} bad_cmds[] = {
    /* framing-level and JSON-level */
    {"{\"op\":\"list\"", VT_PROTO_CODE_BAD_JSON, "", ""},
    {"", VT_PROTO_CODE_BAD_JSON, "", ""},
    {"{\"op\":\"list\"} {}", VT_PROTO_CODE_BAD_JSON, "", ""},
    {"{\"op\":\"list\"}\x01", VT_PROTO_CODE_BAD_JSON, "", ""},
    {"{\"op\":\"list\",\"id\":\"a\x01\"}", VT_PROTO_CODE_BAD_JSON, "", ""},
    {"{\"op\":\"li\xc3\"}", VT_PROTO_CODE_BAD_UTF8, "", ""},
    {"[1,2]", VT_PROTO_CODE_BAD_REQUEST, "", ""},
    {"\"list\"", VT_PROTO_CODE_BAD_REQUEST, "", ""},
    {"{\"op\":\"list\",\"id\":1,\"k\":\"a\\u0000b\"}", VT_PROTO_CODE_BAD_REQUEST, "", "1"},
    /* op */
    {"{\"id\":1}", VT_PROTO_CODE_BAD_REQUEST, "op", "1"},
    {"{\"op\":\"zoom\",\"id\":2}", VT_PROTO_CODE_BAD_REQUEST, "op", "2"},
    {"{\"op\":\"LIST\"}", VT_PROTO_CODE_BAD_REQUEST, "op", ""},
    {"{\"op\":5}", VT_PROTO_CODE_BAD_REQUEST, "op", ""},
    /* id */
    {"{\"op\":\"list\",\"id\":1.5}", VT_PROTO_CODE_BAD_REQUEST, "id", ""},
    {"{\"op\":\"list\",\"id\":1e3}", VT_PROTO_CODE_BAD_REQUEST, "id", ""},
    {"{\"op\":\"list\",\"id\":+1}", VT_PROTO_CODE_BAD_JSON, "", ""}, /* cJSON rejects it */
    {"{\"op\":\"list\",\"id\":007}", VT_PROTO_CODE_BAD_REQUEST, "id", ""},
    {"{\"op\":\"list\",\"id\":123456789012345678901}", VT_PROTO_CODE_BAD_REQUEST, "id", ""},
    {"{\"op\":\"list\",\"id\":true}", VT_PROTO_CODE_BAD_REQUEST, "id", ""},
    {"{\"op\":\"list\",\"id\":null}", VT_PROTO_CODE_BAD_REQUEST, "id", ""},
    {"{\"op\":\"list\",\"id\":[1]}", VT_PROTO_CODE_BAD_REQUEST, "id", ""},
    /* unknown and repeated fields */
    {"{\"op\":\"list\",\"id\":3,\"verbose\":true}", VT_PROTO_CODE_BAD_REQUEST, "verbose", "3"},
    {"{\"op\":\"list\",\"op\":\"list\"}", VT_PROTO_CODE_BAD_REQUEST, "op", ""},
    {"{\"op\":\"list\",\"id\":4,\"id\":5}", VT_PROTO_CODE_BAD_REQUEST, "id", "4"},
    {"{\"op\":\"hello\",\"stream\":\"a\"}", VT_PROTO_CODE_BAD_REQUEST, "stream", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"box\":[0,0,1,1],\"Box\":1}", VT_PROTO_CODE_BAD_REQUEST,
     "Box", ""},
    /* hello */
    {"{\"op\":\"hello\",\"token\":\"\"}", VT_PROTO_CODE_BAD_REQUEST, "token", ""},
    {"{\"op\":\"hello\",\"token\":7}", VT_PROTO_CODE_BAD_REQUEST, "token", ""},
    {"{\"op\":\"hello\",\"protocol\":0}", VT_PROTO_CODE_BAD_REQUEST, "protocol", ""},
    {"{\"op\":\"hello\",\"protocol\":\"1\"}", VT_PROTO_CODE_BAD_REQUEST, "protocol", ""},
    /* subscribe */
    {"{\"op\":\"subscribe\",\"streams\":[]}", VT_PROTO_CODE_BAD_REQUEST, "streams", ""},
    {"{\"op\":\"subscribe\",\"streams\":\"cam1\"}", VT_PROTO_CODE_BAD_REQUEST, "streams", ""},
    {"{\"op\":\"subscribe\",\"streams\":[\"a\",\"b c\"]}", VT_PROTO_CODE_BAD_REQUEST, "streams[1]",
     ""},
    {"{\"op\":\"subscribe\",\"streams\":[\"-a\"]}", VT_PROTO_CODE_BAD_REQUEST, "streams[0]", ""},
    {"{\"op\":\"subscribe\",\"masks\":1}", VT_PROTO_CODE_BAD_REQUEST, "masks", ""},
    {"{\"op\":\"unsubscribe\",\"masks\":true}", VT_PROTO_CODE_BAD_REQUEST, "masks", ""},
    /* add_stream / remove_stream */
    {"{\"op\":\"add_stream\",\"url\":\"x\"}", VT_PROTO_CODE_BAD_REQUEST, "stream", ""},
    {"{\"op\":\"add_stream\",\"stream\":\"a\"}", VT_PROTO_CODE_BAD_REQUEST, "url", ""},
    {"{\"op\":\"add_stream\",\"stream\":\"a\",\"url\":\"x\\ny\"}", VT_PROTO_CODE_BAD_REQUEST, "url",
     ""},
    {"{\"op\":\"add_stream\",\"stream\":\"a\",\"url\":\"x\",\"pacing\":\"fast\"}",
     VT_PROTO_CODE_BAD_REQUEST, "pacing", ""},
    {"{\"op\":\"add_stream\",\"stream\":\"a\",\"url\":\"x\",\"tracker\":\"\"}",
     VT_PROTO_CODE_BAD_REQUEST, "tracker", ""},
    {"{\"op\":\"add_stream\",\"stream\":\"a\",\"url\":\"x\",\"profile\":1}",
     VT_PROTO_CODE_BAD_REQUEST, "profile", ""},
    {"{\"op\":\"add_stream\",\"stream\":\"a\",\"url\":\"x\",\"options\":[]}",
     VT_PROTO_CODE_BAD_REQUEST, "options", ""},
    {"{\"op\":\"add_stream\",\"stream\":\"a\",\"url\":\"x\",\"options\":{\"fflags\":1}}",
     VT_PROTO_CODE_BAD_REQUEST, "options.fflags", ""},
    {"{\"op\":\"add_stream\",\"stream\":\"a\",\"url\":\"x\",\"options\":{\"a b\":\"1\"}}",
     VT_PROTO_CODE_BAD_REQUEST, "options.a b", ""},
    {"{\"op\":\"add_stream\",\"stream\":\"a\",\"url\":\"x\",\"options\":{\"k\":\"1\",\"k\":\"2\"}}",
     VT_PROTO_CODE_BAD_REQUEST, "options.k", ""},
    {"{\"op\":\"remove_stream\",\"stream\":\"\"}", VT_PROTO_CODE_BAD_REQUEST, "stream", ""},
    {"{\"op\":\"reset_model\"}", VT_PROTO_CODE_BAD_REQUEST, "stream", ""},
    {"{\"op\":\"reset_model\",\"stream\":\"a\",\"model\":\"x\"}", VT_PROTO_CODE_BAD_REQUEST,
     "model", ""},
    /* track */
    {"{\"op\":\"track\",\"id\":9,\"box\":[0,0,1,1]}", VT_PROTO_CODE_BAD_REQUEST, "stream", "9"},
    {"{\"op\":\"track\",\"stream\":\"a\"}", VT_PROTO_CODE_BAD_REQUEST, "mask", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"box\":[0,0,1,1],\"polygon\":[[0,0],[1,0],[0,1]]}",
     VT_PROTO_CODE_BAD_REQUEST, "polygon", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"object\":0,\"box\":[0,0,1,1]}",
     VT_PROTO_CODE_BAD_REQUEST, "object", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"object\":2147483648,\"box\":[0,0,1,1]}",
     VT_PROTO_CODE_BAD_REQUEST, "object", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"object\":1.5,\"box\":[0,0,1,1]}",
     VT_PROTO_CODE_BAD_REQUEST, "object", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"label\":\"\",\"box\":[0,0,1,1]}",
     VT_PROTO_CODE_BAD_REQUEST, "label", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"label\":\"a\\tb\",\"box\":[0,0,1,1]}",
     VT_PROTO_CODE_BAD_REQUEST, "label", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"frame\":-1,\"box\":[0,0,1,1]}",
     VT_PROTO_CODE_BAD_REQUEST, "frame", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"frame\":9007199254740992,\"box\":[0,0,1,1]}",
     VT_PROTO_CODE_BAD_REQUEST, "frame", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"box\":[0,0,1]}", VT_PROTO_CODE_BAD_REQUEST, "box", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"box\":[0,0,-1,1]}", VT_PROTO_CODE_BAD_REQUEST, "box[2]",
     ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"box\":[0,\"0\",1,1]}", VT_PROTO_CODE_BAD_REQUEST,
     "box[1]", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"box\":[2e6,0,1,1]}", VT_PROTO_CODE_BAD_REQUEST, "box[0]",
     ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"box\":[0,0,1,1e999]}", VT_PROTO_CODE_BAD_REQUEST,
     "box[3]", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"polygon\":[[0,0],[1,1]]}", VT_PROTO_CODE_BAD_REQUEST,
     "polygon", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"polygon\":[[0,0],[1,1],[2]]}", VT_PROTO_CODE_BAD_REQUEST,
     "polygon[2]", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"polygon\":[[0,0],[1,1],[2,null]]}",
     VT_PROTO_CODE_BAD_REQUEST, "polygon[2][1]", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":\"42102\"}", VT_PROTO_CODE_BAD_REQUEST, "mask",
     ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"counts\":\"42102\"}}",
     VT_PROTO_CODE_BAD_REQUEST, "mask.size", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[3,4]}}", VT_PROTO_CODE_BAD_REQUEST,
     "mask.counts", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[3,4],\"counts\":\"42102\",\"iscrowd\":"
     "0}}",
     VT_PROTO_CODE_BAD_REQUEST, "mask.iscrowd", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[3],\"counts\":\"42102\"}}",
     VT_PROTO_CODE_BAD_REQUEST, "mask.size", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[3,0],\"counts\":\"42102\"}}",
     VT_PROTO_CODE_BAD_REQUEST, "mask.size[1]", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[3,4],\"counts\":42102}}",
     VT_PROTO_CODE_BAD_REQUEST, "mask.counts", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[3,4],\"counts\":\"4210\"}}",
     VT_PROTO_CODE_BAD_MASK, "mask.counts", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[3,4],\"counts\":\"4210!\"}}",
     VT_PROTO_CODE_BAD_MASK, "mask.counts", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[3,4],\"counts\":\"421M\"}}",
     VT_PROTO_CODE_BAD_MASK, "mask.counts", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[3,4],\"counts\":\"=\"}}",
     VT_PROTO_CODE_BAD_MASK, "mask.counts", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[3,4],\"counts\":\"4210P\"}}",
     VT_PROTO_CODE_BAD_MASK, "mask.counts", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[2,3],\"counts\":\"6\"}}",
     VT_PROTO_CODE_BAD_MASK, "mask", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[3,4],\"counts\":[4,2,1,2]}}",
     VT_PROTO_CODE_BAD_MASK, "mask.counts", ""},
    {"{\"op\":\"track\",\"stream\":\"a\",\"mask\":{\"size\":[3,4],\"counts\":[4,-2,1,2]}}",
     VT_PROTO_CODE_BAD_MASK, "mask.counts[1]", ""},
    /* untrack */
    {"{\"op\":\"untrack\",\"stream\":\"a\"}", VT_PROTO_CODE_BAD_REQUEST, "object", ""},
    {"{\"op\":\"untrack\",\"object\":1}", VT_PROTO_CODE_BAD_REQUEST, "stream", ""},
    {"{\"op\":\"untrack\",\"stream\":\"a\",\"object\":\"1\"}", VT_PROTO_CODE_BAD_REQUEST, "object",
     ""},
};

START_TEST(test_malformed) {
    const struct bad_cmd *b = &bad_cmds[_i];
    vt_proto_cmd *c = (vt_proto_cmd *)1;
    vt_proto_err err;
    size_t len = strlen(b->line);
    char *line = malloc(len ? len : 1); /* not NUL-terminated: any over-read is an ASan error */
    memcpy(line, b->line, len);
    int rc = vt_proto_cmd_parse(line, len, &c, &err);
    free(line);
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_msg(err.code == b->code && strcmp(err.field, b->field) == 0,
                  "'%s': got %s '%s' (%s), want %s '%s'", b->line, vt_proto_code_name(err.code),
                  err.field, err.message, vt_proto_code_name(b->code), b->field);
    ck_assert_str_eq(err.id.json, b->id);
    ck_assert_msg(err.message[0] != '\0', "no message");
    ck_assert_int_eq(vt_utf8_check(err.message, strlen(err.message), NULL), 0);
    if (b->field[0] && b->code == VT_PROTO_CODE_BAD_REQUEST && strcmp(b->field, "op") != 0)
        ck_assert_msg(strstr(err.message, b->field), "message '%s' does not name %s", err.message,
                      b->field);
}
END_TEST

START_TEST(test_error_message_sanitised) {
    /* A hostile unknown field name (long, control characters via escapes, multibyte) ends up
     * truncated at a character boundary and printable in field and message. */
    char line[600];
    snprintf(line, sizeof line, "{\"op\":\"list\",\"%s\\n\\u0007\":1}",
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    vt_proto_cmd *c;
    vt_proto_err err;
    ck_assert_int_eq(vt_proto_cmd_parse(line, strlen(line), &c, &err), -EINVAL);
    ck_assert_int_eq(err.code, VT_PROTO_CODE_BAD_REQUEST);
    ck_assert_int_eq(vt_utf8_check(err.field, strlen(err.field), NULL), 0);
    ck_assert_int_eq(vt_utf8_check(err.message, strlen(err.message), NULL), 0);
    for (const char *p = err.message; *p; p++)
        ck_assert_int_ge((unsigned char)*p, 0x20);
    ck_assert_ptr_nonnull(strstr(err.field, "..."));
}
END_TEST

START_TEST(test_limits) {
    /* the largest accepted of each list, then one more */
    char *line = malloc(200000);
    int n = sprintf(line, "{\"op\":\"subscribe\",\"streams\":[");
    for (int i = 0; i < VT_PROTO_FILTER_MAX; i++)
        n += sprintf(line + n, "%s\"s%d\"", i ? "," : "", i);
    strcpy(line + n, "]}");
    vt_proto_cmd *c = parse_ok(line);
    ck_assert_int_eq(c->subscribe.nstreams, VT_PROTO_FILTER_MAX);
    vt_proto_cmd_free(&c);
    sprintf(line + n, ",\"x\"]}");
    vt_proto_err err;
    ck_assert_int_eq(vt_proto_cmd_parse(line, strlen(line), &c, &err), -EINVAL);
    ck_assert_str_eq(err.field, "streams");

    n = sprintf(line, "{\"op\":\"track\",\"stream\":\"a\",\"polygon\":[");
    for (int i = 0; i < VT_PROTO_POLYGON_MAX; i++)
        n += sprintf(line + n, "%s[%d,%d]", i ? "," : "", i, i % 7);
    strcpy(line + n, "]}");
    c = parse_ok(line);
    ck_assert_int_eq(c->track.polygon.npoints, VT_PROTO_POLYGON_MAX);
    ck_assert_double_eq(c->track.polygon.points[1023][0], 1023.0);
    vt_proto_cmd_free(&c);
    sprintf(line + n, ",[1,1]]}");
    ck_assert_int_eq(vt_proto_cmd_parse(line, strlen(line), &c, &err), -EINVAL);
    ck_assert_str_eq(err.field, "polygon");

    n = sprintf(line, "{\"op\":\"add_stream\",\"stream\":\"a\",\"url\":\"x\",\"options\":{");
    for (int i = 0; i < VT_PROTO_OPTIONS_MAX; i++)
        n += sprintf(line + n, "%s\"k%d\":\"v\"", i ? "," : "", i);
    strcpy(line + n, "}}");
    c = parse_ok(line);
    ck_assert_int_eq(c->add_stream.noptions, VT_PROTO_OPTIONS_MAX);
    vt_proto_cmd_free(&c);
    sprintf(line + n, ",\"z\":\"v\"}}");
    ck_assert_int_eq(vt_proto_cmd_parse(line, strlen(line), &c, &err), -EINVAL);
    ck_assert_str_eq(err.field, "options");

    /* names and labels: 64 bytes accepted, 65 rejected (label counted in bytes, not chars) */
    char name[80], label[80];
    memset(name, 'n', 65), name[65] = '\0';
    for (int i = 0; i < 32; i++)
        memcpy(label + 2 * i, "\xc3\xa9", 2);
    label[64] = '\0';
    sprintf(line, "{\"op\":\"track\",\"stream\":\"%.64s\",\"label\":\"%s\",\"box\":[0,0,1,1]}",
            name, label);
    c = parse_ok(line);
    ck_assert_uint_eq(strlen(c->track.stream), 64);
    ck_assert_uint_eq(strlen(c->track.label), 64);
    vt_proto_cmd_free(&c);
    sprintf(line, "{\"op\":\"track\",\"stream\":\"%s\",\"box\":[0,0,1,1]}", name);
    ck_assert_int_eq(vt_proto_cmd_parse(line, strlen(line), &c, &err), -EINVAL);
    ck_assert_str_eq(err.field, "stream");
    sprintf(line, "{\"op\":\"track\",\"stream\":\"a\",\"label\":\"%sx\",\"box\":[0,0,1,1]}", label);
    ck_assert_int_eq(vt_proto_cmd_parse(line, strlen(line), &c, &err), -EINVAL);
    ck_assert_str_eq(err.field, "label");

    /* deep nesting is bad JSON (cJSON's limit), not a crash */
    n = sprintf(line, "{\"op\":\"list\",\"id\":1,\"x\":");
    for (int i = 0; i < 5000; i++)
        line[n++] = '[';
    line[n] = '\0';
    ck_assert_int_eq(vt_proto_cmd_parse(line, (size_t)n, &c, &err), -EINVAL);
    ck_assert_int_eq(err.code, VT_PROTO_CODE_BAD_JSON);
    free(line);
}
END_TEST

Suite *cmd_suite(void) {
    Suite *s = suite_create("cmd");
    tm_add_case(s, "valid", 0, test_hello, test_subscribe, test_list_stats, test_add_remove_stream,
                test_track, test_ids_exact, test_limits, NULL);
    TCase *tc = tm_add_case(s, "malformed", 0, test_error_message_sanitised, NULL);
    tcase_add_loop_test(tc, test_malformed, 0, (int)TM_LEN(bad_cmds));
    return s;
}
