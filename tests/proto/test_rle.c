/*
 * COCO RLE against independent truth: four vectors produced with pycocotools' own C code
 * (rleToString) and hand-computed areas and boxes; random masks against a naive column-major
 * reference encoder written here pixel by pixel; round trips; the string-length bound; malformed
 * strings.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto_test.h"
#include "vt_base.h"
#include "vt_proto.h"

/* Row-major h x w mask with a filled rectangle x0..x1, y0..y1 (inclusive), value v. */
static uint8_t *rect_mask(int h, int w, int x0, int x1, int y0, int y1, uint8_t v) {
    uint8_t *m = calloc((size_t)h * w, 1);
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            m[y * w + x] = v;
    return m;
}

/* The pycocotools 64x64 vector (rectangle x=20..49, y=10..29); its backslash is one RLE character.
 */
#define RECT64_RLE "ZX1d0\\1000000000000000000000000000000000000000000000000000000000fk0"

static const struct vector {
    const char *name;
    int h, w, x0, x1, y0, y1; /* object rectangle; x0 < 0 = empty */
    uint32_t counts[8];
    int ncounts; /* 0: not listed (the 64x64 case, checked through its string) */
    const char *str;
    uint64_t area;
    int bbox[4];
} vectors[] = {
    {"3x4 block", 3, 4, 1, 2, 1, 2, {4, 2, 1, 2, 3}, 5, "42102", 4, {1, 1, 2, 2}},
    {"2x2 ones", 2, 2, 0, 1, 0, 1, {0, 4}, 2, "04", 4, {0, 0, 2, 2}},
    {"2x3 empty", 2, 3, -1, -1, -1, -1, {6}, 1, "6", 0, {0, 0, 0, 0}},
    {"64x64 rectangle", 64, 64, 20, 49, 10, 29, {0}, 0, RECT64_RLE, 600, {20, 10, 30, 20}},
};

