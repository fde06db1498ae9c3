/*
 * mot.h - metrics of box-registered multi-object tracking on MOTChallenge-format files.
 *
 * The protocol is a camera user's: every person is registered by its ground-truth box on the
 * frame where it first appears (its first counted line), and the tracker follows it from there.
 * Two families of metrics are computed on one sequence:
 *
 *   - per identity, from its registration on: AO (mean IoU of its predicted box with its
 *     ground-truth box over every later counted frame, 0 where no box is predicted), SR50 (the
 *     share of those frames with IoU >= 0.5) and identity swaps (the predicted box sits on
 *     another identity's box, IoU >= 0.5, while its IoU with its own is below 0.5);
 *   - the MOTChallenge metrics over every frame, as TrackEval (Luiten et al.) computes them on
 *     the tracker's MOT-format output: IDF1/IDP/IDR (Ristani et al. 2016: one global optimal
 *     matching of ground-truth and predicted trajectories) and CLEAR MOT (per-frame optimal
 *     matching that prefers the previous frame's matches; IDSW, MOTA).
 *
 * A box is x, y, w, h in pixels (x, y the top-left corner); frames count from 1. Ground truth
 * lines count only where their conf column is 1. A prediction with w or h <= 0 is no box.
 *
 * Pure functions on in-memory data: no files, no global state, safe from any thread.
 * Errors: fallible functions return 0 or a negative errno value (-EINVAL, -ENOMEM); parsers
 * also write a one-line message naming the file, line and field at fault.
 */
#ifndef VT_CLI_MOT_H
#define VT_CLI_MOT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The IoU from which a box counts as found (SR50, swaps, IDF1 and CLEAR matches). */
#define VT_MOT_IOU_MATCH 0.5

typedef struct vt_mot_box {
    int frame; /* from 1 */
    int id;
    double x, y, w, h;
    double score; /* predictions: the confidence column (1 when absent); ground truth: 1 */
    int line;     /* the line it was read from (0: not read from a file) */
} vt_mot_box;

/* A growable array of boxes; a zeroed one is empty. */
typedef struct vt_mot_boxes {
    vt_mot_box *v;
    int n, cap;
} vt_mot_boxes;

/* Append a copy of *b. 0 or -ENOMEM. */
int vt_mot_boxes_add(vt_mot_boxes *l, const vt_mot_box *b);

/* Free the array and zero *l. */
void vt_mot_boxes_free(vt_mot_boxes *l);

/* Sort by frame, then id. */
void vt_mot_boxes_sort(vt_mot_boxes *l);

/*
 * Parse a MOTChallenge ground-truth file's text (`len` bytes; `name` names it in messages):
 * lines "frame,id,x,y,w,h,conf[,more numbers]", blank lines skipped, spaces around fields
 * allowed. Every line must be well formed: frame an integer >= 1, id an integer >= 1, every
 * other field a finite number, w and h not negative. Only lines with conf == 1 are appended to
 * `out` (score 1), in file order; the others are ignored. Two counted lines with the same frame
 * and id are an error. Returns 0 or -EINVAL (message in err), -ENOMEM.
 */
int vt_mot_parse_gt(const char *text, size_t len, const char *name, vt_mot_boxes *out, char *err,
                    size_t errlen);

/*
 * Parse a MOTChallenge result file's text: "frame,id,x,y,w,h[,score[,more numbers]]". frame is
 * an integer >= 1, id any integer, the rest finite numbers (w or h <= 0: no box, kept as given).
 * Every line is appended (score 1 when absent). Two lines with the same frame and id are an
 * error. Returns 0, -EINVAL (message in err) or -ENOMEM.
 */
int vt_mot_parse_pred(const char *text, size_t len, const char *name, vt_mot_boxes *out, char *err,
                      size_t errlen);

