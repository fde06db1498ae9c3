/*
 * appear.h - an object's appearance against its surroundings (internal to model/).
 *
 * Two banks of unit feature vectors per object: cells of the object (positives) and cells
 * around it that are not the object (negatives: the background near it, and the other objects
 * that come near). Each bank keeps the cells of the frame the object was given on for good (the
 * only certain ones) and, in its other half, the newest cells of later frames where the object
 * was well seen, first in first out.
 *
 * A cell's object probability is the share of the object's cells among its k best matches in
 * both banks, weighted as the tracker weights candidates (softmax of the dot products over a
 * temperature): the same nearest-neighbour rule the propagation uses, but against what is known
 * to be the object and what is known not to be, wherever they were. It tells the object from
 * background that took its label (the ground it stood on a moment ago) and from a look-alike
 * the object has been seen beside.
 */
#ifndef VT_APPEAR_H
#define VT_APPEAR_H

#include <stddef.h>

typedef struct vt_appear_bank {
    float *v;   /* [cap][c] */
    int cap;    /* rows */
    int fixed;  /* rows [0, fixed) are kept for good, rows [fixed, cap) roll */
    int nfixed; /* rows of the fixed part in use */
    int nroll;  /* rows of the rolling part in use */
    int next;   /* next row of the rolling part to overwrite (from 0) */
} vt_appear_bank;

typedef struct vt_appear {
    int c;
    vt_appear_bank pos, neg;
} vt_appear;

/* Bytes of storage vtm_appear_init() needs for c channels. */
size_t vtm_appear_bytes(int c);

/* Lay the banks out in `storage` (vtm_appear_bytes(c) bytes, float-aligned) and empty them. */
void vtm_appear_init(vt_appear *a, int c, float *storage);

/* Empty both banks. */
void vtm_appear_reset(vt_appear *a);

/*
 * Add the features of `ncells` cells (indices into feat [C][N]) to the positives (positive = 1)
 * or negatives. `fixed` = 1 fills the part kept for good (the frame the object was given on),
 * else the rolling part. At most `max_take` cells are taken, evenly spread over the list.
 */
void vtm_appear_add(vt_appear *a, int positive, const float *feat, int n, const int *cells,
                    int ncells, int fixed, int max_take);

/*
 * Object probability of `ncells` cells of feat [C][N]: out[i] in [0,1]. `gather` holds
 * ncells * c floats and `sims` ncells * (pos.cap + neg.cap) floats of scratch. With an empty
 * positive or negative bank every cell gets 1 (nothing to tell apart).
 */
void vtm_appear_score(const vt_appear *a, const float *feat, int n, const int *cells, int ncells,
                      int topk, float temperature, float *gather, float *sims, float *out);

/* Rows of the banks (positives, negatives); the scratch sizes above depend on them. */
#define VT_APPEAR_POS 128
#define VT_APPEAR_NEG 256

#endif