START_TEST(test_vectors) {
    const struct vector *v = &vectors[_i];
    uint8_t *m = v->x0 < 0 ? calloc((size_t)v->h * v->w, 1)
                           : rect_mask(v->h, v->w, v->x0, v->x1, v->y0, v->y1, 255);
    uint32_t counts[128];
    size_t n;
    ck_assert_int_eq(vt_rle_encode(m, v->h, v->w, (size_t)v->w, counts, 128, &n), 0);
    if (v->ncounts) {
        ck_assert_uint_eq(n, (size_t)v->ncounts);
        for (int i = 0; i < v->ncounts; i++)
            ck_assert_uint_eq(counts[i], v->counts[i]);
    } else {
        /* 64x64: hand-derived runs: 20 columns + 10 rows of background, then 30 columns of
         * 20 object rows separated by 44 background rows, then the rest (61 runs). */
        ck_assert_uint_eq(n, 61);
        ck_assert_uint_eq(counts[0], 20 * 64 + 10);
        for (size_t i = 1; i < 60; i++)
            ck_assert_uint_eq(counts[i], i & 1 ? 20 : 44);
        ck_assert_uint_eq(counts[60], 4096 - 1290 - 30 * 20 - 29 * 44);
    }
    char s[256];
    size_t len;
    ck_assert_int_eq(vt_rle_encode_string(m, v->h, v->w, (size_t)v->w, s, sizeof s, &len), 0);
    ck_assert_str_eq(s, v->str);
    ck_assert_uint_eq(len, strlen(v->str));
    ck_assert_int_eq(vt_rle_counts_to_string(counts, n, s, sizeof s, &len), 0);
    ck_assert_str_eq(s, v->str);

    uint32_t back[128];
    size_t nb;
    char err[128];
    ck_assert_int_eq(vt_rle_counts_from_string(v->str, strlen(v->str), v->h, v->w, back, 128, &nb,
                                               err, sizeof err),
                     0);
    ck_assert_uint_eq(nb, n);
    ck_assert_int_eq(memcmp(back, counts, n * sizeof *counts), 0);

    ck_assert_uint_eq(vt_rle_area(counts, n), v->area);
    int bb[4];
    vt_rle_bbox(counts, n, v->h, v->w, bb);
    ck_assert_int_eq(memcmp(bb, v->bbox, sizeof bb), 0);
    uint64_t area;
    size_t nc;
    ck_assert_int_eq(
        vt_rle_string_measure(v->str, strlen(v->str), v->h, v->w, &area, bb, &nc, err, sizeof err),
        0);
    ck_assert_uint_eq(area, v->area);
    ck_assert_uint_eq(nc, n);
    ck_assert_int_eq(memcmp(bb, v->bbox, sizeof bb), 0);

    uint8_t *d = malloc((size_t)v->h * v->w);
    ck_assert_int_eq(
        vt_rle_decode_string(v->str, strlen(v->str), v->h, v->w, d, (size_t)v->w, err, sizeof err),
        0);
    int wrong = 0;
    for (int i = 0; i < v->h * v->w; i++)
        wrong += d[i] != (m[i] != 0);
    ck_assert_int_eq(wrong, 0);
    free(d);
    free(m);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Random masks against a naive reference
 * ------------------------------------------------------------------------------------------- */

/* pycocotools' rleEncode, transcribed directly: walk the pixels in column-major order. */
static size_t naive_counts(const uint8_t *m, int h, int w, size_t stride, uint32_t *out) {
    size_t k = 0;
    uint32_t c = 0;
    int p = 0;
    for (int x = 0; x < w; x++)
        for (int y = 0; y < h; y++) {
            int v = m[(size_t)y * stride + x] != 0;
            if (v != p) {
                out[k++] = c;
                c = 0;
                p = v;
            }
            c++;
        }
    out[k++] = c;
    return k;
}

static void naive_bbox(const uint8_t *m, int h, int w, size_t stride, int bb[4]) {
    int xs = w, xe = -1, ys = h, ye = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (m[(size_t)y * stride + x]) {
                xs = x < xs ? x : xs, xe = x > xe ? x : xe;
                ys = y < ys ? y : ys, ye = y > ye ? y : ye;
            }
    if (xe < 0) {
        bb[0] = bb[1] = bb[2] = bb[3] = 0;
        return;
    }
    bb[0] = xs, bb[1] = ys, bb[2] = xe - xs + 1, bb[3] = ye - ys + 1;
}

enum pattern { P_ZERO, P_ONE, P_NOISE, P_BLOBS, P_CHECKER, P_STRIPES, P_COUNT };

/* Fill a mask; nonzero values vary (1, 7, 255) because any nonzero byte is object. */
static void fill(uint8_t *m, int h, int w, size_t stride, enum pattern p, unsigned long long *s) {
    int nb = 1 + (int)(test_rand(s) % 4);
    int bx[4], by[4], br[4];
    for (int i = 0; i < nb; i++) {
        bx[i] = (int)(test_rand(s) % (unsigned)w), by[i] = (int)(test_rand(s) % (unsigned)h);
        br[i] = 1 + (int)(test_rand(s) % (unsigned)(1 + (h < w ? h : w) / 2));
    }
    unsigned density = (unsigned)(test_rand(s) % 101);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int v = 0;
            switch (p) {
            case P_ZERO:
                break;
            case P_ONE:
                v = 1;
                break;
            case P_NOISE:
                v = test_rand(s) % 100 < density;
                break;
            case P_BLOBS:
                for (int i = 0; i < nb; i++)
                    v |= (x - bx[i]) * (x - bx[i]) + (y - by[i]) * (y - by[i]) <= br[i] * br[i];
                break;
            case P_CHECKER:
                v = (x + y) & 1;
                break;
            case P_STRIPES:
                v = y & 1;
                break;
            default:
                break;
            }
            static const uint8_t on[] = {1, 7, 255};
            m[(size_t)y * stride + x] = v ? on[(x + y) % 3] : 0;
        }
    /* Garbage in the row padding must be ignored. */
    for (int y = 0; y < h; y++)
        for (size_t x = (size_t)w; x < stride; x++)
            m[(size_t)y * stride + x] = 0xAA;
}

