/*
 * The DAVIS metrics (cli/davis.c) against values worked out by hand from the definitions of
 * the official code (davis2017-evaluation: db_eval_iou, _seg2bmap, f_measure, db_statistics).
 * Every expected number below is derived in the comment next to it, not computed by davis.c.
 *
 * Notation: a rectangle [x0,x1]x[y0,y1] is inclusive. The official boundary of a filled
 * rectangle away from the last row and column is the border of the box [x0-1,x1]x[y0-1,y1]
 * (a pixel is on it when the 2x2 block it starts straddles the rectangle's edge): for a 10x10
 * square that is an 11x11 box, 121 - 81 = 40 pixels.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testmain.h"
#include "davis.h"
#include "davis_naive.h"

#define EPS 1e-12

static uint8_t *mask_new(int w, int h) {
    uint8_t *m = calloc((size_t)w * (size_t)h, 1);
    ck_assert_ptr_nonnull(m);
    return m;
}

static void fill(uint8_t *m, int w, int x0, int y0, int x1, int y1, uint8_t v) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            m[(size_t)y * (size_t)w + (size_t)x] = v;
}

#define assert_close(got, want)                                                                    \
    ck_assert_msg(fabs((got) - (want)) < EPS, "%s = %.15f, want %.15f", #got, (double)(got),       \
                  (double)(want))

/* ------------------------------------------------------------------------------------------ */

START_TEST(test_bound_pix) {
    /* ceil(0.008 * sqrt(w^2 + h^2)): 854x480 -> 7.84 -> 8; 100x100 -> 1.13 -> 2; 10x10 -> 0.11
     * -> 1; 400x300 -> diagonal 500 -> exactly 4 -> 4; 1920x1080 -> 17.6 -> 18. */
    ck_assert_int_eq(vt_davis_bound_pix(854, 480), 8);
    ck_assert_int_eq(vt_davis_bound_pix(100, 100), 2);
    ck_assert_int_eq(vt_davis_bound_pix(10, 10), 1);
    ck_assert_int_eq(vt_davis_bound_pix(400, 300), 4);
    ck_assert_int_eq(vt_davis_bound_pix(1920, 1080), 18);
    ck_assert_int_eq(vt_davis_bound_pix(1, 1), 1);
    ck_assert_int_eq(vt_davis_bound_pix(0, 10), 0);
}
END_TEST

START_TEST(test_iou) {
    const int w = 10, h = 10;
    uint8_t *gt = mask_new(w, h), *pred = mask_new(w, h), *vd = mask_new(w, h),
            *empty = mask_new(w, h);
    /* gt [2,5]x[2,5] and pred [4,7]x[2,5]: 16 pixels each, overlap [4,5]x[2,5] = 8, union 24. */
    fill(gt, w, 2, 2, 5, 5, 1);
    fill(pred, w, 4, 2, 7, 5, 1);
    assert_close(vt_davis_iou(gt, pred, NULL, w, h), 8.0 / 24.0);
    /* Void over the prediction's own part [6,7]x[2,5] (8 pixels): union 16, overlap 8. */
    fill(vd, w, 6, 2, 7, 5, 1);
    assert_close(vt_davis_iou(gt, pred, vd, w, h), 0.5);
    /* Empty prediction, empty ground truth: no overlap -> 0. Both empty: 1 by convention. */
    assert_close(vt_davis_iou(gt, empty, NULL, w, h), 0.0);
    assert_close(vt_davis_iou(empty, pred, NULL, w, h), 0.0);
    assert_close(vt_davis_iou(empty, empty, NULL, w, h), 1.0);
    /* A prediction entirely inside void against an empty ground truth: union 0 -> 1. */
    uint8_t *in_void = mask_new(w, h);
    fill(in_void, w, 6, 3, 7, 4, 1);
    assert_close(vt_davis_iou(empty, in_void, vd, w, h), 1.0);
    /* Masks are "non-zero = set": 255 and 1 are the same. */
    fill(gt, w, 2, 2, 5, 5, 255);
    assert_close(vt_davis_iou(gt, pred, NULL, w, h), 8.0 / 24.0);
    free(gt), free(pred), free(vd), free(empty), free(in_void);
}
END_TEST

