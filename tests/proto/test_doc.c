/*
 * PROTOCOL.md against the code. Every line inside a ```json block is an example: lines starting
 * with {"seq": are server messages and must pass the documented schema (check_server_line);
 * every other line is a client command and goes through the real parser. A command the parser
 * rejects must be followed by the server's error line, whose code, field, op, id and message
 * must be exactly what the parser produced.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_test.h"
#include "vt_proto.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* The error line must carry exactly what the parser said about the command before it. */
static void check_error_matches(const char *line, const vt_proto_err *e, int lineno) {
    vt_proto_buf b = VT_PROTO_BUF_INIT;
    ck_assert_int_eq(vt_proto_write_error(&b, e), 0);
    /* the tail lacks its '{': rebuild the line with seq 0 and compare field by field */
    char *full = malloc(b.len + 16);
    sprintf(full, "{\"seq\":0,%s", b.data);
    cJSON *want = cJSON_Parse(full);
    cJSON *got = cJSON_Parse(line);
    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(got);
    static const char *const keys[] = {"type", "id", "op", "code", "field", "message"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *a = cJSON_PrintUnformatted(cJSON_GetObjectItem(want, keys[i]));
        char *g = cJSON_PrintUnformatted(cJSON_GetObjectItem(got, keys[i]));
        ck_assert_msg((!a && !g) || (a && g && strcmp(a, g) == 0),
                      "PROTOCOL.md line %d: %s is %s, the parser says %s", lineno, keys[i],
                      g ? g : "(absent)", a ? a : "(absent)");
        free(a);
        free(g);
    }
    /* and the id is echoed byte for byte */
    if (e->id.json[0]) {
        char needle[VT_PROTO_ID_MAX + 8];
        snprintf(needle, sizeof needle, "\"id\":%s,", e->id.json);
        ck_assert_msg(strstr(line, needle), "PROTOCOL.md line %d: id not verbatim", lineno);
    }
    cJSON_Delete(want);
    cJSON_Delete(got);
    free(full);
    vt_proto_buf_free(&b);
}

START_TEST(test_protocol_md_examples) {
    char *doc = slurp(PROTOCOL_MD);
    int in_json = 0, lineno = 0, commands = 0, events = 0, errors = 0;
    vt_proto_err pending; /* the parser's error for the previous command line */
    int pending_line = 0;
    char types[16][16];
    int ntypes = 0;
    for (char *line = doc, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        if (strncmp(line, "```", 3) == 0) {
            ck_assert_msg(!pending_line, "PROTOCOL.md line %d: rejected command without its error",
                          pending_line);
            in_json = !in_json && strcmp(line, "```json") == 0;
            continue;
        }
        if (!in_json || line[0] == '\0')
            continue;
        if (strncmp(line, "{\"seq\":", 7) == 0) {
            char why[256];
            ck_assert_msg(check_server_line(line, strlen(line), why, sizeof why) == 0,
                          "PROTOCOL.md line %d: %s", lineno, why);
            if (pending_line) {
                check_error_matches(line, &pending, lineno);
                pending_line = 0;
                errors++;
            }
            cJSON *o = cJSON_Parse(line);
            const char *t = cJSON_GetObjectItem(o, "type")->valuestring;
            int seen = 0;
            for (int i = 0; i < ntypes; i++)
                seen |= strcmp(types[i], t) == 0;
            if (!seen && ntypes < 16)
                snprintf(types[ntypes++], sizeof types[0], "%s", t);
            cJSON_Delete(o);
            events++;
            continue;
        }
        ck_assert_msg(!pending_line, "PROTOCOL.md line %d: rejected command without its error",
                      pending_line);
        vt_proto_cmd *cmd;
        if (vt_proto_cmd_parse(line, strlen(line), &cmd, &pending) < 0)
            pending_line = lineno;
        vt_proto_cmd_free(&cmd);
        commands++;
    }
    ck_assert_msg(!pending_line, "PROTOCOL.md line %d: rejected command without its error",
                  pending_line);
    printf("PROTOCOL.md: %d command lines, %d server lines (%d error examples matched)\n", commands,
           events, errors);
    /* every message type is exemplified */
    static const char *const all[] = {"hello",  "reply",  "error",   "frame",
                                      "object", "stream", "dropped", "model"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        int seen = 0;
        for (int k = 0; k < ntypes; k++)
            seen |= strcmp(types[k], all[i]) == 0;
        ck_assert_msg(seen, "PROTOCOL.md has no example of a %s message", all[i]);
    }
    ck_assert_int_ge(commands, 15);
    ck_assert_int_ge(errors, 5);
    free(doc);
}
END_TEST

START_TEST(test_protocol_md_lists_everything) {
    /* every op, error code and limit value the code knows appears in the document */
    char *doc = slurp(PROTOCOL_MD);
    for (int op = VT_PROTO_OP_HELLO; op < VT_PROTO_OP_COUNT; op++) {
        char h[48];
        snprintf(h, sizeof h, "%s", vt_proto_op_name((vt_proto_op)op));
        ck_assert_msg(strstr(doc, h), "op %s is not documented", h);
    }
    for (int c = VT_PROTO_CODE_BAD_JSON; c <= VT_PROTO_CODE_INTERNAL; c++) {
        char row[48];
        snprintf(row, sizeof row, "| `%s` |", vt_proto_code_name((vt_proto_code)c));
        ck_assert_msg(strstr(doc, row), "error code %s has no row in the table",
                      vt_proto_code_name((vt_proto_code)c));
    }
    static const char *const limits[] = {
        "65536",         "1..64",  "1..256",  "1..2048", "32 entries", "1..1024",  "| 64 |",
        "1..2147483647", "2^53-1", "3..1024", "1e6",     "1..16384",   "128 bytes"};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        ck_assert_msg(strstr(doc, limits[i]), "limit %s is not documented", limits[i]);
    /* and the version */
    char v[32];
    snprintf(v, sizeof v, "version %d", VT_PROTO_VERSION);
    ck_assert_ptr_nonnull(strstr(doc, v));
    free(doc);
}
END_TEST

Suite *doc_suite(void) {
    Suite *s = suite_create("doc");
    tm_add_case(s, "PROTOCOL.md", 0, test_protocol_md_examples, test_protocol_md_lists_everything,
                NULL);
    return s;
}
