/*
 * track.c - the tracker: objects, the memory bank, one propagation step per frame, object
 * states, and the results at source resolution.
 *
 * Per frame:  source RGB --resize--> processing RGB --encoder--> features [C][fh][fw]
 *   --transpose + unit norm--> [N][C]; the fixed camera's background is learnt (bgmodel.h);
 *   each object's motion predicts its box and its template is searched there (motion.h,
 *   locate.h) --prop (memory)--> object probabilities [K][N] + bg [N] --gated by the motion,
 *   hidden objects found again given their cells, weighed by the background, cells that stayed
 *   behind and the appearance banks (appear.h), stray pieces dropped--> objects given
 *   on this frame override --> bilinear upsample + argmax --> label map at source size -->
 *   per-object mask, box (the motion filter's, corrected by the mask), area, state --> memory
 *   entry (one-hot of the reported labels; hidden objects unknown). docs/TRACKING.md has the
 *   whole story.
 *
 * Memory: vt_tracker_memory_bound() (docs/TRACKING.md, "Memory and allocation").
 */
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "appear.h"
#include "bgmodel.h"
#include "ground.h"
#include "locate.h"
#include "motion.h"
#include "nn.h"
#include "prop.h"
#include "track_int.h"
#include "vt_base.h"
#include "vt_model.h"

/* Resize taps (resize_rgb): output i reads sources [lo, lo + n), weights summing to sum. */
/* Cells scored against the appearance banks per sgemm. */
#define APP_CHUNK 256
/* Largest search radius of an object's template, cells. */
#define LOC_RADIUS 8
/* Objects narrower than this many cells are not looked for by their template (2 samples
 * across tell nothing from what stands next to them). */
#define LOC_MIN_CELLS 3
/* Objects narrower than this many cells take the moving pixels near them that a fixed camera's
 * background model finds: the propagation gives a sliver of a few cells too little. */
#define SMALL_CELLS 5

typedef struct rs_span {
    int lo, n;
    double sum;
} rs_span;

typedef struct rs_taps {
    int src_n, dst_n, maxn; /* planned for these sizes; maxn weights per output */
    rs_span *span;          /* [dst_n] */
    float *w;               /* [dst_n][maxn] */
} rs_taps;

typedef struct obj {
    int live;    /* slot in use */
    int pending; /* shape waits for the next frame */
    uint32_t id;
    char label[VT_LABEL_MAX + 1];
    vt_shape shape; /* copy; pointers below own the data */
    uint8_t *data;  /* MASK/LABELS copy */
    float *points;  /* POLYGON copy */
    int64_t added;  /* frame on which the shape was applied */
    vt_object_state state;
    vt_motion mot;    /* the box's motion, source pixels */
    float rel[4];     /* the given box against its mask's box: (x0 - mx0) / mw, (y0 - my0) / mh,
                       * (x1 - mx1) / mw, (y1 - my1) / mh; 0 for masks and polygons */
    double fill;      /* share of its box the mask covers on good frames */
    int unseen;       /* consecutive frames without a usable measurement */
    double spill;     /* how far its mask reaches beyond its predicted box: running mean of the
                       * squared excess, pixels^2 (deforming objects get a wider gate) */
    int size_dis[2];  /* frames in a row the mask has said another width, height (+ larger,
                       * - smaller) */
    vt_appear app;    /* what the object looks like, and what it does not */
    vt_locate loc;    /* the object as a whole: a template of its box */
    double loc_ref;   /* its typical match score while well seen (0: not yet) */
    double loc_score; /* this frame's */
    int behind;       /* this frame, a third of its predicted box lies under the box of an
                       * object nearer the camera (behind_objects) */
    int located;      /* its template was found this frame (the filter took the centre) */
    double vis;       /* last frame's share of its predicted box's expected area that it showed */
    int refound;      /* hidden, and its template found again this frame at loc_box */
    float loc_box[4]; /* where, in cells */
    int still;        /* given where the background model sees only background (a parked car):
                       * that model does not apply to it */
    uint8_t *mask;    /* source-size output mask */
    size_t mask_cap;
} obj;

typedef struct entry {
    int used, anchor, longterm, inring;
    int64_t frame;
    float *feat;    /* [C][N] */
    float *labels;  /* [K][N] */
    uint8_t *known; /* [K] */
} entry;

struct vt_tracker {
    const vt_model *model;
    vt_tracker_params p;
    vt_encoder *enc;
    vt_prop *prop;
    int64_t frame; /* frames stepped */

    /* geometry, fixed by the first frame */
    int pw, ph;    /* processing size */
    int fw, fh, n; /* feature map */
    int c, stride;
    int sw, sh; /* current source size */

    uint8_t *proc_rgb;
    size_t proc_cap;
    float *rs_tmp; /* resize scratch: the vertical pass's output */
    size_t rs_cap;
    rs_taps rs_h, rs_v; /* resize filter taps, horizontal and vertical, kept while sizes last */

    float *feat;           /* [C][N] current frame, unit norm per cell when l2norm */
    float *probs;          /* [K][N] */
    float *bg;             /* [N] */
    float *cover;          /* [N] coverage of a given shape */
    float *pf;             /* [N] box refinement: object probability */
    int *cover_n;          /* [N] source pixels per cell */
    int16_t *cell_lab;     /* [N] argmax per cell: -1 background, else slot */
    int16_t *mem_lab;      /* [N] what the memory learns per cell: the reported labels' majority */
    int16_t (*cm_slot)[2]; /* [N] the first two objects seen in each cell's pixels */
    int (*cm_cnt)[2];      /* [N] and their pixel counts */
    int *comp;             /* [N] component id per cell */
    int *queue;            /* [N] flood fill */
    float *app_store;      /* the objects' appearance banks */
    float *app_gather, *app_sims, *app_out; /* scoring scratch, APP_CHUNK cells at a time */
    float *loc_store;                       /* the objects' templates */
    float *loc_scores;                      /* search scratch */
    int *cells;                             /* [N] cell lists */
    vt_bgmodel *bgm;                        /* the fixed camera's background (NULL: off) */
    uint8_t *busy;      /* [blocks] frames a block must stay the same to be learnt (bgmodel.h) */
    float *bgshare;     /* [N] share of each cell's blocks that show the known background */
    float *fgshare;     /* [N] share of each cell's blocks that differ from it */
    int *blk_x, *blk_y; /* source pixel -> background block */
    int bg_active;      /* the background is known well enough to be used this frame */
    vt_ground ground;   /* the ground plane, from the boxes given (ground.h) */
    float *prior_x, *prior_y; /* [K][source w], [K][source h]: motion priors of the live objects */
    int *hist;                /* [max(source w, h)] a mask's column or row counts */

    obj *objs; /* [K] slots */
    entry *pool;
    int npool;
    entry **ring; /* short-term ring, newest first */
    int ring_len;
    int nlong;

    vt_prop_frame *mframes;

    /* source-size outputs */
    uint8_t *labels;
    size_t labels_cap;
    int *col_x0, *row_y0; /* upsampling taps */
    float *col_w, *row_w;
    int *col_cell, *row_cell; /* source pixel -> cell (for coverage) */
    int taps_w, taps_h;

    vt_object_result *res;
    uint32_t *removed;
    char (*removed_label)[VT_LABEL_MAX + 1]; /* [K] labels of the removed objects */
    int n_removed;
    int *slot_of_res;
    vt_track_result out;
};

/* ------------------------------------------------------------------------------------------
 * Lifetime
 * ---------------------------------------------------------------------------------------- */

int vt_tracker_new(const vt_model *m, const vt_tracker_params *p, vt_tracker **out, char *err,
                   size_t errlen) {
    *out = NULL;
    int rc = vtm_tracker_params_check(p, err, errlen);
    if (rc < 0)
        return rc;
    vt_tracker *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->model = m;
    t->p = *p;
    t->stride = vt_model_stride(m);
    t->c = vt_model_channels(m);
    t->objs = calloc(p->max_objects, sizeof *t->objs);
    t->res = calloc(p->max_objects, sizeof *t->res);
    t->slot_of_res = calloc(p->max_objects, sizeof *t->slot_of_res);
    t->removed = calloc((size_t)p->max_objects, sizeof *t->removed);
    t->removed_label = calloc((size_t)p->max_objects, sizeof *t->removed_label);
    if (!t->objs || !t->res || !t->slot_of_res || !t->removed || !t->removed_label) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = vt_encoder_new(m, &t->enc);
    if (rc < 0) {
        vt_fmt(err, errlen, "cannot create the encoder: %s", strerror(-rc));
        goto fail;
    }
    *out = t;
    return 0;
fail:
    vt_tracker_free(&t);
    return rc;
}

void vt_tracker_free(vt_tracker **tp) {
    vt_tracker *t = *tp;
    if (!t)
        return;
    vt_encoder_free(&t->enc);
    vtm_prop_free(&t->prop);
    if (t->objs) {
        for (int i = 0; i < t->p.max_objects; i++) {
            vt_shape_clear(&t->objs[i].shape);
            free(t->objs[i].mask);
        }
    }
    if (t->pool) {
        for (int i = 0; i < t->npool; i++) {
            free(t->pool[i].feat);
            free(t->pool[i].labels);
            free(t->pool[i].known);
        }
    }
    free(t->pool);
    free(t->ring);
    free(t->mframes);
    free(t->objs);
    free(t->res);
    free(t->slot_of_res);
    free(t->removed);
    free(t->removed_label);
    free(t->proc_rgb);
    free(t->rs_tmp);
    free(t->rs_h.span);
    free(t->rs_h.w);
    free(t->rs_v.span);
    free(t->rs_v.w);
    free(t->feat);
    free(t->probs);
    free(t->bg);
    free(t->cover);
    free(t->pf);
    free(t->cover_n);
    free(t->cell_lab);
    free(t->mem_lab);
    free(t->cm_slot);
    free(t->cm_cnt);
    free(t->comp);
    free(t->queue);
    free(t->app_store);
    free(t->app_gather);
    free(t->app_sims);
    free(t->app_out);
    free(t->loc_store);
    free(t->loc_scores);
    free(t->cells);
    vtm_bgmodel_free(&t->bgm);
    free(t->busy);
    free(t->bgshare);
    free(t->fgshare);
    free(t->blk_x);
    free(t->prior_x);
    free(t->hist);
    free(t->prior_y);
    free(t->blk_y);
    free(t->labels);
    free(t->col_x0);
    free(t->row_y0);
    free(t->col_w);
    free(t->row_w);
    free(t->col_cell);
    free(t->row_cell);
    free(t);
    *tp = NULL;
}

void vt_tracker_proc_size(const vt_tracker *t, int sw, int sh, int *pw, int *ph) {
    double s = 1.0;
    int shorter = sw < sh ? sw : sh, longer = sw < sh ? sh : sw;
    if (t->p.proc_short > 0)
        s = (double)t->p.proc_short / shorter;
    if (t->p.proc_long_max > 0 && longer * s > t->p.proc_long_max)
        s = (double)t->p.proc_long_max / longer;
    /* A small source is scaled up to the processing size too: the encoder's stride is fixed,
     * so an object needs enough pixels to span several feature cells. */
    *pw = (int)lround(sw * s);
    *ph = (int)lround(sh * s);
    if (*pw < 1)
        *pw = 1;
    if (*ph < 1)
        *ph = 1;
}

static int ring_capacity(const vt_tracker_params *p) {
    return p->short_count > 0 ? (p->short_count - 1) * p->short_gap + 1 : 0;
}

size_t vt_tracker_memory_bound(const vt_tracker *t, int sw, int sh) {
    const vt_tracker_params *p = &t->p;
    int pw, ph;
    vt_tracker_proc_size(t, sw, sh, &pw, &ph);
    const size_t fw = (size_t)(pw + t->stride - 1) / t->stride;
    const size_t n = fw * ((ph + t->stride - 1) / t->stride);
    const size_t k = (size_t)p->max_objects, c = (size_t)t->c;
    const size_t e = (size_t)p->max_anchors + p->long_count + ring_capacity(p) + 2;
    const size_t frames = (size_t)p->max_anchors + p->long_count + p->short_count + 1;
    int r = p->radius_first > p->radius_long ? p->radius_first : p->radius_long;
    r = p->radius_short > r ? p->radius_short : r;
    const size_t wd = 2 * (size_t)(r > 0 ? r : 0) + 1, rd = 2 * (size_t)p->roi_radius + 1;
    size_t nglobal = (p->radius_first == VT_RADIUS_GLOBAL) * (size_t)p->max_anchors +
                     (p->radius_long == VT_RADIUS_GLOBAL) * (size_t)p->long_count +
                     (p->radius_short == VT_RADIUS_GLOBAL) * (size_t)p->short_count;
    /* tracker: memory entries, current frame, source-size outputs, processing image */
    size_t bytes = e * n * (4 * c + 4 * k + k) + n * (4 * c + 4 * k + 16) +
                   (size_t)sw * sh * (k + 1) + (size_t)pw * ph * 3;
    /* propagation workspace (prop.c): selections, window and ROI scores, ROI offsets, global
     * sgemm blocks */
    bytes += (p->topk > 0 ? (size_t)p->topk * fw : frames * n) * 8 + frames * wd * wd * fw * 4 +
             rd * rd * fw * 4 + frames * n * 4 + nglobal * 64 * n * 4;
    /* object-level state: per object its appearance banks and template; per cell the label
     * and component maps (2 + 2 + 4 + 8 + 4 + 4 + 4) and the background shares (8); per source
     * pixel the upsampling's priors; the background model (2x2 blocks of the processing image,
     * and one busy byte each); the appearance and template searches' scratch */
    bytes += k * (vtm_appear_bytes(t->c) + sizeof(float) * vtm_locate_floats(t->c)) + n * 36 +
             ((size_t)sw + sh) * (4 * k + 8) + vtm_bgmodel_bytes(pw, ph) +
             (size_t)((pw + 1) / 2) * ((ph + 1) / 2) +
             sizeof(float) * APP_CHUNK * (c + VT_APPEAR_POS + VT_APPEAR_NEG + 1) +
             sizeof(float) * (2 * LOC_RADIUS + 1) * (2 * LOC_RADIUS + 1);
    return bytes;
}

