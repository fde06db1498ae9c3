/*
 * test_base: Check suite for base/ (vt_base.h). Every expectation is computed by hand from the
 * bytes written next to it.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testmain.h"
#include "vt_base.h"

/* ---------------------------------------------------------------------------------------------
 * vt_fmt / vt_vfmt
 * ------------------------------------------------------------------------------------------- */

/* "a" U+00E9 U+20AC U+1D11E "z": 1 + 2 + 3 + 4 + 1 = 11 bytes; characters start at bytes 0, 1, 3,
 * 6 and 10. */
static const char MIXED[] = "a\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9Ez";

/* For cap = 0..13, the bytes of MIXED that fit: the last character start at or before cap - 1
 * (at most 11). */
static const size_t MIXED_KEEP[] = {
    0,  /* cap 0: nothing written */
    0,  /* cap 1: "" */
    1,  /* cap 2: "a" */
    1,  /* cap 3: "a" + C3 A9 needs 3 bytes of text */
    3,  /* cap 4: "a\u00e9" */
    3,  /* cap 5: E2 82 of the euro sign dropped */
    3,  /* cap 6: E2 82 AC would need 6 bytes of text */
    6,  /* cap 7: "a\u00e9\u20ac" */
    6,  /* cap 8: F0 dropped */
    6,  /* cap 9: F0 9D dropped */
    6,  /* cap 10: F0 9D 84 dropped */
    10, /* cap 11: up to the G clef */
    11, /* cap 12: everything */
    11, /* cap 13: everything */
};

START_TEST(test_fmt_every_cut) {
    const size_t cap = (size_t)_i;
    char buf[16];
    memset(buf, 'X', sizeof buf);
    size_t len = vt_fmt(cap ? buf : NULL, cap, "%s", MIXED);
    ck_assert_uint_eq(len, MIXED_KEEP[cap]);
    if (cap == 0) {
        ck_assert_int_eq(buf[0], 'X');
        return;
    }
    ck_assert_int_eq(buf[len], '\0');
    ck_assert_int_eq(memcmp(buf, MIXED, len), 0);
    ck_assert_int_eq(vt_utf8_check(buf, len, NULL), 0);
    /* Nothing is written past the cap. */
    for (size_t i = cap; i < sizeof buf; i++)
        ck_assert_int_eq(buf[i], 'X');
}
END_TEST

/* The same cuts with text before and after the argument, as in "URL: connecting". */
START_TEST(test_fmt_cut_in_format) {
    char buf[8];
    /* "[" C3 A9 C3 A9 C3 A9 "]": 8 bytes, cap 8 keeps 7 = "[" + 3 x 2 bytes. */
    ck_assert_uint_eq(vt_fmt(buf, sizeof buf, "[%s]", "\xC3\xA9\xC3\xA9\xC3\xA9"), 7);
    ck_assert_str_eq(buf, "[\xC3\xA9\xC3\xA9\xC3\xA9");
    /* "ab" + E2 82 AC + E2 82 AC: 8 bytes, cap 8 -> 7 would end in E2: keep 5. */
    ck_assert_uint_eq(vt_fmt(buf, sizeof buf, "ab%s", "\xE2\x82\xAC\xE2\x82\xAC"), 5);
    ck_assert_str_eq(buf, "ab\xE2\x82\xAC");
    /* "%d-" + F0 9F 98 80 (U+1F600): "12345-" is 6 bytes, the emoji does not fit: keep 6. */
    ck_assert_uint_eq(vt_fmt(buf, sizeof buf, "%d-%s", 12345, "\xF0\x9F\x98\x80"), 6);
    ck_assert_str_eq(buf, "12345-");
    /* Fits exactly: 7 bytes of text in 8. */
    ck_assert_uint_eq(vt_fmt(buf, sizeof buf, "%s", "x\xF0\x9F\x98\x80yz"), 7);
    ck_assert_str_eq(buf, "x\xF0\x9F\x98\x80yz");
}
END_TEST

