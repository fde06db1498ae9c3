/*
 * prop.c - label propagation through feature affinities (see prop.h for the definition).
 *
 * Features are channel-major ([C][N]), so that a score can be computed for many cells at once
 * with plain vector multiply-adds and no horizontal sums:
 *
 *   - windowed frames: for target row y and a fixed displacement (dy, dx), the scores of every
 *     target cell of the row are  S[x] = sum_c T[c][y][x] * M[c][y+dy][x+dx], a multiply-add
 *     over contiguous x. A row's scores for every displacement of every windowed frame fill a
 *     block [displacements][w] that then feeds each cell's selection.
 *   - ROI-localised frames: the coarse search uses the same row kernel with dilated
 *     displacements; the fine window, centred per cell, is scored per cell with the window row's
 *     candidates as the vector lanes: acc[j] += T[c][q] * M[c][yy][x0 + j].
 *   - global frames: a block of target cells against every cell with one sgemm.
 *
 * Top-k selection keeps a min-heap of k entries per cell, so most candidates cost a comparison.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "prop.h"
#include "vt_base.h"

/* Target cells scored together against a global frame (one sgemm each). */
#define BLOCK 64

/* One allocation holds the struct and its arrays, each on a cache line of its own; gscore, grown
 * on demand, is apart. */
struct vt_prop {
    vt_prop_cfg cfg;
    int n;         /* cells */
    int cap;       /* candidate capacity per cell */
    float *cand_s; /* [w][cap] scores of the kept candidates, one selection per cell of a row */
    int32_t *cand_i;
    int *cand_n;     /* [w] candidates held */
    float *thr;      /* [w] score a candidate must beat to enter (the heap minimum once full) */
    float *gscore;   /* [nglobal][BLOCK][N] sgemm outputs */
    int gscore_cap;  /* frames gscore can hold */
    float *wscore;   /* [max_frames][(2r+1)^2][w] window scores of one target row */
    float *rscore;   /* [(2R+1)^2][w] coarse ROI scores of one target row */
    int16_t *offset; /* [max_frames][N][2] ROI offsets (dy, dx) in cells */
    float *fq;       /* [C] one target cell's features */
    float *acc;      /* [2 * max_radius + 1] */
    double *num, *den;
};

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* The loops below are compiled for AVX2+FMA as well as the x86-64 baseline; the loader picks. */
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif

