/*
 * locate.h - find an object as a whole in a new frame (internal to model/).
 *
 * The propagation labels cells one by one, from whatever they resemble in the memory; a box made
 * of such cells drifts with the background the object left and the neighbours it brushed. An
 * object is also one thing that moves as a block: this module keeps a template of it, a grid of
 * feature vectors sampled over its box with a weight per sample (how much of that sample is the
 * object, from its mask: the background inside a box weighs nothing), and finds the shift of the
 * box whose samples match the template best, near where its motion puts it. The score of the
 * best shift (weighted mean of the dot products of unit features) also tells how much of the
 * object is in view.
 *
 * The template follows slow changes of appearance (a turning person) by a running mean over the
 * frames where the object is well seen.
 */
#ifndef VT_LOCATE_H
#define VT_LOCATE_H

#include <stddef.h>

/* Samples per side of a template, at most (an object wider than this many cells is sampled). */
#define VT_LOCATE_GRID 12

typedef struct vt_locate {
    int c;
    int gw, gh;  /* samples, at most VT_LOCATE_GRID each */
    float *tmpl; /* [gh * gw][c] */
    float *wt;   /* [gh * gw] */
    int valid;
} vt_locate;

/* Floats of storage for c channels. */
size_t vtm_locate_floats(int c);

void vtm_locate_init(vt_locate *l, int c, float *storage);

/*
 * Learn the template from features feat [C][N] (fw x fh cells, unit vectors) in `box` (x, y, w,
 * h in cell units, continuous: cell i spans [i, i + 1)), with sample weights from `cover` [N]
 * (the object's share of each cell; NULL: keep the weights, blend only the features). rate 1
 * sets it, rate < 1 blends it into the template.
 */
void vtm_locate_learn(vt_locate *l, const float *feat, int fw, int fh, const float box[4],
                      const float *cover, float rate);

/*
 * Find the template around `box` (cell units): shifts of whole cells up to `radius` each way,
 * the best refined to a fraction of a cell by a parabola through its neighbours, then the box
 * 6 % larger or smaller about its centre if that matches better. A shift of d cells costs
 * penalty * |d|^2 off its score (a preference for the predicted place: the caller sets it from
 * the motion's uncertainty). Writes the found box to out and returns its score (weighted mean dot
 * product, before the penalty), or -2 when there is no template.
 * `scores` holds (2 radius + 1)^2 floats of scratch.
 */
double vtm_locate_find(const vt_locate *l, const float *feat, int fw, int fh, const float box[4],
                       int radius, float penalty, float *scores, float out[4]);

/* Score of the template with its box at `box` exactly. */
double vtm_locate_score(const vt_locate *l, const float *feat, int fw, int fh, const float box[4]);

#endif