static void check_bmap(const uint8_t *mask, int w, int h, const char *want, long want_n) {
    uint8_t *b = mask_new(w, h);
    long n = vt_davis_seg2bmap(mask, NULL, w, h, b);
    ck_assert_int_eq(n, want_n);
    for (int i = 0; i < w * h; i++)
        ck_assert_msg(b[i] == (want[i] == '#'), "pixel (%d,%d): got %d want %c", i % w, i / w, b[i],
                      want[i]);
    free(b);
}

START_TEST(test_seg2bmap) {
    /* A 2x2 square [2,3]x[1,2] in 6x5: the ring around the box [1,3]x[0,2] (8 pixels), i.e. the
     * boundary sits half a pixel towards the origin. */
    uint8_t *m = mask_new(6, 5);
    fill(m, 6, 2, 1, 3, 2, 1);
    check_bmap(m, 6, 5,
               ".###.."
               ".#.#.."
               ".###.."
               "......"
               "......",
               8);
    free(m);

    /* The last column x=3 of a 4x3 image set: in the last column only the lower neighbour
     * counts (equal here), so the boundary is column 2 only, including its last-row pixel
     * (right neighbour differs). 3 pixels. */
    m = mask_new(4, 3);
    fill(m, 4, 3, 0, 3, 2, 1);
    check_bmap(m, 4, 3,
               "..#."
               "..#."
               "..#.",
               3);
    /* The whole image set: no pixel differs from its neighbours, and the bottom-right corner
     * (the only one with no neighbour) is cleared: no boundary at all. */
    fill(m, 4, 0, 0, 3, 2, 1);
    check_bmap(m, 4, 3,
               "...."
               "...."
               "....",
               0);
    /* Only the bottom-right pixel set: (2,1) by its lower-right neighbour, (3,1) by its lower
     * one, (2,2) by its right one; the pixel itself never. */
    memset(m, 0, 12);
    m[11] = 1;
    check_bmap(m, 4, 3,
               "...."
               "..##"
               "..#.",
               3);
    free(m);

    /* One row (h = 1): only right neighbours; one column (w = 1): only lower neighbours. */
    uint8_t row[5] = {0, 1, 1, 0, 1};
    check_bmap(row, 5, 1, "#.##.", 3);
    uint8_t col[4] = {1, 1, 0, 0};
    check_bmap(col, 1, 4, ".#..", 1);

    /* Void clears the mask first: the 2x2 square under void has no boundary. */
    m = mask_new(6, 5);
    uint8_t *vd = mask_new(6, 5), *b = mask_new(6, 5);
    fill(m, 6, 2, 1, 3, 2, 1);
    fill(vd, 6, 2, 1, 3, 2, 1);
    ck_assert_int_eq(vt_davis_seg2bmap(m, vd, 6, 5, b), 0);
    free(m), free(vd), free(b);
}
END_TEST

/* F of a 10x10 square against itself shifted by (dx, dy), in a 100x100 image (tolerance 2). */
static vt_davis_boundary shifted_square(int w, int h, int x0, int side, int dx, int dy,
                                        int bound_pix) {
    uint8_t *gt = mask_new(w, h), *pred = mask_new(w, h);
    fill(gt, w, x0, 10, x0 + side - 1, 10 + side - 1, 1);
    fill(pred, w, x0 + dx, 10 + dy, x0 + dx + side - 1, 10 + dy + side - 1, 1);
    vt_davis_boundary b;
    ck_assert_int_eq(vt_davis_boundary_f(gt, pred, NULL, w, h, bound_pix, &b), 0);
    free(gt), free(pred);
    return b;
}

/* Every field of b as one line, against the hand-computed line of each case (P, R, F to 4
 * decimals: the cases' values are simple fractions, none near a rounding edge). */
static void assert_boundary(const vt_davis_boundary *b, const char *want) {
    char got[160];
    snprintf(got, sizeof got, "tol %d | rings %ld %ld | matched %ld %ld | P %.4f R %.4f F %.4f",
             b->bound_pix, b->n_gt, b->n_pred, b->gt_match, b->pred_match, b->precision, b->recall,
             b->f);
    ck_assert_str_eq(got, want);
}

