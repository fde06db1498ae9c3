/*
 * libFuzzer target: the RLE string decoder, and the encode/decode round trip.
 *
 * Input: 2 bytes choose h and w (1..64), the rest is a counts string. The decoder must never
 * read past the string; when it accepts, counts, measurement, string decoding and the canonical
 * re-encoding must all agree. The same bytes also serve as a mask (nonzero = object) that must
 * survive encode -> string -> decode unchanged, with a string within vt_rle_string_max().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt_proto.h"
#include "fuzz.h"

static void decode_side(const char *s, size_t len, int h, int w) {
    uint32_t *counts = malloc((len + 1) * sizeof *counts);
    size_t n;
    char err[160];
    int rc = vt_rle_counts_from_string(s, len, h, w, counts, len + 1, &n, err, sizeof err);
    uint64_t area;
    int bb[4];
    size_t nm;
    int rc2 = vt_rle_string_measure(s, len, h, w, &area, bb, &nm, NULL, 0);
    uint8_t *m = malloc((size_t)h * w), *m2 = malloc((size_t)h * w);
    int rc3 = vt_rle_decode_string(s, len, h, w, m, (size_t)w, NULL, 0);
    CHECK((rc == 0) == (rc2 == 0) && (rc == 0) == (rc3 == 0));
    if (rc == 0) {
        CHECK(vt_rle_check(counts, n, h, w, NULL, 0) == 0);
        CHECK(nm == n && vt_rle_area(counts, n) == area);
        int bb2[4];
        vt_rle_bbox(counts, n, h, w, bb2);
        CHECK(memcmp(bb, bb2, sizeof bb) == 0);
        CHECK(vt_rle_decode(counts, n, h, w, m2, (size_t)w) == 0);
        CHECK(memcmp(m, m2, (size_t)h * w) == 0);
        size_t cap = vt_rle_string_max(h, w), l2;
        char *s2 = malloc(cap);
        CHECK(vt_rle_encode_string(m, h, w, (size_t)w, s2, cap, &l2) == 0);
        CHECK(vt_rle_decode_string(s2, l2, h, w, m2, (size_t)w, NULL, 0) == 0);
        CHECK(memcmp(m, m2, (size_t)h * w) == 0);
        free(s2);
    } else {
        CHECK(err[0] != '\0');
    }
    free(counts), free(m), free(m2);
}

static void encode_side(const uint8_t *px, size_t npx, int h, int w) {
    size_t a = (size_t)h * w;
    uint8_t *m = calloc(a, 1), *back = malloc(a);
    memcpy(m, px, npx < a ? npx : a);
    size_t cap = vt_rle_string_max(h, w), len, n;
    char *s = malloc(cap);
    uint32_t *counts = malloc(vt_rle_counts_max(h, w) * sizeof *counts);
    CHECK(vt_rle_encode_string(m, h, w, (size_t)w, s, cap, &len) == 0);
    CHECK(len < cap && strlen(s) == len);
    CHECK(vt_rle_encode(m, h, w, (size_t)w, counts, vt_rle_counts_max(h, w), &n) == 0);
    CHECK(vt_rle_decode_string(s, len, h, w, back, (size_t)w, NULL, 0) == 0);
    for (size_t i = 0; i < a; i++)
        CHECK(back[i] == (m[i] != 0));
    free(m), free(back), free(s), free(counts);
}

/* libFuzzer's entry point: called with each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    int h = 1 + data[0] % 64, w = 1 + data[1] % 64;
    /* an exact-size copy, not NUL-terminated, so over-reads are caught */
    size_t len = size - 2;
    char *s = malloc(len ? len : 1);
    memcpy(s, data + 2, len);
    decode_side(s, len, h, w);
    encode_side(data + 2, len, h, w);
    free(s);
    return 0;
}
