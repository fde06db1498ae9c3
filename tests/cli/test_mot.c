/*
 * The MOT metrics (cli/mot.c) against values worked out by hand from their definitions (mot.h;
 * TrackEval's Identity and CLEAR for IDF1 and IDSW/MOTA). Every expected number is derived in
 * the comment next to it, not computed by mot.c.
 *
 * Boxes are "x,y,w,h". Most cases use 10x10 boxes on one row (y 0), so that the IoU of two of
 * them is the overlap of their x intervals over the union of those intervals.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testmain.h"
#include "mot.h"
#include "vt_base.h"

#define EPS 1e-12

#define assert_close(got, want)                                                                    \
    ck_assert_msg(fabs((got) - (want)) < EPS, "%s = %.15f, want %.15f", #got, (double)(got),       \
                  (double)(want))

/* Ground truth (gt != 0) or predictions parsed from text; a parse error fails the test. */
static vt_mot_boxes boxes_of(int gt, const char *text) {
    vt_mot_boxes b = {0};
    char err[256] = "";
    const int rc = gt ? vt_mot_parse_gt(text, strlen(text), "gt.txt", &b, err, sizeof err)
                      : vt_mot_parse_pred(text, strlen(text), "pred.txt", &b, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    return b;
}

/* Score ground truth and predictions given as text. */
static vt_mot_counts score(const char *gt_text, const char *pred_text, vt_mot_switch **sw,
                           int *nsw) {
    vt_mot_boxes gt = boxes_of(1, gt_text), pred = boxes_of(0, pred_text);
    vt_mot_counts c;
    ck_assert_int_eq(vt_mot_score(&gt, &pred, &c, sw, nsw), 0);
    vt_mot_boxes_free(&gt);
    vt_mot_boxes_free(&pred);
    return c;
}

/* Every count of `c` as one line, compared with the hand-computed line of each test: the IoU
 * sum to 6 decimals (the cases' sums are sums of a few exact fractions, far from a rounding
 * edge). */
static void assert_counts(const vt_mot_counts *c, const char *want) {
    char got[256];
    snprintf(got, sizeof got,
             "ids %d gt %ld pred %ld | pairs %ld iou %.6f success %ld swaps %ld | "
             "idtp %ld idfp %ld idfn %ld | tp %ld fp %ld fn %ld idsw %ld",
             c->ids, c->gt_boxes, c->pred_boxes, c->pairs, c->iou_sum, c->success, c->swaps,
             c->idtp, c->idfp, c->idfn, c->tp, c->fp, c->fn, c->idsw);
    ck_assert_str_eq(got, want);
}

/* The metrics of `c` (percent, 4 decimals: the cases' ratios are small fractions, none within
 * 1e-4 of a rounding edge) against the hand-computed line of each test. */
static void assert_metrics(const vt_mot_counts *c, const char *want) {
    vt_mot_metrics m;
    vt_mot_metrics_of(c, &m);
    char got[256];
    snprintf(got, sizeof got,
             "ao %.4f sr50 %.4f swaps %.4f | idf1 %.4f idp %.4f idr %.4f | mota %.4f", m.ao, m.sr50,
             m.swap_pct, m.idf1, m.idp, m.idr, m.mota);
    ck_assert_str_eq(got, want);
}

/*
 * Score gt_text against pred_text and compare with the hand-computed lines: the counts (as
 * assert_counts), the identity switches as "FRAME:GT:FROM>TO" separated by spaces ("" for
 * none), and the metrics (as assert_metrics; NULL: not compared). Returns the counts.
 */
static vt_mot_counts check_scored(const char *gt_text, const char *pred_text, const char *counts,
                                  const char *switches, const char *metrics) {
    vt_mot_switch *sw = NULL;
    int nsw = 0;
    vt_mot_counts c = score(gt_text, pred_text, &sw, &nsw);
    assert_counts(&c, counts);
    char got[256] = "";
    for (int k = 0; k < nsw; k++) {
        size_t at = strlen(got);
        snprintf(got + at, sizeof got - at, "%s%d:%d:%d>%d", k ? " " : "", sw[k].frame, sw[k].gt_id,
                 sw[k].from_id, sw[k].to_id);
    }
    free(sw);
    ck_assert_str_eq(got, switches);
    if (metrics)
        assert_metrics(&c, metrics);
    return c;
}

/* ------------------------------------------------------------------------------------------ */

static double iou4(double ax, double ay, double aw, double ah, double bx, double by, double bw,
                   double bh) {
    const double a[4] = {ax, ay, aw, ah}, b[4] = {bx, by, bw, bh};
    double ab = vt_box_iou(a, b), ba = vt_box_iou(b, a);
    ck_assert_msg(ab == ba, "IoU not symmetric: %.17g vs %.17g", ab, ba);
    return ab;
}

START_TEST(test_iou) {
    /* identical */
    assert_close(iou4(3, 4, 10, 20, 3, 4, 10, 20), 1.0);
    /* disjoint, and touching along an edge (zero-area intersection) */
    assert_close(iou4(0, 0, 10, 10, 20, 0, 10, 10), 0.0);
    assert_close(iou4(0, 0, 10, 10, 10, 0, 10, 10), 0.0);
    assert_close(iou4(0, 0, 10, 10, 0, 10, 10, 10), 0.0);
    /* contained: [2,7)x[2,7] inside [0,10)^2: 25 / 100 */
    assert_close(iou4(0, 0, 10, 10, 2, 2, 5, 5), 0.25);
    /* half shifted: overlap 5x10 = 50, union 100 + 100 - 50 = 150 */
    assert_close(iou4(0, 0, 10, 10, 5, 0, 10, 10), 1.0 / 3.0);
    /* diagonal: overlap 5x5 = 25, union 175 */
    assert_close(iou4(0, 0, 10, 10, 5, 5, 10, 10), 1.0 / 7.0);
    /* fractional: [0.5,2.5)x[0,2) and [0,2)^2: overlap 1.5x2 = 3, union 4 + 4 - 3 = 5 */
    assert_close(iou4(0.5, 0, 2, 2, 0, 0, 2, 2), 0.6);
    /* a box partly outside the image (negative x) is an ordinary box: overlap 5x10, union 150 */
    assert_close(iou4(-5, 0, 10, 10, 0, 0, 10, 10), 1.0 / 3.0);
    /* zero size: no box, IoU 0, even against itself or around it */
    assert_close(iou4(0, 0, 0, 10, 0, 0, 10, 10), 0.0);
    assert_close(iou4(0, 0, 10, 0, 0, 0, 10, 10), 0.0);
    assert_close(iou4(3, 3, 0, 0, 3, 3, 0, 0), 0.0);
    assert_close(iou4(0, 0, -10, 10, -10, 0, 10, 10), 0.0);
}
END_TEST

/* The minimum total over every assignment, by enumerating them (small sizes only). */
static double brute_min(const double *cost, int rows, int cols, int r, uint32_t used) {
    if (r == rows)
        return 0;
    double best = INFINITY;
    int need_all_rows = rows <= cols; /* otherwise a row may stay out while columns last */
    int free_cols = cols - __builtin_popcount(used);
    if (!need_all_rows && rows - r > free_cols) /* this row may be left out */
        best = brute_min(cost, rows, cols, r + 1, used);
    for (int c = 0; c < cols; c++) {
        if (used & (1u << c))
            continue;
        double v = cost[r * cols + c] + brute_min(cost, rows, cols, r + 1, used | (1u << c));
        if (v < best)
            best = v;
    }
    return free_cols == 0 ? 0 : best;
}

static double total(const double *cost, int rows, int cols, const int *match) {
    double t = 0;
    int pairs = 0;
    uint32_t used = 0;
    for (int r = 0; r < rows; r++) {
        if (match[r] < 0)
            continue;
        ck_assert_int_lt(match[r], cols);
        ck_assert_msg(!(used & (1u << match[r])), "column %d used twice", match[r]);
        used |= 1u << match[r];
        t += cost[r * cols + match[r]];
        pairs++;
    }
    ck_assert_int_eq(pairs, rows < cols ? rows : cols);
    return t;
}

START_TEST(test_assign) {
    int m[4];
    /* Greedy (smallest first) takes 1, then 4, then 9: 14. The optimum is the anti-diagonal
     * 3 + 4 + 3 = 10 (the six permutations cost 14, 13, 13, 11, 11, 10). */
    const double c3[9] = {1, 2, 3, 2, 4, 6, 3, 6, 9};
    ck_assert_int_eq(vt_mot_assign(c3, 3, 3, m), 0);
    ck_assert_int_eq(m[0], 2);
    ck_assert_int_eq(m[1], 1);
    ck_assert_int_eq(m[2], 0);
    /* Maximising through negated weights: greedy takes 3 then 0 (-3); the optimum 2 + 2. */
    const double neg[4] = {-3, -2, -2, 0};
    ck_assert_int_eq(vt_mot_assign(neg, 2, 2, m), 0);
    ck_assert_int_eq(m[0], 1);
    ck_assert_int_eq(m[1], 0);
    /* More rows than columns: two pairs; r0c1 + r1c0 = 2 beats anything with row 2 (>= 4). */
    const double tall[6] = {5, 1, 1, 5, 3, 3};
    ck_assert_int_eq(vt_mot_assign(tall, 3, 2, m), 0);
    ck_assert_int_eq(m[0], 1);
    ck_assert_int_eq(m[1], 0);
    ck_assert_int_eq(m[2], -1);
    /* More columns than rows: the one row takes its cheapest column. */
    const double wide[3] = {4, 2, 3};
    ck_assert_int_eq(vt_mot_assign(wide, 1, 3, m), 0);
    ck_assert_int_eq(m[0], 1);
    /* Nothing to assign. */
    ck_assert_int_eq(vt_mot_assign(NULL, 0, 3, m), 0);
    m[0] = 7;
    ck_assert_int_eq(vt_mot_assign(wide, 1, 0, m), 0);
    ck_assert_int_eq(m[0], -1);

    /* Random matrices, 1..6 x 1..6, small integer costs (many ties), against enumeration. */
    uint32_t seed = 12345;
    for (int trial = 0; trial < 2000; trial++) {
        seed = seed * 1664525u + 1013904223u;
        int rows = 1 + (int)(seed >> 8) % 6;
        seed = seed * 1664525u + 1013904223u;
        int cols = 1 + (int)(seed >> 8) % 6;
        double cost[36];
        int match[6];
        for (int k = 0; k < rows * cols; k++) {
            seed = seed * 1664525u + 1013904223u;
            cost[k] = (double)((int)(seed >> 10) % 21 - 10);
        }
        ck_assert_int_eq(vt_mot_assign(cost, rows, cols, match), 0);
        double want = brute_min(cost, rows, cols, 0, 0);
        double got = total(cost, rows, cols, match);
        ck_assert_msg(got == want, "trial %d (%dx%d): total %g, optimum %g", trial, rows, cols, got,
                      want);
    }
}
END_TEST

START_TEST(test_parse_gt_conf) {
    /* Counted: (1,1), (2,1), (3,1), (2,2), (3,2). Ignored: id 2 on frame 1 (conf 0), a conf-0
     * line on a counted (frame, id) (no duplicate), id 3 (only conf 0), conf 2 and 0.5. Frames
     * written as "3.0", CRLF line ends, a blank line and spaces around fields are accepted. */
    vt_mot_boxes gt = boxes_of(1, "1,1,0,0,10,10,1,-1,-1,-1\n"
                                  "1,2,50,0,10,10,0,-1,-1,-1\n"
                                  "2,1,0,0,10,10,1,-1,-1,-1\r\n"
                                  "2,2,50,0,10,10,1,-1,-1,-1\n"
                                  "2,2,60,0,10,10,0,-1,-1,-1\n"
                                  "\n"
                                  "3,3,0,0,10,10,0\n"
                                  "3,3,0,0,10,10,2\n"
                                  "4,3,0,0,10,10,0.5\n"
                                  "3.0, 1, 0, 0, 10, 10, 1\n"
                                  "3,2,50.5,0,10,10,1.0,-1,-1,-1\n");
    ck_assert_int_eq(gt.n, 5);
    ck_assert_int_eq(gt.v[0].line, 1);
    ck_assert_int_eq(gt.v[3].frame, 3);
    ck_assert_int_eq(gt.v[3].id, 1);
    assert_close(gt.v[4].x, 50.5);
    /* Registrations: id 1 on frame 1; id 2 on frame 2 (its frame-1 line has conf 0). */
    vt_mot_boxes reg = {0};
    ck_assert_int_eq(vt_mot_registrations(&gt, &reg), 0);
    ck_assert_int_eq(reg.n, 2);
    ck_assert_int_eq(reg.v[0].id, 1);
    ck_assert_int_eq(reg.v[0].frame, 1);
    ck_assert_int_eq(reg.v[1].id, 2);
    ck_assert_int_eq(reg.v[1].frame, 2);
    assert_close(reg.v[1].x, 50);
    vt_mot_boxes_free(&reg);
    vt_mot_boxes_free(&gt);
}
END_TEST

START_TEST(test_conf_and_registration_scored) {
    /* id 1 on frames 1-3, id 2 counted on frames 2-3 (conf 0 on frame 1); predictions exact
     * for both on frames 1-3, so id 2 is also predicted on frame 1 where it does not count.
     *   pairs: id 1 frames 2, 3; id 2 frame 3 (frame 2 registers it): 3 pairs, all IoU 1:
     *          AO 100, SR50 100, no swap.
     *   IDF1: 5 ground-truth boxes, 6 predicted; IDTP 5 (1-1 on 3 frames, 2-2 on 2): IDFN 0,
     *         IDFP 1; IDF1 = 10 / (10 + 1) = 90.909..%, IDP 5/6, IDR 1.
     *   CLEAR: frame 1 has one ground truth and two predictions: TP 1, FP 1; frames 2, 3: TP 2
     *          each. TP 5, FP 1, FN 0, IDSW 0; MOTA = 1 - 1/5 = 80 %. */
    check_scored("1,1,0,0,10,10,1\n1,2,50,0,10,10,0\n"
                 "2,1,0,0,10,10,1\n2,2,50,0,10,10,1\n"
                 "3,1,0,0,10,10,1\n3,2,50,0,10,10,1\n",
                 "1,1,0,0,10,10\n1,2,50,0,10,10\n"
                 "2,1,0,0,10,10\n2,2,50,0,10,10\n"
                 "3,1,0,0,10,10\n3,2,50,0,10,10\n",
                 "ids 2 gt 5 pred 6 | pairs 3 iou 3.000000 success 3 swaps 0 | "
                 "idtp 5 idfp 1 idfn 0 | tp 5 fp 1 fn 0 idsw 0",
                 "",
                 "ao 100.0000 sr50 100.0000 swaps 0.0000 | "
                 "idf1 90.9091 idp 83.3333 idr 100.0000 | mota 80.0000");
}
END_TEST

/* One identity on frames 1-5 at 0,0,10,10 (registered on frame 1). */
static const char *const missing_gt = "1,1,0,0,10,10,1\n2,1,0,0,10,10,1\n3,1,0,0,10,10,1\n"
                                      "4,1,0,0,10,10,1\n5,1,0,0,10,10,1\n";
/* Frame 1 far off (the registration frame: not a pair), frame 2 exact, frame 3 zero width (no
 * box), frame 4 shifted by half (1/3), frame 5 no line. */
static const char *const missing_pred = "1,1,50,50,10,10,0.9\n2,1,0,0,10,10,0.9\n"
                                        "3,1,0,0,0,10,0.9\n4,1,5,0,10,10,0.9\n";

START_TEST(test_ao_missing_prediction) {
    /* pairs: frames 2-5 = 4; IoU 1, 0, 1/3, 0: AO = (4/3) / 4 = 33.33 %, SR50 1/4 = 25 %.
     * IDF1: 5 ground-truth boxes, 3 predicted boxes (frames 1, 2, 4; frame 3's has w 0); only
     *       frame 2 has IoU >= 0.5: IDTP 1, IDFN 4, IDFP 2; IDF1 = 2 / (2 + 6) = 25 %.
     * CLEAR: frame 1 FN + FP, frame 2 TP, frame 3 FN (no box), frame 4 FN + FP, frame 5 FN:
     *        TP 1, FN 4, FP 2, IDSW 0; MOTA = 1 - 6/5 = -20 %. */
    check_scored(missing_gt, missing_pred,
                 "ids 1 gt 5 pred 3 | pairs 4 iou 1.333333 success 1 swaps 0 | "
                 "idtp 1 idfp 2 idfn 4 | tp 1 fp 2 fn 4 idsw 0",
                 "",
                 "ao 33.3333 sr50 25.0000 swaps 0.0000 | "
                 "idf1 25.0000 idp 33.3333 idr 20.0000 | mota -20.0000");
}
END_TEST

/*
 * Two people crossing: id 1 walks right (x = 20 (f - 1)), id 2 left (x = 100 - 20 (f - 1)), on
 * frames 1-6. The tracker follows both until frame 3 and exchanges them from frame 4 on: its
 * id 1 is on person 2 and its id 2 on person 1.
 *   frame:     1    2    3    4    5    6
 *   person 1:  0   20   40   60   80  100
 *   person 2: 100  80   60   40   20    0
 */
static const char *const cross_gt =
    "1,1,0,0,10,10,1\n1,2,100,0,10,10,1\n2,1,20,0,10,10,1\n2,2,80,0,10,10,1\n"
    "3,1,40,0,10,10,1\n3,2,60,0,10,10,1\n4,1,60,0,10,10,1\n4,2,40,0,10,10,1\n"
    "5,1,80,0,10,10,1\n5,2,20,0,10,10,1\n6,1,100,0,10,10,1\n6,2,0,0,10,10,1\n";
static const char *const cross_pred =
    "1,1,0,0,10,10,1\n1,2,100,0,10,10,1\n2,1,20,0,10,10,1\n2,2,80,0,10,10,1\n"
    "3,1,40,0,10,10,1\n3,2,60,0,10,10,1\n4,2,60,0,10,10,1\n4,1,40,0,10,10,1\n"
    "5,2,80,0,10,10,1\n5,1,20,0,10,10,1\n6,2,100,0,10,10,1\n6,1,0,0,10,10,1\n";

START_TEST(test_swap) {
    /* pairs: frames 2-6 for both = 10. IoU 1 on frames 2, 3 (4 pairs); on 4-6 each predicted
     * box is exactly on the other person and 20 px from its own (IoU 0): 6 swaps.
     *   AO = 4/10 = 40 %, SR50 40 %, swaps 6 = 60 % of the pairs.
     * IDF1: each person matches prediction 1 on 3 frames and prediction 2 on 3 frames; the best
     *   pairing keeps 3 + 3: IDTP 6 of 12 boxes on each side: IDFN 6, IDFP 6, IDF1 = IDP = IDR =
     *   50 %.
     * CLEAR: frames 1-3 match 1-1 and 2-2. Frame 4: the only pairs with IoU >= 0.5 are person 1
     *   with prediction 2 and person 2 with prediction 1 (the continuation bonus cannot help
     *   pairs below 0.5): both match, two switches on frame 4 (1: 1 -> 2, 2: 2 -> 1). Frames 5,
     *   6 continue them. TP 12, FP 0, FN 0, IDSW 2; MOTA = 1 - 2/12 = 83.33 %. */
    check_scored(cross_gt, cross_pred,
                 "ids 2 gt 12 pred 12 | pairs 10 iou 4.000000 success 4 swaps 6 | "
                 "idtp 6 idfp 6 idfn 6 | tp 12 fp 0 fn 0 idsw 2",
                 "4:1:1>2 4:2:2>1",
                 "ao 40.0000 sr50 40.0000 swaps 60.0000 | "
                 "idf1 50.0000 idp 50.0000 idr 50.0000 | mota 83.3333");
}
END_TEST

/*
 * Greedy and optimal matchings differ. On frames 1 and 2, ground truth a (id 1) = [0,10) and
 * b (id 2) = [3,13); predictions p (id 7) = [1,11) and q (id 8) = [-3,7), all 10 high on y 0:
 *   IoU(a,p) = 9/11 = 0.82   IoU(a,q) = 7/13 = 0.54   IoU(b,p) = 8/12 = 0.67   IoU(b,q) = 4/16
 * Matching the best pair first (a-p) leaves b with q (< 0.5): one match. The optimum pairs a-q
 * and b-p (0.54 + 0.67 = 1.21 > 0.82): two. On frame 3, a alone at [0,10) and p exactly on it.
 */
static const char *const greedy_gt = "1,1,0,0,10,10,1\n1,2,3,0,10,10,1\n"
                                     "2,1,0,0,10,10,1\n2,2,3,0,10,10,1\n"
                                     "3,1,0,0,10,10,1\n";
static const char *const greedy_pred = "1,7,1,0,10,10\n1,8,-3,0,10,10\n"
                                       "2,7,1,0,10,10\n2,8,-3,0,10,10\n"
                                       "3,7,0,0,10,10\n";

START_TEST(test_greedy_differs_from_optimal) {
    /* CLEAR: frame 1: a-q, b-p (TP 2). Frame 2: the same pairs, now also preferred as the
     * previous frame's (+1000 each). Frame 3: a-p (IoU 1) is a's only pair: a was last matched
     * to q (8), so one switch on frame 3 (1: 8 -> 7). TP 5, FP 0, FN 0, IDSW 1; MOTA = 80 %.
     * IDF1: frames with IoU >= 0.5: a-p on 1, 2, 3 (3); a-q on 1, 2 (2); b-p on 1, 2 (2); b-q
     * never. Greedy pairing of trajectories would take a-p (3) and leave b with q (0): 3. The
     * optimum a-q + b-p = 4: IDTP 4 of 5 boxes on each side: IDFN 1, IDFP 1, IDF1 80 %.
     * Registration metrics: no prediction carries id 1 or 2: pairs 1 (frames 2, 3) + 2 (frame
     * 2) = 3, AO 0. */
    check_scored(greedy_gt, greedy_pred,
                 "ids 2 gt 5 pred 5 | pairs 3 iou 0.000000 success 0 swaps 0 | "
                 "idtp 4 idfp 1 idfn 1 | tp 5 fp 0 fn 0 idsw 1",
                 "3:1:8>7",
                 "ao 0.0000 sr50 0.0000 swaps 0.0000 | "
                 "idf1 80.0000 idp 80.0000 idr 80.0000 | mota 80.0000");
}
END_TEST

START_TEST(test_continuation_preferred) {
    /* Frame 1: a (id 1) at [0,10), prediction 5 exactly on it. Frame 2: a still at [0,10);
     * predictions 5 at [2,12) (IoU 8/12 = 0.67) and 6 exactly on a (IoU 1). Without the
     * continuation bonus 6 would win; with it, 5 scores 1000.67: a stays with 5, no switch, and
     * 6 is a false positive. TP 2, FP 1, IDSW 0. IDF1: a with 5 on both frames, with 6 on one:
     * IDTP 2, IDFP 1 (6's box), IDFN 0. Registration: frame 2 is a's one pair, and no prediction
     * carries id 1: IoU 0, no success, no swap. */
    check_scored("1,1,0,0,10,10,1\n2,1,0,0,10,10,1\n",
                 "1,5,0,0,10,10\n2,5,2,0,10,10\n2,6,0,0,10,10\n",
                 "ids 1 gt 2 pred 3 | pairs 1 iou 0.000000 success 0 swaps 0 | "
                 "idtp 2 idfp 1 idfn 0 | tp 2 fp 1 fn 0 idsw 0",
                 "", NULL);
    /* A gap breaks the preference but not the memory: frame 2 matches nothing (prediction 5 is
     * far), frame 3 has 5 (IoU 0.67) and 6 (IoU 1): 6 wins, and a was last matched to 5: a
     * switch on frame 3. IDF1: a with 5 on frames 1 and 3, with 6 on frame 3: IDTP 2, IDFP 2,
     * IDFN 1; pairs are frames 2 and 3. */
    check_scored("1,1,0,0,10,10,1\n2,1,0,0,10,10,1\n3,1,0,0,10,10,1\n",
                 "1,5,0,0,10,10\n2,5,50,0,10,10\n3,5,2,0,10,10\n3,6,0,0,10,10\n",
                 "ids 1 gt 3 pred 4 | pairs 2 iou 0.000000 success 0 swaps 0 | "
                 "idtp 2 idfp 2 idfn 1 | tp 2 fp 2 fn 1 idsw 1",
                 "3:1:5>6", NULL);
}
END_TEST

START_TEST(test_pooled) {
    /* The crossing (pairs 10, IoU sum 4) and the missing-prediction case (pairs 4, IoU sum 4/3)
     * pooled: AO = (16/3) / 14 = 38.10 %, SR50 (4 + 1) / 14, swaps 6 / 14.
     * IDTP 6 + 1 = 7, IDFP 6 + 2 = 8, IDFN 6 + 4 = 10: IDF1 = 14 / (14 + 18) = 43.75 %.
     * TP 13, FP 2, IDSW 2 over 12 + 5 = 17 boxes: MOTA = (13 - 2 - 2) / 17. */
    vt_mot_counts a = score(cross_gt, cross_pred, NULL, NULL);
    vt_mot_counts b = score(missing_gt, missing_pred, NULL, NULL);
    vt_mot_counts sum = {0};
    vt_mot_counts_add(&sum, &a);
    vt_mot_counts_add(&sum, &b);
    ck_assert_int_eq(sum.ids, 3);
    /* IDP 7 / 15, IDR 7 / 17 */
    assert_metrics(&sum, "ao 38.0952 sr50 35.7143 swaps 42.8571 | "
                         "idf1 43.7500 idp 46.6667 idr 41.1765 | mota 52.9412");
}
END_TEST

START_TEST(test_empty_sides) {
    /* No prediction at all: every pair IoU 0, every box missed; nothing divides by zero. */
    vt_mot_counts c = score(missing_gt, "", NULL, NULL);
    ck_assert_int_eq(c.pairs, 4);
    ck_assert_int_eq(c.idtp, 0);
    ck_assert_int_eq(c.idfn, 5);
    ck_assert_int_eq(c.idfp, 0);
    ck_assert_int_eq(c.fn, 5);
    vt_mot_metrics m;
    vt_mot_metrics_of(&c, &m);
    assert_close(m.ao, 0.0);
    assert_close(m.idf1, 0.0);
    assert_close(m.mota, 0.0);
    /* No ground truth: predictions are all false positives; MOTA = -FP / max(1, 0). */
    c = score("", missing_pred, NULL, NULL);
    ck_assert_int_eq(c.ids, 0);
    ck_assert_int_eq(c.pairs, 0);
    ck_assert_int_eq(c.fp, 3);
    ck_assert_int_eq(c.idfp, 3);
    vt_mot_metrics_of(&c, &m);
    assert_close(m.ao, 0.0);
    assert_close(m.mota, -300.0);
}
END_TEST

START_TEST(test_malformed) {
    static const struct {
        int gt;
        const char *text, *want;
    } bad[] = {
        {1, "1,1,0,0,10\n", "gt.txt:1: 5 fields, want at least 7"},
        {1, "1,1,0,0,10,10,1\n1,x,0,0,10,10,1\n", "gt.txt:2: field 2 (id): 'x' is not a number"},
        {1, "0,1,0,0,10,10,1\n", "gt.txt:1: field 1 (frame): 0 is not a frame number"},
        {1, "1.5,1,0,0,10,10,1\n", "gt.txt:1: field 1 (frame): 1.5 is not a frame number"},
        {1, "1,0,0,0,10,10,1\n", "gt.txt:1: field 2 (id): 0 is not an identity"},
        {1, "1,-2,0,0,10,10,1\n", "field 2 (id): -2 is not an identity"},
        {1, "1,1,0,0,-3,10,1\n", "gt.txt:1: field 5 (w): -3 is negative"},
        {1, "1,1,0,0,10,-0.5,0\n", "gt.txt:1: field 6 (h): -0.5 is negative"},
        {1, "1,1,0,0,10,nan,1\n", "field 6 (h): 'nan' is not a number"},
        {1, "1,1,0,0,10,inf,1\n", "field 6 (h): 'inf' is not a number"},
        {1, "1,1,0,0,10,1e999,1\n", "field 6 (h): 1e999 is not finite"},
        {1, "1,1,0x10,0,10,10,1\n", "field 3 (x): '0x10' is not a number"},
        {1, "1,1,0,0,10,10,\n", "gt.txt:1: field 7 (conf) is empty"},
        {1, "1,1,0,0,10,10,1,abc\n", "field 8 (extra): 'abc' is not a number"},
        {1, "1,1,0,0,10,10,1\n\n1,1,5,5,10,10,1\n",
         "gt.txt:3: frame 1, id 1 is given twice (also on line 1)"},
        {0, "1,1,0,0,10\n", "pred.txt:1: 5 fields, want at least 6"},
        {0, "1,1,0,0,10,10\n1,1,0,0,10,10\n", "pred.txt:2: frame 1, id 1 is given twice"},
        {0, "1,1,0,0,10,10,-\n", "field 7 (score): '-' is not a number"},
        {0, "-1,1,0,0,10,10\n", "field 1 (frame)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vt_mot_boxes b = {0};
        char err[256] = "";
        int rc = bad[i].gt ? vt_mot_parse_gt(bad[i].text, strlen(bad[i].text), "gt.txt", &b, err,
                                             sizeof err)
                           : vt_mot_parse_pred(bad[i].text, strlen(bad[i].text), "pred.txt", &b,
                                               err, sizeof err);
        ck_assert_msg(rc == -EINVAL, "case %zu: rc %d", i, rc);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "case %zu: '%s' lacks '%s'", i, err,
                      bad[i].want);
        vt_mot_boxes_free(&b);
    }
    /* Predictions may carry any integer id and a box of zero or negative size (no box). */
    vt_mot_boxes p = boxes_of(0, "1,-1,0,0,10,10,0.5,-1,-1,-1\n2,4,0,0,0,-3\n");
    ck_assert_int_eq(p.n, 2);
    ck_assert_int_eq(p.v[0].id, -1);
    assert_close(p.v[0].score, 0.5);
    assert_close(p.v[1].score, 1.0);
    vt_mot_boxes_free(&p);
}
END_TEST

START_TEST(test_seqinfo) {
    static const struct {
        const char *text;
        long want; /* -1: no seqLength */
    } ok[] = {
        {"[Sequence]\nname=MOT17-02\nframeRate=30\nseqLength=600\nimWidth=1920\n", 600},
        {"  seqLength \t=  42 \r\nimWidth=1\n", 42},
        {"seqLengthX=5\nseqLength=7", 7},  /* another key first; no newline at the end */
        {"seqLength=3\nseqLength=x\n", 3}, /* the first one counts */
        {"seqLength=000000000000000000000000000000000000000005\n", 5},
        {"seqLength=100000000\n", 100000000},
        {"[Sequence]\nname=a\n", -1},
        {"seqLength\n", -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        long n = 0;
        char err[256] = "";
        ck_assert_msg(vt_mot_parse_seqinfo(ok[i].text, strlen(ok[i].text), "seqinfo.ini", &n, err,
                                           sizeof err) == 0,
                      "case %zu: %s", i, err);
        ck_assert_msg(n == ok[i].want, "case %zu: %ld", i, n);
    }
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"seqLength=0\n", "seqinfo.ini:1: seqLength '0' is not a frame count (1..100000000)"},
        {"x\nseqLength = -3\n", "seqinfo.ini:2: seqLength '-3' is not"},
        {"seqLength=100000001\n", "'100000001' is not"},
        {"seqLength=99999999999999999999999999\n", "'99999999999999999999999999' is not"},
        {"seqLength=\n", "seqLength '' is not"},
        {"seqLength=1 0\n", "seqLength '1 0' is not"},
        {"seqLength=12abc\n", "seqLength '12abc' is not"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long n = 0;
        char err[256] = "";
        ck_assert_int_eq(vt_mot_parse_seqinfo(bad[i].text, strlen(bad[i].text), "seqinfo.ini", &n,
                                              err, sizeof err),
                         -EINVAL);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "case %zu: '%s' lacks '%s'", i, err,
                      bad[i].want);
    }
    /* Only `len` bytes count: the text need not end with a NUL. */
    long n = 0;
    ck_assert_int_eq(vt_mot_parse_seqinfo("seqLength=12345", 12, "s", &n, NULL, 0), 0);
    ck_assert_int_eq(n, 12);
}
END_TEST

static Suite *mot_suite(void) {
    Suite *s = suite_create("mot");
    tm_add_case(s, "metrics", 60, test_iou, test_assign, test_parse_gt_conf,
                test_conf_and_registration_scored, test_ao_missing_prediction, test_swap,
                test_greedy_differs_from_optimal, test_continuation_preferred, test_pooled,
                test_empty_sides, test_malformed, test_seqinfo, NULL);
    return s;
}

int main(void) {
    return tm_run(mot_suite());
}
