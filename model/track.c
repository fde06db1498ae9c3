/*
 * track.c - the tracker: objects, the memory bank, one propagation step per frame, object
 * states, and the results at source resolution.
 *
 * Per frame:  source RGB --resize--> processing RGB --encoder--> features [C][fh][fw]
 *   --transpose + unit norm--> [N][C] --prop (memory)--> object probabilities [K][N] + bg [N]
 *   --objects given on this frame override--> memory entry (soft or one-hot labels)
 *   --bilinear upsample + argmax--> label map at source size --> per-object mask, box, area.
 *
 * Memory bound (bytes), with N = fh*fw cells, C channels, K = max_objects, E entries:
 *   E = max_anchors + long_count + (short_count - 1) * short_gap + 2
 *   E * N * (4C + 4K + K) + N * (8C + 8K + 8) + src_w * src_h * (K + 1) + the encoder's
 * workspace and the propagation workspace (top-k heap or, with topk = 0, 8 bytes per candidate).
 */
#include <errno.h>
#include <stddef.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn.h"
#include "prop.h"
#include "track_int.h"
#include "vt_model.h"

/* Resize taps (resize_rgb): output i reads sources [lo, lo + n), weights summing to sum. */
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
    int fail;        /* consecutive failing frames */
    double area_ref; /* typical area: the given mask's, then a running mean of good frames */
    int gbox[4];     /* motion gate: cells x0, y0, x1, y1 (inclusive) of the last good box */
    int gvalid;
    uint8_t *mask; /* source-size output mask */
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

    float *feat;  /* [C][N] current frame, unit norm per cell when l2norm */
    float *probs; /* [K][N] */
    float *bg;    /* [N] */
    float *cover; /* [N] coverage of a given shape */
    float *pf;    /* [N] box refinement: object probability */
    int *cover_n; /* [N] source pixels per cell */

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

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------------------------------
 * Lifetime
 * ---------------------------------------------------------------------------------------- */

int vt_tracker_new(const vt_model *m, const vt_tracker_params *p, vt_tracker **out, char *err,
                   size_t errlen) {
    *out = NULL;
    int rc = vt_tracker_params_check(p, err, errlen);
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
        vt_errf(err, errlen, "cannot create the encoder: %s", strerror(-rc));
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
    vt_prop_free(&t->prop);
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
        vt_errf(err, errlen, "object id 0 is reserved");
        return -EINVAL;
    }
    if (find_obj(t, id)) {
        vt_errf(err, errlen, "object %u exists already", id);
        return -EEXIST;
    }
    if (label && strlen(label) > VT_LABEL_MAX) {
        vt_errf(err, errlen, "label longer than %d bytes", VT_LABEL_MAX);
        return -EINVAL;
    }
    obj *o = NULL;
    for (int i = 0; i < t->p.max_objects && !o; i++)
        if (!t->objs[i].live)
            o = &t->objs[i];
    if (!o) {
        vt_errf(err, errlen, "too many objects (at most %d)", t->p.max_objects);
        return -ENOSPC;
    }
    vt_shape copy;
    int rc = vt_shape_copy(&copy, shape, err, errlen);
    if (rc < 0)
        return rc;
    vt_shape_clear(&o->shape);
    o->shape = copy;
    o->live = 1;
    o->pending = 1;
    o->id = id;
    snprintf(o->label, sizeof o->label, "%s", label ? label : "");
    o->state = VT_OBJECT_TRACKING;
    o->fail = 0;
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
    size_t n = (size_t)sw * sh;
    if (n > t->labels_cap) {
        uint8_t *l = realloc(t->labels, n);
        if (!l)
            return -ENOMEM;
        t->labels = l;
        t->labels_cap = n;
    }
    int rc = make_taps(sw, t->pw, t->fw, t->stride, &t->col_x0, &t->col_w, &t->col_cell);
    if (rc == 0)
        rc = make_taps(sh, t->ph, t->fh, t->stride, &t->row_y0, &t->row_w, &t->row_cell);
    if (rc < 0)
        return rc;
    t->sw = sw;
    t->sh = sh;
    return 0;
}

