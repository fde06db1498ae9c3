/*
 * Framing: every chunking of the same bytes (whole, 1-byte chunks, every 2- and 3-way split,
 * random splits) must give the same lines and errors, including splits inside "\r\n" and inside
 * UTF-8 sequences; over-long lines are reported without being buffered; the writer's lines parse
 * back. Expected results are written out by hand for each input.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_test.h"
#include "vt_proto.h"

#define MAX_EVENTS 16

/* One observed result: "L:<line>" for a line, "E:MSGSIZE", "E:ILSEQ:<line>". */
typedef struct events {
    char ev[MAX_EVENTS][128];
    int n;
    size_t max_pending;
} events;

/* Record `what` followed by s[0..n). */
static void record(events *e, const char *what, const char *s, size_t n) {
    if (e->n >= MAX_EVENTS)
        ck_abort_msg("too many results");
    snprintf(e->ev[e->n++], sizeof e->ev[0], "%s%.*s", what, (int)n, s);
}

static void take(events *e, int rc, const char *line, size_t len) {
    if (rc == 1)
        record(e, "L:", line, len);
    else if (rc == -EMSGSIZE)
        record(e, "E:MSGSIZE", "", 0);
    else if (rc == -EILSEQ)
        record(e, "E:ILSEQ:", line, len);
    else
        ck_abort_msg("unexpected return %d", rc);
}

/* Feed in[0..n) cut at cuts[0..ncuts) (ascending), then flush. */
static void run(const char *in, size_t n, const size_t *cuts, int ncuts, size_t max_line,
                events *e) {
    vt_ndjson_reader *r;
    if (vt_ndjson_reader_new(max_line, &r) != 0)
        ck_abort_msg("reader_new failed");
    memset(e, 0, sizeof *e);
    size_t prev = 0;
    for (int c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        /* A private copy per chunk so that ASan catches reads outside the chunk. */
        char *chunk = malloc(end - prev + 1);
        memcpy(chunk, in + prev, end - prev);
        const char *p = chunk, *line;
        size_t len = end - prev, ll;
        int rc;
        while ((rc = vt_ndjson_next(r, &p, &len, &line, &ll)) != 0) {
            take(e, rc, line, ll);
            if (vt_ndjson_pending(r) > e->max_pending)
                e->max_pending = vt_ndjson_pending(r);
        }
        if (vt_ndjson_pending(r) > e->max_pending)
            e->max_pending = vt_ndjson_pending(r);
        if (len != 0)
            ck_abort_msg("chunk not consumed");
        free(chunk);
        prev = end;
    }
    const char *line;
    size_t ll;
    int rc = vt_ndjson_flush(r, &line, &ll);
    if (rc != 0)
        take(e, rc, line, ll);
    if (vt_ndjson_pending(r) != 0)
        ck_abort_msg("bytes left after flush");
    vt_ndjson_reader_free(&r);
    if (r)
        ck_abort_msg("free did not clear the pointer");
}

/* Plain comparisons, asserting only on failure: Check writes a record for every passing
 * assertion, and this runs for thousands of chunkings. */
static void expect(const events *e, const char *const *want, const char *name, const char *how) {
    int nwant = 0;
    while (want[nwant])
        nwant++;
    if (e->n != nwant)
        ck_abort_msg("%s (%s): %d results, want %d (first: %s)", name, how, e->n, nwant,
                     e->n ? e->ev[0] : "-");
    for (int i = 0; i < nwant; i++)
        if (strcmp(e->ev[i], want[i]) != 0)
            ck_abort_msg("%s (%s): result %d is '%s', want '%s'", name, how, i, e->ev[i], want[i]);
}

