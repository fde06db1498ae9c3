/*
 * libFuzzer target: the MOTChallenge readers of `vtrack eval --mot` (cli/mot.c): ground-truth
 * files (gt/gt.txt) through vt_mot_parse_gt, result files through vt_mot_parse_pred, what they
 * give through vt_mot_registrations and vt_mot_score, and seqinfo.ini through
 * vt_mot_parse_seqinfo.
 *
 * Input: the text before the first NUL byte is a ground-truth file, the text after it a result
 * file; without a NUL byte the whole input is both. The whole input is also a seqinfo.ini. Each
 * text is an exact-size copy, so a read past its end is caught.
 *
 * Invariants: a refused file has a message; a sequence length is -1 or 1..100000000; an
 * accepted box file gives well-formed boxes (frames and ground-truth ids >= 1, finite values,
 * ground truth with w, h >= 0 and score 1) that print and parse back to the same values;
 * scoring accepted files keeps the counts consistent (TP + FN = ground-truth boxes, TP + FP =
 * predicted boxes, likewise IDTP) and the metrics finite.
 *
 * Seeds (tests/cli/seeds/fuzz_mot/): small gt.txt, result and seqinfo.ini files, and a gt.txt
 * and a result file joined by a NUL.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mot.h"
#include "fuzz.h"

/* Boxes scored together: the identity metrics are cubic in the number of identities. */
#define SCORE_MAX 256

typedef int (*parse_fn)(const char *, size_t, const char *, vt_mot_boxes *, char *, size_t);

/* Parse an exact-size copy of data[0..len). 0 with *out filled, or -1. */
static int parse(parse_fn fn, const uint8_t *data, size_t len, vt_mot_boxes *out) {
    char *text = malloc(len ? len : 1), err[512] = "";
    memcpy(text, data, len);
    memset(out, 0, sizeof *out);
    int rc = fn(text, len, "fuzz.txt", out, err, sizeof err);
    free(text);
    if (rc < 0) {
        CHECK(err[0] != '\0');
        vt_mot_boxes_free(out);
        return -1;
    }
    CHECK(rc == 0);
    return 0;
}

static void check_seqinfo(const uint8_t *data, size_t size) {
    char *text = malloc(size ? size : 1), err[512] = "";
    memcpy(text, data, size);
    long n = 0;
    if (vt_mot_parse_seqinfo(text, size, "seqinfo.ini", &n, err, sizeof err) < 0)
        CHECK(err[0] != '\0');
    else
        CHECK(n == -1 || (n >= 1 && n <= 100000000));
    free(text);
}

static void check_boxes(const vt_mot_boxes *l, int is_gt) {
    for (int i = 0; i < l->n; i++) {
        const vt_mot_box *b = &l->v[i];
        CHECK(b->frame >= 1 && b->line >= 1 && (i == 0 || b->line > l->v[i - 1].line));
        CHECK(isfinite(b->x) && isfinite(b->y) && isfinite(b->w) && isfinite(b->h) &&
              isfinite(b->score));
        if (is_gt)
            CHECK(b->id >= 1 && b->w >= 0 && b->h >= 0 && b->score == 1);
    }
}

/* Print the boxes as a file of the same kind and parse it back: the same values. */
static void check_reprint(const vt_mot_boxes *l, parse_fn fn, int is_gt) {
    size_t cap = (size_t)l->n * 160 + 1, len = 0;
    char *text = malloc(cap);
    for (int i = 0; i < l->n; i++) {
        const vt_mot_box *b = &l->v[i];
        len += (size_t)snprintf(text + len, cap - len, "%d,%d,%.17g,%.17g,%.17g,%.17g,%.17g\n",
                                b->frame, b->id, b->x, b->y, b->w, b->h, is_gt ? 1.0 : b->score);
    }
    vt_mot_boxes back;
    CHECK(parse(fn, (const uint8_t *)text, len, &back) == 0);
    CHECK(back.n == l->n);
    for (int i = 0; i < l->n; i++) {
        const vt_mot_box *a = &l->v[i], *b = &back.v[i];
        CHECK(a->frame == b->frame && a->id == b->id && a->x == b->x && a->y == b->y &&
              a->w == b->w && a->h == b->h && a->score == b->score);
    }
    vt_mot_boxes_free(&back);
    free(text);
}

static void check_score(const vt_mot_boxes *gt, const vt_mot_boxes *pred) {
    vt_mot_boxes reg = {0};
    CHECK(vt_mot_registrations(gt, &reg) == 0);
    for (int i = 1; i < reg.n; i++)
        CHECK(reg.v[i].id > reg.v[i - 1].id);
    vt_mot_boxes_free(&reg);

    vt_mot_counts c;
    vt_mot_switch *sw = NULL;
    int nsw = -1;
    CHECK(vt_mot_score(gt, pred, &c, &sw, &nsw) == 0);
    long boxes = 0;
    for (int i = 0; i < pred->n; i++)
        boxes += pred->v[i].w > 0 && pred->v[i].h > 0;
    CHECK(c.gt_boxes == gt->n && c.pred_boxes == boxes);
    CHECK(c.tp >= 0 && c.fp >= 0 && c.fn >= 0 && c.tp + c.fn == c.gt_boxes &&
          c.tp + c.fp == c.pred_boxes);
    CHECK(c.idtp >= 0 && c.idfp >= 0 && c.idfn >= 0 && c.idtp + c.idfn == c.gt_boxes &&
          c.idtp + c.idfp == c.pred_boxes);
    CHECK(c.idsw == nsw && c.idsw <= c.tp);
    CHECK(c.success >= 0 && c.swaps >= 0 && c.success + c.swaps <= c.pairs &&
          c.pairs <= c.gt_boxes);
    CHECK(isfinite(c.iou_sum) && c.iou_sum >= 0);
    for (int i = 1; i < nsw; i++)
        CHECK(sw[i].frame >= sw[i - 1].frame);
    free(sw);
    vt_mot_metrics m;
    vt_mot_metrics_of(&c, &m);
    CHECK(isfinite(m.ao) && isfinite(m.sr50) && isfinite(m.swap_pct) && isfinite(m.idf1) &&
          isfinite(m.idp) && isfinite(m.idr) && isfinite(m.mota));
}

/* libFuzzer's entry point: called with each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t gt_len = nul ? (size_t)(nul - data) : size;
    const uint8_t *pred_text = nul ? nul + 1 : data;
    size_t pred_len = nul ? size - gt_len - 1 : size;

    check_seqinfo(data, size);
    vt_mot_boxes gt, pred;
    int gt_ok = parse(vt_mot_parse_gt, data, gt_len, &gt) == 0;
    int pred_ok = parse(vt_mot_parse_pred, pred_text, pred_len, &pred) == 0;
    if (gt_ok) {
        check_boxes(&gt, 1);
        check_reprint(&gt, vt_mot_parse_gt, 1);
    }
    if (pred_ok) {
        check_boxes(&pred, 0);
        check_reprint(&pred, vt_mot_parse_pred, 0);
    }
    if (gt_ok && pred_ok && gt.n <= SCORE_MAX && pred.n <= SCORE_MAX)
        check_score(&gt, &pred);
    if (gt_ok)
        vt_mot_boxes_free(&gt);
    if (pred_ok)
        vt_mot_boxes_free(&pred);
    return 0;
}
