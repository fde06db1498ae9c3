/*
 * train.c - the self-supervised trainer: batches of frame pairs, the two objectives, and the
 * optimiser.
 *
 * One step, B pairs (reference r, target t) of S x S crops, N = (S/stride)^2 feature cells:
 *   input   [2B][3][S][S]  MAST: normalised Lab with one of a/b zeroed and the rest scaled
 *                          by 3/2 (MAST's dropout2d_lab); colorize: L only, a = b = 0
 *   f       [2B][C][N]     encoder (BN on the batch statistics of all 2B crops)
 *   u       [2B][C][N]     f / |f| per cell (the trackers compare unit vectors)
 *   a_b     [N][N]         softmax over the window of u_t . u_r / T  (radius in cells)
 *   y_b     [V][N]         a_b applied to the reference's values
 *   MAST:     values = the reference's normalised Lab averaged over each stride x stride cell,
 *             loss = mean smooth_l1(20 y, 20 target Lab)  (MAST's published loss)
 *   colorize: values = one-hot k-means class of the reference's mean ab per cell,
 *             loss = mean -log y[class of the target's cell]
 * Then the global gradient norm is clipped and AdamW takes a step at the scheduled rate
 * (linear warm-up, cosine decay).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train_int.h"

/* ---------------------------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------------------------- */

void vt_train_cfg_default(vt_train_cfg *c, vt_train_objective obj) {
    memset(c, 0, sizeof *c);
    c->objective = obj;
    c->steps = 2000;
    c->batch = 8;
    c->crop = 256;
    c->lr = 1e-3f;
    c->weight_decay = 1e-2f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->adam_eps = 1e-8f;
    c->warmup = 100;
    c->lr_min = 0.01f;
    c->clip = 5.0f;
    /* MAST: a 13 x 13 window of cells at stride 8 (the known-to-work recipe); colorize: the
     * whole crop, as Vondrick et al. attend over every reference position. */
    c->radius = obj == VT_TRAIN_MAST ? 6 : -1;
    c->temperature = 0.05f;
    c->huber_scale = 20.0f;
    c->gap_min = 1;
    c->gap_max = 10;
    c->scale_min = 0.6f;
    c->scale_max = 1.0f;
    c->jitter = 0.0f;
    c->flip = 1;
    c->ncolors = 16;
    c->bn_momentum = 0.1f;
    c->seed = 1;
}

int vt_train_objective_parse(const char *s, vt_train_objective *obj) {
    if (s && strcmp(s, "mast") == 0)
        *obj = VT_TRAIN_MAST;
    else if (s && strcmp(s, "colorize") == 0)
        *obj = VT_TRAIN_COLORIZE;
    else
        return -EINVAL;
    return 0;
}

const char *vt_train_objective_name(vt_train_objective obj) {
    return obj == VT_TRAIN_COLORIZE ? "colorize" : "mast";
}

int vtt_train_cfg_check(const vt_train_cfg *c, char *err, size_t errlen) {
#define BAD(cond, ...)                                                                             \
    if (cond) {                                                                                    \
        vt_fmt(err, errlen, __VA_ARGS__);                                                          \
        return -EINVAL;                                                                            \
    }
    BAD(c->objective != VT_TRAIN_MAST && c->objective != VT_TRAIN_COLORIZE,
        "objective %d is not mast or colorize", (int)c->objective);
    BAD(c->steps < 1 || c->steps > 100000000, "steps %d out of range [1, 1e8]", c->steps);
    BAD(c->batch < 1 || c->batch > 256, "batch %d out of range [1, 256]", c->batch);
    BAD(c->crop < 16 || c->crop > 1024, "crop %d out of range [16, 1024]", c->crop);
    BAD(!(c->lr > 0.0f) || !(c->lr < 10.0f), "lr %g out of range (0, 10)", c->lr);
    BAD(!(c->weight_decay >= 0.0f) || !(c->weight_decay < 1.0f), "weight decay %g out of range",
        c->weight_decay);
    BAD(!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f) ||
            !(c->adam_eps > 0.0f),
        "Adam betas %g, %g / eps %g out of range", c->beta1, c->beta2, c->adam_eps);
    BAD(c->warmup < 0, "warmup %d is negative", c->warmup);
    BAD(!(c->lr_min >= 0.0f && c->lr_min <= 1.0f), "lr floor %g not in [0, 1]", c->lr_min);
    BAD(!(c->clip >= 0.0f), "gradient clip %g is negative", c->clip);
    BAD(c->radius < -1 || c->radius > 256, "radius %d out of range [-1, 256]", c->radius);
    BAD(!(c->temperature > 1e-4f) || !(c->temperature < 100.0f),
        "temperature %g out of range (1e-4, 100)", c->temperature);
    BAD(!(c->huber_scale > 0.0f) || !(c->huber_scale < 1e4f), "Huber scale %g out of range",
        c->huber_scale);
    BAD(c->gap_min < 1 || c->gap_max < c->gap_min || c->gap_max > 10000,
        "gap range [%d, %d] invalid (1 <= min <= max)", c->gap_min, c->gap_max);
    BAD(!(c->scale_min > 0.05f) || !(c->scale_max <= 1.0f) || !(c->scale_min <= c->scale_max),
        "crop scale range [%g, %g] invalid (0.05 < min <= max <= 1)", c->scale_min, c->scale_max);
    BAD(!(c->jitter >= 0.0f && c->jitter <= 1.0f), "jitter %g not in [0, 1]", c->jitter);
    BAD(c->ncolors < 2 || c->ncolors > VT_TRAIN_MAX_COLORS, "colours %d out of range [2, %d]",
        c->ncolors, VT_TRAIN_MAX_COLORS);
    BAD(!(c->bn_momentum > 0.0f && c->bn_momentum <= 1.0f), "BN momentum %g not in (0, 1]",
        c->bn_momentum);