int vtm_prop_new(const vt_prop_cfg *cfg, vt_prop **out) {
    *out = NULL;
    if (cfg->h <= 0 || cfg->w <= 0 || cfg->c <= 0 || cfg->max_objects < 0 || cfg->max_frames <= 0 ||
        cfg->topk < 0 || cfg->max_radius < 0 || cfg->roi_radius < 0 || !(cfg->temperature > 0.0f))
        return -EINVAL;
    const size_t n = (size_t)cfg->h * cfg->w;
    /* Every candidate is kept when topk = 0: the worst case is every frame global. */
    const int cap = cfg->topk > 0 ? cfg->topk : cfg->max_frames * (int)n;
    const size_t wd = 2 * (size_t)cfg->max_radius + 1, rd = 2 * (size_t)cfg->roi_radius + 1;
    const int kmax = cfg->max_objects > 0 ? cfg->max_objects : 1;
    /* With top-k every cell of a row keeps its own heap (rows are selected together); with
     * every candidate kept one cell is processed at a time. */
    const size_t rows = cfg->topk > 0 ? (size_t)cfg->w : 1;
    enum { CAND_S, CAND_I, CAND_N, THR, WSCORE, RSCORE, OFFSET, FQ, ACC, NUM, DEN, NARRAYS };
    const size_t bytes[NARRAYS] = {
        [CAND_S] = sizeof(float) * cap * rows,
        [CAND_I] = sizeof(int32_t) * cap * rows,
        [CAND_N] = sizeof(int) * cfg->w,
        [THR] = sizeof(float) * cfg->w,
        [WSCORE] = sizeof(float) * cfg->max_frames * wd * wd * cfg->w,
        [RSCORE] = sizeof(float) * rd * rd * cfg->w,
        [OFFSET] = sizeof(int16_t) * 2 * (size_t)cfg->max_frames * n,
        [FQ] = sizeof(float) * cfg->c,
        [ACC] = sizeof(float) * (wd > 16 ? wd : 16),
        [NUM] = sizeof(double) * kmax,
        [DEN] = sizeof(double) * kmax,
    };
    size_t at[NARRAYS + 1];
    at[0] = (sizeof(vt_prop) + 63) & ~(size_t)63;
    for (int i = 0; i < NARRAYS; i++)
        at[i + 1] = at[i] + ((bytes[i] + 63) & ~(size_t)63);
    char *block = aligned_alloc(64, at[NARRAYS]);
    if (!block)
        return -ENOMEM;
    vt_prop *p = (vt_prop *)block;
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    p->n = (int)n;
    p->cap = cap;
    p->cand_s = (float *)(block + at[CAND_S]);
    p->cand_i = (int32_t *)(block + at[CAND_I]);
    p->cand_n = (int *)(block + at[CAND_N]);
    p->thr = (float *)(block + at[THR]);
    p->wscore = (float *)(block + at[WSCORE]);
    p->rscore = (float *)(block + at[RSCORE]);
    p->offset = (int16_t *)(block + at[OFFSET]);
    p->fq = (float *)(block + at[FQ]);
    p->acc = (float *)(block + at[ACC]);
    p->num = (double *)(block + at[NUM]);
    p->den = (double *)(block + at[DEN]);
    *out = p;
    return 0;
}

void vtm_prop_free(vt_prop **pp) {
    if (*pp)
        free((*pp)->gscore);
    free(*pp);
    *pp = NULL;
}

/* ---- candidate selection: a min-heap of the k best (score, id) pairs ---- */

typedef struct sel {
    float *s;
    int32_t *id;
    int n, k; /* k = 0: keep all (append) */
} sel;

static inline void heap_swap(sel *h, int i, int j) {
    float ts = h->s[i];
    h->s[i] = h->s[j], h->s[j] = ts;
    int32_t ti = h->id[i];
    h->id[i] = h->id[j], h->id[j] = ti;
}

static void heap_down(sel *h, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->s[l] < h->s[m])
            m = l;
        if (r < h->n && h->s[r] < h->s[m])
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

static inline void sel_push(sel *h, float s, int32_t id) {
    if (h->k == 0) {
        h->s[h->n] = s, h->id[h->n++] = id;
        return;
    }
    if (h->n < h->k) {
        int i = h->n++;
        h->s[i] = s, h->id[i] = id;
        while (i > 0) { /* sift up */
            int up = (i - 1) / 2;
            if (h->s[up] <= h->s[i])
                break;
            heap_swap(h, i, up);
            i = up;
        }
        return;
    }
    if (s > h->s[0]) {
        h->s[0] = s, h->id[0] = id;
        heap_down(h, 0);
    }
}

/* ---- scoring kernels ---- */

typedef float v8f __attribute__((vector_size(32)));

/* An unaligned vector load (a macro: a function returning a vector by value would change the
 * baseline ABI, which -Wpsabi rightly warns about). */
#define LOAD8(v, p) memcpy(&(v), (p), sizeof(v8f))

/* Displacements handled together by the register-blocked kernel: one accumulator each. */
#define DX_BLOCK 12

/*
 * Scores of target row y against frame `m` for every displacement (step*dy, step*dx) with
 * |dy|, |dx| <= r: out[(dy+r)*(2r+1) + (dx+r)][x] for the x whose candidate lies in the frame
 * (the others are left unwritten: the caller knows the valid ranges).
 *
 * The interior of the row goes through a register-blocked kernel: 8 target cells (one vector)
 * against up to DX_BLOCK horizontal displacements at once, looping over the channels, so each
 * target vector is loaded once per DX_BLOCK multiply-adds and every score is stored once. The
 * cells near the row's ends, whose candidates may fall outside the frame, take the plain loop.
 */