START_TEST(test_boundary_tolerance) {
    /* Square [10,19]^2: boundary = border of box [9,19]^2, 40 pixels; same for the shifted one.
     * Shift right by 2 = the tolerance of a 100x100 image: every pixel of either ring has one
     * of the other ring within 2 on its row (the left/right columns are exactly 2 apart). */
    vt_davis_boundary b = shifted_square(100, 100, 10, 10, 2, 0, 0);
    assert_boundary(&b, "tol 2 | rings 40 40 | matched 40 40 | P 1.0000 R 1.0000 F 1.0000");

    /* Shift right by 3, one beyond. Ground-truth ring pixels matched:
     *   left column x=9 (11 px): the nearest predicted pixels are 3 away -> 0;
     *   top and bottom rows without corners, x in [10,18] (9 + 9 px): the predicted top/bottom
     *     rows start at x=12, within 2 of x=10 -> all 18;
     *   right column x=19 (11 px): within 2 rows of the predicted top (y=9) or bottom (y=19)
     *     row: y in {9,10,11,17,18,19} -> 6; y in [12,16] is 3 from everything -> 0.
     * gt_match = 24 of 40; the prediction's ring is the mirror image: pred_match = 24 of 40.
     * P = R = 0.6, F = 0.6. */
    b = shifted_square(100, 100, 10, 10, 3, 0, 0);
    assert_boundary(&b, "tol 2 | rings 40 40 | matched 24 24 | P 0.6000 R 0.6000 F 0.6000");

    /* The disk, not a square window: shift (2,1). The corner (9,9) of the ground-truth ring
     * is sqrt(5) > 2 from the predicted ring (its nearest pixel is (11,10)), and so is the
     * mirrored corner (21,20) of the predicted ring from (19,19). Every other pixel has a
     * partner within 2: e.g. the left column's (9,y>=10) meets (11,y) at distance 2, the top
     * row's (x>=10,9) meets (x+1,10) or (x,10) at distance <= sqrt(2). 39 of 40 each way:
     * P = R = F = 39/40. */
    b = shifted_square(100, 100, 10, 10, 2, 1, 0);
    assert_boundary(&b, "tol 2 | rings 40 40 | matched 39 39 | P 0.9750 R 0.9750 F 0.9750");

    /* The same at DAVIS size, 854x480 (tolerance 8), with a 40x40 square: ring 160 pixels.
     * Shift 8: all matched. Shift 9: as above with r = 8: the right column matches 2 (r + 1)
     * = 18 pixels, the top and bottom rows 2 x 39 = 78, the left column none: 96 of 160 each
     * way, P = R = F = 0.6. */
    b = shifted_square(854, 480, 100, 40, 8, 0, 0);
    assert_boundary(&b, "tol 8 | rings 160 160 | matched 160 160 | P 1.0000 R 1.0000 F 1.0000");
    b = shifted_square(854, 480, 100, 40, 9, 0, 0);
    assert_boundary(&b, "tol 8 | rings 160 160 | matched 96 96 | P 0.6000 R 0.6000 F 0.6000");

    /* An explicit tolerance overrides the default: 3 pixels makes the shift-3 case perfect. */
    b = shifted_square(100, 100, 10, 10, 3, 0, 3);
    assert_boundary(&b, "tol 3 | rings 40 40 | matched 40 40 | P 1.0000 R 1.0000 F 1.0000");
}
END_TEST

START_TEST(test_boundary_empty_conventions) {
    const int w = 100, h = 100;
    uint8_t *sq = mask_new(w, h), *empty = mask_new(w, h), *full = mask_new(w, h);
    fill(sq, w, 10, 10, 19, 19, 1);
    memset(full, 1, (size_t)w * h);
    vt_davis_boundary b;

    /* Empty prediction: precision 1, recall 0 -> F 0. */
    ck_assert_int_eq(vt_davis_boundary_f(sq, empty, NULL, w, h, 0, &b), 0);
    assert_boundary(&b, "tol 2 | rings 40 0 | matched 0 0 | P 1.0000 R 0.0000 F 0.0000");
    /* Empty ground truth: precision 0, recall 1 -> F 0. */
    ck_assert_int_eq(vt_davis_boundary_f(empty, sq, NULL, w, h, 0, &b), 0);
    assert_boundary(&b, "tol 2 | rings 0 40 | matched 0 0 | P 0.0000 R 1.0000 F 0.0000");
    /* Both empty: F 1. */
    ck_assert_int_eq(vt_davis_boundary_f(empty, empty, NULL, w, h, 0, &b), 0);
    assert_close(b.f, 1.0);
    /* A mask covering the whole image has no boundary either (see test_seg2bmap), so against
     * an empty one the official code also gives F 1 - while J is 0. */
    ck_assert_int_eq(vt_davis_boundary_f(empty, full, NULL, w, h, 0, &b), 0);
    ck_assert_int_eq(b.n_pred, 0);
    assert_close(b.f, 1.0);
    assert_close(vt_davis_iou(empty, full, NULL, w, h), 0.0);
    /* Disjoint boundaries far apart: no match either way -> P = R = 0 -> F 0. */
    uint8_t *far = mask_new(w, h);
    fill(far, w, 60, 60, 69, 69, 1);
    ck_assert_int_eq(vt_davis_boundary_f(sq, far, NULL, w, h, 0, &b), 0);
    ck_assert_int_eq(b.gt_match, 0);
    assert_close(b.f, 0.0);
    free(sq), free(empty), free(full), free(far);
}
END_TEST