/* ------------------------------------------------------------------------------------------
 * Objects
 * ---------------------------------------------------------------------------------------- */

static obj *find_obj(vt_tracker *t, uint32_t id) {
    for (int i = 0; i < t->p.max_objects; i++)
        if (t->objs[i].live && t->objs[i].id == id)
            return &t->objs[i];
    return NULL;
}

int vt_tracker_object_count(const vt_tracker *t) {
    int n = 0;
    for (int i = 0; i < t->p.max_objects; i++)
        n += t->objs[i].live;
    return n;
}

int vt_tracker_add_object(vt_tracker *t, uint32_t id, const char *label, const vt_shape *shape,
                          char *err, size_t errlen) {
    if (id == 0) {
        vt_fmt(err, errlen, "object id 0 is reserved");
        return -EINVAL;
    }
    if (find_obj(t, id)) {
        vt_fmt(err, errlen, "object %u exists already", id);
        return -EEXIST;
    }
    if (label && strlen(label) > VT_LABEL_MAX) {
        vt_fmt(err, errlen, "label longer than %d bytes", VT_LABEL_MAX);
        return -EINVAL;
    }
    obj *o = NULL;
    for (int i = 0; i < t->p.max_objects && !o; i++)
        if (!t->objs[i].live)
            o = &t->objs[i];
    if (!o) {
        vt_fmt(err, errlen, "too many objects (at most %d)", t->p.max_objects);
        return -ENOSPC;
    }
    vt_shape copy;
    int rc = vt_shape_copy(&copy, shape, err, errlen);
    if (rc < 0)
        return rc;
    /* Once frames have been seen their size is known (and the next one is almost always the
     * same): a shape must cover a pixel of them, a mask be their size. Before the first frame
     * nothing can be checked; such an object is reported `added` with no box, then `lost`. */
    if (t->sw > 0) {
        const int64_t px = vt_shape_pixels(&copy, t->sw, t->sh);
        if (px <= 0) {
            if (px == -ENOMEM)
                vt_fmt(err, errlen, "out of memory");
            else if ((copy.kind == VT_SHAPE_MASK || copy.kind == VT_SHAPE_LABELS) &&
                     (copy.w != t->sw || copy.h != t->sh))
                vt_fmt(err, errlen, "the mask is %dx%d, not the size of the %dx%d frames", copy.w,
                       copy.h, t->sw, t->sh);
            else
                vt_fmt(err, errlen, "the shape covers no pixel of the %dx%d frames", t->sw, t->sh);
            vt_shape_clear(&copy);
            return px == -ENOMEM ? -ENOMEM : -EINVAL;
        }
    }
    vt_shape_clear(&o->shape);
    o->shape = copy;
    o->live = 1;
    o->pending = 1;
    o->id = id;
    snprintf(o->label, sizeof o->label, "%s", label ? label : "");
    o->state = VT_OBJECT_TRACKING;
    return 0;
}

int vt_tracker_remove_object(vt_tracker *t, uint32_t id) {
    obj *o = find_obj(t, id);
    if (!o)
        return -ENOENT;
    int slot = (int)(o - t->objs);
    /* Forget the object in every memory frame so that a new object reusing the slot starts
     * from nothing. */
    for (int i = 0; i < t->npool; i++)
        if (t->pool[i].used)
            t->pool[i].known[slot] = 0;
    /* An object that never reached a frame was never reported, so its removal is not either;
     * hence at most max_objects removals are reported per step. */
    if (!o->pending) {
        memcpy(t->removed_label[t->n_removed], o->label, sizeof o->label);
        t->removed[t->n_removed++] = id;
    }
    vt_shape_clear(&o->shape);
    o->live = 0;
    o->pending = 0;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Geometry: resize, taps, rasterisation
 * ---------------------------------------------------------------------------------------- */

/*
 * Separable resize of packed RGB with a triangle filter whose support widens with the
 * downscale factor (antialiased bilinear, as PIL's BILINEAR): a plain bilinear downscale by
 * more than 2x would alias fine texture, which the features then mistake for structure.
 *
 * The taps of each output row and column depend only on the sizes, so they are computed once
 * per size (on the first frame) and reused: output i reads sources [lo, lo + n) with weights
 * w[i * maxn + k] (0 for the filter's zero ends) normalised by their sum.
 */
static int taps_plan(rs_taps *tp, int src_n, int dst_n) {
    if (tp->src_n == src_n && tp->dst_n == dst_n)
        return 0;
    const double scale = (double)src_n / dst_n, sup = scale > 1 ? scale : 1;
    const int maxn = (int)(2 * sup) + 3;
    rs_span *span = realloc(tp->span, sizeof *span * dst_n);
    if (!span)
        return -ENOMEM;
    tp->span = span;
    float *w = realloc(tp->w, sizeof *w * (size_t)dst_n * maxn);
    if (!w)
        return -ENOMEM;
    tp->w = w;
    for (int i = 0; i < dst_n; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)floor(center - sup), hi = (int)ceil(center + sup);
        if (lo < 0)
            lo = 0;
        if (hi > src_n)
            hi = src_n;
        double sum = 0;
        for (int k = 0; k < hi - lo; k++) {
            double wgt = 1.0 - fabs((lo + k + 0.5 - center) / sup);
            w[(size_t)i * maxn + k] = wgt > 0 ? (float)wgt : 0.0f;
            if (wgt > 0)
                sum += wgt;
        }
        span[i] = (rs_span){.lo = lo, .n = hi - lo, .sum = sum};
    }
    tp->maxn = maxn;
    tp->src_n = src_n;
    tp->dst_n = dst_n;
    return 0;
}

static int resize_rgb(vt_tracker *t, const vt_image *src, uint8_t *dst, int dw, int dh) {
    const int sw = src->w, sh = src->h;
    size_t need = (size_t)sw * dh * 3;
    if (need > t->rs_cap) {
        float *p = realloc(t->rs_tmp, need * sizeof(float));
        if (!p)
            return -ENOMEM;
        t->rs_tmp = p;
        t->rs_cap = need;
    }
    if (taps_plan(&t->rs_v, sh, dh) < 0 || taps_plan(&t->rs_h, sw, dw) < 0)
        return -ENOMEM;
    /* Vertical pass: src (sw x sh) -> tmp (sw x dh) */
    for (int y = 0; y < dh; y++) {
        const rs_span *sp = &t->rs_v.span[y];
        const float *w = t->rs_v.w + (size_t)y * t->rs_v.maxn;
        float *row = t->rs_tmp + (size_t)y * sw * 3;
        memset(row, 0, sizeof(float) * sw * 3);
        for (int k = 0; k < sp->n; k++) {
            if (!(w[k] > 0))
                continue;
            const uint8_t *s = src->rgb + (size_t)(sp->lo + k) * src->linesize;
            for (int i = 0; i < sw * 3; i++)
                row[i] += w[k] * s[i];
        }
        float inv = (float)(1.0 / sp->sum);
        for (int i = 0; i < sw * 3; i++)
            row[i] *= inv;
    }
    /* Horizontal pass: tmp (sw x dh) -> dst (dw x dh), row by row */
    for (int y = 0; y < dh; y++) {
        const float *row = t->rs_tmp + (size_t)y * sw * 3;
        uint8_t *d = dst + (size_t)y * dw * 3;
        for (int x = 0; x < dw; x++, d += 3) {
            const rs_span *sp = &t->rs_h.span[x];
            const float *w = t->rs_h.w + (size_t)x * t->rs_h.maxn;
            const float *px = row + (size_t)sp->lo * 3;
            float acc[3] = {0, 0, 0};
            for (int k = 0; k < sp->n; k++) {
                if (!(w[k] > 0))
                    continue;
                for (int ch = 0; ch < 3; ch++)
                    acc[ch] += w[k] * px[k * 3 + ch];
            }
            for (int ch = 0; ch < 3; ch++) {
                float v = acc[ch] / (float)sp->sum + 0.5f;
                d[ch] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
            }
        }
    }
    return 0;
}

/*
 * Source-pixel -> feature-cell maps and bilinear taps for a source of sw x sh. A source pixel
 * centre maps to processing coordinate (x + 0.5) * pw / sw, and a cell j's centre sits at
 * processing coordinate (j + 0.5) * stride, so the cell coordinate is that / stride - 0.5.
 */
static int make_taps(int sn, int pn, int fn, int stride, int **x0, float **wt, int **cell) {
    int *a = realloc(*x0, sizeof(int) * sn);
    if (!a)
        return -ENOMEM;
    *x0 = a;
    float *b = realloc(*wt, sizeof(float) * sn);
    if (!b)
        return -ENOMEM;
    *wt = b;
    int *c = realloc(*cell, sizeof(int) * sn);
    if (!c)
        return -ENOMEM;
    *cell = c;
    for (int i = 0; i < sn; i++) {
        double pc = (i + 0.5) * pn / sn;
        double fc = pc / stride - 0.5;
        if (fc < 0)
            fc = 0;
        if (fc > fn - 1)
            fc = fn - 1;
        int i0 = (int)floor(fc);
        if (i0 > fn - 2)
            i0 = fn - 2 < 0 ? 0 : fn - 2;
        a[i] = i0;
        b[i] = fn > 1 ? (float)(fc - i0) : 0.0f;
        int ci = (int)(pc / stride);
        c[i] = ci >= fn ? fn - 1 : ci;
    }
    return 0;
}

static int ensure_source(vt_tracker *t, int sw, int sh) {
    if (sw == t->sw && sh == t->sh)
        return 0;
    int rc = vt_reserve(&t->labels, &t->labels_cap, (size_t)sw * sh);
    if (rc == 0)
        rc = make_taps(sw, t->pw, t->fw, t->stride, &t->col_x0, &t->col_w, &t->col_cell);
    if (rc == 0)
        rc = make_taps(sh, t->ph, t->fh, t->stride, &t->row_y0, &t->row_w, &t->row_cell);
    if (rc < 0)
        return rc;
    int *bx = realloc(t->blk_x, sizeof(int) * sw),
        *by = bx ? realloc(t->blk_y, sizeof(int) * sh) : NULL;
    if (bx)
        t->blk_x = bx;
    if (!bx || !by)
        return -ENOMEM;
    t->blk_y = by;
    float *px = realloc(t->prior_x, sizeof(float) * sw * t->p.max_objects);
    if (px)
        t->prior_x = px;
    float *py = px ? realloc(t->prior_y, sizeof(float) * sh * t->p.max_objects) : NULL;
    if (!px || !py)
        return -ENOMEM;
    t->prior_y = py;
    int *hs = realloc(t->hist, sizeof(int) * (sw > sh ? sw : sh));
    if (!hs)
        return -ENOMEM;
    t->hist = hs;
    for (int x = 0; x < sw; x++)
        bx[x] = (int)((x + 0.5) * t->pw / sw) / 2;
    for (int y = 0; y < sh; y++)
        by[y] = (int)((y + 0.5) * t->ph / sh) / 2;
    /* source pixels per cell */
    memset(t->cover_n, 0, sizeof(int) * t->n);
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < sw; x++)
            t->cover_n[t->row_cell[y] * t->fw + t->col_cell[x]]++;
    t->sw = sw;
    t->sh = sh;
    return 0;
}

static int ensure_mask(obj *o, size_t n) {
    return vt_reserve(&o->mask, &o->mask_cap, n);
}

/* Rasterise an object's shape into o->mask at the source size; -EINVAL if sizes differ. */
static int rasterise(vt_tracker *t, obj *o) {
    return vtm_shape_rasterise(&o->shape, o->mask, t->sw, t->sh);
}

/* Fraction of each cell's source pixels covered by mask m, whose pixels all lie in `box` (x0,
 * y0, x1, y1 inclusive; NULL: anywhere). */
static void coverage(vt_tracker *t, const uint8_t *m, const int *box) {
    const int x0 = box ? box[0] : 0, y0 = box ? box[1] : 0;
    const int x1 = box ? box[2] : t->sw - 1, y1 = box ? box[3] : t->sh - 1;
    memset(t->cover, 0, sizeof(float) * t->n);
    for (int y = y0; y <= y1; y++) {
        const int rowc = t->row_cell[y] * t->fw;
        const uint8_t *mr = m + (size_t)y * t->sw;
        for (int x = x0; x <= x1; x++)
            t->cover[rowc + t->col_cell[x]] += mr[x];
    }
    for (int i = 0; i < t->n; i++)
        t->cover[i] = t->cover_n[i] ? t->cover[i] / t->cover_n[i] : 0.0f;
}

/* The box refinement's object probability pf (cells) interpolated at source pixel (x, y). */
static float refined_at(const vt_tracker *t, const float *pf, int x, int y) {
    const int fw = t->fw, fh = t->fh;
    const int y0 = t->row_y0[y], y1 = y0 + 1 < fh ? y0 + 1 : y0;
    const int x0 = t->col_x0[x], x1 = x0 + 1 < fw ? x0 + 1 : x0;
    const float wy = t->row_w[y], wx = t->col_w[x];
    return (1 - wy) * ((1 - wx) * pf[y0 * fw + x0] + wx * pf[y0 * fw + x1]) +
           wy * ((1 - wx) * pf[y1 * fw + x0] + wx * pf[y1 * fw + x1]);
}