static inline __attribute__((always_inline)) void row_scores(const float *t, const float *m, int h,
                                                             int w, int c, int y, int r, int step,
                                                             float *out) {
    const size_t n = (size_t)h * w;
    const int side = 2 * r + 1, reach = step * r;
    /* interior cells: x - reach >= 0 and x + 7 + reach < w */
    const int xa = reach, xb = w - reach - 8; /* vector blocks start in [xa, xb] */
    for (int dy = -r; dy <= r; dy++) {
        const int yy = y + step * dy;
        if (yy < 0 || yy >= h)
            continue;
        const float *tr = t + (size_t)y * w, *mrow = m + (size_t)yy * w;
        float *orow = out + (size_t)(dy + r) * side * w;
        int xv_end = xa; /* first cell after the vector blocks */
        if (xb >= xa) {
            for (int dx0 = -r; dx0 <= r; dx0 += DX_BLOCK) {
                const int nd = r - dx0 + 1 < DX_BLOCK ? r - dx0 + 1 : DX_BLOCK;
                int x;
                for (x = xa; x <= xb; x += 8) {
                    v8f acc[DX_BLOCK];
                    for (int j = 0; j < nd; j++)
                        acc[j] = (v8f){0};
                    for (int ch = 0; ch < c; ch++) {
                        v8f tv, mv;
                        LOAD8(tv, tr + ch * n + x);
                        const float *mc = mrow + ch * n + x + step * dx0;
                        for (int j = 0; j < nd; j++) {
                            LOAD8(mv, mc + step * j);
                            acc[j] += tv * mv;
                        }
                    }
                    for (int j = 0; j < nd; j++)
                        memcpy(orow + (size_t)(dx0 + j + r) * w + x, &acc[j], sizeof acc[j]);
                }
                xv_end = x;
            }
        }
        for (int dx = -r; dx <= r; dx++) {
            const int ox = step * dx;
            const int x0 = ox < 0 ? -ox : 0, x1 = ox > 0 ? w - ox : w;
            if (x0 >= x1)
                continue;
            float *o = orow + (size_t)(dx + r) * w;
            const float *mr = mrow + ox;
            /* the plain loop covers [x0, xa) and [xv_end, x1) */
            for (int part = 0; part < 2; part++) {
                const int lo = part ? (xv_end > x0 ? xv_end : x0) : x0;
                const int hi = part ? x1 : (xa < x1 ? xa : x1);
                if (xb < xa && part) /* no vector blocks at all: one pass does it */
                    break;
                const int hi2 = xb < xa ? x1 : hi;
                for (int x = lo; x < hi2; x++)
                    o[x] = tr[x] * mr[x];
                for (int ch = 1; ch < c; ch++) {
                    const float *tc = tr + ch * n, *mc = mr + ch * n;
                    for (int x = lo; x < hi2; x++)
                        o[x] += tc[x] * mc[x];
                }
            }
        }
    }
}

/* The steps k in [-r, r] that keep v + d * k inside [0, n) (v inside, d > 0): [*lo, *hi]. */
static void steps_inside(int v, int d, int r, int n, int *lo, int *hi) {
    *lo = -(v / d) > -r ? -(v / d) : -r;
    *hi = (n - 1 - v) / d < r ? (n - 1 - v) / d : r;
}

/* ROI offsets of one frame: per target cell, the softmax-weighted mean displacement of a
 * dilated coarse search, rounded to cells. */