static const struct framing_case {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen(in) */
    size_t max_line;
    const char *want[8];
} framing_cases[] = {
    {"two lines", "{\"a\":1}\n{\"b\":2}\n", 0, 0, {"L:{\"a\":1}", "L:{\"b\":2}"}},
    {"crlf", "a\r\nbc\r\n", 0, 0, {"L:a", "L:bc"}},
    {"blank lines", "\n\n  \n\r\n\t \r\na\n\n\r\n", 0, 0, {"L:a"}},
    {"no input", "", 0, 0, {NULL}},
    {"utf8",
     "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n\"\xc3\xa9\"\r\n",
     0,
     0,
     {"L:\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "L:\"\xc3\xa9\""}},
    {"unterminated last line", "a\nb", 0, 0, {"L:a", "L:b"}},
    {"unterminated crlf tail", "a\nb\r", 0, 0, {"L:a", "L:b"}},
    {"cr inside a line", "a\rb\n\r\r\n", 0, 0, {"L:a\rb", "L:\r"}},
    {"invalid utf8 then resync", "a\n\xff\nb\n", 0, 0, {"L:a", "E:ILSEQ:\xff", "L:b"}},
    {"surrogate", "\xed\xa0\x80x\n", 0, 0, {"E:ILSEQ:\xed\xa0\x80x"}},
    {"overlong", "\xc0\xaf\n", 0, 0, {"E:ILSEQ:\xc0\xaf"}},
    {"nul byte kept", "a\0b\n", 4, 0, {"L:a"}}, /* "%.*s" stops at NUL: checked separately */
    {"at the limit", "01234567\n01234567\r\n", 0, 8, {"L:01234567", "L:01234567"}},
    {"one over", "012345678\nok\n", 0, 8, {"E:MSGSIZE", "L:ok"}},
    {"one over with cr", "012345678\r\nok\n", 0, 8, {"E:MSGSIZE", "L:ok"}},
    {"cr not at the end", "01234567\rx\nok\n", 0, 8, {"E:MSGSIZE", "L:ok"}},
    {"long then short", "0123456789abcdefghij0123456789\nx\n", 0, 8, {"E:MSGSIZE", "L:x"}},
    {"long unterminated", "ok\n0123456789abcdef", 0, 8, {"L:ok", "E:MSGSIZE"}},
    {"two long", "0123456789\n0123456789\r\nyes\n", 0, 8, {"E:MSGSIZE", "E:MSGSIZE", "L:yes"}},
};

static void check_all_chunkings(const struct framing_case *fc) {
    const char *in = fc->in;
    size_t n = fc->len ? fc->len : strlen(in);
    events e;
    size_t cuts[64];
    run(in, n, NULL, 0, fc->max_line, &e);
    expect(&e, fc->want, fc->name, "whole");
    /* 1-byte chunks */
    for (size_t i = 1; i < n && i <= 64; i++)
        cuts[i - 1] = i;
    if (n <= 65) {
        run(in, n, cuts, n ? (int)n - 1 : 0, fc->max_line, &e);
        expect(&e, fc->want, fc->name, "1-byte chunks");
    }
    /* every 2- and 3-way split */
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            cuts[0] = i, cuts[1] = j;
            run(in, n, cuts, 2, fc->max_line, &e);
            char how[48];
            snprintf(how, sizeof how, "split at %zu and %zu", i, j);
            expect(&e, fc->want, fc->name, how);
        }
    }
    /* random chunkings */
    unsigned long long seed = 0x9E3779B97F4A7C15ULL;
    for (int t = 0; t < 50; t++) {
        int nc = 0;
        for (size_t p = 0; nc < 64;) {
            p += 1 + test_rand(&seed) % 5;
            if (p >= n)
                break;
            cuts[nc++] = p;
        }
        run(in, n, cuts, nc, fc->max_line, &e);
        expect(&e, fc->want, fc->name, "random chunks");
    }
    /* Memory bound: a partial line never holds more than max_line + 1 bytes. */
    size_t max = fc->max_line ? fc->max_line : VT_PROTO_LINE_MAX;
    ck_assert_uint_le(e.max_pending, max + 1);
}

START_TEST(test_framing_table) {
    check_all_chunkings(&framing_cases[_i]);
}
END_TEST