START_TEST(test_fmt_untruncated) {
    char buf[32];
    ck_assert_uint_eq(vt_fmt(buf, sizeof buf, "%s=%d", "\xC3\xA9t\xC3\xA9", 42), 8);
    ck_assert_str_eq(buf, "\xC3\xA9t\xC3\xA9=42");
    /* An argument that itself ends inside a character loses that incomplete tail. */
    ck_assert_uint_eq(vt_fmt(buf, sizeof buf, "%s", "ab\xE2\x82"), 2);
    ck_assert_str_eq(buf, "ab");
    /* Stray bytes elsewhere are the caller's: they are not the formatter's to repair. */
    ck_assert_uint_eq(vt_fmt(buf, sizeof buf, "%s", "\xFFz"), 2);
    ck_assert_str_eq(buf, "\xFFz");
    /* Empty output. */
    ck_assert_uint_eq(vt_fmt(buf, sizeof buf, "%s", ""), 0);
    ck_assert_str_eq(buf, "");
}
END_TEST

static size_t via_va(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static size_t via_va(char *dst, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n = vt_vfmt(dst, cap, fmt, ap);
    va_end(ap);
    return n;
}

START_TEST(test_vfmt) {
    char buf[5];
    /* "x" + E2 82 AC + "y": 5 bytes, cap 5 keeps 4 = "x\u20ac". */
    ck_assert_uint_eq(via_va(buf, sizeof buf, "x%sy", "\xE2\x82\xAC"), 4);
    ck_assert_str_eq(buf, "x\xE2\x82\xAC");
    /* cap 4: "x" + E2 82 would remain: keep "x". */
    ck_assert_uint_eq(via_va(buf, 4, "x%sy", "\xE2\x82\xAC"), 1);
    ck_assert_str_eq(buf, "x");
    ck_assert_uint_eq(via_va(NULL, 10, "%d", 7), 0);
}
END_TEST

/* A long URL of two-byte characters cut at every length of a 512- and a 256-byte buffer: the
 * shape of a source error message, never split. */
START_TEST(test_fmt_long_url) {
    char url[1200], buf[512];
    size_t n = (size_t)vt_fmt(url, sizeof url, "%s", "rtsp://cam/");
    while (n + 2 < sizeof url - 1) {
        memcpy(url + n, "\xC3\xA9", 2);
        n += 2;
    }
    url[n] = '\0';
    for (size_t cap = 1; cap <= sizeof buf; cap++) {
        size_t len = vt_fmt(buf, cap, "%s: connecting (attempt %d)", url, 1);
        ck_assert_uint_lt(len, cap);
        ck_assert_int_eq(vt_utf8_check(buf, len, NULL), 0);
        /* 11 ASCII bytes, then pairs: the cut drops at most one byte. */
        ck_assert_uint_ge(len + 2, cap);
        ck_assert(len <= 11 || (len - 11) % 2 == 0);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * vt_utf8_check
 * ------------------------------------------------------------------------------------------- */

static const struct utf8_case {
    const char *s;
    size_t n; /* 0: strlen */
    int ok;
    size_t bad_at;
} utf8_cases[] = {
    /* valid */
    {"", 0, 1, 0},
    {"plain ascii, longer than eight bytes", 0, 1, 0},
    {"a\0b", 3, 1, 0},                             /* U+0000 is a character */
    {"\x7f", 0, 1, 0},                             /* U+007F, the last one-byte */
    {"\xC2\x80\xDF\xBF", 0, 1, 0},                 /* U+0080, U+07FF */
    {"\xE0\xA0\x80\xEF\xBF\xBF", 0, 1, 0},         /* U+0800, U+FFFF */
    {"\xED\x9F\xBF\xEE\x80\x80", 0, 1, 0},         /* U+D7FF, U+E000: around the surrogates */
    {"\xF0\x90\x80\x80\xF4\x8F\xBF\xBF", 0, 1, 0}, /* U+10000, U+10FFFF */
    {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9D\x84\x9E", 0, 1, 0},
    /* overlong forms */
    {"\xC0\x80", 0, 0, 0},         /* U+0000 in two bytes */
    {"\xC1\xBF", 0, 0, 0},         /* U+007F in two bytes */
    {"\xE0\x80\x80", 0, 0, 0},     /* U+0000 in three */
    {"\xE0\x9F\xBF", 0, 0, 0},     /* U+07FF in three */
    {"\xF0\x80\x80\x80", 0, 0, 0}, /* U+0000 in four */
    {"\xF0\x8F\xBF\xBF", 0, 0, 0}, /* U+FFFF in four */
    /* surrogates */
    {"\xED\xA0\x80", 0, 0, 0},             /* U+D800 */
    {"\xED\xBF\xBF", 0, 0, 0},             /* U+DFFF */
    {"\xED\xA0\xBD\xED\xB8\x80", 0, 0, 0}, /* a CESU-8 pair */
    /* above U+10FFFF */
    {"\xF4\x90\x80\x80", 0, 0, 0}, /* U+110000 */
    {"\xF5\x80\x80\x80", 0, 0, 0},
    {"\xF7\xBF\xBF\xBF", 0, 0, 0},
    {"\xF8\x88\x80\x80\x80", 0, 0, 0}, /* five-byte form */
    /* bytes that never occur */
    {"\xFE", 0, 0, 0},
    {"\xFF", 0, 0, 0},
    /* stray continuation bytes, bad continuations */
    {"\x80", 0, 0, 0},
    {"abc\xBF", 0, 0, 3},
    {"\xC3\xA9\x80", 0, 0, 2},
    {"\xE2\x28\xA1", 0, 0, 0},
    {"\xC3\x41", 0, 0, 0},
    /* truncated sequences */
    {"\xC3", 0, 0, 0},
    {"a\xE2\x82", 0, 0, 1},
    {"ab\xF0\x9D\x84", 0, 0, 2},
    {"\xE2\x82z", 0, 0, 0},
    {"0123456789\xE2\x82", 0, 0, 10}, /* after the 8-byte ASCII path */
    {"01234567\xED\xA0\x80", 0, 0, 8},
    {"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xF4\x90\x80\x80", 0, 0, 10},
};

START_TEST(test_utf8_table) {
    const struct utf8_case *c = &utf8_cases[_i];
    size_t n = c->n ? c->n : strlen(c->s), at = 999;
    int rc = vt_utf8_check(c->s, n, &at);
    ck_assert_msg(rc == (c->ok ? 0 : -EILSEQ), "case %d: rc %d", _i, rc);
    if (!c->ok)
        ck_assert_msg(at == c->bad_at, "case %d: bad_at %zu, want %zu", _i, at, c->bad_at);
    else
        ck_assert_uint_eq(at, 999); /* untouched */
    ck_assert_int_eq(vt_utf8_check(c->s, n, NULL), rc);
}
END_TEST

/* The announced lengths, byte by byte at the edges of RFC 3629's ranges. */
START_TEST(test_utf8_lead_len) {
    static const struct {
        unsigned char c;
        size_t len;
    } leads[] = {{0x00, 1}, {0x7F, 1}, {0x80, 0}, {0xBF, 0}, {0xC0, 0}, {0xC1, 0}, {0xC2, 2},
                 {0xDF, 2}, {0xE0, 3}, {0xEF, 3}, {0xF0, 4}, {0xF4, 4}, {0xF5, 0}, {0xFF, 0}};
    for (size_t i = 0; i < TM_LEN(leads); i++)
        ck_assert_msg(vt_utf8_lead_len(leads[i].c) == leads[i].len, "0x%02X: %zu", leads[i].c,
                      vt_utf8_lead_len(leads[i].c));
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Memory and files
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_grow) {
    int cap = 0, *v = vt_grow(NULL, sizeof *v, 1, &cap, 4);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(cap, 4);                               /* first */
    ck_assert_ptr_eq(vt_grow(v, sizeof *v, 4, &cap, 4), v); /* room enough: the same array */
    ck_assert_int_eq(cap, 4);
    for (int i = 0; i < 4; i++)
        v[i] = i;
    v = vt_grow(v, sizeof *v, 5, &cap, 4);
    ck_assert_int_eq(cap, 8); /* doubled */
    v = vt_grow(v, sizeof *v, 100, &cap, 4);
    ck_assert_int_eq(cap, 100); /* more than twice: what is needed */
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(v[i], i);                                 /* kept */
    ck_assert_ptr_null(vt_grow(v, (size_t)1 << 62, 200, &cap, 4)); /* too large */
    ck_assert_int_eq(cap, 100);                                    /* untouched, v still valid */
    free(v);
}
END_TEST

START_TEST(test_reserve) {
    uint8_t *buf = NULL;
    size_t cap = 0;
    ck_assert_int_eq(vt_reserve(&buf, &cap, 10), 0);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(cap, 10); /* exactly what is asked */
    memset(buf, 7, 10);
    uint8_t *was = buf;
    ck_assert_int_eq(vt_reserve(&buf, &cap, 4), 0); /* smaller: kept */
    ck_assert_ptr_eq(buf, was);
    ck_assert_uint_eq(cap, 10);
    ck_assert_int_eq(vt_reserve(&buf, &cap, 1000), 0);
    ck_assert_uint_eq(cap, 1000);
    ck_assert_int_eq(buf[9], 7); /* the bytes come along */
    free(buf);
}
END_TEST

START_TEST(test_write_all) {
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    static const char msg[] = "a whole buffer";
    ck_assert_int_eq(vt_write_all(fd[1], msg, sizeof msg), 0);
    char got[sizeof msg];
    ck_assert_int_eq((int)read(fd[0], got, sizeof got), (int)sizeof msg);
    ck_assert_mem_eq(got, msg, sizeof msg);
    close(fd[0]);
    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(vt_write_all(fd[1], msg, sizeof msg), -EPIPE); /* nobody reads */
    close(fd[1]);
    ck_assert_int_eq(vt_write_all(fd[1], msg, sizeof msg), -EBADF);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Clock
 * ------------------------------------------------------------------------------------------- */

/* 100000 readings of each in a row never go back (counted, then checked once: a Check
 * assertion per reading is slow under ASan). */
START_TEST(test_clock_monotonic) {
    int64_t prev_us = vt_mono_us();
    double prev_s = vt_mono_s();
    int back_us = 0, back_s = 0;
    for (int i = 0; i < 100000; i++) {
        int64_t us = vt_mono_us();
        double s = vt_mono_s();
        back_us += us < prev_us;
        back_s += s < prev_s;
        prev_us = us;
        prev_s = s;
    }
    ck_assert_int_eq(back_us, 0);
    ck_assert_int_eq(back_s, 0);
}
END_TEST

START_TEST(test_clock_advances) {
    int64_t us0 = vt_mono_us();
    double s0 = vt_mono_s();
    struct timespec ts = {0, 20 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
    int64_t us1 = vt_mono_us();
    double s1 = vt_mono_s();
    ck_assert_int_ge(us1 - us0, 20000);
    ck_assert(s1 - s0 >= 0.020);
    ck_assert_int_lt(us1 - us0, 10 * 1000000); /* a slow machine, not a wrong unit */
    /* One clock: the two readings agree. */
    ck_assert(s1 - (double)us1 / 1e6 > -0.5 && s1 - (double)us1 / 1e6 < 0.5);
    ck_assert_int_gt(us0, 0);
}
END_TEST

static Suite *base_suite(void) {
    Suite *s = suite_create("base");
    TCase *tc = tm_add_case(s, "fmt", 0, test_fmt_cut_in_format, test_fmt_untruncated, test_vfmt,
                            test_fmt_long_url, NULL);
    tcase_add_loop_test(tc, test_fmt_every_cut, 0, (int)TM_LEN(MIXED_KEEP));
    tc = tm_add_case(s, "utf8", 0, test_utf8_lead_len, NULL);
    tcase_add_loop_test(tc, test_utf8_table, 0, (int)TM_LEN(utf8_cases));
    tm_add_case(s, "memory and files", 0, test_grow, test_reserve, test_write_all, NULL);
    tm_add_case(s, "clock", 0, test_clock_monotonic, test_clock_advances, NULL);
    return s;
}

int main(void) {
    return tm_run(base_suite());
}