START_TEST(test_boundary_void) {
    const int w = 100, h = 100;
    uint8_t *gt = mask_new(w, h), *pred = mask_new(w, h), *vd = mask_new(w, h);
    /* Ground truth: square [10,19]^2 (ring 40). Prediction: the same plus a 2x2 blob
     * [60,61]^2 (ring 8, far from everything). Void: [55,70]^2, over the blob. */
    fill(gt, w, 10, 10, 19, 19, 1);
    fill(pred, w, 10, 10, 19, 19, 1);
    fill(pred, w, 60, 60, 61, 61, 1);
    fill(vd, w, 55, 55, 70, 70, 1);
    vt_davis_boundary b;
    /* With void the blob is cleared before the boundaries are taken: identical masks. */
    ck_assert_int_eq(vt_davis_boundary_f(gt, pred, vd, w, h, 0, &b), 0);
    ck_assert_int_eq(b.n_pred, 40);
    assert_close(b.f, 1.0);
    assert_close(vt_davis_iou(gt, pred, vd, w, h), 1.0);
    /* Without: n_pred = 48, pred_match = 40, gt_match = 40: P = 5/6, R = 1, F = 10/11;
     * J = 100 / 104. */
    ck_assert_int_eq(vt_davis_boundary_f(gt, pred, NULL, w, h, 0, &b), 0);
    ck_assert_int_eq(b.n_pred, 48);
    ck_assert_int_eq(b.pred_match, 40);
    ck_assert_int_eq(b.gt_match, 40);
    assert_close(b.f, 10.0 / 11.0);
    assert_close(vt_davis_iou(gt, pred, NULL, w, h), 100.0 / 104.0);
    free(gt), free(pred), free(vd);
}
END_TEST

START_TEST(test_boundary_matches_naive_dilation) {
    /* Random blobby masks at assorted sizes (including single rows and columns) and radii:
     * the row-distance matcher must count exactly what literal disk dilation counts. */
    unsigned seed = 12345;
    static const int sizes[][2] = {{1, 7}, {9, 1}, {2, 2}, {13, 11}, {17, 9}, {40, 23}, {64, 64}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        for (int trial = 0; trial < 20; trial++) {
            uint8_t *a = mask_new(w, h), *b = mask_new(w, h), *vd = mask_new(w, h);
            uint8_t *ba = mask_new(w, h), *bb = mask_new(w, h);
            /* Four rectangles shared between the masks, and on odd trials a fifth as void. */
            for (int k = 0; k < 4 + (trial & 1); k++) {
                seed = seed * 1103515245u + 12345u;
                int x0 = (int)(seed >> 8) % w, y0 = (int)(seed >> 16) % h;
                seed = seed * 1103515245u + 12345u;
                int x1 = x0 + (int)(seed >> 8) % 9, y1 = y0 + (int)(seed >> 16) % 9;
                uint8_t *dst = k == 4 ? vd : k & 1 ? b : a;
                fill(dst, w, x0, y0, x1 < w ? x1 : w - 1, y1 < h ? y1 : h - 1, 1);
            }
            int r = 1 + trial % 6;
            const uint8_t *v = trial & 1 ? vd : NULL;
            vt_davis_boundary out;
            ck_assert_int_eq(vt_davis_boundary_f(a, b, v, w, h, r, &out), 0);
            long na = vt_davis_seg2bmap(a, v, w, h, ba);
            long nb = vt_davis_seg2bmap(b, v, w, h, bb);
            ck_assert_int_eq(out.n_gt, na);
            ck_assert_int_eq(out.n_pred, nb);
            if (na > 0 && nb > 0) {
                ck_assert_int_eq(out.gt_match, naive_matches(ba, bb, w, h, r));
                ck_assert_int_eq(out.pred_match, naive_matches(bb, ba, w, h, r));
            }
            free(a), free(b), free(vd), free(ba), free(bb);
        }
    }
}
END_TEST