START_TEST(test_framing_nul_byte) {
    /* A NUL is valid UTF-8: the line is delivered whole and the parser rejects it later. */
    vt_ndjson_reader *r;
    ck_assert_int_eq(vt_ndjson_reader_new(0, &r), 0);
    const char in[] = "a\0b\n";
    const char *p = in, *line;
    size_t n = 4, ll;
    ck_assert_int_eq(vt_ndjson_next(r, &p, &n, &line, &ll), 1);
    ck_assert_uint_eq(ll, 3);
    ck_assert_int_eq(memcmp(line, "a\0b", 3), 0);
    ck_assert_int_eq(vt_ndjson_next(r, &p, &n, &line, &ll), 0);
    vt_ndjson_reader_free(&r);
}
END_TEST

START_TEST(test_framing_huge_line_bounded) {
    /* 1 MiB without a newline in 4 KiB chunks at the default limit: one error, at most 64 KiB + 1
     * held, then the next line is read normally. */
    vt_ndjson_reader *r;
    ck_assert_int_eq(vt_ndjson_reader_new(0, &r), 0);
    char *chunk = malloc(4096);
    memset(chunk, 'x', 4096);
    int errors = 0;
    const char *line;
    size_t ll;
    for (int i = 0; i < 256; i++) {
        const char *p = chunk;
        size_t n = 4096;
        int rc;
        while ((rc = vt_ndjson_next(r, &p, &n, &line, &ll)) != 0) {
            ck_assert_int_eq(rc, -EMSGSIZE);
            errors++;
        }
        ck_assert_uint_le(vt_ndjson_pending(r), VT_PROTO_LINE_MAX + 1);
    }
    ck_assert_int_eq(errors, 1);
    const char tail[] = "xxx\n{\"op\":\"list\"}\n";
    const char *p = tail;
    size_t n = sizeof tail - 1;
    ck_assert_int_eq(vt_ndjson_next(r, &p, &n, &line, &ll), 1);
    ck_assert_uint_eq(ll, 13);
    ck_assert_int_eq(memcmp(line, "{\"op\":\"list\"}", 13), 0);
    ck_assert_int_eq(vt_ndjson_next(r, &p, &n, &line, &ll), 0);
    free(chunk);
    vt_ndjson_reader_free(&r);
    vt_ndjson_reader_free(&r); /* NULL is fine */
}
END_TEST

START_TEST(test_framing_exact_default_limit) {
    vt_ndjson_reader *r;
    ck_assert_int_eq(vt_ndjson_reader_new(0, &r), 0);
    size_t n = VT_PROTO_LINE_MAX + 2;
    char *in = malloc(n);
    memset(in, 'a', n);
    in[n - 2] = '\r';
    in[n - 1] = '\n';
    /* fed in two pieces, so the line is assembled in the reader's buffer */
    const char *p = in, *line;
    size_t len = 1000, ll;
    ck_assert_int_eq(vt_ndjson_next(r, &p, &len, &line, &ll), 0);
    len = n - 1000;
    ck_assert_int_eq(vt_ndjson_next(r, &p, &len, &line, &ll), 1);
    ck_assert_uint_eq(ll, VT_PROTO_LINE_MAX);
    free(in);
    vt_ndjson_reader_free(&r);
}
END_TEST