static int ensure_mask(obj *o, size_t n) {
    if (n <= o->mask_cap)
        return 0;
    uint8_t *m = realloc(o->mask, n);
    if (!m)
        return -ENOMEM;
    o->mask = m;
    o->mask_cap = n;
    return 0;
}

/* Rasterise an object's shape into o->mask at the source size; -EINVAL if sizes differ. */
static int rasterise(vt_tracker *t, obj *o) {
    return vt_shape_rasterise(&o->shape, o->mask, t->sw, t->sh);
}

/* Fraction of each cell's source pixels covered by mask m. */
static void coverage(vt_tracker *t, const uint8_t *m) {
    memset(t->cover, 0, sizeof(float) * t->n);
    memset(t->cover_n, 0, sizeof(int) * t->n);
    for (int y = 0; y < t->sh; y++) {
        const int rowc = t->row_cell[y] * t->fw;
        const uint8_t *mr = m + (size_t)y * t->sw;
        for (int x = 0; x < t->sw; x++) {
            int c = rowc + t->col_cell[x];
            t->cover_n[c]++;
            t->cover[c] += mr[x];
        }
    }
    for (int i = 0; i < t->n; i++)
        t->cover[i] = t->cover_n[i] ? t->cover[i] / t->cover_n[i] : 0.0f;
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
        const int y0 = t->row_y0[y], y1 = y0 + 1 < fh ? y0 + 1 : y0;
        const float wy = t->row_w[y];
        uint8_t *m = ob->mask + (size_t)y * sw;
        for (int x = 0; x < sw; x++) {
            if (!m[x])
                continue;
            before++;
            const int x0 = t->col_x0[x], x1 = x0 + 1 < fw ? x0 + 1 : x0;
            const float wx = t->col_w[x];
            float v = (1 - wy) * ((1 - wx) * pf[y0 * fw + x0] + wx * pf[y0 * fw + x1]) +
                      wy * ((1 - wx) * pf[y1 * fw + x0] + wx * pf[y1 * fw + x1]);
            after += v > 0.5f;
        }
    }
    if (after * 5 < before)
        return; /* refinement found almost nothing: trust the box */
    for (int y = 0; y < sh; y++) {
        const int y0 = t->row_y0[y], y1 = y0 + 1 < fh ? y0 + 1 : y0;
        const float wy = t->row_w[y];
        uint8_t *m = ob->mask + (size_t)y * sw;
        for (int x = 0; x < sw; x++) {
            if (!m[x])
                continue;
            const int x0 = t->col_x0[x], x1 = x0 + 1 < fw ? x0 + 1 : x0;
            const float wx = t->col_w[x];
            float v = (1 - wy) * ((1 - wx) * pf[y0 * fw + x0] + wx * pf[y0 * fw + x1]) +
                      wy * ((1 - wx) * pf[y1 * fw + x0] + wx * pf[y1 * fw + x1]);
            m[x] = v > 0.5f;
        }
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
    int rc = vt_prop_new(&cfg, &t->prop);
    if (rc < 0)
        return rc;
    t->feat = malloc(sizeof(float) * n * c);
    t->probs = calloc((size_t)k * n, sizeof(float));
    t->bg = malloc(sizeof(float) * n);
    t->cover = malloc(sizeof(float) * n);
    t->pf = malloc(sizeof(float) * n);
    t->cover_n = malloc(sizeof(int) * n);
    t->pool = calloc(t->npool, sizeof *t->pool);
    t->ring = calloc(t->ring_len + 1, sizeof *t->ring);
    t->mframes = calloc(max_frames, sizeof *t->mframes);
    if (!t->feat || !t->probs || !t->bg || !t->cover || !t->pf || !t->cover_n || !t->pool ||
        !t->ring || !t->mframes)
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
    for (int o = 0; o < k; o++)
        e->known[o] = (uint8_t)t->objs[o].live;
    if (p->soft_labels) {
        memcpy(e->labels, t->probs, sizeof(float) * n * k);
    } else {
        /* one-hot of the argmax over background and objects */
        memset(e->labels, 0, sizeof(float) * n * k);
        for (int i = 0; i < n; i++) {
            float best = t->bg[i];
            int arg = -1;
            for (int o = 0; o < k; o++)
                if (t->objs[o].live && t->probs[(size_t)o * n + i] > best)
                    best = t->probs[(size_t)o * n + i], arg = o;
            if (arg >= 0)
                e->labels[(size_t)arg * n + i] = 1.0f;
        }
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
    const int fh = t->fh;
    for (int y = 0; y < sh; y++) {
        const int y0 = t->row_y0[y], y1 = y0 + 1 < fh ? y0 + 1 : y0;
        const float wy = t->row_w[y];
        uint8_t *lab = t->labels + (size_t)y * sw;
        for (int x = 0; x < sw; x++) {
            const int x0 = t->col_x0[x], x1 = x0 + 1 < fw ? x0 + 1 : x0;
            const float wx = t->col_w[x];
            const int i00 = y0 * fw + x0, i01 = y0 * fw + x1, i10 = y1 * fw + x0,
                      i11 = y1 * fw + x1;
            const float w00 = (1 - wy) * (1 - wx), w01 = (1 - wy) * wx, w10 = wy * (1 - wx),
                        w11 = wy * wx;
            const float *b = t->bg;
            float best = w00 * b[i00] + w01 * b[i01] + w10 * b[i10] + w11 * b[i11];
            int arg = 0;
            for (int j = 0; j < nl; j++) {
                const float *pr = t->probs + (size_t)live[j] * n;
                float v = w00 * pr[i00] + w01 * pr[i01] + w10 * pr[i10] + w11 * pr[i11];
                if (v > best)
                    best = v, arg = live[j] + 1;
            }
            lab[x] = (uint8_t)arg;
        }
    }
}

/* Motion gate: an object's probability outside its last good box, grown by a margin, goes to
 * the background. The margin is gate x the box's larger side (at least gate_min cells) plus a
 * cell per failing frame, so an object that was occluded for a while is looked for further
 * away, and one lost for long enough anywhere. */
static void motion_gate(vt_tracker *t, int kmax) {
    const int fw = t->fw, fh = t->fh, n = t->n;
    if (!(t->p.gate > 0.0f))
        return;
    for (int o = 0; o < kmax; o++) {
        const obj *ob = &t->objs[o];
        if (!ob->live || ob->pending || !ob->gvalid)
            continue;
        const int *g = ob->gbox;
        const int side = g[2] - g[0] > g[3] - g[1] ? g[2] - g[0] + 1 : g[3] - g[1] + 1;
        int m = (int)ceilf(t->p.gate * (float)side);
        if (m < t->p.gate_min)
            m = t->p.gate_min;
        m = ob->fail > fw + fh - m ? fw + fh : m + ob->fail;
        const int x0 = g[0] - m, y0 = g[1] - m, x1 = g[2] + m, y1 = g[3] + m;
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

int vt_tracker_step(vt_tracker *t, const vt_image *src, const vt_image *proc,
                    const vt_track_result **out) {
    if (!src || !src->rgb || src->w <= 0 || src->h <= 0 || src->linesize < 3 * src->w)
        return -EINVAL;
    vt_track_timing tm = {0};
    double t0 = now_ms();
    int rc, pw, ph;
    if (t->n == 0) {
        vt_tracker_proc_size(t, src->w, src->h, &t->pw, &t->ph);
    }
    pw = t->pw, ph = t->ph;

    /* Processing image: the caller's, our own resize, or the source itself. */
    vt_image pimg;
    if (proc) {
        if (proc->w != pw || proc->h != ph || !proc->rgb)
            return -EINVAL;
        pimg = *proc;
    } else if (src->w == pw && src->h == ph) {
        pimg = *src;
    } else {
        size_t need = (size_t)pw * ph * 3;
        if (need > t->proc_cap) {
            uint8_t *b = realloc(t->proc_rgb, need);
            if (!b)
                return -ENOMEM;
            t->proc_rgb = b;
            t->proc_cap = need;
        }
        if ((rc = resize_rgb(t, src, t->proc_rgb, pw, ph)) < 0)
            return rc;
        pimg = (vt_image){.w = pw, .h = ph, .linesize = pw * 3, .rgb = t->proc_rgb};
    }
    double t1 = now_ms();
    tm.resize = t1 - t0;

    vt_features f;
    if ((rc = vt_encoder_run(t->enc, &pimg, &f)) < 0)
        return rc;
    if (t->n == 0 && (rc = setup_geometry(t, &f)) < 0)
        return rc;
    if (f.w != t->fw || f.h != t->fh)
        return -EINVAL;
    take_features(t, &f);
    double t2 = now_ms();
    tm.encode = t2 - t1;

    if ((rc = ensure_source(t, src->w, src->h)) < 0)
        return rc;

    const int n = t->n, k = t->p.max_objects;
    /* Propagate the objects already known. */
    int nexist = 0, npending = 0;
    for (int o = 0; o < k; o++) {
        nexist += t->objs[o].live && !t->objs[o].pending;
        npending += t->objs[o].live && t->objs[o].pending;
    }
    int nm = nexist ? memory_frames(t) : 0;
    if (nm > 0) {
        vt_prop_timing pt;
        int kmax = 0;
        for (int o = 0; o < k; o++)
            if (t->objs[o].live)
                kmax = o + 1;
        rc = vt_prop_run(t->prop, t->feat, t->mframes, nm, kmax, t->probs, t->bg, &pt);
        if (rc < 0)
            return rc;
        tm.affinity = pt.affinity;
        tm.labels = pt.labels;
        for (int o = 0; o < k; o++)
            if (!t->objs[o].live || t->objs[o].pending || o >= kmax)
                memset(t->probs + (size_t)o * n, 0, sizeof(float) * n);
        motion_gate(t, kmax);
    } else {
        memset(t->probs, 0, sizeof(float) * n * k);
        for (int i = 0; i < n; i++)
            t->bg[i] = 1.0f;
    }
    double t3 = now_ms();

    /* Objects given on this frame take their cells: coverage a -> p_new = a, others * (1-a). */
    for (int o = 0; o < k; o++) {
        obj *ob = &t->objs[o];
        if (!ob->live || !ob->pending)
            continue;
        if ((rc = ensure_mask(ob, (size_t)t->sw * t->sh)) < 0)
            return rc;
        if (rasterise(t, ob) < 0) {
            /* The mask no longer matches the source size: drop the object. */
            vt_tracker_remove_object(t, ob->id);
            continue;
        }
        coverage(t, ob->mask);
        if (ob->shape.kind == VT_SHAPE_BOX && t->p.box_refine) {
            refine_box(t, ob);
            coverage(t, ob->mask);
        }
        for (int i = 0; i < n; i++) {
            float a = t->cover[i], keep = 1.0f - a;
            for (int j = 0; j < k; j++)
                t->probs[(size_t)j * n + i] *= keep;
            t->bg[i] *= keep;
            t->probs[(size_t)o * n + i] = a;
        }
    }

    /* Source-resolution labels; given shapes are pasted exactly. */
    upsample_argmax(t);
    for (int o = 0; o < k; o++) {
        obj *ob = &t->objs[o];
        if (!ob->live || !ob->pending)
            continue;
        const size_t np = (size_t)t->sw * t->sh;
        for (size_t i = 0; i < np; i++)
            if (ob->mask[i])
                t->labels[i] = (uint8_t)(o + 1);
    }
    double t4 = now_ms();
    tm.upsample = t4 - t3;

    float score[256];
    object_scores(t, score);

    /* Memory: this frame with its labels; an anchor when objects were given on it. */
    if ((rc = memory_insert(t, npending > 0)) < 0)
        return rc;

    /* Results: one entry per live object in slot order; labels rewritten to result index. */
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
        if ((rc = ensure_mask(ob, np)) < 0)
            return rc;
        memset(ob->mask, 0, np);
        bx0[r] = by0[r] = INT32_MAX;
        bx1[r] = by1[r] = -1;
    }
    for (int y = 0; y < t->sh; y++) {
        uint8_t *row = t->labels + (size_t)y * t->sw;
        for (int x = 0; x < t->sw; x++) {
            int v = lut[row[x]];
            row[x] = (uint8_t)v;
            if (!v)
                continue;
            int r = v - 1;
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
    for (int r = 0; r < nres; r++) {
        int o = t->slot_of_res[r];
        obj *ob = &t->objs[o];
        vt_object_result *res = &t->res[r];
        res->id = ob->id;
        res->label = ob->label;
        res->mask = ob->mask;
        res->area = area[r];
        if (area[r]) {
            res->bbox[0] = bx0[r], res->bbox[1] = by0[r];
            res->bbox[2] = bx1[r] - bx0[r] + 1, res->bbox[3] = by1[r] - by0[r] + 1;
        } else {
            memset(res->bbox, 0, sizeof res->bbox);
        }
        res->event = VT_OBJECT_EVENT_NONE;
        if (ob->pending) {
            ob->pending = 0;
            ob->added = t->frame;
            ob->state = VT_OBJECT_TRACKING;
            ob->fail = 0;
            ob->area_ref = (double)area[r];
            ob->gvalid = 0;
            vt_shape_clear(&ob->shape);
            res->score = 1.0f;
            res->event = VT_OBJECT_EVENT_ADDED;
        } else {
            res->score = score[o];
            /* Failing: no mask, a doubtful one, or one collapsed to a sliver of its usual
             * size (an occluded object keeps a few confident pixels at its edge). The usual
             * size follows slow changes (an object walking away) through good frames only.
             * A lost object must come back to 2.5x the threshold (hysteresis: a flickering
             * sliver does not alternate lost and recovered). */
            const double lost_at = t->p.lost_area * ob->area_ref;
            int failing = area[r] == 0 || score[o] < t->p.lost_score ||
                          (double)area[r] < (ob->state == VT_OBJECT_LOST ? 2.5 * lost_at : lost_at);
            if (!failing)
                ob->area_ref += 0.02 * ((double)area[r] - ob->area_ref);
            ob->fail = failing ? ob->fail + 1 : 0;
            if (ob->state == VT_OBJECT_RECOVERED)
                ob->state = VT_OBJECT_TRACKING;
            if (ob->state != VT_OBJECT_LOST && ob->fail >= t->p.lost_frames) {
                ob->state = VT_OBJECT_LOST;
                res->event = VT_OBJECT_EVENT_LOST;
            } else if (ob->state == VT_OBJECT_LOST && !failing) {
                ob->state = VT_OBJECT_RECOVERED;
                res->event = VT_OBJECT_EVENT_RECOVERED;
            }
        }
        res->state = ob->state;
        if (area[r] && ob->fail == 0) {
            ob->gbox[0] = (int)((int64_t)bx0[r] * t->fw / t->sw);
            ob->gbox[1] = (int)((int64_t)by0[r] * t->fh / t->sh);
            ob->gbox[2] = (int)((int64_t)bx1[r] * t->fw / t->sw);
            ob->gbox[3] = (int)((int64_t)by1[r] * t->fh / t->sh);
            ob->gvalid = 1;
        }
    }
    tm.upsample += now_ms() - t4;

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
