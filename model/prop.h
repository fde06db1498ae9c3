/*
 * prop.h - the label propagation engine (internal to model/).
 *
 * Given the features of a target frame and a memory of earlier frames (their features and
 * their per-object soft labels), compute the target's per-object label probabilities:
 *
 *   for each target cell q:
 *     candidates = cells p of every memory frame m within its window around q (or all cells
 *                  of m for a global frame, or a window around q + offset_m(q) for an
 *                  ROI-localised frame)
 *     s(m,p)     = <f_t(q), f_m(p)>                      (features are unit vectors)
 *     keep the top-k candidates (all of them when k = 0)
 *     w          = softmax(s / temperature) over the kept candidates
 *     p_o(q)     = sum w * label_m,o(p) / sum w     over candidates whose frame knows object o
 *   then the objects' probabilities and the background are normalised to sum to one.
 *
 * Everything is at feature resolution: N = h * w cells, C channels, K objects. Features are
 * channel-major: [C][N] (the encoder's layout).
 */
#ifndef VT_PROP_H
#define VT_PROP_H

#include <stdint.h>

/* Window radius meaning "every cell of the frame". */
#define VT_PROP_GLOBAL (-1)

typedef struct vt_prop_frame {
    const float *feat;    /* [C][N] features, unit norm along C at each cell */
    const float *labels;  /* [K][N] object probabilities (background implicit) */
    const uint8_t *known; /* [K] 1 when the frame carries labels for object k */
    int radius;           /* window radius in cells, or VT_PROP_GLOBAL */
    int roi_dilation;     /* > 0: ROI localisation first, coarse grid step = this many cells */
} vt_prop_frame;

typedef struct vt_prop_cfg {
    int h, w, c;       /* feature map geometry */
    int max_objects;   /* K capacity */
    int max_frames;    /* memory frames per call */
    int max_radius;    /* largest window radius any frame will use */
    int topk;          /* 0 = every candidate */
    float temperature; /* softmax temperature on dot products */
    int roi_radius;    /* coarse search radius in grid steps (MAST: 12) */
} vt_prop_cfg;

typedef struct vt_prop vt_prop;

/* Allocate a propagation workspace for `cfg`; all per-frame buffers are sized here. */
int vtm_prop_new(const vt_prop_cfg *cfg, vt_prop **out);
void vtm_prop_free(vt_prop **p);

/* Per-call timings (ms) of the last vtm_prop_run(). */
typedef struct vt_prop_timing {
    double affinity; /* dot products, ROI search, top-k */
    double labels;   /* softmax and label aggregation */
} vt_prop_timing;

/*
 * Propagate labels from `nmem` memory frames to the target `feat` ([C][N], unit norm).
 * Writes out[K][N] object probabilities and bg[N], each cell summing to one over bg + objects.
 * `nobj` <= cfg.max_objects, `nmem` <= cfg.max_frames; frames' radii <= cfg.max_radius.
 */
int vtm_prop_run(vt_prop *p, const float *feat, const vt_prop_frame *mem, int nmem, int nobj,
                 float *out, float *bg, vt_prop_timing *timing);

#endif