HOT static void roi_offsets(vt_prop *p, const float *feat, const vt_prop_frame *m, int16_t *off) {
    const int h = p->cfg.h, w = p->cfg.w, c = p->cfg.c, R = p->cfg.roi_radius;
    const int d = m->roi_dilation, side = 2 * R + 1;
    const float inv_t = 1.0f / p->cfg.temperature;
    for (int y = 0; y < h; y++) {
        row_scores(feat, m->feat, h, w, c, y, R, d, p->rscore);
        int dy0, dy1;
        steps_inside(y, d, R, h, &dy0, &dy1);
        for (int x = 0; x < w; x++) {
            int dx0, dx1;
            steps_inside(x, d, R, w, &dx0, &dx1);
            float smax = -FLT_MAX;
            for (int dy = dy0; dy <= dy1; dy++)
                for (int dx = dx0; dx <= dx1; dx++) {
                    float s = p->rscore[((size_t)(dy + R) * side + (dx + R)) * w + x];
                    smax = s > smax ? s : smax;
                }
            double sw = 0, oy = 0, ox = 0;
            for (int dy = dy0; dy <= dy1; dy++)
                for (int dx = dx0; dx <= dx1; dx++) {
                    float s = p->rscore[((size_t)(dy + R) * side + (dx + R)) * w + x];
                    double e = exp((double)(s - smax) * inv_t);
                    sw += e, oy += e * dy, ox += e * dx;
                }
            int16_t *o = off + 2 * ((size_t)y * w + x);
            o[0] = (int16_t)lrint(d * oy / sw);
            o[1] = (int16_t)lrint(d * ox / sw);
        }
    }
}

/* ---- the main loop ---- */

static int ensure_gscore(vt_prop *p, int nglobal) {
    if (nglobal <= p->gscore_cap)
        return 0;
    float *g = realloc(p->gscore, sizeof(float) * (size_t)nglobal * BLOCK * p->n);
    if (!g)
        return -ENOMEM;
    p->gscore = g;
    p->gscore_cap = nglobal;
    return 0;
}