static const struct utf8_case {
    const char *s;
    int ok;
    size_t bad_at;
} utf8_cases[] = {
    {"plain ascii, longer than eight bytes", 1, 0},
    {"\xc2\x80\xdf\xbf", 1, 0},                 /* U+0080, U+07FF */
    {"\xe0\xa0\x80\xef\xbf\xbf", 1, 0},         /* U+0800, U+FFFF */
    {"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 1, 0}, /* U+10000, U+10FFFF */
    {"abc\x80", 0, 3},                          /* stray continuation */
    {"\xc0\x80", 0, 0},                         /* overlong NUL */
    {"\xc1\xbf", 0, 0},                         /* overlong */
    {"\xe0\x9f\xbf", 0, 0},                     /* overlong 3-byte */
    {"\xed\xa0\x80", 0, 0},                     /* surrogate U+D800 */
    {"\xf0\x8f\xbf\xbf", 0, 0},                 /* overlong 4-byte */
    {"\xf4\x90\x80\x80", 0, 0},                 /* U+110000 */
    {"\xf5\x80\x80\x80", 0, 0},
    {"0123456789\xe2\x82", 0, 10}, /* truncated at the end, after the 8-byte fast path */
    {"\xe2\x28\xa1", 0, 0},        /* bad continuation */
    {"\xfe", 0, 0},
};

START_TEST(test_utf8_table) {
    const struct utf8_case *c = &utf8_cases[_i];
    size_t at = 999;
    int rc = vt_utf8_check(c->s, strlen(c->s), &at);
    ck_assert_int_eq(rc, c->ok ? 0 : -EILSEQ);
    if (!c->ok)
        ck_assert_uint_eq(at, c->bad_at);
}
END_TEST

START_TEST(test_writer) {
    vt_proto_buf b = VT_PROTO_BUF_INIT;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "x\"y\\\n");
    cJSON_AddNumberToObject(o, "n", 3);
    cJSON *arr = cJSON_AddArrayToObject(o, "a");
    cJSON_AddItemToArray(arr, cJSON_CreateTrue());
    ck_assert_int_eq(vt_ndjson_write(&b, o), 0);
    ck_assert_str_eq(b.data, "{\"type\":\"x\\\"y\\\\\\n\",\"n\":3,\"a\":[true]}\n");
    size_t first = b.len;
    ck_assert_int_eq(vt_ndjson_write(&b, o), 0); /* appends */
    ck_assert_uint_eq(b.len, 2 * first);
    ck_assert_int_eq(memcmp(b.data, b.data + first, first), 0);
    ck_assert_int_eq(vt_ndjson_write(&b, NULL), -EINVAL);
    ck_assert_uint_eq(b.len, 2 * first);

    /* Reusing the buffer allocates nothing more (a bug once doubled it on every call). */
    size_t cap = b.cap;
    for (int i = 0; i < 100; i++) {
        b.len = 0;
        ck_assert_int_eq(vt_ndjson_write(&b, o), 0);
    }
    ck_assert_uint_eq(b.cap, cap);
    cJSON_Delete(o);

    /* A line larger than the buffer's first sizes: 200 KB of text in one string. */
    b.len = 0;
    char *big = malloc(200001);
    memset(big, 'q', 200000);
    big[200000] = '\0';
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "s", big);
    ck_assert_int_eq(vt_ndjson_write(&b, o), 0);
    ck_assert_uint_eq(b.len, 200000 + 8 + 1);
    ck_assert_int_eq(b.data[b.len - 1], '\n');
    ck_assert_ptr_null(memchr(b.data, '\n', b.len - 1));
    cJSON *back = cJSON_ParseWithLength(b.data, b.len);
    ck_assert_ptr_nonnull(back);
    ck_assert_uint_eq(strlen(cJSON_GetObjectItem(back, "s")->valuestring), 200000);
    cJSON_Delete(back);
    cJSON_Delete(o);
    free(big);
    vt_proto_buf_free(&b);
    ck_assert_ptr_null(b.data);
    vt_proto_buf_free(&b);
}
END_TEST

Suite *ndjson_suite(void) {
    Suite *s = suite_create("ndjson");
    TCase *tc = tm_add_case(s, "framing", 60, test_framing_nul_byte, test_framing_huge_line_bounded,
                            test_framing_exact_default_limit, NULL);
    tcase_add_loop_test(tc, test_framing_table, 0, (int)TM_LEN(framing_cases));
    tc = tm_add_case(s, "utf8", 0, NULL);
    tcase_add_loop_test(tc, test_utf8_table, 0, (int)TM_LEN(utf8_cases));
    tm_add_case(s, "writer", 0, test_writer, NULL);
    return s;
}
