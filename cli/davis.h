/*
 * davis.h - the DAVIS semi-supervised video object segmentation metrics, as the official
 * evaluation code (davisvideochallenge/davis2017-evaluation) computes them.
 *
 * Pure functions on in-memory masks: no I/O, no global state, safe from any thread.
 *
 * Masks are row-major arrays of w*h bytes. A "binary mask" is set where its byte is non-zero.
 * A "label map" holds object ids: 0 background, 1..254 objects, VT_DAVIS_VOID (255) void.
 * Every pointer is borrowed for the duration of the call only.
 *
 * Errors: fallible functions return 0 or a negative errno value (-EINVAL, -ENOMEM).
 */
#ifndef VT_CLI_DAVIS_H
#define VT_CLI_DAVIS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The label that marks void (unlabelled) pixels in DAVIS-2017 palette annotations. */
#define VT_DAVIS_VOID 255

/*
 * The boundary tolerance in pixels for a w x h image: ceil(0.008 * sqrt(w^2 + h^2)), as the
 * official f_measure computes it from its bound_th of 0.008 (8 for 854x480). 0 if w or h < 1.
 */
int vt_davis_bound_pix(int w, int h);

/*
 * The official _seg2bmap boundary map of `mask` (without resizing: the map has the mask's
 * size): a pixel is on the boundary when it differs from its right, lower or lower-right
 * neighbour; in the last row only the right neighbour counts, in the last column only the lower
 * one, and the bottom-right pixel never is. When `void_mask` is not NULL the mask is first
 * cleared where void_mask is set, as f_measure does. Writes 0/1 to bmap (w*h bytes, caller's)
 * and returns the number of boundary pixels, or -ENOMEM (0 and nothing written if w or h < 1).
 */
long vt_davis_seg2bmap(const uint8_t *mask, const uint8_t *void_mask, int w, int h, uint8_t *bmap);

/*
 * Region similarity J of two binary masks: |gt & pred| / |gt | pred|, counting only pixels
 * where `void_mask` (may be NULL) is not set; 1 when the union is empty, as db_eval_iou.
 */
double vt_davis_iou(const uint8_t *gt, const uint8_t *pred, const uint8_t *void_mask, int w, int h);

/* The boundary measure of one frame with the counts behind it. */
typedef struct vt_davis_boundary {
    double f;         /* boundary F-measure, in [0,1] */
    double precision; /* pred_match / n_pred, or the official convention when a map is empty */
    double recall;    /* gt_match / n_gt, likewise */
    long n_gt;        /* boundary pixels of the ground truth */
    long n_pred;      /* boundary pixels of the prediction */
    long gt_match;    /* ground-truth boundary pixels within bound_pix of a predicted one */
    long pred_match;  /* predicted boundary pixels within bound_pix of a ground-truth one */
    int bound_pix;    /* the tolerance used */
} vt_davis_boundary;

/*
 * Boundary F-measure of two binary masks as the official f_measure: boundaries by
 * vt_davis_seg2bmap (void pixels cleared from both masks first when `void_mask` is not NULL),
 * each dilated by a disk of radius bound_pix (skimage.morphology.disk: offsets with
 * dx^2 + dy^2 <= r^2; nothing beyond the image border), matches counted on the other boundary.
 * Empty boundaries: neither -> F 1; only the prediction's or only the ground truth's -> F 0.
 * bound_pix <= 0 selects vt_davis_bound_pix(w, h). Exact (integer arithmetic); costs one pass
 * over the masks plus about 2 bound_pix + 1 steps per boundary pixel. Fills *out; returns 0,
 * -EINVAL on a bad size or -ENOMEM.
 */
int vt_davis_boundary_f(const uint8_t *gt, const uint8_t *pred, const uint8_t *void_mask, int w,
                        int h, int bound_pix, vt_davis_boundary *out);

/* The per-object statistics of a per-frame series (J or F). */
typedef struct vt_davis_stats {
    double mean;   /* mean over the frames */
    double recall; /* fraction of frames whose value is > 0.5 */
    double decay;  /* mean of the first quarter minus mean of the last quarter */
} vt_davis_stats;

/*
 * Mean, recall and decay of `n` per-frame values as the official db_statistics: the frames are
 * cut into 4 bins at round(linspace(1, n, 5)) - 1, each bin inclusive of both ends (so
 * neighbouring bins share a frame), and decay = mean(bin 0) - mean(bin 3). Unlike the official
 * code, the bin edges are not truncated to 8 bits, which only matters beyond 256 frames.
 * Returns 0, or -EINVAL when n < 1.
 */
int vt_davis_statistics(const double *values, int n, vt_davis_stats *out);

/*
 * Turn a decoded single-channel mask into a label map in place. Palette PNGs (is_palette != 0)
 * already hold labels and are left alone. A grey PNG whose values are all 0 or 255 is a
 * DAVIS-2016 binary mask: 255 becomes object 1. Any other grey PNG is taken as labels, as the
 * official code reads it. Returns 1 if values were remapped, 0 otherwise.
 */
int vt_davis_labels_from_png(uint8_t *labels, size_t n, int is_palette);

/* Set present[v] to 1 for every value v that occurs in the map, 0 for the others. */
void vt_davis_labels_present(const uint8_t *labels, size_t n, uint8_t present[256]);

/* The largest label in a label map, ignoring VT_DAVIS_VOID; 0 if there is no object. */
int vt_davis_max_label(const uint8_t *labels, size_t n);

/*
 * Score one frame of a sequence with `n_obj` objects: j[k-1] and f[k-1] (caller's arrays of
 * n_obj doubles) for each object k, compared as the binary masks gt == k and pred == k.
 * With ignore_void, ground-truth pixels labelled VT_DAVIS_VOID are excluded from both measures
 * (db_eval_iou and f_measure given void_pixels); without it they are background, as the
 * official semi-supervised pipeline effectively scores them (it passes no void mask).
 * Returns 0, -EINVAL on a bad size or -ENOMEM.
 */
int vt_davis_score_frame(const uint8_t *gt, const uint8_t *pred, int w, int h, int n_obj,
                         int ignore_void, double *j, double *f);

#ifdef __cplusplus
}
#endif

#endif