/*
 * Turn a box into an object mask. A box holds the object and some of its surroundings; kept as
 * is, the surroundings would be tracked as part of the object (and stay behind when it moves).
 * Each cell inside the box is labelled by the same kind of affinity the tracker propagates with,
 * against two sets of cells of this very frame: a ring around the box (background) and the
 * box's central half (object). Cells that look like the ring are dropped. Falls back to the box
 * when it covers too few cells or when the refined mask keeps under a fifth of the box.
 * Reads t->cover (the box's coverage), writes t->pf; rewrites ob->mask.
 */
static void refine_box(vt_tracker *t, obj *ob) {
    const int fw = t->fw, fh = t->fh, n = t->n, c = t->c;
    int cx0 = fw, cy0 = fh, cx1 = -1, cy1 = -1, inside = 0;
    for (int i = 0; i < n; i++) {
        if (t->cover[i] < 0.5f)
            continue;
        int x = i % fw, y = i / fw;
        cx0 = x < cx0 ? x : cx0, cx1 = x > cx1 ? x : cx1;
        cy0 = y < cy0 ? y : cy0, cy1 = y > cy1 ? y : cy1;
        inside++;
    }
    if (inside < 6)
        return;
    const int cw = cx1 - cx0 + 1, ch = cy1 - cy0 + 1;
    int margin = (int)lround(0.25 * (cw > ch ? cw : ch));
    margin = margin < 2 ? 2 : margin;
    const int rx0 = cx0 - margin < 0 ? 0 : cx0 - margin, ry0 = cy0 - margin < 0 ? 0 : cy0 - margin;
    const int rx1 = cx1 + margin >= fw ? fw - 1 : cx1 + margin;
    const int ry1 = cy1 + margin >= fh ? fh - 1 : cy1 + margin;
    const int kx0 = cx0 + cw / 4, kx1 = cx1 - cw / 4, ky0 = cy0 + ch / 4, ky1 = cy1 - ch / 4;
    const int k = 5;
    const float inv_t = 1.0f / t->p.temperature;
    float *pf = t->pf; /* [N] object probability of the box's cells */
    int nring = 0;
    for (int y = ry0; y <= ry1; y++)
        for (int x = rx0; x <= rx1; x++)
            nring += t->cover[y * fw + x] == 0.0f;
    if (nring == 0)
        return; /* the box fills the frame: nothing to tell the object from */
    for (int i = 0; i < n; i++) {
        pf[i] = 0.0f;
        if (t->cover[i] <= 0.0f)
            continue;
        /* the k best matches among ring (background) and core (object) cells */
        float bs[5];
        int bo[5], nb = 0;
        for (int y = ry0; y <= ry1; y++) {
            for (int x = rx0; x <= rx1; x++) {
                const int j = y * fw + x;
                const int core =
                    x >= kx0 && x <= kx1 && y >= ky0 && y <= ky1 && t->cover[j] >= 0.5f;
                if (!core && t->cover[j] != 0.0f)
                    continue;
                float d = 0;
                for (int ch2 = 0; ch2 < c; ch2++)
                    d += t->feat[(size_t)ch2 * n + i] * t->feat[(size_t)ch2 * n + j];
                if (nb < k) {
                    bs[nb] = d, bo[nb++] = core;
                    continue;
                }
                int worst = 0;
                for (int u = 1; u < k; u++)
                    worst = bs[u] < bs[worst] ? u : worst;
                if (d > bs[worst])
                    bs[worst] = d, bo[worst] = core;
            }
        }
        float smax = bs[0];
        for (int u = 1; u < nb; u++)
            smax = bs[u] > smax ? bs[u] : smax;
        double sw = 0, so = 0;
        for (int u = 0; u < nb; u++) {
            double e = exp((double)(bs[u] - smax) * inv_t);
            sw += e;
            so += bo[u] ? e : 0.0;
        }
        pf[i] = (float)(so / sw);
    }
    /* Source pixels of the box keep when the interpolated object probability wins. */
    const int sw = t->sw, sh = t->sh;
    int64_t before = 0, after = 0;
    for (int y = 0; y < sh; y++) {
        const uint8_t *m = ob->mask + (size_t)y * sw;
        for (int x = 0; x < sw; x++) {
            if (!m[x])
                continue;
            before++;
            after += refined_at(t, pf, x, y) > 0.5f;
        }
    }
    if (after * 5 < before)
        return; /* refinement found almost nothing: trust the box */
    for (int y = 0; y < sh; y++) {
        uint8_t *m = ob->mask + (size_t)y * sw;
        for (int x = 0; x < sw; x++)
            if (m[x])
                m[x] = refined_at(t, pf, x, y) > 0.5f;
    }
}

/* ------------------------------------------------------------------------------------------
 * First frame: geometry and buffers
 * ---------------------------------------------------------------------------------------- */

static int setup_geometry(vt_tracker *t, const vt_features *f) {
    t->fw = f->w;
    t->fh = f->h;
    t->n = f->w * f->h;
    if (f->c != t->c)
        return -EINVAL;
    const int n = t->n, k = t->p.max_objects, c = t->c;
    t->ring_len = ring_capacity(&t->p);
    t->npool = t->p.max_anchors + t->p.long_count + t->ring_len + 2;
    int max_frames = t->p.max_anchors + t->p.long_count + t->p.short_count + 1;
    int maxr = 0;
    const int radii[3] = {t->p.radius_first, t->p.radius_long, t->p.radius_short};
    for (int i = 0; i < 3; i++)
        if (radii[i] > maxr)
            maxr = radii[i];
    vt_prop_cfg cfg = {
        .h = t->fh,
        .w = t->fw,
        .c = c,
        .max_objects = k,
        .max_frames = max_frames,
        .max_radius = maxr,
        .topk = t->p.topk,
        .temperature = t->p.temperature,
        .roi_radius = t->p.roi_radius,
    };
    int rc = vtm_prop_new(&cfg, &t->prop);
    if (rc < 0)
        return rc;
    t->feat = malloc(sizeof(float) * n * c);
    t->probs = calloc((size_t)k * n, sizeof(float));
    t->bg = malloc(sizeof(float) * n);
    t->cover = malloc(sizeof(float) * n);
    t->pf = malloc(sizeof(float) * n);
    t->cover_n = malloc(sizeof(int) * n);
    t->cell_lab = malloc(sizeof(int16_t) * n);
    t->mem_lab = malloc(sizeof(int16_t) * n);
    t->cm_slot = malloc(sizeof *t->cm_slot * n);
    t->cm_cnt = malloc(sizeof *t->cm_cnt * n);
    t->comp = malloc(sizeof(int) * n);
    t->queue = malloc(sizeof(int) * n);
    t->cells = malloc(sizeof(int) * n);
    t->app_store = malloc(vtm_appear_bytes(c) * k);
    t->app_gather = malloc(sizeof(float) * APP_CHUNK * c);
    t->app_sims = malloc(sizeof(float) * APP_CHUNK * (VT_APPEAR_POS + VT_APPEAR_NEG));
    t->app_out = malloc(sizeof(float) * APP_CHUNK);
    if (!t->cells || !t->app_store || !t->app_gather || !t->app_sims || !t->app_out)
        return -ENOMEM;
    for (int o = 0; o < k; o++)
        vtm_appear_init(&t->objs[o].app, c,
                        t->app_store + (vtm_appear_bytes(c) / sizeof(float)) * o);
    t->loc_store = malloc(sizeof(float) * vtm_locate_floats(c) * k);
    t->loc_scores = malloc(sizeof(float) * (2 * LOC_RADIUS + 1) * (2 * LOC_RADIUS + 1));
    if (!t->loc_store || !t->loc_scores)
        return -ENOMEM;
    for (int o = 0; o < k; o++)
        vtm_locate_init(&t->objs[o].loc, c, t->loc_store + vtm_locate_floats(c) * o);
    if (t->p.background) {
        int rc2 = vtm_bgmodel_new(t->pw, t->ph, &t->bgm);
        if (rc2 < 0)
            return rc2;
        int bw, bh;
        vtm_bgmodel_size(t->bgm, &bw, &bh);
        t->busy = malloc((size_t)bw * bh);
        t->bgshare = malloc(sizeof(float) * n);
        t->fgshare = malloc(sizeof(float) * n);
        if (!t->busy || !t->bgshare || !t->fgshare)
            return -ENOMEM;
    }
    t->pool = calloc(t->npool, sizeof *t->pool);
    t->ring = calloc(t->ring_len + 1, sizeof *t->ring);
    t->mframes = calloc(max_frames, sizeof *t->mframes);
    if (!t->feat || !t->probs || !t->bg || !t->cover || !t->pf || !t->cover_n || !t->cell_lab ||
        !t->mem_lab || !t->cm_slot || !t->cm_cnt || !t->comp || !t->queue || !t->pool || !t->ring ||
        !t->mframes)
        return -ENOMEM;
    for (int i = 0; i < t->npool; i++) {
        entry *e = &t->pool[i];
        e->feat = malloc(sizeof(float) * n * c);
        e->labels = malloc(sizeof(float) * n * k);
        e->known = calloc(k, 1);
        if (!e->feat || !e->labels || !e->known)
            return -ENOMEM;
    }
    return 0;
}

/* Copy the encoder's [C][N] features, unit-normalised per cell when asked. */
static void take_features(vt_tracker *t, const vt_features *f) {
    const int n = t->n, c = t->c;
    memcpy(t->feat, f->data, sizeof(float) * n * c);
    if (!t->p.l2norm)
        return;
    float *norm = t->cover; /* [N] scratch, free at this point of the step */
    for (int i = 0; i < n; i++)
        norm[i] = 0.0f;
    for (int ch = 0; ch < c; ch++) {
        const float *fc = t->feat + (size_t)ch * n;
        for (int i = 0; i < n; i++)
            norm[i] += fc[i] * fc[i];
    }
    for (int i = 0; i < n; i++)
        norm[i] = norm[i] > 1e-12f ? 1.0f / sqrtf(norm[i]) : 0.0f;
    for (int ch = 0; ch < c; ch++) {
        float *fc = t->feat + (size_t)ch * n;
        for (int i = 0; i < n; i++)
            fc[i] *= norm[i];
    }
}

/* ------------------------------------------------------------------------------------------
 * Memory
 * ---------------------------------------------------------------------------------------- */

static void entry_release_if_unused(entry *e) {
    if (e && e->used && !e->anchor && !e->longterm && !e->inring)
        e->used = 0;
}

static entry *entry_alloc(vt_tracker *t) {
    for (int i = 0; i < t->npool; i++)
        if (!t->pool[i].used) {
            entry *e = &t->pool[i];
            e->used = 1;
            e->anchor = e->longterm = e->inring = 0;
            return e;
        }
    return NULL; /* cannot happen: npool covers every role at once plus one */
}

/* Store the current frame in memory with the roles the policy gives it. */
static int memory_insert(vt_tracker *t, int is_anchor) {
    const vt_tracker_params *p = &t->p;
    const int64_t f = t->frame;
    int want_long = 0;
    if (p->long_every > 0 && p->long_count > 0 && f > 0 && f % p->long_every == 0 && !is_anchor)
        want_long = p->long_rolling || t->nlong < p->long_count;
    int want_short = t->ring_len > 0;
    if (!is_anchor && !want_long && !want_short)
        return 0;

    /* Make room first so the pool never runs dry. */
    if (is_anchor) {
        int na = 0;
        entry *oldest = NULL;
        for (int i = 0; i < t->npool; i++)
            if (t->pool[i].used && t->pool[i].anchor) {
                na++;
                if (!oldest || t->pool[i].frame < oldest->frame)
                    oldest = &t->pool[i];
            }
        if (na >= p->max_anchors) {
            oldest->anchor = 0;
            entry_release_if_unused(oldest);
        }
    }
    if (want_long && t->nlong >= p->long_count) {
        entry *oldest = NULL;
        for (int i = 0; i < t->npool; i++)
            if (t->pool[i].used && t->pool[i].longterm &&
                (!oldest || t->pool[i].frame < oldest->frame))
                oldest = &t->pool[i];
        oldest->longterm = 0;
        t->nlong--;
        entry_release_if_unused(oldest);
    }
    if (want_short && t->ring[t->ring_len - 1]) {
        entry *last = t->ring[t->ring_len - 1];
        last->inring = 0;
        t->ring[t->ring_len - 1] = NULL;
        entry_release_if_unused(last);
    }

    entry *e = entry_alloc(t);
    if (!e)
        return -ENOMEM;
    e->frame = f;
    e->anchor = is_anchor;
    if (want_long) {
        e->longterm = 1;
        t->nlong++;
    }
    if (want_short) {
        memmove(t->ring + 1, t->ring, sizeof *t->ring * (t->ring_len - 1));
        t->ring[0] = e;
        e->inring = 1;
    }
    const int n = t->n, k = p->max_objects;
    memcpy(e->feat, t->feat, sizeof(float) * n * t->c);
    /* A hidden object's frames say nothing about it: what stands in front of it must not be
     * learnt as the object, nor the object as absent from where it will come back. */
    for (int o = 0; o < k; o++)
        e->known[o] = (uint8_t)(t->objs[o].live && t->objs[o].state != VT_OBJECT_OCCLUDED &&
                                t->objs[o].state != VT_OBJECT_LOST);
    if (p->soft_labels) {
        memcpy(e->labels, t->probs, sizeof(float) * n * k);
    } else {
        /* one-hot of the labels reported (mem_lab) */
        memset(e->labels, 0, sizeof(float) * n * k);
        for (int i = 0; i < n; i++)
            if (t->mem_lab[i] >= 0 && t->objs[t->mem_lab[i]].live)
                e->labels[(size_t)t->mem_lab[i] * n + i] = 1.0f;
    }
    return 0;
}