static void round_trip(int h, int w, size_t stride, enum pattern p, unsigned long long *seed) {
    uint8_t *m = malloc((size_t)h * stride);
    fill(m, h, w, stride, p, seed);
    size_t cap = vt_rle_counts_max(h, w);
    uint32_t *want = malloc(cap * sizeof *want), *got = malloc(cap * sizeof *got);
    size_t nwant = naive_counts(m, h, w, stride, want), ngot;
    ck_assert_int_eq(vt_rle_encode(m, h, w, stride, got, cap, &ngot), 0);
    ck_assert_msg(ngot == nwant, "%dx%d pattern %d: %zu counts, want %zu", h, w, p, ngot, nwant);
    ck_assert_msg(memcmp(got, want, nwant * sizeof *want) == 0, "%dx%d pattern %d: counts differ",
                  h, w, p);

    size_t scap = vt_rle_string_max(h, w), len, len2;
    char *s = malloc(scap), *s2 = malloc(scap);
    ck_assert_int_eq(vt_rle_encode_string(m, h, w, stride, s, scap, &len), 0);
    ck_assert_uint_lt(len, scap);
    ck_assert_uint_eq(strlen(s), len);
    ck_assert_int_eq(vt_rle_counts_to_string(want, nwant, s2, scap, &len2), 0);
    ck_assert_str_eq(s, s2);

    /* back to counts and to a mask (with a different stride) */
    char err[128];
    size_t nback;
    ck_assert_int_eq(vt_rle_counts_from_string(s, len, h, w, got, cap, &nback, err, sizeof err), 0);
    ck_assert_uint_eq(nback, nwant);
    ck_assert_int_eq(memcmp(got, want, nwant * sizeof *want), 0);
    size_t dstride = (size_t)w + 3;
    uint8_t *d = malloc((size_t)h * dstride), *d2 = malloc((size_t)h * w);
    ck_assert_int_eq(vt_rle_decode_string(s, len, h, w, d, dstride, err, sizeof err), 0);
    ck_assert_int_eq(vt_rle_decode(want, nwant, h, w, d2, (size_t)w), 0);
    /* plain loops: Check records every passing assertion with a write(), too slow per pixel */
    size_t wrong = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int v = m[(size_t)y * stride + x] != 0;
            wrong += d[(size_t)y * dstride + x] != v || d2[(size_t)y * w + x] != v;
        }
    ck_assert_msg(wrong == 0, "%dx%d pattern %d: %zu pixels differ after decoding", h, w, p, wrong);

    /* area and box without decoding */
    uint64_t area = 0, area2;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            area += m[(size_t)y * stride + x] != 0;
    int bb[4], bb2[4], bb3[4];
    naive_bbox(m, h, w, stride, bb);
    vt_rle_bbox(want, nwant, h, w, bb2);
    ck_assert_uint_eq(vt_rle_area(want, nwant), area);
    ck_assert_msg(memcmp(bb, bb2, sizeof bb) == 0, "%dx%d: bbox [%d,%d,%d,%d] want [%d,%d,%d,%d]",
                  h, w, bb2[0], bb2[1], bb2[2], bb2[3], bb[0], bb[1], bb[2], bb[3]);
    ck_assert_int_eq(vt_rle_string_measure(s, len, h, w, &area2, bb3, NULL, err, sizeof err), 0);
    ck_assert_uint_eq(area2, area);
    ck_assert_int_eq(memcmp(bb, bb3, sizeof bb), 0);

    free(m), free(want), free(got), free(s), free(s2), free(d), free(d2);
}

START_TEST(test_round_trip_edge_sizes) {
    unsigned long long seed = 42;
    static const int sizes[][2] = {{1, 1}, {1, 2}, {2, 1},  {1, 17}, {17, 1},   {8, 8},
                                   {9, 7}, {7, 9}, {3, 64}, {64, 3}, {1, 1000}, {1000, 1}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int p = 0; p < P_COUNT; p++) {
            round_trip(sizes[i][0], sizes[i][1], (size_t)sizes[i][1], (enum pattern)p, &seed);
            round_trip(sizes[i][0], sizes[i][1], (size_t)sizes[i][1] + 5, (enum pattern)p, &seed);
        }
}
END_TEST

START_TEST(test_round_trip_random) {
    unsigned long long seed = 7 + (unsigned long long)_i;
    for (int t = 0; t < 40; t++) {
        int h = 1 + (int)(test_rand(&seed) % 150), w = 1 + (int)(test_rand(&seed) % 150);
        size_t stride = (size_t)w + test_rand(&seed) % 9;
        round_trip(h, w, stride, (enum pattern)(test_rand(&seed) % P_COUNT), &seed);
    }
}
END_TEST

