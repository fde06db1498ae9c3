/*
 * libFuzzer target: the command parser, and the line reader in front of it.
 *
 * The input is fed to the NDJSON reader in chunks whose sizes come from the input's first byte;
 * each line it yields goes to the parser; the whole input also goes to the parser as one line.
 * Invariants: lines are never blank, never contain '\n', never exceed the limit, are valid UTF-8;
 * a parse either succeeds with a consistent struct or fails with a code, a valid UTF-8 message
 * and an error that serialises; a successful mask re-encodes to counts that decode the same.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt_proto.h"
#include "fuzz.h"

static void check_mask(const vt_proto_cmd *c) {
    int h = c->track.mask.h, w = c->track.mask.w;
    CHECK(vt_rle_check(c->track.mask.counts, c->track.mask.ncounts, h, w, NULL, 0) == 0);
    CHECK(vt_rle_area(c->track.mask.counts, c->track.mask.ncounts) > 0);
    if ((size_t)h * (size_t)w > (1u << 12))
        return; /* big masks cost milliseconds per input: keep the fuzzer's rate up */
    uint8_t *m = malloc((size_t)h * w), *m2 = malloc((size_t)h * w);
    size_t cap = vt_rle_string_max(h, w), len;
    char *s = malloc(cap);
    CHECK(vt_rle_decode(c->track.mask.counts, c->track.mask.ncounts, h, w, m, (size_t)w) == 0);
    CHECK(vt_rle_encode_string(m, h, w, (size_t)w, s, cap, &len) == 0);
    CHECK(vt_rle_decode_string(s, len, h, w, m2, (size_t)w, NULL, 0) == 0);
    CHECK(memcmp(m, m2, (size_t)h * w) == 0);
    free(m), free(m2), free(s);
}

static void parse_line(const char *line, size_t len, vt_proto_buf *b) {
    vt_proto_cmd *c = NULL;
    vt_proto_err e;
    int rc = vt_proto_cmd_parse(line, len, &c, &e);
    if (rc < 0) {
        CHECK(c == NULL);
        CHECK(e.code != VT_PROTO_CODE_OK);
        CHECK(vt_utf8_check(e.message, strlen(e.message), NULL) == 0);
        CHECK(vt_utf8_check(e.field, strlen(e.field), NULL) == 0);
        b->len = 0;
        CHECK(vt_proto_write_error(b, &e) == 0);
        return;
    }
    CHECK(c && c->op >= VT_PROTO_OP_HELLO && c->op < VT_PROTO_OP_COUNT);
    if (c->op == VT_PROTO_OP_TRACK && c->track.shape == VT_PROTO_SHAPE_MASK)
        check_mask(c);
    if (c->op == VT_PROTO_OP_TRACK && c->track.shape == VT_PROTO_SHAPE_POLYGON)
        CHECK(c->track.polygon.npoints >= 3);
    /* an accepted id must be echoable: the reply it goes into is valid JSON */
    vt_proto_reply r = {.op = VT_PROTO_OP_HELLO, .id = &c->id};
    b->len = 0;
    CHECK(vt_proto_write_reply(b, &r) == 0);
    char line2[VT_PROTO_ID_MAX + 128];
    snprintf(line2, sizeof line2, "{\"seq\":1,%s", b->data);
    cJSON *o = cJSON_Parse(line2);
    CHECK(o != NULL);
    cJSON_Delete(o);
    vt_proto_cmd_free(&c);
    CHECK(c == NULL);
}

/* libFuzzer's entry point: called with each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vt_proto_buf b = VT_PROTO_BUF_INIT;
    parse_line((const char *)data, size, &b);

    if (size > 0) {
        size_t chunk = 1 + data[0] % 17;
        vt_ndjson_reader *r;
        CHECK(vt_ndjson_reader_new(256, &r) == 0);
        for (size_t off = 0; off < size; off += chunk) {
            const char *p = (const char *)data + off, *line;
            size_t n = size - off < chunk ? size - off : chunk, ll;
            int rc;
            while ((rc = vt_ndjson_next(r, &p, &n, &line, &ll)) != 0) {
                CHECK(vt_ndjson_pending(r) <= 257);
                if (rc < 0)
                    continue;
                CHECK(ll > 0 && ll <= 256 && !memchr(line, '\n', ll));
                CHECK(vt_utf8_check(line, ll, NULL) == 0);
                parse_line(line, ll, &b);
            }
        }
        const char *line;
        size_t ll;
        if (vt_ndjson_flush(r, &line, &ll) == 1)
            parse_line(line, ll, &b);
        vt_ndjson_reader_free(&r);
    }
    vt_proto_buf_free(&b);
    return 0;
}