static void add_mframe(vt_tracker *t, int *nm, const entry *e, int radius) {
    for (int i = 0; i < *nm; i++)
        if (t->mframes[i].feat == e->feat)
            return; /* a frame with several roles is used once */
    vt_prop_frame *m = &t->mframes[(*nm)++];
    m->feat = e->feat;
    m->labels = e->labels;
    m->known = e->known;
    m->radius = radius;
    m->roi_dilation = 0;
    int64_t age = t->frame - e->frame;
    if (t->p.roi_age > 0 && radius != VT_RADIUS_GLOBAL && age >= t->p.roi_age) {
        /* MAST grows the coarse grid step with the reference's age, up to a cap. */
        int64_t d = 1 + age / (t->p.roi_age > 1 ? t->p.roi_age - 1 : 1);
        m->roi_dilation = (int)(d > t->p.roi_dilation ? t->p.roi_dilation : d);
    }
}

static int memory_frames(vt_tracker *t) {
    int nm = 0;
    /* anchors first, oldest first */
    for (int i = 0; i < t->npool; i++)
        if (t->pool[i].used && t->pool[i].anchor)
            add_mframe(t, &nm, &t->pool[i], t->p.radius_first);
    for (int i = 0; i < t->npool; i++)
        if (t->pool[i].used && t->pool[i].longterm)
            add_mframe(t, &nm, &t->pool[i], t->p.radius_long);
    for (int j = 0, used = 0; j < t->ring_len && used < t->p.short_count; j += t->p.short_gap) {
        if (!t->ring[j])
            break;
        add_mframe(t, &nm, t->ring[j], t->p.radius_short);
        used++;
    }
    return nm;
}

/* ------------------------------------------------------------------------------------------
 * Step
 * ---------------------------------------------------------------------------------------- */

/* Bilinear upsample of background and live objects' probabilities, argmax into labels as
 * slot + 1 (0 = background). */
static void upsample_argmax(vt_tracker *t) {
    const int sw = t->sw, sh = t->sh, fw = t->fw, n = t->n, k = t->p.max_objects;
    int live[256], nl = 0;
    for (int o = 0; o < k; o++)
        if (t->objs[o].live && !t->objs[o].pending)
            live[nl++] = o;
    if (nl == 0) {
        memset(t->labels, 0, (size_t)sw * sh);
        return;
    }
    /* Where the fixed camera's background model sees something moving, the pixel belongs to an
     * object if one is there: its propagated probability plus a fifth of its motion prior (a
     * Gaussian around its predicted box, sigma half its sides) decides among the objects, and
     * the background's probability does not compete (it has been overruled by the model); a
     * moving pixel that no object is near (score under 0.08) is someone untracked. */
    const uint8_t *cls = NULL;
    int bw = 0, bh = 0;
    if (t->bg_active) {
        cls = vtm_bgmodel_classes(t->bgm);
        vtm_bgmodel_size(t->bgm, &bw, &bh);
        for (int j = 0; j < nl; j++) {
            const obj *ob = &t->objs[live[j]];
            float b[4];
            vtm_motion_box(&ob->mot, b);
            const double cx = b[0] + 0.5 * b[2], cy = b[1] + 0.5 * b[3];
            const double ix = 1.0 / (0.5 * b[2] + 1.0), iy = 1.0 / (0.5 * b[3] + 1.0);
            float *gx = t->prior_x + (size_t)j * sw, *gy = t->prior_y + (size_t)j * sh;
            const int on =
                !ob->still && ob->state != VT_OBJECT_LOST && b[2] * t->fw / t->sw < SMALL_CELLS;
            for (int x = 0; x < sw; x++) {
                const double d = (x + 0.5 - cx) * ix;
                gx[x] = on ? (float)exp(-0.5 * d * d) : 0.0f;
            }
            for (int y = 0; y < sh; y++) {
                const double d = (y + 0.5 - cy) * iy;
                gy[y] = on ? (float)exp(-0.5 * d * d) : 0.0f;
            }
        }
    }
    const int fh = t->fh;
    for (int y = 0; y < sh; y++) {
        const int y0 = t->row_y0[y], y1 = y0 + 1 < fh ? y0 + 1 : y0;
        const float wy = t->row_w[y];
        uint8_t *lab = t->labels + (size_t)y * sw;
        const uint8_t *crow = cls ? cls + (size_t)t->blk_y[y] * bw : NULL;
        for (int x = 0; x < sw; x++) {
            const int x0 = t->col_x0[x], x1 = x0 + 1 < fw ? x0 + 1 : x0;
            const float wx = t->col_w[x];
            const int i00 = y0 * fw + x0, i01 = y0 * fw + x1, i10 = y1 * fw + x0,
                      i11 = y1 * fw + x1;
            const float w00 = (1 - wy) * (1 - wx), w01 = (1 - wy) * wx, w10 = wy * (1 - wx),
                        w11 = wy * wx;
            const int moving = crow && crow[t->blk_x[x]] == VT_BG_FOREGROUND;
            const float *b = t->bg;
            float best = moving ? 0.08f : w00 * b[i00] + w01 * b[i01] + w10 * b[i10] + w11 * b[i11];
            int arg = 0;
            for (int j = 0; j < nl; j++) {
                const float *pr = t->probs + (size_t)live[j] * n;
                float v = w00 * pr[i00] + w01 * pr[i01] + w10 * pr[i10] + w11 * pr[i11];
                if (moving)
                    v += 0.2f * t->prior_x[(size_t)j * sw + x] * t->prior_y[(size_t)j * sh + y];
                if (v > best)
                    best = v, arg = live[j] + 1;
            }
            lab[x] = (uint8_t)arg;
        }
    }
}

/*
 * The fixed camera's background (bgmodel.h): learn from this frame, classify the blocks, and
 * give each cell the shares of its blocks that show the known background and that differ from
 * it. Where an object may be, a block is learnt only once it has stayed the same for as long as
 * the object takes to move by its own size (never while it stands still, nor while it is
 * hidden).
 */
static void background_step(vt_tracker *t, const vt_image *pimg) {
    t->bg_active = 0;
    if (!t->bgm)
        return;
    int bw, bh;
    vtm_bgmodel_size(t->bgm, &bw, &bh);
    memset(t->busy, 0, (size_t)bw * bh);
    const double sx = (double)t->pw / t->sw / 2, sy = (double)t->ph / t->sh / 2;
    for (int o = 0; o < t->p.max_objects; o++) {
        const obj *ob = &t->objs[o];
        float b[4];
        int need = 255;
        if (!ob->live)
            continue;
        if (!ob->pending) {
            vtm_motion_box(&ob->mot, b);
            const double speed = hypot(ob->mot.a[0].v, ob->mot.a[1].v);
            const double size = b[2] < b[3] ? b[2] : b[3];
            if (speed > 0.05 * size / VT_BG_LEARN && ob->state != VT_OBJECT_OCCLUDED) {
                const double f = VT_BG_LEARN + size / speed;
                need = f < 254 ? (int)ceil(f) : 254;
            }
        } else if (ob->shape.kind == VT_SHAPE_BOX) {
            memcpy(b, ob->shape.box, sizeof b);
        } else {
            continue;
        }
        const double gx = 0.25 * b[2], gy = 0.25 * b[3];
        int x0 = (int)floor((b[0] - gx) * sx), x1 = (int)ceil((b[0] + b[2] + gx) * sx);
        int y0 = (int)floor((b[1] - gy) * sy), y1 = (int)ceil((b[1] + b[3] + gy) * sy);
        x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
        x1 = x1 > bw ? bw : x1, y1 = y1 > bh ? bh : y1;
        for (int y = y0; y < y1; y++) {
            uint8_t *row = t->busy + (size_t)y * bw;
            for (int x = x0; x < x1; x++)
                row[x] = row[x] > need ? row[x] : (uint8_t)need;
        }
    }
    const double known = vtm_bgmodel_update(t->bgm, pimg, t->busy);
    /* A fixed camera soon knows most of its view; under half of it known is a moving camera
     * (whose stable patches, sky or water, say nothing) or the first frames. */
    t->bg_active = known >= 0.5;
    if (!t->bg_active)
        return;
    const uint8_t *cls = vtm_bgmodel_classes(t->bgm);
    const int half = t->stride / 2, fw = t->fw;
    for (int cy = 0; cy < t->fh; cy++) {
        for (int cx = 0; cx < fw; cx++) {
            int nbg = 0, nfg = 0, cnt = 0;
            for (int y = cy * half; y < (cy + 1) * half && y < bh; y++)
                for (int x = cx * half; x < (cx + 1) * half && x < bw; x++) {
                    nbg += cls[(size_t)y * bw + x] == VT_BG_BACKGROUND;
                    nfg += cls[(size_t)y * bw + x] == VT_BG_FOREGROUND;
                    cnt++;
                }
            t->bgshare[cy * fw + cx] = cnt ? (float)nbg / cnt : 0.0f;
            t->fgshare[cy * fw + cx] = cnt ? (float)nfg / cnt : 0.0f;
        }
    }
}

/*
 * Evidence from the known background, combined with the propagation's probabilities as odds:
 * a cell whose blocks show the known background is likely background (0.95), one whose blocks
 * differ from it is likely an object (background 0.1), an unknown one is undecided (0.5); the
 * background's probability is multiplied by that likelihood, every moving object's by its
 * complement, and the cell is normalised again. So an object loses the ground it stood on, and
 * gains the cells of its own body that the propagation was unsure of; someone who is not
 * tracked stays background (the propagation gives them no object's label to gain from).
 */
static void background_filter(vt_tracker *t, int kmax) {
    if (!t->bg_active)
        return;
    const int n = t->n;
    for (int i = 0; i < n; i++) {
        const float s = t->bgshare[i], f = t->fgshare[i], u = 1.0f - s - f;
        const float lb = 0.95f * s + 0.1f * f + 0.5f * u, lo = 1.0f - lb;
        float sum = t->bg[i] * lb;
        t->bg[i] = sum;
        for (int o = 0; o < kmax; o++) {
            const obj *ob = &t->objs[o];
            if (!ob->live || ob->pending)
                continue;
            float *p = t->probs + (size_t)o * n + i;
            *p *= ob->still ? lb : lo;
            sum += *p;
        }
        if (sum > 0) {
            const float inv = 1.0f / sum;
            t->bg[i] *= inv;
            for (int o = 0; o < kmax; o++)
                t->probs[(size_t)o * n + i] *= inv;
        }
    }
}

/* Source pixels of the label map that show the known background belong to no moving object. */
static void background_pixels(vt_tracker *t) {
    if (!t->bg_active)
        return;
    int bw, bh;
    vtm_bgmodel_size(t->bgm, &bw, &bh);
    const uint8_t *cls = vtm_bgmodel_classes(t->bgm);
    for (int y = 0; y < t->sh; y++) {
        uint8_t *lab = t->labels + (size_t)y * t->sw;
        const uint8_t *crow = cls + (size_t)t->blk_y[y] * bw;
        for (int x = 0; x < t->sw; x++) {
            if (lab[x] && !t->objs[lab[x] - 1].pending && !t->objs[lab[x] - 1].still &&
                crow[t->blk_x[x]] == VT_BG_BACKGROUND)
                lab[x] = 0;
        }
    }
}

/*
 * A box given where the background is known: the pixels that show that background are not
 * the object, unless nearly all of them do (the object is part of what the model learnt, a
 * parked car: the model is then not used for it).
 */
static void background_shape(vt_tracker *t, obj *ob) {
    ob->still = 0;
    if (!t->bg_active)
        return;
    int bw, bh;
    vtm_bgmodel_size(t->bgm, &bw, &bh);
    const uint8_t *cls = vtm_bgmodel_classes(t->bgm);
    int64_t all = 0, bgnd = 0;
    for (int y = 0; y < t->sh; y++) {
        const uint8_t *m = ob->mask + (size_t)y * t->sw;
        const uint8_t *crow = cls + (size_t)t->blk_y[y] * bw;
        for (int x = 0; x < t->sw; x++) {
            all += m[x];
            bgnd += m[x] && crow[t->blk_x[x]] == VT_BG_BACKGROUND;
        }
    }
    if (all == 0 || (all - bgnd) * 10 < all * 3) {
        ob->still = 1;
        return;
    }
    for (int y = 0; y < t->sh; y++) {
        uint8_t *m = ob->mask + (size_t)y * t->sw;
        const uint8_t *crow = cls + (size_t)t->blk_y[y] * bw;
        for (int x = 0; x < t->sw; x++)
            if (m[x] && crow[t->blk_x[x]] == VT_BG_BACKGROUND)
                m[x] = 0;
    }
}

/*
 * Who is behind whom. On a fixed camera looking down at the ground the nearer of two people is
 * the one whose feet are lower in the image. A box (source pixels) of object `o` lies behind
 * another object when a third of it is under that object's predicted box and that box's bottom
 * is lower by more than `behind` times the box's height. Objects hidden or lost are nowhere in
 * particular and hide nothing.
 */
static int under_nearer(const vt_tracker *t, int o, const float b[4]) {
    const double d = t->p.behind;
    if (!(d > 0.0))
        return 0;
    for (int q = 0; q < t->p.max_objects; q++) {
        const obj *oq = &t->objs[q];
        if (q == o || !oq->live || oq->pending || oq->state == VT_OBJECT_OCCLUDED ||
            oq->state == VT_OBJECT_LOST)
            continue;
        float qb[4];
        vtm_motion_box(&oq->mot, qb);
        if (qb[1] + qb[3] - (b[1] + b[3]) <= d * b[3])
            continue; /* not nearer */
        const double iw = fmin(b[0] + b[2], qb[0] + qb[2]) - fmax(b[0], qb[0]);
        const double ih = fmin(b[1] + b[3], qb[1] + qb[3]) - fmax(b[1], qb[1]);
        if (iw > 0 && ih > 0 && iw * ih > (1.0 / 3.0) * b[2] * b[3])
            return 1;
    }
    return 0;
}