START_TEST(test_round_trip_1080p) {
    unsigned long long seed = 1080;
    for (int p = 0; p < P_COUNT; p++)
        round_trip(1080, 1920, 1920, (enum pattern)p, &seed);
}
END_TEST

START_TEST(test_string_bound) {
    /* The proven bound against the masks that produce the longest strings: isolated pixels
     * (many short runs) and runs whose lengths alternate wildly (long deltas). */
    static const int sizes[][2] = {{1, 1}, {1, 16}, {16, 1}, {4, 4}, {31, 33}, {100, 100}};
    unsigned long long seed = 99;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int h = sizes[i][0], w = sizes[i][1];
        size_t cap = vt_rle_string_max(h, w), len;
        ck_assert_uint_eq(cap, (size_t)h * w + 2 * ((size_t)h * w / 16) + 2);
        uint8_t *m = malloc((size_t)h * w);
        char *s = malloc(cap);
        for (int t = 0; t < 200; t++) {
            for (int k = 0; k < h * w; k++)
                m[k] = t % 3 == 0   ? (uint8_t)(k & 1)
                       : t % 3 == 1 ? (uint8_t)(test_rand(&seed) & 1)
                                    : (uint8_t)(test_rand(&seed) % 23 == 0);
            if (vt_rle_encode_string(m, h, w, (size_t)w, s, cap, &len) != 0 || len >= cap)
                ck_abort_msg("%dx%d: string does not fit the bound %zu", h, w, cap);
        }
        free(m), free(s);
    }
    ck_assert_uint_eq(vt_rle_string_max(1080, 1920), 2332802);
    ck_assert_uint_eq(vt_rle_string_max(0, 5), 0);
    ck_assert_uint_eq(vt_rle_string_max(5, VT_RLE_MAX_DIM + 1), 0);
}
END_TEST