#undef BAD
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Lifetime
 * ------------------------------------------------------------------------------------------- */

static float *falloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, sizeof(float) * (n ? n : 1)) != 0)
        return NULL;
    memset(p, 0, sizeof(float) * (n ? n : 1));
    return p;
}

static int is_trainable(const vt_param *p) {
    return !strstr(p->name, ".running_");
}

static int is_decayed(const vt_param *p) {
    return p->ndim == 4; /* convolution weights; not BN affine parameters or biases */
}

int vt_trainer_new(vt_model *m, const vt_train_cfg *cfg, vt_trainer **out, char *err,
                   size_t errlen) {
    *out = NULL;
    int rc = vtt_train_cfg_check(cfg, err, errlen);
    if (rc < 0)
        return rc;
    const vt_arch *a = vtm_model_spec(m);
    if (!a->learned) {
        vt_fmt(err, errlen, "architecture '%s' has no weights to train", a->name);
        return -EINVAL;
    }
    if (strcmp(vtm_model_input_space(m), "lab") != 0) {
        vt_fmt(err, errlen,
               "architecture '%s' takes %s input; both objectives need a Lab-input architecture",
               a->name, vtm_model_input_space(m));
        return -EINVAL;
    }
    const int S = cfg->crop, st = a->stride;
    int fh, fw;
    vtm_arch_out_size(a, S, S, &fh, &fw);
    if (S % st != 0 || fh != S / st || fw != S / st) {
        vt_fmt(err, errlen, "crop %d: must be a multiple of %s's stride %d (feature grid %dx%d)", S,
               a->name, st, fh, fw);
        return -EINVAL;
    }
    vt_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        vt_fmt(err, errlen, "out of memory");
        return -ENOMEM;
    }
    t->m = m;
    t->cfg = *cfg;
    t->B = cfg->batch;
    t->S = S;
    t->st = st;
    t->fh = fh;
    t->fw = fw;
    t->N = fh * fw;
    t->C = a->channels;
    t->V = cfg->objective == VT_TRAIN_MAST ? 3 : cfg->ncolors;
    vtm_model_norm(m, t->mean, t->std);
    vtt_rng_seed(&t->rng, cfg->seed);
    const int B = t->B, N = t->N, C = t->C, V = t->V, np = vtm_model_nparams(m);
    const size_t SS = (size_t)S * S;
    vt_train_batch *bt = &t->batch;
    /* The attention of every crop against its reference is held whole (B x N x N floats, also
     * with a window radius): refuse a crop and batch whose buffer alone passes the machine's
     * memory, rather than leave it to overcommit and the OOM killer. */
    const double att_bytes = 4.0 * B * (double)N * N;
    const double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (phys > 0 && att_bytes > phys) {
        vt_fmt(err, errlen,
               "--crop %d with --batch %d needs %.1f GB for the attention alone, more than this "
               "machine's %.1f GB: a smaller crop or batch",
               S, B, att_bytes / 1e9, phys / 1e9);
        rc = -ENOMEM;
        goto fail;
    }
    rc = -ENOMEM;
    if ((rc = vtt_tnet_new(m, &t->net)) < 0 || (rc = vtt_tnet_plan(t->net, 2 * B, S, S)) < 0) {
        vt_fmt(err, errlen, rc == -ENOMEM ? "out of memory" : "cannot plan the network at %dx%d", S,
               S);
        goto fail;
    }
    rc = -ENOMEM;
    bt->B = B, bt->S = S, bt->fh = fh, bt->fw = fw, bt->V = V;
    if (!(bt->input = falloc(2 * B * 3 * SS)) || !(bt->ref_val = falloc((size_t)B * V * N)) ||
        !(bt->tgt_val = falloc((size_t)B * 3 * N)) ||
        !(bt->tgt_cls = calloc((size_t)B * N, sizeof(int32_t))) ||
        !(bt->ref_cls = calloc((size_t)B * N, sizeof(int32_t))) ||
        !(bt->drop = calloc((size_t)B, sizeof(int))) || !(bt->rgb = malloc((size_t)2 * B * SS * 3)))
        goto oom;
    if (!(t->u = falloc((size_t)2 * B * C * N)) || !(t->nrm = falloc((size_t)2 * B * N)) ||
        !(t->du = falloc((size_t)2 * B * C * N)) || !(t->att = falloc((size_t)B * N * N)) ||
        !(t->y = falloc((size_t)B * V * N)) || !(t->dy = falloc((size_t)B * V * N)) ||
        !(t->da = falloc((size_t)N * N)) || !(t->pool = falloc((size_t)3 * N)) ||
        !(t->lab = falloc(3 * SS)) || !(t->lab_in = falloc(3 * SS)) ||
        !(t->jrgb = malloc(3 * SS)) || !(t->jit = falloc((size_t)2 * B * 4)) ||
        !(t->xi = calloc(2 * (size_t)S, sizeof(int))) || !(t->xf = falloc(2 * (size_t)S)) ||
        !(t->losses = falloc((size_t)cfg->steps)))
        goto oom;
    /* Optimiser moments of the trainable tensors. */
    if (!(t->am = calloc((size_t)np, sizeof *t->am)) ||
        !(t->av = calloc((size_t)np, sizeof *t->av)))
        goto oom;
    for (int i = 0; i < np; i++) {
        const vt_param *p = vtm_model_param(m, i);
        if (!is_trainable(p))
            continue;
        if (!(t->am[i] = falloc(p->numel)) || !(t->av[i] = falloc(p->numel)))
            goto oom;
    }
    if (cfg->objective == VT_TRAIN_COLORIZE) {
        /* Grey input: the first layer's weights on a and b never see a nonzero input, so their
         * gradient is zero; zeroing them makes the exported model ignore colour exactly. */
        for (int i = 0; i < a->n_layers; i++) {
            const vt_layer_spec *l = &a->layers[i];
            if (l->kind != VT_LAYER_CONV || l->src != VT_SRC_INPUT)
                continue;
            char name[VT_NAME_MAX + 16];
            snprintf(name, sizeof name, "%s.weight", l->conv);
            vt_param *p = vtm_model_param_find(m, name);
            const size_t kk = (size_t)l->k * l->k;
            for (int o = 0; o < l->cout; o++)
                memset(p->data + ((size_t)o * 3 + 1) * kk, 0, sizeof(float) * 2 * kk);
        }
    }
    *out = t;
    return 0;
