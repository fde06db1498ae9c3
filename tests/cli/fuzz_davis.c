/*
 * libFuzzer target: what cli/davis.c does with outside masks. `vtrack eval` reads DAVIS
 * annotations and predictions only as PNGs (through vt_mask_read_png, fuzzed by fuzz_mask_png)
 * and lists folders; it parses no text. The outside data that reaches davis.c is the label maps
 * those PNGs hold: vt_davis_labels_from_png, vt_davis_max_label, vt_davis_labels_present and
 * vt_davis_score_frame run on them, with word-at-a-time loops and boundary point lists whose
 * bounds depend on the sizes and labels. Here they take any map, checked against the
 * definitions written out pixel by pixel (davis_naive.h).
 *
 * Input: w (1..32), h (1..32), flags (bit 0 ignore void, bit 1 the ground truth is a palette
 * PNG, bit 2 the prediction is), a boundary tolerance (0..12; 0 the default), then the ground
 * truth's w*h bytes and the prediction's (zero where the input ends).
 *
 * Invariants: labels_from_png turns {0,255} grey maps into {0,1} and leaves others alone;
 * max_label and labels_present agree with a scan; J is the exact ratio of the counts; F is in
 * [0,1] and equals vt_davis_boundary_f on the object's binary masks, whose boundary maps and
 * matches equal the literal definitions.
 *
 * Seeds (tests/cli/seeds/fuzz_davis/): small maps with one or two objects and void.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "davis.h"
#include "davis_naive.h"
#include "fuzz.h"

#define SIDE_MAX  32
#define NAIVE_MAX 3 /* objects checked against the pixel-by-pixel definitions */

/* A map as vt_davis_labels_from_png leaves it, checked against its definition. */
static void labels(uint8_t *m, size_t n, int is_palette) {
    uint8_t *orig = malloc(n);
    memcpy(orig, m, n);
    int binary = !is_palette, any = 0;
    for (size_t i = 0; i < n; i++) {
        binary &= orig[i] == 0 || orig[i] == 255;
        any |= orig[i] != 0;
    }
    binary &= any;
    CHECK(vt_davis_labels_from_png(m, n, is_palette) == binary);
    for (size_t i = 0; i < n; i++)
        CHECK(m[i] == (binary ? orig[i] != 0 : orig[i]));
    free(orig);

    uint8_t present[256], seen[256] = {0};
    int max = 0;
    for (size_t i = 0; i < n; i++)
        seen[m[i]] = 1;
    vt_davis_labels_present(m, n, present);
    for (int v = 0; v < 256; v++) {
        CHECK(present[v] == seen[v]);
        if (seen[v] && v < VT_DAVIS_VOID)
            max = v;
    }
    CHECK(vt_davis_max_label(m, n) == max);
}

/* Object k's binary masks, void cleared (what f_measure compares), boundaries checked. */
static void check_object(const uint8_t *gt, const uint8_t *pred, int w, int h, int k,
                         int ignore_void, int bound_pix, double j, double f) {
    size_t n = (size_t)w * h;
    uint8_t *g = malloc(n), *p = malloc(n), *v = malloc(n), *bg = malloc(n), *bp = malloc(n),
            *b2 = malloc(n);
    long inter = 0, uni = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = ignore_void && gt[i] == VT_DAVIS_VOID;
        g[i] = gt[i] == k;
        p[i] = pred[i] == k;
        inter += g[i] && p[i] && !v[i];
        uni += (g[i] || p[i]) && !v[i];
    }
    CHECK(j == (uni ? (double)inter / (double)uni : 1.0));
    CHECK(vt_davis_iou(g, p, ignore_void ? v : NULL, w, h) == j);

    vt_davis_boundary b;
    CHECK(vt_davis_boundary_f(g, p, ignore_void ? v : NULL, w, h, 0, &b) == 0);
    CHECK(b.f == f);
    CHECK(vt_davis_boundary_f(g, p, ignore_void ? v : NULL, w, h, bound_pix, &b) == 0);
    CHECK(b.f >= 0 && b.f <= 1 && b.precision >= 0 && b.precision <= 1 && b.recall >= 0 &&
          b.recall <= 1);
    int r = bound_pix > 0 ? bound_pix : vt_davis_bound_pix(w, h);
    CHECK(b.bound_pix == r);

    for (size_t i = 0; i < n; i++) /* f_measure clears void from both masks first */
        g[i] &= !v[i], p[i] &= !v[i];
    long ng = naive_seg2bmap(g, w, h, bg), np = naive_seg2bmap(p, w, h, bp);
    CHECK(vt_davis_seg2bmap(g, NULL, w, h, b2) == ng && memcmp(b2, bg, n) == 0);
    CHECK(b.n_gt == ng && b.n_pred == np);
    if (ng > 0 && np > 0) {
        CHECK(b.gt_match == naive_matches(bg, bp, w, h, r));
        CHECK(b.pred_match == naive_matches(bp, bg, w, h, r));
    }
    free(g), free(p), free(v), free(bg), free(bp), free(b2);
}

/* libFuzzer's entry point: called with each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4)
        return 0;
    int w = 1 + data[0] % SIDE_MAX, h = 1 + data[1] % SIDE_MAX, flags = data[2];
    int bound_pix = data[3] % 13, ignore_void = flags & 1;
    size_t n = (size_t)w * h, rest = size - 4;
    uint8_t *gt = calloc(n, 1), *pred = calloc(n, 1);
    memcpy(gt, data + 4, rest < n ? rest : n);
    if (rest > n)
        memcpy(pred, data + 4 + n, rest - n < n ? rest - n : n);
    labels(gt, n, flags >> 1 & 1);
    labels(pred, n, flags >> 2 & 1);

    int n_obj = vt_davis_max_label(gt, n);
    double j[VT_DAVIS_VOID], f[VT_DAVIS_VOID];
    CHECK(vt_davis_score_frame(gt, pred, w, h, n_obj, ignore_void, j, f) == 0);
    for (int k = 1; k <= n_obj; k++) {
        CHECK(j[k - 1] >= 0 && j[k - 1] <= 1 && f[k - 1] >= 0 && f[k - 1] <= 1);
        if (k <= NAIVE_MAX)
            check_object(gt, pred, w, h, k, ignore_void, bound_pix, j[k - 1], f[k - 1]);
    }
    free(gt), free(pred);
    return 0;
}