START_TEST(test_boundary_bad_size) {
    uint8_t m[1] = {0};
    vt_davis_boundary b;
    ck_assert_int_eq(vt_davis_boundary_f(m, m, NULL, 0, 1, 0, &b), -EINVAL);
    ck_assert_int_eq(vt_davis_boundary_f(m, m, NULL, 1, -1, 0, &b), -EINVAL);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */

START_TEST(test_statistics) {
    vt_davis_stats s;
    /* 10 frames 1.0, 0.9, ..., 0.1: mean 0.55; recall counts > 0.5 strictly: 5 of 10.
     * Bin edges round(linspace(1,10,5)) - 1 = round(1, 3.25, 5.5, 7.75, 10) - 1 = 0,2,5,7,9
     * (5.5 rounds up); bins [0..2] and [7..9]: (1+.9+.8)/3 - (.3+.2+.1)/3 = 0.9 - 0.2 = 0.7. */
    const double v10[] = {1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1};
    ck_assert_int_eq(vt_davis_statistics(v10, 10, &s), 0);
    assert_close(s.mean, 0.55);
    assert_close(s.recall, 0.5);
    assert_close(s.decay, 0.7);

    /* 3 frames: linspace(1,3,5) = 1, 1.5, 2, 2.5, 3 -> halves round up -> edges 0,1,1,2,2:
     * first bin [0..1], last [2..2]: (1.0 + 0.4)/2 - 0.0 = 0.7. */
    const double v3[] = {1.0, 0.4, 0.0};
    ck_assert_int_eq(vt_davis_statistics(v3, 3, &s), 0);
    assert_close(s.mean, 1.4 / 3.0);
    assert_close(s.recall, 1.0 / 3.0);
    assert_close(s.decay, 0.7);

    /* 7 frames: linspace(1,7,5) = 1, 2.5, 4, 5.5, 7 -> 1,3,4,6,7 -> edges 0,2,3,5,6:
     * bins [0..2] = {1,0,1} and [5..6] = {0,1}: 2/3 - 1/2 = 1/6. */
    const double v7[] = {1, 0, 1, 0, 1, 0, 1};
    ck_assert_int_eq(vt_davis_statistics(v7, 7, &s), 0);
    assert_close(s.mean, 4.0 / 7.0);
    assert_close(s.recall, 4.0 / 7.0);
    assert_close(s.decay, 1.0 / 6.0);

    /* 5 frames: edges 0,1,2,3,4; [0..1] vs [3..4]. */
    const double v5[] = {1.0, 1.0, 0.0, 0.0, 0.0};
    ck_assert_int_eq(vt_davis_statistics(v5, 5, &s), 0);
    assert_close(s.mean, 0.4);
    assert_close(s.recall, 0.4);
    assert_close(s.decay, 1.0);

    /* 2 frames: edges 0,0,1,1,1: decay = v0 - v1, negative when the score improves. */
    const double v2[] = {0.2, 0.8};
    ck_assert_int_eq(vt_davis_statistics(v2, 2, &s), 0);
    assert_close(s.decay, -0.6);

    /* 1 frame: every bin is that frame: decay 0. */
    const double v1[] = {0.7};
    ck_assert_int_eq(vt_davis_statistics(v1, 1, &s), 0);
    assert_close(s.mean, 0.7);
    assert_close(s.recall, 1.0);
    assert_close(s.decay, 0.0);

    ck_assert_int_eq(vt_davis_statistics(v1, 0, &s), -EINVAL);
}
END_TEST

START_TEST(test_labels_from_png) {
    /* Grey {0,255}: DAVIS-2016, 255 is object 1. */
    uint8_t grey[4] = {0, 255, 255, 0};
    ck_assert_int_eq(vt_davis_labels_from_png(grey, 4, 0), 1);
    ck_assert_int_eq(grey[0], 0);
    ck_assert_int_eq(grey[1], 1);
    ck_assert_int_eq(grey[2], 1);
    /* Grey holding other values: labels as stored (255 stays void). */
    uint8_t ids[4] = {0, 1, 2, 255};
    ck_assert_int_eq(vt_davis_labels_from_png(ids, 4, 0), 0);
    ck_assert_int_eq(ids[3], 255);
    /* Palette: always labels, even when only 0 and 255 occur (all void). */
    uint8_t pal[2] = {0, 255};
    ck_assert_int_eq(vt_davis_labels_from_png(pal, 2, 1), 0);
    ck_assert_int_eq(pal[1], 255);
    uint8_t zero[3] = {0, 0, 0};
    ck_assert_int_eq(vt_davis_labels_from_png(zero, 3, 0), 0);

    /* Longer maps go 8 bytes at a time, then byte by byte: a stray value is seen anywhere. */
    for (int at = 0; at < 21; at++) {
        uint8_t m[21];
        for (int i = 0; i < 21; i++)
            m[i] = i % 3 ? 255 : 0;
        m[at] = 128;
        ck_assert_int_eq(vt_davis_labels_from_png(m, 21, 0), 0);
        ck_assert_int_eq(m[at], 128);
        m[at] = 255;
        ck_assert_int_eq(vt_davis_labels_from_png(m, 21, 0), 1);
        for (int i = 0; i < 21; i++)
            ck_assert_int_eq(m[i], i == at || i % 3 ? 1 : 0);
    }

    uint8_t l[5] = {0, 3, 255, 1, 2};
    ck_assert_int_eq(vt_davis_max_label(l, 5), 3);
    ck_assert_int_eq(vt_davis_max_label(zero, 3), 0);
    uint8_t only_void[2] = {255, 0};
    ck_assert_int_eq(vt_davis_max_label(only_void, 2), 0);
    uint8_t present[256];
    vt_davis_labels_present(l, 5, present);
    for (int v = 0; v < 256; v++)
        ck_assert_int_eq(present[v], v <= 3 || v == 255);
}
END_TEST

START_TEST(test_score_frame_objects_and_void) {
    const int w = 100, h = 100;
    uint8_t *gt = mask_new(w, h), *pred = mask_new(w, h);
    /* Object 1: square [10,19]^2 in both. Object 2: square [50,59]x[10,19] in the ground
     * truth, shifted right by 3 in the prediction. Void (255) [80,89]^2 in the ground truth,
     * where the prediction paints object 1 over [80,84]x[80,89] (50 pixels). */
    fill(gt, w, 10, 10, 19, 19, 1);
    fill(gt, w, 50, 10, 59, 19, 2);
    fill(gt, w, 80, 80, 89, 89, VT_DAVIS_VOID);
    fill(pred, w, 10, 10, 19, 19, 1);
    fill(pred, w, 53, 10, 62, 19, 2);
    fill(pred, w, 80, 80, 84, 89, 1);
    double j[2], f[2];

    /* Void ignored: object 1 perfect. Object 2: overlap 7 columns x 10 = 70, union 130
     * -> J = 7/13; F as the shift-3 case of test_boundary_tolerance: 0.6. */
    ck_assert_int_eq(vt_davis_score_frame(gt, pred, w, h, 2, 1, j, f), 0);
    assert_close(j[0], 1.0);
    assert_close(f[0], 1.0);
    assert_close(j[1], 7.0 / 13.0);
    assert_close(f[1], 0.6);

    /* Void as background (the official script): object 1 gains a 50-pixel false positive:
     * J = 100/150. Its boundary adds the border of box [79,84]x[79,89] (6x11: 30 pixels),
     * none near the square: n_pred 70, pred_match 40, P = 4/7, R = 1, F = 8/11. */
    ck_assert_int_eq(vt_davis_score_frame(gt, pred, w, h, 2, 0, j, f), 0);
    assert_close(j[0], 100.0 / 150.0);
    assert_close(f[0], 8.0 / 11.0);
    assert_close(j[1], 7.0 / 13.0);
    assert_close(f[1], 0.6);

    ck_assert_int_eq(vt_davis_score_frame(gt, pred, w, h, 255, 1, j, f), -EINVAL);
    ck_assert_int_eq(vt_davis_score_frame(gt, pred, 0, h, 2, 1, j, f), -EINVAL);
    free(gt), free(pred);
}
END_TEST

static Suite *davis_suite(void) {
    Suite *s = suite_create("davis");
    tm_add_case(s, "metrics", 60, test_bound_pix, test_iou, test_seg2bmap, test_boundary_tolerance,
                test_boundary_empty_conventions, test_boundary_void,
                test_boundary_matches_naive_dilation, test_boundary_bad_size, test_statistics,
                test_labels_from_png, test_score_frame_objects_and_void, NULL);
    return s;
}

int main(void) {
    return tm_run(davis_suite());
}