/*
 * Parse a MOTChallenge seqinfo.ini's text for its sequence length: the first line of the form
 * "seqLength = N" (spaces and tabs allowed around the key, the '=' and the value; a "\r" before
 * the newline too). Other lines and keys are ignored, and so are sections. *length is N, or -1
 * when no line has the key. Returns 0, or -EINVAL when N is not an integer in 1..100000000
 * (message naming the file and line in err).
 */
int vt_mot_parse_seqinfo(const char *text, size_t len, const char *name, long *length, char *err,
                         size_t errlen);

/*
 * The registrations: for each ground-truth identity its first counted line (lowest frame), in
 * id order, appended to `out`. `gt` as vt_mot_parse_gt gives it. 0 or -ENOMEM.
 */
int vt_mot_registrations(const vt_mot_boxes *gt, vt_mot_boxes *out);

/* Counts of one sequence (or, summed with vt_mot_counts_add, of several). */
typedef struct vt_mot_counts {
    int ids;         /* ground-truth identities */
    long gt_boxes;   /* counted ground-truth lines */
    long pred_boxes; /* predicted boxes with w, h > 0 */
    /* the registration protocol: pairs (identity, frame) after the identity's registration */
    long pairs;
    double iou_sum; /* sum of the pairs' IoU */
    long success;   /* pairs with IoU >= 0.5 */
    long swaps;     /* pairs whose box is on another identity's (see the top of this file) */
    /* identity metrics (Ristani et al.) */
    long idtp, idfp, idfn;
    /* CLEAR MOT */
    long tp, fp, fn, idsw;
} vt_mot_counts;

/* An identity switch of CLEAR MOT: ground-truth `gt_id`, last matched to prediction `from_id`,
 * is matched to prediction `to_id` on `frame`. */
typedef struct vt_mot_switch {
    int frame, gt_id, from_id, to_id;
} vt_mot_switch;

/*
 * Score the predictions `pred` (one sequence, ids as the tracker gave them; for the
 * registration metrics the prediction of identity i is the box with id i) against `gt` (as
 * vt_mot_parse_gt gives it). Neither may hold two boxes of the same frame and id (the parsers
 * refuse them). The identity and CLEAR metrics use every counted ground-truth box and every
 * predicted box with w, h > 0, on every frame, registration frames included.
 * When `switches` is not NULL it receives a malloc'd array of the *nswitches identity switches
 * in frame order (NULL when there are none). Returns 0 or -ENOMEM.
 */
int vt_mot_score(const vt_mot_boxes *gt, const vt_mot_boxes *pred, vt_mot_counts *out,
                 vt_mot_switch **switches, int *nswitches);

/* sum += c (pooling: AO and SR50 over all pairs, the identity and CLEAR counts summed). */
void vt_mot_counts_add(vt_mot_counts *sum, const vt_mot_counts *c);

/* The metrics of a count, in percent (0 where their denominator is 0). */
typedef struct vt_mot_metrics {
    double ao;       /* 100 * iou_sum / pairs */
    double sr50;     /* 100 * success / pairs */
    double swap_pct; /* 100 * swaps / pairs */
    double idf1;     /* 100 * IDTP / (IDTP + (IDFP + IDFN) / 2) */
    double idp;      /* 100 * IDTP / (IDTP + IDFP) */
    double idr;      /* 100 * IDTP / (IDTP + IDFN) */
    double mota;     /* 100 * (1 - (FN + FP + IDSW) / ground-truth boxes) */
} vt_mot_metrics;

void vt_mot_metrics_of(const vt_mot_counts *c, vt_mot_metrics *m);

/*
 * Minimum-cost assignment (the Hungarian method): `cost` is a rows x cols row-major matrix of
 * finite values; min(rows, cols) pairs, no row or column used twice, with the least total cost.
 * match[r] receives the column of row r, or -1 for rows left over (rows > cols). 0 or -ENOMEM.
 */
int vt_mot_assign(const double *cost, int rows, int cols, int *match);

#ifdef __cplusplus
}
#endif

#endif