oom:
    vt_fmt(err, errlen, "out of memory");
    rc = -ENOMEM;
fail:
    vt_trainer_free(&t);
    return rc;
}

void vt_trainer_free(vt_trainer **pt) {
    if (!pt || !*pt)
        return;
    vt_trainer *t = *pt;
    vtt_tnet_free(&t->net);
    vt_train_batch *b = &t->batch;
    free(b->input);
    free(b->ref_val);
    free(b->tgt_val);
    free(b->tgt_cls);
    free(b->ref_cls);
    free(b->drop);
    free(b->rgb);
    free(t->u);
    free(t->nrm);
    free(t->du);
    free(t->att);
    free(t->y);
    free(t->dy);
    free(t->da);
    free(t->pool);
    free(t->lab);
    free(t->lab_in);
    free(t->jrgb);
    free(t->jit);
    free(t->xi);
    free(t->xf);
    free(t->losses);
    if (t->am) {
        for (int i = 0; i < vtm_model_nparams(t->m); i++) {
            free(t->am[i]);
            free(t->av[i]);
        }
    }
    free(t->am);
    free(t->av);
    free(t);
    *pt = NULL;
}

const vt_train_cfg *vt_trainer_cfg(const vt_trainer *t) {
    return &t->cfg;
}

vt_model *vt_trainer_model(vt_trainer *t) {
    return t->m;
}

vt_tnet *vtt_trainer_net(vt_trainer *t) {
    return t->net;
}

void vt_trainer_set_winograd(vt_trainer *t, int on) {
    vtt_tnet_set_winograd(t->net, on);
}