/*
 * Whether no other object's predicted box comes within half of box b's larger side of b. The
 * appearance banks' rolling half learns from the tracker's own masks and filters the next ones:
 * near another object, a mask that took a little of it teaches the banks the other, the banks
 * pass more of it on, and which person is lost turns on the last digits of a score. Learning
 * only while clear of the others breaks that loop where it matters (docs/RESULTS.md, "Who is
 * behind whom"; learning the negatives alone near others was measured and is worse).
 */
static int clear_of_others(const vt_tracker *t, const obj *ob, const float b[4]) {
    const double m = 0.5 * fmax(b[2], b[3]);
    for (int q = 0; q < t->p.max_objects; q++) {
        const obj *oq = &t->objs[q];
        if (oq == ob || !oq->live || oq->pending)
            continue;
        float qb[4];
        vtm_motion_box(&oq->mot, qb);
        if (qb[0] < b[0] + b[2] + m && qb[0] + qb[2] > b[0] - m && qb[1] < b[1] + b[3] + m &&
            qb[1] + qb[3] > b[1] - m)
            return 0;
    }
    return 1;
}

/*
 * An object whose predicted box lies behind another (under_nearer) shows only the one in front,
 * or a sliver of itself, and the two look alike at that distance: neither its template nor its
 * mask is a measurement of where it is, and nothing is learnt from them; its motion carries it
 * until it comes out (docs/TRACKING.md, "Who is behind whom").
 */
static void behind_objects(vt_tracker *t) {
    for (int o = 0; o < t->p.max_objects; o++) {
        obj *ob = &t->objs[o];
        float pb[4];
        ob->behind = 0;
        if (ob->live && !ob->pending) {
            vtm_motion_box(&ob->mot, pb);
            ob->behind = under_nearer(t, o, pb);
        }
    }
}

/* A source-pixel box (x, y, w, h) in continuous cell units, and back. */
static void box_to_cells(const vt_tracker *t, const float b[4], float c[4]) {
    const float sx = (float)t->fw / t->sw, sy = (float)t->fh / t->sh;
    c[0] = b[0] * sx, c[1] = b[1] * sy, c[2] = b[2] * sx, c[3] = b[3] * sy;
}

/*
 * The mean object probability that an object's appearance banks give the cells of a box (cell
 * units) where its template puts the object (samples weighing at least a half).
 */
static double appearance_at(vt_tracker *t, obj *ob, const float b[4]) {
    const vt_locate *l = &ob->loc;
    int nc = 0;
    for (int j = 0; j < l->gh; j++) {
        for (int i = 0; i < l->gw; i++) {
            if (l->wt[(size_t)j * l->gw + i] < 0.5f)
                continue;
            const int x = (int)floor(b[0] + (i + 0.5) * b[2] / l->gw);
            const int y = (int)floor(b[1] + (j + 0.5) * b[3] / l->gh);
            if (x < 0 || y < 0 || x >= t->fw || y >= t->fh || nc >= APP_CHUNK)
                continue;
            t->cells[nc++] = y * t->fw + x;
        }
    }
    if (nc == 0)
        return 0.0;
    vtm_appear_score(&ob->app, t->feat, t->n, t->cells, nc, t->p.topk > 0 ? t->p.topk : 5,
                     t->p.temperature, t->app_gather, t->app_sims, t->app_out);
    double sum = 0;
    for (int i = 0; i < nc; i++)
        sum += t->app_out[i];
    return sum / nc;
}

/*
 * Find each object as a whole (locate.h) around its predicted box, and let its motion filter
 * take the found centre as a measurement when the match is good (at least 0.75 of its usual
 * score): the box then follows the object itself, whatever its labelled cells do. The search
 * reaches twice the filter's position uncertainty plus a cell, within LOC_RADIUS.
 */
static void locate_objects(vt_tracker *t) {
    const float sx = (float)t->fw / t->sw, sy = (float)t->fh / t->sh;
    for (int o = 0; o < t->p.max_objects; o++) {
        obj *ob = &t->objs[o];
        /* Nothing of the last frame's search carries over, else an object whose template has
         * been dropped (or that became too narrow for it) stays placed by it for good: its
         * mask would never move its box again. */
        ob->loc_score = -2.0;
        ob->refound = 0;
        ob->located = 0;
        if (!ob->live || ob->pending || !ob->loc.valid)
            continue;
        float pb[4], cb[4], found[4];
        vtm_motion_box(&ob->mot, pb);
        box_to_cells(t, pb, cb);
        if (cb[2] < LOC_MIN_CELLS)
            continue; /* too narrow for its template to tell it from what is around it */
        const double sd = vtm_motion_pos_std(&ob->mot) * fmax(sx, sy);
        int r = (int)ceil(2.0 * sd) + 1;
        r = r > LOC_RADIUS ? LOC_RADIUS : r;
        /* The motion's prior on the shift: 0.01 off the score at one standard deviation. */
        const double sdc = sd > 0.5 ? sd : 0.5;
        const double sc = vtm_locate_find(&ob->loc, t->feat, t->fw, t->fh, cb, r,
                                          (float)(0.01 / (sdc * sdc)), t->loc_scores, found);
        ob->loc_score = sc;
        const int hidden = ob->state == VT_OBJECT_OCCLUDED || ob->state == VT_OBJECT_LOST;
        /* Behind another, the template finds the one in front; a hidden object is still looked
         * for, but not under a nearer object (below). */
        if (sc < -1.5 || (ob->behind && !hidden))
            continue;
        if (ob->loc_ref > 0 && sc < (hidden ? 0.85 : 0.75) * ob->loc_ref)
            continue;
        /* Partly hidden: its template matches best where more of it shows, not where it is;
         * its mask's unhidden sides place it (object_observe). */
        if (!hidden && ob->vis < 0.6)
            continue;
        const float z[4] = {found[0] / sx, found[1] / sy, found[2] / sx, found[3] / sy};
        if (hidden) {
            if (under_nearer(t, o, z))
                continue;
            /* The template's match is not enough to call a hidden object back (something of the
             * scene may look like it): its appearance banks must also say that the found place
             * is the object rather than what was around it: a mean object probability of at
             * least 1/4 over the template's cells (a background place scores near 0; 1/4 still
             * takes an object half hidden by another, whose cells also score low). */
            if (t->p.appearance && appearance_at(t, ob, found) < 0.25)
                continue;
            ob->refound = 1;
            memcpy(ob->loc_box, found, sizeof found);
        }
        const int rescaled = fabsf(found[2] - cb[2]) > 1e-3f * cb[2];
        const double trust[4] = {1, 1, rescaled ? 2 : 0, rescaled ? 2 : 0};
        vtm_motion_update(&ob->mot, z, trust);
        ob->located = 1;
        /* The object as it looks now (a walker's legs change from frame to frame); not while
         * it comes back from hiding, until it is seen again. */
        if (!hidden) {
            vtm_locate_learn(&ob->loc, t->feat, t->fw, t->fh, found, NULL, 0.2f);
            ob->loc_ref = ob->loc_ref <= 0 ? sc : ob->loc_ref + 0.1 * (sc - ob->loc_ref);
        }
    }
}

/* An object's predicted box in cells, inclusive: x0, y0, x1, y1 (may lie outside the map). */
static void box_cells(const vt_tracker *t, const float box[4], int c[4]) {
    const double sx = (double)t->fw / t->sw, sy = (double)t->fh / t->sh;
    c[0] = (int)floor(box[0] * sx);
    c[1] = (int)floor(box[1] * sy);
    c[2] = (int)ceil((box[0] + box[2]) * sx) - 1;
    c[3] = (int)ceil((box[1] + box[3]) * sy) - 1;
    if (c[2] < c[0])
        c[2] = c[0];
    if (c[3] < c[1])
        c[3] = c[1];
}

/* A placed object's predicted box (source pixels) and its cells; 0 for a free slot or an
 * object still waiting for its first frame. */
static int predicted_cells(const vt_tracker *t, const obj *ob, float pb[4], int g[4]) {
    if (!ob->live || ob->pending)
        return 0;
    vtm_motion_box(&ob->mot, pb);
    box_cells(t, pb, g);
    return 1;
}

/*
 * Which edges of the source frame box b's centre lies beyond: side[0] left, [1] top, [2] right,
 * [3] bottom (the order of a tight box's x0, y0, x1, y1).
 */
static void centre_beyond(const vt_tracker *t, const float b[4], int side[4]) {
    const double cx = b[0] + 0.5 * b[2], cy = b[1] + 0.5 * b[3];
    side[0] = cx < 0, side[1] = cy < 0, side[2] = cx >= t->sw, side[3] = cy >= t->sh;
}

/*
 * A lost object whose predicted centre is outside the frame has left it, and can only come back
 * across the edge it left by: its gate region (cells, inclusive) is cut to a band along that
 * edge as deep as twice its box plus gate_min cells. Without the cut the gate, grown by the
 * filter's uncertainty while the object is not seen, soon covers the frame, and the object's
 * label stays on whatever looks like it there (a lost object's mask of 863 pixels on a
 * look-alike in the middle of the frame in test_gone_not_back_inside), taking those pixels from
 * it. Twice the box: a lost object's filter runs on at its last pace, and the object may have
 * stopped or turned at the edge (DAVIS swing, box-initialised: its swinger, lost while her
 * filter ran on out of the frame, is still labelled where she swings back, a box's width further
 * in; a band one box deep cut her off, J&F 17.0 -> 14.2).
 */
static void edge_band(const vt_tracker *t, const float pb[4], int *x0, int *y0, int *x1, int *y1) {
    const double sx = (double)t->fw / t->sw, sy = (double)t->fh / t->sh;
    const int bw = (int)ceil(2.0 * pb[2] * sx) + t->p.gate_min;
    const int bh = (int)ceil(2.0 * pb[3] * sy) + t->p.gate_min;
    int side[4];
    centre_beyond(t, pb, side);
    if (side[0] && *x1 > bw)
        *x1 = bw;
    if (side[2] && *x0 < t->fw - 1 - bw)
        *x0 = t->fw - 1 - bw;
    if (side[1] && *y1 > bh)
        *y1 = bh;
    if (side[3] && *y0 < t->fh - 1 - bh)
        *y0 = t->fh - 1 - bh;
}

/*
 * Motion prior: an object can only be where its motion allows. Its probability outside its
 * predicted box, grown by a margin, goes to the background. The margin is `gate` times the
 * box's larger side plus twice the filter's position uncertainty (which grows while the object
 * is not seen, so a hidden object is looked for further and further away), at least gate_min
 * cells. An object is gated from the frame after the one it was given on. A lost object that
 * has left the frame is gated to the band along its edge (edge_band).
 */
static void motion_gate(vt_tracker *t, int kmax) {
    const int fw = t->fw, fh = t->fh, n = t->n;
    if (!(t->p.gate > 0.0f))
        return;
    const double sx = (double)t->fw / t->sw, sy = (double)t->fh / t->sh;
    int gx0[256], gy0[256], gx1[256], gy1[256], ext[256];
    /* First every object's own region: its predicted box grown by the margin. */
    for (int o = 0; o < kmax; o++) {
        const obj *ob = &t->objs[o];
        float pb[4];
        int g[4];
        if (!predicted_cells(t, ob, pb, g))
            continue;
        const double side = fmax(pb[2] * sx, pb[3] * sy);
        const double sd = vtm_motion_pos_std(&ob->mot) * fmax(sx, sy);
        int m = (int)ceil(t->p.gate * side + 2.0 * sd);
        if (m < t->p.gate_min)
            m = t->p.gate_min;
        gx0[o] = g[0] - m, gy0[o] = g[1] - m, gx1[o] = g[2] + m, gy1[o] = g[3] + m;
        ext[o] = (int)ceil(2.0 * sqrt(ob->spill) * fmax(sx, sy));
    }
    /* An object whose mask has been reaching beyond its box (a deforming one: a dancer's arm,
     * a rider's bike) may reach that much further, where no other object is near. */
    for (int o = 0; o < kmax; o++) {
        const obj *ob = &t->objs[o];
        if (!ob->live || ob->pending || ext[o] <= 0)
            continue;
        int alone = 1;
        for (int o2 = 0; o2 < kmax && alone; o2++) {
            const obj *b = &t->objs[o2];
            if (o2 == o || !b->live || b->pending)
                continue;
            alone = gx1[o] + ext[o] < gx0[o2] || gx1[o2] < gx0[o] - ext[o] ||
                    gy1[o] + ext[o] < gy0[o2] || gy1[o2] < gy0[o] - ext[o];
        }
        if (alone)
            gx0[o] -= ext[o], gy0[o] -= ext[o], gx1[o] += ext[o], gy1[o] += ext[o];
    }
    for (int o = 0; o < kmax; o++) {
        const obj *ob = &t->objs[o];
        if (!ob->live || ob->pending)
            continue;
        int x0 = gx0[o], y0 = gy0[o], x1 = gx1[o], y1 = gy1[o];
        if (ob->state == VT_OBJECT_LOST) {
            float pb[4];
            vtm_motion_box(&ob->mot, pb);
            edge_band(t, pb, &x0, &y0, &x1, &y1);
        }
        if (x0 <= 0 && y0 <= 0 && x1 >= fw - 1 && y1 >= fh - 1)
            continue;
        float *pr = t->probs + (size_t)o * n;
        for (int y = 0; y < fh; y++) {
            const int row_in = y >= y0 && y <= y1;
            for (int x = 0; x < fw; x++) {
                const int i = y * fw + x;
                if (row_in && x >= x0 && x <= x1)
                    continue;
                t->bg[i] += pr[i];
                pr[i] = 0.0f;
            }
        }
    }
}