HOT int vtm_prop_run(vt_prop *p, const float *feat, const vt_prop_frame *mem, int nmem, int nobj,
                     float *out, float *bg, vt_prop_timing *timing) {
    const int n = p->n, c = p->cfg.c, h = p->cfg.h, w = p->cfg.w;
    if (nmem < 0 || nmem > p->cfg.max_frames || nobj < 0 || nobj > p->cfg.max_objects)
        return -EINVAL;
    int nglobal = 0;
    for (int m = 0; m < nmem; m++) {
        if (mem[m].radius == VT_PROP_GLOBAL)
            nglobal++;
        else if (mem[m].radius < 0 || mem[m].radius > p->cfg.max_radius)
            return -EINVAL;
    }
    int rc = ensure_gscore(p, nglobal);
    if (rc < 0)
        return rc;
    double t0 = vt_mono_s() * 1e3, t_lab = 0;

    for (int m = 0; m < nmem; m++)
        if (mem[m].radius != VT_PROP_GLOBAL && mem[m].roi_dilation > 0)
            roi_offsets(p, feat, &mem[m], p->offset + 2 * (size_t)m * n);

    const size_t wd = 2 * (size_t)p->cfg.max_radius + 1;
    const float inv_t = 1.0f / p->cfg.temperature;
    const int k = p->cfg.topk;
    int gblock = -1; /* first cell of the block gscore holds */
    for (int y = 0; y < h; y++) {
        /* Window scores of this row for every plain windowed frame. */
        for (int m = 0; m < nmem; m++)
            if (mem[m].radius != VT_PROP_GLOBAL && mem[m].roi_dilation <= 0)
                row_scores(feat, mem[m].feat, h, w, c, y, mem[m].radius, 1,
                           p->wscore + (size_t)m * wd * wd * w);
        if (k > 0) {
            /* Select the plain windows of the whole row displacement by displacement: the
             * scores are contiguous in x and, once a cell's heap is full, nearly all of them
             * fail the threshold test. */
            for (int x = 0; x < w; x++)
                p->cand_n[x] = 0, p->thr[x] = -INFINITY;
            for (int m = 0; m < nmem; m++) {
                const int r = mem[m].radius, side = 2 * r + 1;
                if (r == VT_PROP_GLOBAL || mem[m].roi_dilation > 0)
                    continue;
                const float *ws = p->wscore + (size_t)m * wd * wd * w;
                for (int dy = -r; dy <= r; dy++) {
                    const int yy = y + dy;
                    if (yy < 0 || yy >= h)
                        continue;
                    for (int dx = -r; dx <= r; dx++) {
                        const int x0 = dx < 0 ? -dx : 0, x1 = dx > 0 ? w - dx : w;
                        const float *row = ws + ((size_t)(dy + r) * side + (dx + r)) * w;
                        const int32_t id0 = (int32_t)m * n + yy * w + dx;
                        for (int x = x0; x < x1; x++) {
                            if (row[x] <= p->thr[x])
                                continue;
                            sel hx = {p->cand_s + (size_t)x * k, p->cand_i + (size_t)x * k,
                                      p->cand_n[x], k};
                            sel_push(&hx, row[x], id0 + x);
                            p->cand_n[x] = hx.n;
                            p->thr[x] = hx.n == k ? hx.s[0] : -INFINITY;
                        }
                    }
                }
            }
        }
        for (int x = 0; x < w; x++) {
            const int q = y * w + x;
            sel hs = {.s = p->cand_s, .id = p->cand_i, .n = 0, .k = k};
            if (k > 0) {
                hs.s += (size_t)x * k, hs.id += (size_t)x * k;
                hs.n = p->cand_n[x];
            }
            if (nglobal && (gblock < 0 || q >= gblock + BLOCK)) {
                /* Global frames: gscore[g][b][p] = <f_t(gblock + b), f_m(p)> for a block of
                 * target cells; A is the transposed [C][N] target (lda = N). */
                gblock = q;
                const int nb = n - q < BLOCK ? n - q : BLOCK;
                for (int m = 0, g = 0; m < nmem; m++) {
                    if (mem[m].radius != VT_PROP_GLOBAL)
                        continue;
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nb, n, c, 1.0f, feat + q,
                                n, mem[m].feat, n, 0.0f, p->gscore + (size_t)g * BLOCK * n, n);
                    g++;
                }
            }
            for (int m = 0, g = 0; m < nmem; m++) {
                const int32_t base = (int32_t)m * n;
                const int r = mem[m].radius;
                if (r == VT_PROP_GLOBAL) {
                    const float *row = p->gscore + ((size_t)g * BLOCK + (q - gblock)) * n;
                    if (k == 0) {
                        for (int i = 0; i < n; i++)
                            sel_push(&hs, row[i], base + i);
                    } else {
                        /* a full heap admits only scores above its minimum: test that first */
                        float thr = hs.n == k ? hs.s[0] : -INFINITY;
                        for (int i = 0; i < n; i++) {
                            if (row[i] <= thr)
                                continue;
                            sel_push(&hs, row[i], base + i);
                            thr = hs.n == k ? hs.s[0] : -INFINITY;
                        }
                    }
                    g++;
                    continue;
                }
                const int side = 2 * r + 1;
                if (mem[m].roi_dilation <= 0) {
                    if (k > 0)
                        continue; /* selected above, row-wise */
                    const float *ws = p->wscore + (size_t)m * wd * wd * w;
                    int y0 = y - r < 0 ? 0 : y - r, y1 = y + r >= h ? h - 1 : y + r;
                    int x0 = x - r < 0 ? 0 : x - r, x1 = x + r >= w ? w - 1 : x + r;
                    for (int yy = y0; yy <= y1; yy++)
                        for (int xx = x0; xx <= x1; xx++)
                            sel_push(&hs, ws[((size_t)(yy - y + r) * side + (xx - x + r)) * w + x],
                                     base + yy * w + xx);
                    continue;
                }
                /* ROI: a window around q + offset, scored with the window's candidates of one
                 * row as the vector lanes. */
                const int16_t *o = p->offset + 2 * ((size_t)m * n + q);
                const int cy = y + o[0], cx = x + o[1];
                int y0 = cy - r < 0 ? 0 : cy - r, y1 = cy + r >= h ? h - 1 : cy + r;
                int x0 = cx - r < 0 ? 0 : cx - r, x1 = cx + r >= w ? w - 1 : cx + r;
                if (x0 > x1)
                    continue;
                const int nx = x1 - x0 + 1;
                for (int ch = 0; ch < c; ch++)
                    p->fq[ch] = feat[(size_t)ch * n + q];
                for (int yy = y0; yy <= y1; yy++) {
                    const float *mr = mem[m].feat + (size_t)yy * w + x0;
                    float *acc = p->acc;
                    if (nx <= 16 && x0 + 16 <= w) {
                        /* two vectors of candidates held in registers across the channels
                         * (the lanes past nx read cells of the same row and are ignored) */
                        v8f a0 = {0}, a1 = {0};
                        for (int ch = 0; ch < c; ch++) {
                            const float *mc = mr + (size_t)ch * n;
                            const v8f f = (v8f){0} + p->fq[ch];
                            v8f m0, m1;
                            LOAD8(m0, mc);
                            LOAD8(m1, mc + 8);
                            a0 += f * m0;
                            a1 += f * m1;
                        }
                        memcpy(acc, &a0, sizeof a0);
                        memcpy(acc + 8, &a1, sizeof a1);
                    } else {
                        for (int j = 0; j < nx; j++)
                            acc[j] = p->fq[0] * mr[j];
                        for (int ch = 1; ch < c; ch++) {
                            const float f = p->fq[ch], *mc = mr + (size_t)ch * n;
                            for (int j = 0; j < nx; j++)
                                acc[j] += f * mc[j];
                        }
                    }
                    for (int j = 0; j < nx; j++)
                        sel_push(&hs, acc[j], base + yy * w + x0 + j);
                }
            }

            /* Softmax over the kept candidates, then the labels they point at. */
            double tb = vt_mono_s() * 1e3;
            float smax = -FLT_MAX;
            for (int i = 0; i < hs.n; i++)
                if (hs.s[i] > smax)
                    smax = hs.s[i];
            for (int o = 0; o < nobj; o++)
                p->num[o] = p->den[o] = 0.0;
            for (int i = 0; i < hs.n; i++) {
                double e = exp((double)(hs.s[i] - smax) * inv_t);
                int m = hs.id[i] / n, pos = hs.id[i] % n;
                const float *lab = mem[m].labels;
                for (int o = 0; o < nobj; o++) {
                    if (!mem[m].known[o])
                        continue;
                    p->num[o] += e * lab[(size_t)o * n + pos];
                    p->den[o] += e;
                }
            }
            double sum = 0;
            for (int o = 0; o < nobj; o++) {
                double v = p->den[o] > 0 ? p->num[o] / p->den[o] : 0.0;
                out[(size_t)o * n + q] = (float)v;
                sum += v;
            }
            /* Objects known in different frames are normalised separately; when their sum
             * exceeds one, scale them down and leave no background. */
            if (sum > 1.0) {
                for (int o = 0; o < nobj; o++)
                    out[(size_t)o * n + q] = (float)(out[(size_t)o * n + q] / sum);
                bg[q] = 0.0f;
            } else {
                bg[q] = (float)(1.0 - sum);
            }
            t_lab += vt_mono_s() * 1e3 - tb;
        }
    }
    if (timing) {
        timing->labels = t_lab;
        timing->affinity = vt_mono_s() * 1e3 - t0 - t_lab;
    }
    return 0;
}