START_TEST(test_small_buffers) {
    uint8_t *m = rect_mask(64, 64, 20, 49, 10, 29, 1);
    const char *want = vectors[3].str;
    size_t wl = strlen(want), len = 12345;
    char s[80];
    for (size_t cap = 1; cap <= wl; cap++) {
        /* exactly-sized heap buffers so ASan sees any write past cap */
        char *t = malloc(cap);
        ck_assert_int_eq(vt_rle_encode_string(m, 64, 64, 64, t, cap, &len), -ENOSPC);
        free(t);
    }
    ck_assert_int_eq(vt_rle_encode_string(m, 64, 64, 64, s, wl + 1, &len), 0);
    ck_assert_str_eq(s, want);
    uint32_t *c = malloc(60 * sizeof *c);
    size_t n;
    ck_assert_int_eq(vt_rle_encode(m, 64, 64, 64, c, 60, &n), -ENOSPC);
    ck_assert_uint_eq(n, 61); /* tells the caller how many it needs */
    free(c);
    uint32_t big[61];
    char err[96];
    ck_assert_int_eq(vt_rle_counts_from_string(want, wl, 64, 64, big, 60, &n, err, sizeof err),
                     -ENOSPC);
    ck_assert_int_eq(vt_rle_encode(m, 0, 64, 64, big, 61, &n), -EINVAL);
    ck_assert_int_eq(vt_rle_encode(m, 64, 64, 63, big, 61, &n), -EINVAL);
    ck_assert_int_eq(vt_rle_encode(NULL, 64, 64, 64, big, 61, &n), -EINVAL);
    free(m);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Malformed strings
 * ------------------------------------------------------------------------------------------- */

static const struct bad_string {
    const char *s;
    size_t len; /* 0: strlen */
    int h, w;
    const char *why; /* a fragment of the reason */
} bad_strings[] = {
    {"4210!", 0, 3, 4, "bad character 0x21 at offset 4"},
    {"42102 ", 0, 3, 4, "bad character 0x20 at offset 5"},
    {"/", 0, 1, 1, "bad character 0x2f"},         /* just below '0' */
    {"p", 0, 1, 1, "bad character 0x70"},         /* just above 'o' */
    {"4\0002102", 6, 3, 4, "bad character 0x00"}, /* NUL inside the given length */
    {"\xc3\xa9", 0, 1, 1, "bad character 0xc3"},
    {"4210", 0, 3, 4, "runs cover 9 pixels, the mask has 12"},
    {"", 0, 1, 1, "runs cover 0 pixels, the mask has 1"},
    {"421029", 0, 3, 4, "runs past"},         /* 4+2+1+2+3+11 > 12 */
    {"=", 0, 3, 4, "runs past"},              /* first count 13 > 12 */
    {"4210P", 0, 3, 4, "cut off by the end"}, /* 'P' = 0x20: continuation expected */
    {"PP", 0, 3, 4, "cut off by the end"},
    {"421M", 0, 3, 4, "count 3 is negative (-1)"}, /* 2 + (-3) */
    {"M", 0, 3, 4, "count 0 is negative (-3)"},
    {"PPPPPPP0", 0, 3, 4, "overflows"}, /* 8 groups */
    {"PPPPPP1", 0, 3, 4, "runs past"},  /* 7 groups: 2^30 */
    {"42102", 0, 0, 4, "outside"},
    {"42102", 0, 3, VT_RLE_MAX_DIM + 1, "outside"},
};

START_TEST(test_malformed_strings) {
    const struct bad_string *b = &bad_strings[_i];
    size_t len = b->len ? b->len : strlen(b->s);
    /* exact-size copy without a NUL: any over-read is an ASan error */
    char *s = malloc(len ? len : 1);
    memcpy(s, b->s, len);
    char err[160] = "";
    uint32_t counts[64];
    size_t n;
    ck_assert_int_eq(vt_rle_counts_from_string(s, len, b->h, b->w, counts, 64, &n, err, sizeof err),
                     -EINVAL);
    ck_assert_msg(strstr(err, b->why), "'%s': reason '%s', want '%s'", b->s, err, b->why);
    err[0] = '\0';
    ck_assert_int_eq(vt_rle_string_measure(s, len, b->h, b->w, NULL, NULL, NULL, err, sizeof err),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, b->why));
    if (b->h > 0 && b->w > 0 && b->h * b->w <= 64) {
        uint8_t m[64];
        ck_assert_int_eq(vt_rle_decode_string(s, len, b->h, b->w, m, (size_t)b->w, NULL, 0),
                         -EINVAL);
    }
    free(s);
}
END_TEST