int64_t vt_trainer_steps_done(const vt_trainer *t) {
    return t->step;
}

double vt_trainer_wall(const vt_trainer *t) {
    return t->wall;
}

void vt_trainer_set_wall(vt_trainer *t, double seconds) {
    t->wall = seconds;
}

const float *vt_trainer_losses(const vt_trainer *t, int64_t *n) {
    *n = t->step;
    return t->losses;
}

vt_train_batch *vtt_trainer_batch(vt_trainer *t) {
    return &t->batch;
}

float *vtt_trainer_adam_m(vt_trainer *t, int i) {
    return i >= 0 && i < vtm_model_nparams(t->m) ? t->am[i] : NULL;
}

float *vtt_trainer_adam_v(vt_trainer *t, int i) {
    return i >= 0 && i < vtm_model_nparams(t->m) ? t->av[i] : NULL;
}

int vtt_trainer_set_colors(vt_trainer *t, const float *ab, int k) {
    if (k != t->cfg.ncolors)
        return -EINVAL;
    for (int i = 0; i < 2 * k; i++)
        if (!isfinite(ab[i]))
            return -EINVAL;
    memcpy(t->colors, ab, sizeof(float) * 2 * k);
    t->have_colors = 1;
    return 0;
}

const float *vt_trainer_colors(const vt_trainer *t, int *k) {
    *k = t->have_colors ? t->cfg.ncolors : 0;
    return t->have_colors ? t->colors : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Colour clusters
 * ------------------------------------------------------------------------------------------- */

#define KM_SAMPLES 20000
#define KM_ITERS   40

int vt_trainer_fit_colors(vt_trainer *t, const vt_train_data *d, char *err, size_t errlen) {
    const int K = t->cfg.ncolors, st = t->st;
    const int64_t total = vt_train_data_frames(d);
    if (total < 1) {
        vt_fmt(err, errlen, "no frames to fit the colour clusters on");
        return -EINVAL;
    }
    float *pts = malloc(sizeof(float) * 2 * KM_SAMPLES);
    float *d2 = malloc(sizeof(float) * KM_SAMPLES);
    int *asg = malloc(sizeof(int) * KM_SAMPLES);
    float *lab = malloc(sizeof(float) * 3 * st * st);
    if (!pts || !d2 || !asg || !lab) {
        free(pts), free(d2), free(asg), free(lab);
        vt_fmt(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* A generator of its own, so fitting does not shift the training stream. */
    vt_rng r;
    vtt_rng_seed(&r, t->cfg.seed ^ 0x636f6c6f7273ull);
    for (int i = 0; i < KM_SAMPLES; i++) {
        int v, j;
        vtt_data_pick(&r, d, total, &v, &j);
        const vt_train_video *vv = &d->v[v];
        int x = vtt_rng_int(&r, 0, vv->w - st), y = vtt_rng_int(&r, 0, vv->h - st);
        vt_image img = {st, st, 3 * vv->w, vv->rgb[j] + ((size_t)y * vv->w + x) * 3};
        vt_lab_from_rgb(&img, lab);
        double sa = 0.0, sb = 0.0;
        for (int p = 0; p < st * st; p++) {
            sa += lab[st * st + p];
            sb += lab[2 * st * st + p];
        }
        pts[2 * i] = (float)(sa / (st * st));
        pts[2 * i + 1] = (float)(sb / (st * st));
    }
    /* k-means++ seeding, then Lloyd iterations; an emptied cluster takes the farthest point. */
    float *c = t->colors;
    int first = vtt_rng_int(&r, 0, KM_SAMPLES - 1);
    c[0] = pts[2 * first], c[1] = pts[2 * first + 1];
    for (int i = 0; i < KM_SAMPLES; i++)
        d2[i] = INFINITY;
    for (int k = 1; k < K; k++) {
        double sum = 0.0;
        for (int i = 0; i < KM_SAMPLES; i++) {
            float da = pts[2 * i] - c[2 * (k - 1)], db = pts[2 * i + 1] - c[2 * (k - 1) + 1];
            float dd = da * da + db * db;
            d2[i] = dd < d2[i] ? dd : d2[i];
            sum += d2[i];
        }
        double u = vtt_rng_unit(&r) * sum, acc = 0.0;
        int pick = KM_SAMPLES - 1;
        for (int i = 0; i < KM_SAMPLES; i++) {
            acc += d2[i];
            if (acc > u) {
                pick = i;
                break;
            }
        }
        c[2 * k] = pts[2 * pick], c[2 * k + 1] = pts[2 * pick + 1];
    }
    for (int it = 0; it < KM_ITERS; it++) {
        double sa[VT_TRAIN_MAX_COLORS] = {0}, sb[VT_TRAIN_MAX_COLORS] = {0};
        int cnt[VT_TRAIN_MAX_COLORS] = {0};
        int far = 0;
        for (int i = 0; i < KM_SAMPLES; i++) {
            float best = INFINITY;
            for (int k = 0; k < K; k++) {
                float da = pts[2 * i] - c[2 * k], db = pts[2 * i + 1] - c[2 * k + 1];
                float dd = da * da + db * db;
                if (dd < best)
                    best = dd, asg[i] = k;
            }
            d2[i] = best;
            if (best > d2[far])
                far = i;
            sa[asg[i]] += pts[2 * i];
            sb[asg[i]] += pts[2 * i + 1];
            cnt[asg[i]]++;
        }
        for (int k = 0; k < K; k++) {
            if (cnt[k]) {
                c[2 * k] = (float)(sa[k] / cnt[k]);
                c[2 * k + 1] = (float)(sb[k] / cnt[k]);
            } else {
                c[2 * k] = pts[2 * far], c[2 * k + 1] = pts[2 * far + 1];
                d2[far] = 0.0f;
            }
        }
    }
    free(pts), free(d2), free(asg), free(lab);
    t->have_colors = 1;
    return 0;
}

static int nearest_color(const vt_trainer *t, float a, float b) {
    int best = 0;
    float bd = INFINITY;
    for (int k = 0; k < t->cfg.ncolors; k++) {
        float da = a - t->colors[2 * k], db = b - t->colors[2 * k + 1];
        float dd = da * da + db * db;
        if (dd < bd)
            bd = dd, best = k;
    }
    return best;
}

/* ---------------------------------------------------------------------------------------------
 * Batches
 * ------------------------------------------------------------------------------------------- */

/* Bilinear resample of the square region (x0, y0, side r) of a packed RGB24 frame into an
 * S x S crop, mirrored when flip; sample positions as align_corners=False. */
static void crop_resize(vt_trainer *t, const uint8_t *src, int sw, int sh, float x0, float y0,
                        float r, int flip, uint8_t *dst) {
    const int S = t->S;
    const float sc = r / (float)S;
    int *xi = t->xi;
    float *xf = t->xf;
    for (int ox = 0; ox < S; ox++) {
        float sx = x0 + (ox + 0.5f) * sc - 0.5f;
        sx = sx < 0.0f ? 0.0f : (sx > sw - 1 ? (float)(sw - 1) : sx);
        int i0 = (int)sx;
        xi[ox] = i0;
        xf[ox] = sx - i0;
    }
    for (int oy = 0; oy < S; oy++) {
        float sy = y0 + (oy + 0.5f) * sc - 0.5f;
        sy = sy < 0.0f ? 0.0f : (sy > sh - 1 ? (float)(sh - 1) : sy);
        int y0i = (int)sy, y1i = y0i + 1 < sh ? y0i + 1 : y0i;
        float fy = sy - y0i;
        const uint8_t *ra = src + (size_t)y0i * sw * 3, *rb = src + (size_t)y1i * sw * 3;
        uint8_t *drow = dst + (size_t)oy * S * 3;
        for (int ox = 0; ox < S; ox++) {
            int i0 = xi[ox], i1 = i0 + 1 < sw ? i0 + 1 : i0;
            float fx = xf[ox];
            uint8_t *o = drow + 3 * (flip ? S - 1 - ox : ox);
            for (int c = 0; c < 3; c++) {
                float top = ra[3 * i0 + c] + fx * (ra[3 * i1 + c] - ra[3 * i0 + c]);
                float bot = rb[3 * i0 + c] + fx * (rb[3 * i1 + c] - rb[3 * i0 + c]);
                o[c] = (uint8_t)(top + fy * (bot - top) + 0.5f);
            }
        }
    }
}

/* Colour jitter of one crop (input only): saturation s about the grey value, then contrast c
 * about mid-grey and brightness offset br. */
static void jitter(const uint8_t *src, size_t npix, const float *p, uint8_t *dst) {
    const float c = p[0], br = p[1], s = p[2];
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *q = src + 3 * i;
        float g = 0.299f * q[0] + 0.587f * q[1] + 0.114f * q[2];
        for (int k = 0; k < 3; k++) {
            float v = g + s * (q[k] - g);
            v = (v - 128.0f) * c + 128.0f + br;
            dst[3 * i + k] = (uint8_t)(v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v + 0.5f));
        }
    }
}

/* From batch->rgb (and drop, t->jit): network input, values, targets. */
static void build_batch(vt_trainer *t) {
    vt_train_batch *bt = &t->batch;
    const int B = t->B, S = t->S, st = t->st, fw = t->fw, N = t->N;
    const size_t SS = (size_t)S * S;
    const float inv_area = 1.0f / (float)(st * st);
    for (int f = 0; f < 2 * B; f++) {
        const int b = f % B, is_ref = f < B;
        const uint8_t *rgb = bt->rgb + (size_t)f * SS * 3;
        vt_image img = {S, S, 3 * S, rgb};
        vt_lab_from_rgb(&img, t->lab);
        /* cell means of the clean Lab (raw units) */
        float *pool[3] = {t->pool, t->pool + N, t->pool + 2 * N};
        for (int c = 0; c < 3; c++) {
            const float *pl = t->lab + c * SS;
            for (int q = 0; q < N; q++) {
                int cy = q / fw, cx = q % fw;
                double s = 0.0;
                for (int y = 0; y < st; y++) {
                    const float *r = pl + (size_t)(cy * st + y) * S + cx * st;
                    for (int x = 0; x < st; x++)
                        s += r[x];
                }
                pool[c][q] = (float)s * inv_area;
            }
        }
        if (t->cfg.objective == VT_TRAIN_MAST) {
            float *dst = is_ref ? bt->ref_val + (size_t)b * 3 * N : bt->tgt_val + (size_t)b * 3 * N;
            for (int c = 0; c < 3; c++)
                for (int q = 0; q < N; q++)
                    dst[c * N + q] = (pool[c][q] - t->mean[c]) / t->std[c];
        } else {
            int32_t *cls = is_ref ? bt->ref_cls + (size_t)b * N : bt->tgt_cls + (size_t)b * N;
            for (int q = 0; q < N; q++)
                cls[q] = nearest_color(t, pool[1][q], pool[2][q]);
            if (is_ref) {
                float *oh = bt->ref_val + (size_t)b * t->V * N;
                memset(oh, 0, sizeof(float) * (size_t)t->V * N);
                for (int q = 0; q < N; q++)
                    oh[(size_t)cls[q] * N + q] = 1.0f;
            }
        }
        /* the input, from a jittered copy when jitter is on */
        const float *src = t->lab;
        if (t->jit[4 * f + 3] != 0.0f) {
            jitter(rgb, SS, &t->jit[4 * f], t->jrgb);
            vt_image ji = {S, S, 3 * S, t->jrgb};
            vt_lab_from_rgb(&ji, t->lab_in);
            src = t->lab_in;
        }
        float *in = bt->input + (size_t)f * 3 * SS;
        if (t->cfg.objective == VT_TRAIN_MAST) {
            /* MAST's dropout2d_lab: one of a/b zeroed, everything scaled by 3/(3-1) */
            const int drop = bt->drop[b];
            for (int c = 0; c < 3; c++) {
                float *o = in + c * SS;
                const float *s = src + c * SS;
                if (c == drop) {
                    memset(o, 0, sizeof(float) * SS);
                    continue;
                }
                const float mu = t->mean[c], k = 1.5f / t->std[c];
                for (size_t i = 0; i < SS; i++)
                    o[i] = (s[i] - mu) * k;
            }
        } else {
            const float mu = t->mean[0], k = 1.0f / t->std[0];
            for (size_t i = 0; i < SS; i++)
                in[i] = (src[i] - mu) * k;
            memset(in + SS, 0, sizeof(float) * 2 * SS);
        }
    }
}

int vtt_trainer_set_batch(vt_trainer *t, const uint8_t *rgb, const int *drop) {
    vt_train_batch *bt = &t->batch;
    if (t->cfg.objective == VT_TRAIN_COLORIZE && !t->have_colors)
        return -EINVAL;
    memcpy(bt->rgb, rgb, (size_t)2 * t->B * t->S * t->S * 3);
    for (int b = 0; b < t->B; b++) {
        bt->drop[b] = 0;
        if (t->cfg.objective == VT_TRAIN_MAST) {
            bt->drop[b] = drop ? drop[b] : vtt_rng_int(&t->rng, 1, 2);
            if (bt->drop[b] != 1 && bt->drop[b] != 2)
                return -EINVAL;
        }
    }
    memset(t->jit, 0, sizeof(float) * 2 * t->B * 4);
    build_batch(t);
    return 0;
}

int vtt_trainer_sample(vt_trainer *t, const vt_train_data *d) {
    const vt_train_cfg *c = &t->cfg;
    vt_train_batch *bt = &t->batch;
    const int64_t total = vt_train_data_frames(d);
    if (total < 2 || d->nv < 1)
        return -EINVAL;
    if (c->objective == VT_TRAIN_COLORIZE && !t->have_colors)
        return -EINVAL;
    const size_t SS = (size_t)t->S * t->S;
    for (int b = 0; b < t->B; b++) {
        int v, i;
        vtt_data_pick(&t->rng, d, total, &v, &i);
        const vt_train_video *vv = &d->v[v];
        /* a gap in source frames, converted to cached frames (the cache may be thinned) */
        int gap = vtt_rng_int(&t->rng, c->gap_min, c->gap_max);
        int gp = (gap + d->stride / 2) / d->stride;
        gp = gp < 1 ? 1 : gp;
        gp = gp > vv->n - 1 ? vv->n - 1 : gp;
        if (i + gp >= vv->n)
            i = vv->n - 1 - gp;
        int j = i + gp;
        if (vtt_rng_unit(&t->rng) < 0.5) { /* time runs either way */
            int tmp = i;
            i = j;
            j = tmp;
        }
        const int short_side = vv->w < vv->h ? vv->w : vv->h;
        float r = (float)(short_side *
                          (c->scale_min + (c->scale_max - c->scale_min) * vtt_rng_unit(&t->rng)));
        r = r < 8.0f ? 8.0f : r;
        float x0 = (float)(vtt_rng_unit(&t->rng) * (vv->w - r));
        float y0 = (float)(vtt_rng_unit(&t->rng) * (vv->h - r));
        int flip = c->flip && vtt_rng_unit(&t->rng) < 0.5;
        crop_resize(t, vv->rgb[i], vv->w, vv->h, x0, y0, r, flip, bt->rgb + (size_t)b * SS * 3);
        crop_resize(t, vv->rgb[j], vv->w, vv->h, x0, y0, r, flip,
                    bt->rgb + (size_t)(t->B + b) * SS * 3);
        bt->drop[b] = c->objective == VT_TRAIN_MAST ? vtt_rng_int(&t->rng, 1, 2) : 0;
        for (int k = 0; k < 2; k++) {
            float *p = &t->jit[4 * (b + k * t->B)];
            if (c->jitter > 0.0f) {
                p[0] = 1.0f + c->jitter * (float)(2.0 * vtt_rng_unit(&t->rng) - 1.0);
                p[1] = 64.0f * c->jitter * (float)(2.0 * vtt_rng_unit(&t->rng) - 1.0);
                p[2] = 1.0f + c->jitter * (float)(2.0 * vtt_rng_unit(&t->rng) - 1.0);
                p[3] = 1.0f;
            } else {
                p[0] = p[1] = p[2] = p[3] = 0.0f;
            }
        }
    }
    build_batch(t);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Forward, backward, update
 * ------------------------------------------------------------------------------------------- */

#define L2_EPS      1e-12f /* F.normalize's default */
#define NLL_EPS     1e-8f
#define BN_MOMENTUM 0.1f /* nn.BatchNorm2d's default */

int vtt_trainer_forward_backward(vt_trainer *t, double *loss) {
    const int B = t->B, N = t->N, C = t->C, V = t->V, S = t->S;
    vt_train_batch *bt = &t->batch;
    vt_tensor x = {2 * B, 3, S, S, bt->input};
    const vt_tensor *f;
    int rc = vtt_tnet_forward(t->net, &x, BN_MOMENTUM, &f);
    if (rc < 0)
        return rc;
    vt_tensor u = {2 * B, C, t->fh, t->fw, t->u};
    vtt_tr_l2norm_forward(f, L2_EPS, &u, t->nrm);
    double sum = 0.0;
    const float *vals = bt->ref_val;
    for (int b = 0; b < B; b++) {
        const float *ut = t->u + (size_t)(B + b) * C * N, *ur = t->u + (size_t)b * C * N;
        float *y = t->y + (size_t)b * V * N, *dy = t->dy + (size_t)b * V * N;
        vtt_tr_attn_forward(ut, ur, C, t->fh, t->fw, t->cfg.radius, t->cfg.temperature,
                            vals + (size_t)b * V * N, V, t->att + (size_t)b * N * N, y);
        if (t->cfg.objective == VT_TRAIN_MAST)
            sum += vtt_tr_smoothl1(y, bt->tgt_val + (size_t)b * 3 * N, (size_t)3 * N,
                                   t->cfg.huber_scale, 1.0f / (float)(B * 3 * N), dy);
        else
            sum += vtt_tr_nll_prob(y, bt->tgt_cls + (size_t)b * N, V, N, NLL_EPS,
                                   1.0f / (float)(B * N), dy);
    }
    *loss = t->cfg.objective == VT_TRAIN_MAST ? sum / ((double)B * 3 * N) : sum / ((double)B * N);
    memset(t->du, 0, sizeof(float) * (size_t)2 * B * C * N);
    for (int b = 0; b < B; b++)
        vtt_tr_attn_backward(t->u + (size_t)(B + b) * C * N, t->u + (size_t)b * C * N, C, t->fh,
                             t->fw, t->cfg.temperature, vals + (size_t)b * V * N, V,
                             t->att + (size_t)b * N * N, t->dy + (size_t)b * V * N, t->da,
                             t->du + (size_t)(B + b) * C * N, t->du + (size_t)b * C * N);
    vt_tensor *df = vtt_tnet_out_grad(t->net);
    memset(df->data, 0, sizeof(float) * vtm_tensor_numel(df));
    vt_tensor du = {2 * B, C, t->fh, t->fw, t->du};
    vtt_tr_l2norm_backward(&u, t->nrm, L2_EPS, &du, df);
    vtt_tnet_zero_grad(t->net);
    return vtt_tnet_backward(t->net);
}

double vtt_trainer_lr_at(const vt_trainer *t, int64_t s) {
    const vt_train_cfg *c = &t->cfg;
    if (s < c->warmup)
        return c->lr * (double)(s + 1) / c->warmup;
    double span = c->steps - c->warmup > 1 ? c->steps - c->warmup : 1;
    double p = (s - c->warmup) / span;
    p = p > 1.0 ? 1.0 : p;
    return c->lr * (c->lr_min + (1.0 - c->lr_min) * 0.5 * (1.0 + cos(M_PI * p)));
}

int vtt_trainer_update(vt_trainer *t, double loss, vt_train_step_info *info) {
    const vt_train_cfg *c = &t->cfg;
    const int np = vtm_model_nparams(t->m);
    if (!isfinite(loss))
        return -EDOM;
    /* global gradient norm, as torch.nn.utils.clip_grad_norm_ */
    double ss = 0.0;
    for (int i = 0; i < np; i++) {
        const float *g = vtt_tnet_grad(t->net, i);
        if (!g)
            continue;
        const size_t n = vtm_model_param(t->m, i)->numel;
        for (size_t k = 0; k < n; k++)
            ss += (double)g[k] * g[k];
    }
    const double norm = sqrt(ss);
    if (!isfinite(norm))
        return -EDOM;
    float gs = 1.0f;
    if (c->clip > 0.0f) {
        double coef = c->clip / (norm + 1e-6);
        gs = coef < 1.0 ? (float)coef : 1.0f;
    }
    const double lr = vtt_trainer_lr_at(t, t->step);
    const double tt = (double)(t->step + 1);
    const double bc1 = 1.0 - pow(c->beta1, tt), bc2 = 1.0 - pow(c->beta2, tt);
    const float step_size = (float)(lr / bc1), bc2s = (float)sqrt(bc2);
    const float b1 = c->beta1, b2 = c->beta2, eps = c->adam_eps;
    for (int i = 0; i < np; i++) {
        float *g = vtt_tnet_grad(t->net, i);
        if (!g)
            continue;
        vt_param *p = vtm_model_param(t->m, i);
        float *m = t->am[i], *v = t->av[i], *w = p->data;
        /* AdamW (Loshchilov & Hutter), in torch.optim.AdamW's order of operations */
        const float decay = is_decayed(p) ? (float)(1.0 - lr * c->weight_decay) : 1.0f;
        for (size_t k = 0; k < p->numel; k++) {
            float gk = g[k] * gs;
            w[k] *= decay;
            m[k] = m[k] * b1 + (1.0f - b1) * gk;
            v[k] = v[k] * b2 + (1.0f - b2) * gk * gk;
            float denom = sqrtf(v[k]) / bc2s + eps;
            w[k] -= step_size * m[k] / denom;
        }
    }
    t->losses[t->step < c->steps ? t->step : c->steps - 1] = (float)loss;
    t->step++;
    if (info) {
        info->step = t->step;
        info->loss = loss;
        info->grad_norm = norm;
        info->lr = lr;
    }
    return 0;
}

int vt_trainer_step(vt_trainer *t, const vt_train_data *d, vt_train_step_info *info) {
    if (t->step >= t->cfg.steps)
        return -ERANGE;
    int rc = vtt_trainer_sample(t, d);
    if (rc < 0)
        return rc;
    double loss;
    if ((rc = vtt_trainer_forward_backward(t, &loss)) < 0)
        return rc;
    return vtt_trainer_update(t, loss, info);
}