/* Object o's probability at cell i becomes p; the background and the other objects share what
 * is left in the proportions they had. */
static void cell_set(vt_tracker *t, int kmax, int o, int i, float p) {
    const int n = t->n;
    float *po = t->probs + (size_t)o * n + i;
    const float rest = 1.0f - *po;
    const float sc = rest > 1e-6f ? (1.0f - p) / rest : 0.0f;
    t->bg[i] *= sc;
    for (int o2 = 0; o2 < kmax; o2++)
        if (o2 != o)
            t->probs[(size_t)o2 * n + i] *= sc;
    *po = p;
}

/*
 * Appearance: each object's probability is multiplied, cell by cell, by the share of its own
 * cells among the cell's best matches in its appearance banks (appear.h). Background that kept
 * the object's label (the ground where it stood, what it walked past) matches the banks'
 * negatives and goes back to the background.
 */
static void appearance_filter(vt_tracker *t, int kmax) {
    const int n = t->n;
    for (int o = 0; o < kmax; o++) {
        obj *ob = &t->objs[o];
        if (!ob->live || ob->pending)
            continue;
        float *pr = t->probs + (size_t)o * n;
        int nc = 0;
        for (int i = 0; i < n; i++)
            if (pr[i] > 0.02f)
                t->cells[nc++] = i;
        for (int s0 = 0; s0 < nc; s0 += APP_CHUNK) {
            const int m = nc - s0 < APP_CHUNK ? nc - s0 : APP_CHUNK;
            vtm_appear_score(&ob->app, t->feat, n, t->cells + s0, m, t->p.topk > 0 ? t->p.topk : 5,
                             t->p.temperature, t->app_gather, t->app_sims, t->app_out);
            for (int j = 0; j < m; j++) {
                /* odds: the object's probability times a, everything else's times 1 - a */
                const int i = t->cells[s0 + j];
                float a = t->app_out[j];
                a = a < 0.05f ? 0.05f : a > 0.95f ? 0.95f : a;
                const float po = pr[i] * a, sum = po + (1.0f - pr[i]) * (1.0f - a);
                cell_set(t, kmax, o, i, sum > 0 ? po / sum : 0.0f);
            }
        }
    }
}

/* Argmax per cell over the background and the live objects: t->cell_lab. */
static void cell_argmax(vt_tracker *t) {
    const int n = t->n, k = t->p.max_objects;
    for (int i = 0; i < n; i++) {
        float best = t->bg[i];
        int arg = -1;
        for (int o = 0; o < k; o++)
            if (t->objs[o].live && t->probs[(size_t)o * n + i] > best)
                best = t->probs[(size_t)o * n + i], arg = o;
        t->cell_lab[i] = (int16_t)arg;
    }
}

/*
 * Teach an object's banks this frame: its cells (where it wins confidently) are positives, the
 * cells around its box that are not it are negatives. `fixed` on the frame it was given on (its
 * mask's cells, and everything else in and around its box), else the rolling part.
 */
static void appearance_learn(vt_tracker *t, obj *ob, int slot, const float box[4], int fixed) {
    const int fw = t->fw, fh = t->fh, n = t->n;
    int g[4];
    box_cells(t, box, g);
    const int side = g[2] - g[0] > g[3] - g[1] ? g[2] - g[0] + 1 : g[3] - g[1] + 1;
    int m = (side + 1) / 2;
    m = m < 2 ? 2 : m;
    const float *pr = t->probs + (size_t)slot * n;
    int np = 0;
    for (int i = 0; i < n; i++)
        if (t->cell_lab[i] == slot && (fixed || pr[i] > 0.7f))
            t->cells[np++] = i;
    vtm_appear_add(&ob->app, 1, t->feat, n, t->cells, np, fixed, fixed ? VT_APPEAR_POS / 2 : 16);
    int nn = 0;
    for (int y = g[1] - m; y <= g[3] + m; y++) {
        if (y < 0 || y >= fh)
            continue;
        for (int x = g[0] - m; x <= g[2] + m; x++) {
            if (x < 0 || x >= fw)
                continue;
            const int i = y * fw + x;
            if (t->cell_lab[i] != slot && pr[i] < 0.1f)
                t->cells[nn++] = i;
        }
    }
    vtm_appear_add(&ob->app, 0, t->feat, n, t->cells, nn, fixed, fixed ? VT_APPEAR_NEG / 2 : 32);
}

/*
 * Parts of a moving object move with it. For an object whose motion filter says it has moved at
 * least two cells since the oldest short-term memory frame, each of its cells is compared with
 * that frame twice: at the same place, and where the object's motion says that part was then
 * (best of a 3x3 neighbourhood). A cell that matches its own place almost exactly (0.9) and
 * clearly better (by 0.15) than where the object came from is background the object has left
 * (or walked past): the object's probability there goes to the background. A uniformly coloured
 * part (a plain shirt) matches both and keeps its label.
 */
static void static_cells(vt_tracker *t, int kmax) {
    const int fw = t->fw, fh = t->fh, n = t->n, c = t->c;
    const entry *e = NULL;
    for (int j = t->ring_len - 1; j >= 0 && !e; j--)
        e = t->ring[j];
    if (!e)
        return;
    const int64_t age = t->frame - e->frame;
    const double sx = (double)fw / t->sw, sy = (double)fh / t->sh;
    for (int o = 0; o < kmax; o++) {
        const obj *ob = &t->objs[o];
        if (!ob->live || ob->pending || ob->still || ob->state != VT_OBJECT_TRACKING)
            continue;
        const int dx = (int)lround(ob->mot.a[0].v * sx * (double)age);
        const int dy = (int)lround(ob->mot.a[1].v * sy * (double)age);
        if (dx * dx + dy * dy < 4)
            continue;
        float *pr = t->probs + (size_t)o * n;
        for (int q = 0; q < n; q++) {
            if (!(pr[q] > 0.3f))
                continue;
            const int x = q % fw, y = q / fw;
            float ss = 0;
            for (int ch = 0; ch < c; ch++)
                ss += t->feat[(size_t)ch * n + q] * e->feat[(size_t)ch * n + q];
            if (ss < 0.9f)
                continue;
            float sm = -1.0f;
            for (int yy = y - dy - 1; yy <= y - dy + 1; yy++) {
                for (int xx = x - dx - 1; xx <= x - dx + 1; xx++) {
                    if (xx < 0 || yy < 0 || xx >= fw || yy >= fh)
                        continue;
                    const int r = yy * fw + xx;
                    float d = 0;
                    for (int ch = 0; ch < c; ch++)
                        d += t->feat[(size_t)ch * n + q] * e->feat[(size_t)ch * n + r];
                    sm = d > sm ? d : sm;
                }
            }
            if (ss > sm + 0.15f) {
                t->bg[q] += pr[q];
                pr[q] = 0.0f;
            }
        }
    }
}

/*
 * A hidden object whose template was found again (locate_objects) gets its cells back: its
 * memory frames no longer know it (they stopped while it was hidden), so the propagation gives it
 * nothing; where its template says the object is (the samples' weights, over the found box) its
 * probability becomes at least 0.9 times that weight, and the cell is normalised again.
 */
static void refound_objects(vt_tracker *t, int kmax) {
    const int fw = t->fw, fh = t->fh, n = t->n;
    for (int o = 0; o < kmax; o++) {
        obj *ob = &t->objs[o];
        if (!ob->live || ob->pending || !ob->refound)
            continue;
        const vt_locate *l = &ob->loc;
        const float *b = ob->loc_box;
        for (int y = (int)floor(b[1]); y < (int)ceil(b[1] + b[3]); y++) {
            if (y < 0 || y >= fh)
                continue;
            int j = (int)((y + 0.5 - b[1]) * l->gh / b[3]);
            j = j < 0 ? 0 : j >= l->gh ? l->gh - 1 : j;
            for (int x = (int)floor(b[0]); x < (int)ceil(b[0] + b[2]); x++) {
                if (x < 0 || x >= fw)
                    continue;
                int i = (int)((x + 0.5 - b[0]) * l->gw / b[2]);
                i = i < 0 ? 0 : i >= l->gw ? l->gw - 1 : i;
                const float want = 0.9f * l->wt[(size_t)j * l->gw + i];
                const int q = y * fw + x;
                if (t->probs[(size_t)o * n + q] < want)
                    cell_set(t, kmax, o, q, want);
            }
        }
    }
}

/*
 * Stray labels: the cells an object wins form connected pieces; the object is the piece that
 * overlaps its predicted box most, and any other piece lying mostly inside that box (an object
 * cut in two by whatever stands in front of it). Other pieces are background that kept the
 * object's label (where it stood a moment ago, or a look-alike nearby): their probability goes
 * to the background, so that they are neither reported nor written into the memory.
 */
static void drop_strays(vt_tracker *t, int kmax) {
    const int fw = t->fw, fh = t->fh, n = t->n;
    cell_argmax(t);
    const int16_t *lab = t->cell_lab;
    for (int i = 0; i < n; i++)
        t->comp[i] = -1;
    for (int o = 0; o < kmax; o++) {
        const obj *ob = &t->objs[o];
        float pb[4];
        int g[4];
        if (!predicted_cells(t, ob, pb, g))
            continue;
        /* Flood-fill the object's pieces (8-connected), scoring each by its cells inside the
         * predicted box. */
        int ncomp = 0, best = -1, best_in = 0, best_size = 0;
        enum { MAXC = 256 };
        int in_c[MAXC], size_c[MAXC];
        for (int s0 = 0; s0 < n; s0++) {
            if (lab[s0] != o || t->comp[s0] >= 0)
                continue;
            const int id = ncomp < MAXC ? ncomp : MAXC - 1;
            if (ncomp < MAXC) {
                in_c[id] = size_c[id] = 0;
                ncomp++;
            }
            int qh = 0, qt = 0;
            t->queue[qt++] = s0;
            t->comp[s0] = id;
            while (qh < qt) {
                const int q = t->queue[qh++], x = q % fw, y = q / fw;
                size_c[id]++;
                in_c[id] += x >= g[0] && x <= g[2] && y >= g[1] && y <= g[3];
                for (int dy = -1; dy <= 1; dy++) {
                    for (int dx = -1; dx <= 1; dx++) {
                        const int xx = x + dx, yy = y + dy;
                        if (xx < 0 || yy < 0 || xx >= fw || yy >= fh)
                            continue;
                        const int r = yy * fw + xx;
                        if (lab[r] == o && t->comp[r] < 0) {
                            t->comp[r] = id;
                            t->queue[qt++] = r;
                        }
                    }
                }
            }
        }
        if (ncomp <= 1)
            continue;
        for (int c = 0; c < ncomp; c++)
            if (in_c[c] > best_in || (in_c[c] == best_in && size_c[c] > best_size))
                best = c, best_in = in_c[c], best_size = size_c[c];
        float *pr = t->probs + (size_t)o * n;
        for (int i = 0; i < n; i++) {
            if (lab[i] != o)
                continue;
            const int c = t->comp[i];
            if (c == best || 2 * in_c[c] >= size_c[c])
                continue;
            t->bg[i] += pr[i];
            pr[i] = 0.0f;
        }
    }
}

/* Confidence of each object: mean probability over the cells where it wins the argmax. */
static void object_scores(vt_tracker *t, float *score) {
    const int n = t->n, k = t->p.max_objects;
    static const float none = 0.0f;
    int cnt[256] = {0};
    for (int o = 0; o < k; o++)
        score[o] = none;
    for (int i = 0; i < n; i++) {
        float best = t->bg[i];
        int arg = -1;
        for (int o = 0; o < k; o++)
            if (t->objs[o].live && t->probs[(size_t)o * n + i] > best)
                best = t->probs[(size_t)o * n + i], arg = o;
        if (arg >= 0) {
            score[arg] += best;
            cnt[arg]++;
        }
    }
    for (int o = 0; o < k; o++)
        score[o] = cnt[o] ? score[o] / cnt[o] : 0.0f;
}

/*
 * The extent of an object's mask without its thinnest outliers: the columns and rows that leave
 * 2 % of its pixels on each side (a stray sliver or an arm held out does not widen the box).
 * `tight` is the mask's tight box (x0, y0, x1, y1 inclusive); writes the trimmed one to `ext`.
 */
static void mask_extent(vt_tracker *t, const obj *ob, int64_t area, const int tight[4],
                        int ext[4]) {
    memcpy(ext, tight, sizeof(int) * 4);
    if (area < 50)
        return;
    const int64_t cut = area / 50;
    for (int ax = 0; ax < 2; ax++) {
        const int lo = tight[ax], hi = tight[ax + 2];
        int *h = t->hist;
        memset(h, 0, sizeof(int) * (size_t)(hi - lo + 1));
        for (int y = tight[1]; y <= tight[3]; y++) {
            const uint8_t *m = ob->mask + (size_t)y * t->sw;
            for (int x = tight[0]; x <= tight[2]; x++)
                if (m[x])
                    h[(ax ? y : x) - lo]++;
        }
        int64_t acc = 0;
        int a = lo, b = hi;
        for (; a < hi && acc + h[a - lo] <= cut; a++)
            acc += h[a - lo];
        acc = 0;
        for (; b > a && acc + h[b - lo] <= cut; b--)
            acc += h[b - lo];
        ext[ax] = a;
        ext[ax + 2] = b;
    }
}

/* Clip a box (x, y, w, h) to the source frame, as x0, y0, x1, y1 (exclusive). */
static void clip_box(const vt_tracker *t, const float b[4], double c[4]) {
    c[0] = fmax(0.0, b[0]);
    c[1] = fmax(0.0, b[1]);
    c[2] = fmin((double)t->sw, (double)b[0] + b[2]);
    c[3] = fmin((double)t->sh, (double)b[1] + b[3]);
}