START_TEST(test_noncanonical_accepted) {
    /* pycocotools decodes zero-length runs and redundant continuation groups; so do we. Zero
     * runs add nothing to the box (pycocotools would place a phantom pixel there). */
    uint32_t counts[8];
    size_t n;
    char err[96];
    /* "P0" is 0 written with two groups */
    ck_assert_int_eq(vt_rle_counts_from_string("3P03", 4, 2, 3, counts, 8, &n, err, sizeof err), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(counts[0], 3);
    ck_assert_uint_eq(counts[1], 0);
    ck_assert_uint_eq(counts[2], 3);
    int bb[4];
    vt_rle_bbox(counts, n, 2, 3, bb);
    ck_assert_int_eq(bb[2], 0);
    ck_assert_uint_eq(vt_rle_area(counts, n), 0);
    uint32_t c2[] = {1, 2, 0, 0, 1, 2};
    ck_assert_int_eq(vt_rle_check(c2, 6, 2, 3, err, sizeof err), 0);
    uint8_t m[6];
    ck_assert_int_eq(vt_rle_decode(c2, 6, 2, 3, m, 3), 0);
    /* column-major 0 1 1 | 0 1 1 -> rows: [0 1 1],[1 0 1] ... */
    static const uint8_t want[6] = {0, 1, 1, 1, 0, 1};
    ck_assert_int_eq(memcmp(m, want, 6), 0);
    vt_rle_bbox(c2, 6, 2, 3, bb);
    ck_assert_int_eq(bb[0], 0);
    ck_assert_int_eq(bb[1], 0);
    ck_assert_int_eq(bb[2], 3);
    ck_assert_int_eq(bb[3], 2);
    uint32_t over[] = {5, 2};
    ck_assert_int_eq(vt_rle_check(over, 2, 2, 3, err, sizeof err), -EINVAL);
    ck_assert_int_eq(vt_rle_decode(over, 2, 2, 3, m, 3), -EINVAL);
}
END_TEST

START_TEST(test_random_strings) {
    /* Arbitrary strings over the alphabet: either rejected, or decoded to counts that sum to
     * h*w and whose canonical re-encoding decodes to the same mask. */
    unsigned long long seed = 5;
    int accepted = 0;
    for (int t = 0; t < 20000; t++) {
        int h = 1 + (int)(test_rand(&seed) % 6), w = 1 + (int)(test_rand(&seed) % 6);
        char s[12];
        size_t len = test_rand(&seed) % sizeof s;
        for (size_t i = 0; i < len; i++)
            s[i] = (char)('0' + test_rand(&seed) % (t & 1 ? 64 : 16));
        uint32_t counts[16];
        size_t n;
        if (vt_rle_counts_from_string(s, len, h, w, counts, 16, &n, NULL, 0) < 0)
            continue;
        accepted++;
        uint8_t m[36], m2[36];
        char s2[64];
        size_t l2;
        if (vt_rle_check(counts, n, h, w, NULL, 0) != 0 ||
            vt_rle_decode(counts, n, h, w, m, (size_t)w) != 0 ||
            vt_rle_encode_string(m, h, w, (size_t)w, s2, sizeof s2, &l2) != 0 ||
            vt_rle_decode_string(s2, l2, h, w, m2, (size_t)w, NULL, 0) != 0 ||
            memcmp(m, m2, (size_t)h * w) != 0)
            ck_abort_msg("accepted '%.*s' (%dx%d) does not round-trip", (int)len, s, h, w);
    }
    ck_assert_int_gt(accepted, 100); /* the test exercised the accepting path too */
}
END_TEST

START_TEST(test_encode_speed) {
    /* Not a benchmark (the machine is shared) but a guard against gross regressions of the
     * per-frame path: a 1920x1080 mask with a large blob must encode in under 5 ms in an
     * optimised build (about 0.6 ms when measured); the figure is printed. */
    int h = 1080, w = 1920;
    uint8_t *m = calloc((size_t)h * w, 1);
    for (int y = 200; y < 800; y++)
        for (int x = 500; x < 1400; x++)
            m[y * w + x] = (x - 950) * (x - 950) / 4 + (y - 500) * (y - 500) < 90000;
    size_t cap = vt_rle_string_max(h, w), len;
    char *s = malloc(cap);
    /* The fastest of 20 runs: other jobs on the machine only ever make a run slower. */
    double ms = 1e9;
    int rc = 0;
    for (int i = 0; i < 20; i++) {
        double t0 = vt_mono_s();
        rc |= vt_rle_encode_string(m, h, w, (size_t)w, s, cap, &len);
        double t = (vt_mono_s() - t0) * 1e3;
        ms = t < ms ? t : ms;
    }
    ck_assert_int_eq(rc, 0);
    printf("rle: 1920x1080 blob mask -> %zu chars in %.3f ms (fastest of 20)\n", len, ms);
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VT_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(VT_TEST_ASAN) || !defined(__OPTIMIZE__)
    const double budget = 50.0; /* unoptimised or instrumented: only catch gross slowness */
#else
    const double budget = 5.0;
#endif
    ck_assert_msg(ms < budget, "encoding took %.3f ms, budget %.0f ms", ms, budget);
    free(s);
    free(m);
}
END_TEST

Suite *rle_suite(void) {
    Suite *s = suite_create("rle");
    TCase *tc = tm_add_case(s, "vectors", 0, NULL);
    tcase_add_loop_test(tc, test_vectors, 0, (int)TM_LEN(vectors));
    tc = tm_add_case(s, "round trips", 120, test_round_trip_edge_sizes, test_string_bound,
                     test_small_buffers, NULL);
    tcase_add_loop_test(tc, test_round_trip_random, 0, 5);
    tm_add_case(s, "1080p", 120, test_round_trip_1080p, test_encode_speed, NULL);
    tc = tm_add_case(s, "malformed", 0, test_noncanonical_accepted, test_random_strings, NULL);
    tcase_add_loop_test(tc, test_malformed_strings, 0, (int)TM_LEN(bad_strings));
    return s;
}