/* Is the centre of a box (x, y, w, h) inside the source frame? */
static int centre_inside(const vt_tracker *t, const float b[4]) {
    int side[4];
    centre_beyond(t, b, side);
    return !side[0] && !side[1] && !side[2] && !side[3];
}

/*
 * Whether a mask (tight box, inclusive) reaches the frame's edge on every side where predicted
 * box b's centre lies outside the frame: an object mostly outside the frame shows only there.
 */
static int reaches_edge(const vt_tracker *t, const float b[4], const int tight[4]) {
    int side[4];
    centre_beyond(t, b, side);
    return !((side[0] && tight[0] > 0) || (side[1] && tight[1] > 0) ||
             (side[2] && tight[2] < t->sw - 1) || (side[3] && tight[3] < t->sh - 1));
}

/*
 * Is side `side` (0 left, 1 top, 2 right, 3 bottom) of a mask's tight box along another object?
 * At least a fifth of the two pixel lines just outside it (over the box's extent) belong to
 * another object of the label map (which holds result indices; `self` is this object's).
 */
static int side_cut(const vt_tracker *t, int self, const int tight[4], int side) {
    const int horiz = side == 0 || side == 2; /* a left or right side: a column */
    const int lo = horiz ? tight[1] : tight[0], hi = horiz ? tight[3] : tight[2];
    int other = 0, cnt = 0;
    for (int d = 1; d <= 2; d++) {
        const int at = side < 2 ? tight[side] - d : tight[side] + d;
        if (at < 0 || at >= (horiz ? t->sw : t->sh))
            continue;
        for (int k = lo; k <= hi; k++) {
            const int x = horiz ? at : k, y = horiz ? k : at;
            const int v = t->labels[(size_t)y * t->sw + x];
            other += v && v != self;
            cnt++;
        }
    }
    return cnt > 0 && 5 * other >= cnt;
}

/*
 * A new object's motion starts from the box it was given (a mask's or a polygon's own box),
 * and remembers where that box lies around the mask the box was refined into: a user's box is
 * the whole object, usually with a margin, and the mask is what the tracker can follow; later
 * masks are turned back into boxes of the user's kind with the same margins. `tight` is the
 * mask's box, `ext` the same without its outliers (mask_extent), x0, y0, x1, y1 inclusive.
 */
static void object_start(vt_tracker *t, obj *ob, int64_t area, const int tight[4],
                         const int ext[4]) {
    double u[4];
    if (ob->shape.kind == VT_SHAPE_BOX) {
        /* as given, even where it crosses the frame's edge: the object goes on beyond it */
        const float *b = ob->shape.box;
        u[0] = b[0], u[1] = b[1], u[2] = (double)b[0] + b[2], u[3] = (double)b[1] + b[3];
    } else {
        u[0] = ext[0], u[1] = ext[1], u[2] = ext[2] + 1, u[3] = ext[3] + 1;
    }
    memset(ob->rel, 0, sizeof ob->rel);
    if (area > 0) {
        const double mw = ext[2] - ext[0] + 1, mh = ext[3] - ext[1] + 1;
        ob->rel[0] = (float)((u[0] - ext[0]) / mw);
        ob->rel[1] = (float)((u[1] - ext[1]) / mh);
        ob->rel[2] = (float)((u[2] - (ext[2] + 1)) / mw);
        ob->rel[3] = (float)((u[3] - (ext[3] + 1)) / mh);
        /* A mask cut by the frame's edge says nothing of the margin on that side: take the
         * opposite side's. */
        if (tight[0] <= 0 && tight[2] < t->sw - 1)
            ob->rel[0] = -ob->rel[2];
        if (tight[2] >= t->sw - 1 && tight[0] > 0)
            ob->rel[2] = -ob->rel[0];
        if (tight[1] <= 0 && tight[3] < t->sh - 1)
            ob->rel[1] = -ob->rel[3];
        if (tight[3] >= t->sh - 1 && tight[1] > 0)
            ob->rel[3] = -ob->rel[1];
    }
    const float box[4] = {(float)u[0], (float)u[1], (float)(u[2] - u[0]), (float)(u[3] - u[1])};
    if (ob->shape.kind == VT_SHAPE_BOX)
        vtm_ground_add(&t->ground, box, t->sh);
    const double ua = (double)box[2] * box[3];
    ob->fill = area > 0 && ua > 0 ? fmin(1.0, area / ua) : 0.5;
    vtm_motion_init(&ob->mot, box);
    ob->unseen = 0;
    ob->size_dis[0] = ob->size_dis[1] = 0;
    ob->spill = 0;
    ob->vis = 1.0;
    vtm_appear_reset(&ob->app);
    appearance_learn(t, ob, (int)(ob - t->objs), box, 1);
    float cb[4];
    box_to_cells(t, box, cb);
    coverage(t, ob->mask, area > 0 ? tight : NULL);
    ob->loc.valid = 0;
    vtm_locate_learn(&ob->loc, t->feat, t->fw, t->fh, cb, t->cover, 1.0f);
    ob->loc_ref = 0;
}

/*
 * The reported box of an object given a few cells wide. Its mask is a blur of a few cells,
 * which places it but does not size it (a 20-pixel person's mask is 10 to 60 pixels wide from
 * one frame to the next, and spreads over whoever walks beside it): where the camera's ground
 * is known (ground.h) and the object was given by a box under LOC_MIN_CELLS wide, the box keeps
 * the filter's centre and takes the ground's height there, with the given box's width-to-height
 * ratio, on every frame. Which objects qualify is decided by the given box, not by the filter's
 * box of the moment: the filter follows such an object's size slowly and badly (a person coming
 * nearer, a mask that took a neighbour along), and once its box passed LOC_MIN_CELLS the ground
 * let go and the filter's box was reported: KITTI-17's group came out half their size as they
 * came nearer (docs/RESULTS.md, "Sized by the ground for good"). The filter itself is left as it
 * is; measured as the filter's side measurements instead, the larger boxes gated the
 * propagation's labels worse (docs/RESULTS.md, "Ground plane").
 */
static void ground_size(const vt_tracker *t, const obj *ob, float b[4]) {
    const float *given = ob->shape.box;
    if (ob->shape.kind != VT_SHAPE_BOX || given[2] * t->fw >= LOC_MIN_CELLS * t->sw)
        return;
    const double cy = b[1] + 0.5 * b[3];
    const double h = vtm_ground_height(&t->ground, vtm_ground_ratio(&t->ground, given), cy);
    if (!(h > 0))
        return;
    const double w = h * given[2] / given[3], cx = b[0] + 0.5 * b[2];
    b[0] = (float)(cx - 0.5 * w), b[1] = (float)(cy - 0.5 * h);
    b[2] = (float)w, b[3] = (float)h;
}

/*
 * One frame of an object that exists: is it seen, and where is its box? It is seen when its
 * mask holds at least `lost_area` of the area its predicted box should show (twice that to come
 * back once hidden) with a confident score. A seen object's mask box, turned into a box of the
 * given box's kind, corrects the motion filter; a side that touches the frame's edge only tells
 * where the object's inner edge is (the rest is outside), and a mask that shows under 60 % of
 * the expected area moves the box but does not resize it (a partly hidden object is not
 * smaller). An object not seen for 2 frames is occluded: its box is the predicted one; after
 * `lost_frames` frames it is lost. One not seen whose predicted centre is outside the frame has
 * left it and is lost at once: it is not hidden (occluded), and for the frame of grace a
 * tracked object has, its box would be a sliver at the edge or none.
 */
static vt_object_event object_observe(vt_tracker *t, obj *ob, int res_index, int64_t area,
                                      const int tight[4], const int ext[4], float score) {
    float pb[4];
    vtm_motion_box(&ob->mot, pb);
    const double expect = ob->fill * pb[2] * pb[3];
    const double vis = expect > 0 ? (double)area / expect : 0.0;
    const int hidden = ob->state == VT_OBJECT_OCCLUDED || ob->state == VT_OBJECT_LOST;
    const double need = hidden ? 2.0 * t->p.lost_area : t->p.lost_area;
    /* Predicted mostly outside the frame, an object shows at the edge or not at all: a mask away
     * from that edge is the propagation's labels on a look-alike, which the gate no longer keeps
     * out once the object has been gone a while (its uncertainty has grown over the frame). */
    const int seen =
        area > 0 && vis >= need && score >= t->p.lost_score && reaches_edge(t, pb, tight);
    ob->vis = vis;
    if (seen) {
        /* the mask's reach beyond the predicted box, side by side */
        const double ex[4] = {pb[0] - tight[0], pb[1] - tight[1], tight[2] + 1 - (pb[0] + pb[2]),
                              tight[3] + 1 - (pb[1] + pb[3])};
        double e2 = 0;
        for (int i = 0; i < 4; i++)
            e2 += ex[i] > 0 ? ex[i] * ex[i] / 4 : 0;
        ob->spill += 0.2 * (e2 - ob->spill);
        const double mw = ext[2] - ext[0] + 1, mh = ext[3] - ext[1] + 1;
        double u[4] = {ext[0] + ob->rel[0] * mw, ext[1] + ob->rel[1] * mh,
                       ext[2] + 1 + ob->rel[2] * mw, ext[3] + 1 + ob->rel[3] * mh};
        const int full = vis >= 0.6;
        double trust[4] = {1, 1, full ? 1 : 0, full ? 1 : 0};
        if (!full)
            trust[0] = trust[1] = 2;
        /* The template already placed the object: the mask only sizes it. Behind another
         * object, the mask neither places nor sizes it (behind_objects). */
        if (ob->located || ob->behind)
            trust[0] = trust[1] = 0;
        if (ob->behind)
            trust[2] = trust[3] = 0; /* the update below then only marks this frame as the
                                      * last measured one, at the carried box */
        /* A mask a third larger or a quarter smaller than the object took something along or
         * lost a part: it does not resize the object. */
        for (int ax = 0; ax < 2; ax++) {
            const double r = (u[ax + 2] - u[ax]) / pb[ax + 2];
            int *d = &ob->size_dis[ax];
            if (!(trust[ax + 2] > 0) || (r <= 1.33 && r >= 0.75)) {
                *d = 0;
                continue;
            }
            /* ... unless it keeps saying so: the box was given too large or too small, or the
             * object came much nearer */
            const int dir = r > 1 ? 1 : -1;
            *d = *d * dir > 0 ? *d + dir : dir;
            trust[ax + 2] = abs(*d) >= 4 ? 2 : 0;
        }
        /* Sides at the frame's edge, or, for an object partly hidden, along another object
         * (the one in front): the object may go on beyond them, so only the other side of that
         * axis is measured, and the size is the predicted one. */
        int at[4] = {tight[0] <= 0, tight[1] <= 0, tight[2] >= t->sw - 1, tight[3] >= t->sh - 1};
        if (!full)
            for (int side = 0; side < 4; side++)
                at[side] = at[side] || side_cut(t, res_index, tight, side);
        for (int ax = 0; ax < 2; ax++) {
            const int lo = at[ax], hi = at[ax + 2];
            if (!lo && !hi)
                continue;
            trust[ax + 2] = 0; /* the size is the predicted one */
            if (lo && hi)
                trust[ax] = 0;
            else if (lo)
                u[ax] = u[ax + 2] - pb[ax + 2];
            else
                u[ax + 2] = u[ax] + pb[ax + 2];
        }
        const float z[4] = {(float)u[0], (float)u[1], (float)(u[2] - u[0]), (float)(u[3] - u[1])};
        vtm_motion_update(&ob->mot, z, trust);
        if (full && !ob->behind && !at[0] && !at[1] && !at[2] && !at[3] && z[2] > 0 && z[3] > 0) {
            ob->fill += 0.05 * (fmin(1.0, area / ((double)z[2] * z[3])) - ob->fill);
            /* A mask with a third more area than the object should show (vis, an area ratio;
             * the size rule above takes the same third per side) took something along, a
             * neighbour it brushed or a person it passes: the template and the banks would
             * learn that thing as the object. Unless the size rule's count says the mask keeps
             * saying so: then the object has grown (a motorbike coming nearer). */
            const int took_along =
                vis > 1.33 && abs(ob->size_dis[0]) < 4 && abs(ob->size_dis[1]) < 4;
            if (!took_along && ob->loc_score > -1.5 && ob->loc_score >= 0.75 * ob->loc_ref) {
                float nb[4], cb[4];
                vtm_motion_box(&ob->mot, nb);
                box_to_cells(t, nb, cb);
                coverage(t, ob->mask, tight);
                vtm_locate_learn(&ob->loc, t->feat, t->fw, t->fh, cb, t->cover, 0.05f);
            }
            float nb[4];
            vtm_motion_box(&ob->mot, nb);
            if (!took_along && t->p.appearance && clear_of_others(t, ob, nb))
                appearance_learn(t, ob, (int)(ob - t->objs), nb, 0);
        }
        ob->unseen = 0;
        if (hidden) {
            ob->state = VT_OBJECT_RECOVERED;
            return VT_OBJECT_EVENT_RECOVERED;
        }
        ob->state = VT_OBJECT_TRACKING;
        return VT_OBJECT_EVENT_NONE;
    }
    ob->unseen++;
    if (!centre_inside(t, pb)) {
        if (ob->state == VT_OBJECT_LOST)
            return VT_OBJECT_EVENT_NONE;
        ob->state = VT_OBJECT_LOST;
        return VT_OBJECT_EVENT_LOST;
    }
    if (ob->state == VT_OBJECT_TRACKING || ob->state == VT_OBJECT_RECOVERED) {
        if (ob->unseen >= 2) {
            ob->state = VT_OBJECT_OCCLUDED;
            return VT_OBJECT_EVENT_OCCLUDED;
        }
        ob->state = VT_OBJECT_TRACKING;
        return VT_OBJECT_EVENT_NONE;
    }
    if (ob->state == VT_OBJECT_OCCLUDED) {
        if (ob->unseen > t->p.lost_frames) {
            ob->state = VT_OBJECT_LOST;
            return VT_OBJECT_EVENT_LOST;
        }
    }
    return VT_OBJECT_EVENT_NONE;
}

/*
 * The box reported: the motion filter's (sized by the ground for a small object: ground_size),
 * inside the frame; none once it has left the frame. A lost object keeps its predicted box too:
 * it is where the tracker still looks for it. The box of whatever mask it still has is no
 * estimate: after a long occlusion that mask is a few stray pixels wherever the propagation left
 * its label (TUD-Campus's person 4, lost after 25 frames behind others, had for 7 frames boxes
 * as small as 11x9 pixels 200 pixels from where it walked on and came back; docs/RESULTS.md, "A
 * lost object's box"). But a lost object whose predicted centre is outside the frame has left
 * it (that is how it was lost): what of its box is still inside is a sliver along the edge where
 * nothing is, kept for good when its filter came to rest there (the demo's woman 3).
 */
static void object_box(const vt_tracker *t, const obj *ob, int bbox[4]) {
    memset(bbox, 0, sizeof(int) * 4);
    float b[4];
    vtm_motion_box(&ob->mot, b);
    if (ob->state == VT_OBJECT_LOST && !centre_inside(t, b))
        return;
    ground_size(t, ob, b);
    double c[4];
    clip_box(t, b, c);
    const int x0 = (int)lround(c[0]), y0 = (int)lround(c[1]);
    const int x1 = (int)lround(c[2]), y1 = (int)lround(c[3]);
    if (x1 > x0 && y1 > y0) {
        bbox[0] = x0, bbox[1] = y0, bbox[2] = x1 - x0, bbox[3] = y1 - y0;
    }
}

/* The image the encoder sees: the caller's processing image, the source itself, or our own
 * resize of it (t->proc_rgb). */
static int processing_image(vt_tracker *t, const vt_image *src, const vt_image *proc,
                            vt_image *pimg) {
    const int pw = t->pw, ph = t->ph;
    if (proc) {
        if (proc->w != pw || proc->h != ph || !proc->rgb)
            return -EINVAL;
        *pimg = *proc;
    } else if (src->w == pw && src->h == ph) {
        *pimg = *src;
    } else {
        int rc = vt_reserve(&t->proc_rgb, &t->proc_cap, (size_t)pw * ph * 3);
        if (rc == 0)
            rc = resize_rgb(t, src, t->proc_rgb, pw, ph);
        if (rc < 0)
            return rc;
        *pimg = (vt_image){.w = pw, .h = ph, .linesize = pw * 3, .rgb = t->proc_rgb};
    }
    return 0;
}

/* Features of the processing image into t->feat (the geometry is set on the first frame). */
static int encode_frame(vt_tracker *t, const vt_image *pimg) {
    vt_features f;
    int rc;
    if ((rc = vt_encoder_run(t->enc, pimg, &f)) < 0)
        return rc;
    if (t->n == 0 && (rc = setup_geometry(t, &f)) < 0)
        return rc;
    if (f.w != t->fw || f.h != t->fh)
        return -EINVAL;
    take_features(t, &f);
    return 0;
}

/*
 * The objects already known, into t->probs [K][N] and t->bg [N]: their motion predicts their
 * box, their template is searched there, the memory propagates their labels, and the
 * object-level steps weigh the result (docs/TRACKING.md, "Camera tracking").
 */
static int propagate_known(vt_tracker *t, vt_track_timing *tm) {
    const int n = t->n, k = t->p.max_objects;
    int nexist = 0;
    for (int o = 0; o < k; o++)
        nexist += t->objs[o].live && !t->objs[o].pending;
    for (int o = 0; o < k; o++)
        if (t->objs[o].live && !t->objs[o].pending)
            vtm_motion_predict(&t->objs[o].mot);
    behind_objects(t);
    if (t->p.locate)
        locate_objects(t);
    int nm = nexist ? memory_frames(t) : 0;
    if (nm <= 0) {
        memset(t->probs, 0, sizeof(float) * n * k);
        for (int i = 0; i < n; i++)
            t->bg[i] = 1.0f;
        return 0;
    }
    vt_prop_timing pt;
    int kmax = 0;
    for (int o = 0; o < k; o++)
        if (t->objs[o].live)
            kmax = o + 1;
    int rc = vtm_prop_run(t->prop, t->feat, t->mframes, nm, kmax, t->probs, t->bg, &pt);
    if (rc < 0)
        return rc;
    tm->affinity = pt.affinity;
    tm->labels = pt.labels;
    for (int o = 0; o < k; o++)
        if (!t->objs[o].live || t->objs[o].pending || o >= kmax)
            memset(t->probs + (size_t)o * n, 0, sizeof(float) * n);
    motion_gate(t, kmax);
    refound_objects(t, kmax);
    background_filter(t, kmax);
    if (t->p.strays)
        static_cells(t, kmax);
    if (t->p.appearance)
        appearance_filter(t, kmax);
    if (t->p.strays)
        drop_strays(t, kmax);
    return 0;
}

/* Objects given on this frame take their cells: coverage a -> p_new = a, others * (1-a). */
static int place_given(vt_tracker *t) {
    const int n = t->n, k = t->p.max_objects;
    for (int o = 0; o < k; o++) {
        obj *ob = &t->objs[o];
        if (!ob->live || !ob->pending)
            continue;
        int rc = ensure_mask(ob, (size_t)t->sw * t->sh);
        if (rc < 0)
            return rc;
        if (rasterise(t, ob) < 0) {
            /* The mask no longer matches the source size: drop the object. */
            vt_tracker_remove_object(t, ob->id);
            continue;
        }
        coverage(t, ob->mask, NULL);
        if (ob->shape.kind == VT_SHAPE_BOX && t->p.box_refine) {
            refine_box(t, ob);
            coverage(t, ob->mask, NULL);
        }
        if (ob->shape.kind == VT_SHAPE_BOX) {
            /* A box holds background; a mask or a polygon is what the user drew. */
            background_shape(t, ob);
            coverage(t, ob->mask, NULL);
        } else {
            ob->still = 0;
        }
        for (int i = 0; i < n; i++) {
            float a = t->cover[i], keep = 1.0f - a;
            for (int j = 0; j < k; j++)
                t->probs[(size_t)j * n + i] *= keep;
            t->bg[i] *= keep;
            t->probs[(size_t)o * n + i] = a;
        }
    }
    return 0;
}

/* Source-resolution labels (slot + 1); given shapes are pasted exactly. */
static void label_map(vt_tracker *t) {
    upsample_argmax(t);
    background_pixels(t);
    for (int o = 0; o < t->p.max_objects; o++) {
        obj *ob = &t->objs[o];
        if (!ob->live || !ob->pending)
            continue;
        const size_t np = (size_t)t->sw * t->sh;
        for (size_t i = 0; i < np; i++)
            if (ob->mask[i])
                t->labels[i] = (uint8_t)(o + 1);
    }
}

/*
 * The results, one per live object in slot order, from the label map (rewritten to result
 * indices): each object's mask, area and box, its new state (object_start for an object given
 * on this frame, object_observe for the others), and what the memory learns per cell (the
 * object that holds at least a third of the cell's reported pixels, the most of them, else the
 * background). Returns the number of results or a negative errno.
 */
static int collect_results(vt_tracker *t, const float *score) {
    const int n = t->n, k = t->p.max_objects;
    uint8_t lut[256] = {0};
    int nres = 0;
    for (int o = 0; o < k; o++) {
        if (!t->objs[o].live)
            continue;
        t->slot_of_res[nres] = o;
        lut[o + 1] = (uint8_t)(nres + 1);
        nres++;
    }
    const size_t np = (size_t)t->sw * t->sh;
    int64_t area[256] = {0};
    int bx0[256], by0[256], bx1[256], by1[256];
    for (int r = 0; r < nres; r++) {
        obj *ob = &t->objs[t->slot_of_res[r]];
        int rc = ensure_mask(ob, np);
        if (rc < 0)
            return rc;
        memset(ob->mask, 0, np);
        bx0[r] = by0[r] = INT32_MAX;
        bx1[r] = by1[r] = -1;
    }
    for (int i = 0; i < n; i++) {
        t->cm_cnt[i][0] = t->cm_cnt[i][1] = 0;
        t->cm_slot[i][0] = t->cm_slot[i][1] = -1;
    }
    for (int y = 0; y < t->sh; y++) {
        uint8_t *row = t->labels + (size_t)y * t->sw;
        const int crow = t->row_cell[y] * t->fw;
        for (int x = 0; x < t->sw; x++) {
            int v = lut[row[x]];
            row[x] = (uint8_t)v;
            if (!v)
                continue;
            int r = v - 1;
            {
                const int q = crow + t->col_cell[x], sl = t->slot_of_res[r];
                if (t->cm_slot[q][0] == sl || t->cm_slot[q][0] < 0)
                    t->cm_slot[q][0] = (int16_t)sl, t->cm_cnt[q][0]++;
                else if (t->cm_slot[q][1] == sl || t->cm_slot[q][1] < 0)
                    t->cm_slot[q][1] = (int16_t)sl, t->cm_cnt[q][1]++;
            }
            t->objs[t->slot_of_res[r]].mask[(size_t)y * t->sw + x] = 1;
            area[r]++;
            if (x < bx0[r])
                bx0[r] = x;
            if (x > bx1[r])
                bx1[r] = x;
            if (y < by0[r])
                by0[r] = y;
            if (y > by1[r])
                by1[r] = y;
        }
    }
    for (int i = 0; i < n; i++) {
        const int j = t->cm_cnt[i][1] > t->cm_cnt[i][0];
        t->mem_lab[i] =
            3 * t->cm_cnt[i][j] >= t->cover_n[i] && t->cm_cnt[i][j] > 0 ? t->cm_slot[i][j] : -1;
    }
    for (int r = 0; r < nres; r++) {
        int o = t->slot_of_res[r];
        obj *ob = &t->objs[o];
        vt_object_result *res = &t->res[r];
        res->id = ob->id;
        res->label = ob->label;
        res->mask = ob->mask;
        res->area = area[r];
        int mbox[4] = {0, 0, 0, 0}; /* the mask's own box, x0 y0 x1 y1 inclusive */
        int ext[4] = {0, 0, 0, 0};  /* the same without its outliers */
        if (area[r]) {
            mbox[0] = bx0[r], mbox[1] = by0[r], mbox[2] = bx1[r], mbox[3] = by1[r];
            mask_extent(t, ob, area[r], mbox, ext);
        }
        res->event = VT_OBJECT_EVENT_NONE;
        if (ob->pending) {
            ob->pending = 0;
            ob->added = t->frame;
            ob->state = VT_OBJECT_TRACKING;
            object_start(t, ob, area[r], mbox, ext);
            vt_shape_clear(&ob->shape);
            res->score = 1.0f;
            res->event = VT_OBJECT_EVENT_ADDED;
        } else {
            res->score = score[o];
            res->event = object_observe(t, ob, r + 1, area[r], mbox, ext, score[o]);
        }
        res->state = ob->state;
        object_box(t, ob, res->bbox);
    }
    return nres;
}

int vt_tracker_step(vt_tracker *t, const vt_image *src, const vt_image *proc,
                    const vt_track_result **out) {
    if (!src || !src->rgb || src->w <= 0 || src->h <= 0 || src->linesize < 3 * src->w)
        return -EINVAL;
    vt_track_timing tm = {0};
    double t0 = vt_mono_s() * 1e3;
    int rc;
    if (t->n == 0)
        vt_tracker_proc_size(t, src->w, src->h, &t->pw, &t->ph);
    vt_image pimg;
    if ((rc = processing_image(t, src, proc, &pimg)) < 0)
        return rc;
    double t1 = vt_mono_s() * 1e3;
    tm.resize = t1 - t0;
    if ((rc = encode_frame(t, &pimg)) < 0)
        return rc;
    double t2 = vt_mono_s() * 1e3;
    tm.encode = t2 - t1;

    if ((rc = ensure_source(t, src->w, src->h)) < 0)
        return rc;
    background_step(t, &pimg);
    int npending = 0;
    for (int o = 0; o < t->p.max_objects; o++)
        npending += t->objs[o].live && t->objs[o].pending;
    if ((rc = propagate_known(t, &tm)) < 0)
        return rc;
    double t3 = vt_mono_s() * 1e3;
    if ((rc = place_given(t)) < 0)
        return rc;
    label_map(t);
    double t4 = vt_mono_s() * 1e3;
    tm.upsample = t4 - t3;

    float score[256];
    object_scores(t, score);
    cell_argmax(t);
    const int nres = collect_results(t, score);
    if (nres < 0)
        return nres;
    tm.upsample += vt_mono_s() * 1e3 - t4;

    /* Memory: this frame with its labels; an anchor when objects were given on it. */
    if ((rc = memory_insert(t, npending > 0)) < 0)
        return rc;

    t->out = (vt_track_result){
        .frame = t->frame,
        .w = t->sw,
        .h = t->sh,
        .labels = t->labels,
        .n_objects = nres,
        .objects = t->res,
        .n_removed = t->n_removed,
        .removed = t->removed,
        .removed_labels = (const char(*)[VT_LABEL_MAX + 1]) t->removed_label,
        .timing = tm,
    };
    *out = &t->out;
    t->frame++;
    /* The removed list is reported once; the result keeps pointing at it until the next
     * step, which starts a new list (removals between steps append to it). */
    t->n_removed = 0;
    return 0;
}
