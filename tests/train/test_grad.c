/*
 * Finite-difference checks of every backward pass the trainer uses (train/train_ops.c,
 * train/train_net.c), on small random shapes.
 *
 * For an op y = f(x) and a fixed random r, the scalar L(x) = sum r . y is accumulated in
 * double; its analytic gradient comes from the backward with dy = r, its numeric one from
 * central differences (L(x + h e_i) - L(x - h e_i)) / 2h with the forward in float32. Each
 * element checked (all of them for small tensors, an evenly spread subset otherwise) must
 * satisfy
 *     |numeric - analytic| <= ATOL * max|analytic| + RTOL * |analytic|
 * with RTOL = 1e-3 and ATOL = 2e-4: the float32 forward makes L exact to about 1e-6, which
 * h = 1e-2 turns into ~1e-5..1e-4 of error in the difference quotient, and the O(h^2)
 * truncation error is of the same order (observed worst: a fifth of the bound). Inputs are
 * drawn away from the kinks (ReLU at 0, smooth L1 at |d| = 1, ties in max-pool) by more than
 * h, so the differences never straddle one. The whole network is checked through directional
 * derivatives with NET_RTOL = 1e-2 (see dir_check).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testmain.h"
#include "train_int.h"

#define RTOL        1e-3
#define ATOL        2e-4
#define NET_RTOL    1e-2
#define MAX_CHECKED 96

static vt_rng rng;

static float urand(float lo, float hi) {
    return lo + (hi - lo) * (float)vtt_rng_unit(&rng);
}

static float *rvec(size_t n, float lo, float hi) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        v[i] = urand(lo, hi);
    return v;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* The scalar loss as a function of the perturbed tensor. */
typedef double (*loss_fn)(void *ctx);

/* Central difference of fn in element i of x with step h. */
static double fd_at(float *x, size_t i, float h, loss_fn fn, void *ctx) {
    float keep = x[i];
    x[i] = keep + h;
    double lp = fn(ctx);
    x[i] = keep - h;
    double lm = fn(ctx);
    x[i] = keep;
    return (lp - lm) / (2.0 * ((double)(keep + h) - (double)keep));
}

/* Compare `ana` (analytic dL/dx, n floats) with central differences of fn over x. Returns the
 * worst ratio error / bound (<= 1 passes). */
static double fd_check(const char *what, float *x, size_t n, const float *ana, float h, loss_fn fn,
                       void *ctx) {
    double amax = 0.0;
    for (size_t i = 0; i < n; i++)
        amax = fabs(ana[i]) > amax ? fabs(ana[i]) : amax;
    size_t step = n > MAX_CHECKED ? n / MAX_CHECKED : 1;
    double worst = 0.0, worst_num = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i += step) {
        double num = fd_at(x, i, h, fn, ctx);
        double r = fabs(num - ana[i]) / (ATOL * amax + RTOL * fabs(ana[i]) + 1e-12);
        if (r > worst)
            worst = r, worst_i = i, worst_num = num;
    }
    printf("%-40s %s worst %.2f of the bound (element %zu: numeric %.6g analytic %.6g; max "
           "|g| %.3g)\n",
           what, worst <= 1.0 ? "ok  " : "FAIL", worst, worst_i, worst_num, ana[worst_i], amax);
    return worst;
}

/* ---------------------------------------------------------------------------------------------
 * Convolution
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    vt_conv cv;
    vt_tensor x, y;
    float *w, *b, *r, *scratch;
} conv_ctx;

static double conv_loss(void *p) {
    conv_ctx *c = p;
    ck_assert_int_eq(vtm_conv2d(&c->cv, VT_CONV_IM2COL, &c->x, NULL, &c->y, c->scratch), 0);
    return dot(c->y.data, c->r, vtm_tensor_numel(&c->y));
}

static const struct {
    int n, cin, cout, h, w, k, stride, pad, dil, bias;
    vt_pad_mode mode;
} conv_cases[] = {
    {2, 3, 4, 7, 9, 3, 1, 1, 1, 1, VT_PAD_ZEROS},   /* 3x3 same */
    {2, 3, 5, 9, 8, 3, 2, 1, 1, 0, VT_PAD_ZEROS},   /* strided, even width */
    {1, 4, 3, 5, 6, 1, 1, 0, 1, 1, VT_PAD_ZEROS},   /* 1x1 (the GEMM-only path) */
    {1, 2, 3, 11, 10, 7, 2, 3, 1, 0, VT_PAD_ZEROS}, /* ResNet stem geometry */
    {1, 2, 2, 6, 7, 2, 3, 0, 1, 1, VT_PAD_ZEROS},   /* stride > kernel */
    {1, 2, 3, 9, 9, 3, 1, 2, 2, 0, VT_PAD_ZEROS},   /* dilation 2 */
    {1, 2, 3, 3, 4, 3, 1, 3, 1, 0, VT_PAD_ZEROS},   /* padding > kernel radius */
    {1, 3, 2, 6, 7, 3, 1, 1, 1, 0, VT_PAD_REFLECT}, /* reflection padding */
    {1, 2, 2, 7, 6, 3, 2, 1, 1, 1, VT_PAD_REFLECT}, /* reflection, strided */
    {1, 1, 1, 1, 1, 1, 1, 0, 1, 1, VT_PAD_ZEROS},   /* 1x1 map */
};

START_TEST(test_conv) {
    const __typeof__(conv_cases[0]) *k = &conv_cases[_i];
    vtt_rng_seed(&rng, 100 + _i);
    conv_ctx c;
    c.cv = (vt_conv){.cin = k->cin,
                     .cout = k->cout,
                     .k = k->k,
                     .stride = k->stride,
                     .pad = k->pad,
                     .dil = k->dil,
                     .pad_mode = k->mode};
    int oh, ow;
    vtm_conv_out_size(&c.cv, k->h, k->w, &oh, &ow);
    ck_assert(oh > 0 && ow > 0);
    size_t nx = (size_t)k->n * k->cin * k->h * k->w, ny = (size_t)k->n * k->cout * oh * ow;
    size_t nw = (size_t)k->cout * k->cin * k->k * k->k;
    c.x = (vt_tensor){k->n, k->cin, k->h, k->w, rvec(nx, -1, 1)};
    c.y = (vt_tensor){k->n, k->cout, oh, ow, rvec(ny, 0, 0)};
    c.w = rvec(nw, -0.5f, 0.5f);
    c.b = k->bias ? rvec(k->cout, -0.5f, 0.5f) : NULL;
    c.cv.w = c.w;
    c.cv.b = c.b;
    c.r = rvec(ny, -1, 1);
    size_t sc = vtm_conv_scratch(&c.cv, VT_CONV_IM2COL, k->h, k->w);
    size_t sb = vtt_tr_conv_bwd_scratch(&c.cv, k->h, k->w);
    c.scratch = rvec(sc > sb ? sc : sb, 0, 0);
    float *dw = calloc(nw, sizeof(float)), *db = calloc(k->cout, sizeof(float));
    vt_tensor dx = {k->n, k->cin, k->h, k->w, calloc(nx, sizeof(float))};
    vt_tensor dy = {k->n, k->cout, oh, ow, c.r};
    ck_assert_int_eq(
        vtt_tr_conv_backward(&c.cv, &c.x, &dy, dw, k->bias ? db : NULL, &dx, c.scratch), 0);
    char name[64];
    snprintf(name, sizeof name, "conv case %d dx", _i);
    ck_assert(fd_check(name, c.x.data, nx, dx.data, 1e-2f, conv_loss, &c) <= 1.0);
    snprintf(name, sizeof name, "conv case %d dw", _i);
    ck_assert(fd_check(name, c.w, nw, dw, 1e-2f, conv_loss, &c) <= 1.0);
    if (k->bias) {
        snprintf(name, sizeof name, "conv case %d db", _i);
        ck_assert(fd_check(name, c.b, k->cout, db, 1e-2f, conv_loss, &c) <= 1.0);
    }
    /* accumulation: a second backward adds the same amounts again */
    float *dw2 = malloc(sizeof(float) * nw);
    memcpy(dw2, dw, sizeof(float) * nw);
    ck_assert_int_eq(vtt_tr_conv_backward(&c.cv, &c.x, &dy, dw, NULL, NULL, c.scratch), 0);
    for (size_t i = 0; i < nw; i++)
        ck_assert_float_eq_tol(dw[i], 2 * dw2[i], 1e-5f * (1 + fabsf(dw2[i])));
    free(c.x.data), free(c.y.data), free(c.w), free(c.b), free(c.r), free(c.scratch);
    free(dw), free(dw2), free(db), free(dx.data);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Batch-norm (training mode), ReLU, max-pool, L2 normalisation
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    vt_tensor x, y;
    float *gamma, *beta, *mean, *invstd, *r, *nrm;
    int k, stride, pad;
} op_ctx;

static double bn_loss(void *p) {
    op_ctx *c = p;
    vtt_tr_bn_forward(&c->x, c->gamma, c->beta, 1e-5f, 0.1f, NULL, NULL, c->mean, c->invstd, &c->y);
    return dot(c->y.data, c->r, vtm_tensor_numel(&c->y));
}

START_TEST(test_bn) {
    static const int shapes[][4] = {{2, 3, 4, 5}, {3, 2, 1, 1}, {1, 4, 3, 3}};
    vtt_rng_seed(&rng, 7 + _i);
    const int *s = shapes[_i];
    size_t n = (size_t)s[0] * s[1] * s[2] * s[3];
    op_ctx c = {0};
    c.x = (vt_tensor){s[0], s[1], s[2], s[3], rvec(n, -2, 2)};
    c.y = (vt_tensor){s[0], s[1], s[2], s[3], rvec(n, 0, 0)};
    c.gamma = rvec(s[1], 0.5f, 1.5f);
    c.beta = rvec(s[1], -0.5f, 0.5f);
    c.mean = rvec(s[1], 0, 0);
    c.invstd = rvec(s[1], 0, 0);
    c.r = rvec(n, -1, 1);
    /* running statistics follow PyTorch: momentum 0.1, unbiased variance */
    float rm[8] = {0}, rv[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    vtt_tr_bn_forward(&c.x, c.gamma, c.beta, 1e-5f, 0.1f, rm, rv, c.mean, c.invstd, &c.y);
    for (int ch = 0; ch < s[1]; ch++) {
        double m = 0, v = 0;
        int M = s[0] * s[2] * s[3];
        for (int b = 0; b < s[0]; b++)
            for (int i = 0; i < s[2] * s[3]; i++)
                m += c.x.data[((size_t)b * s[1] + ch) * s[2] * s[3] + i];
        m /= M;
        for (int b = 0; b < s[0]; b++)
            for (int i = 0; i < s[2] * s[3]; i++) {
                double d = c.x.data[((size_t)b * s[1] + ch) * s[2] * s[3] + i] - m;
                v += d * d;
            }
        ck_assert_float_eq_tol(rm[ch], 0.1 * m, 1e-6);
        ck_assert_float_eq_tol(rv[ch], 0.9 + 0.1 * v / (M - 1), 1e-5);
        ck_assert_float_eq_tol(c.invstd[ch], 1.0 / sqrt(v / M + 1e-5), 1e-4 * c.invstd[ch]);
    }
    float *dg = calloc(s[1], sizeof(float)), *dbt = calloc(s[1], sizeof(float));
    vt_tensor dy = {s[0], s[1], s[2], s[3], c.r};
    vt_tensor dz = {s[0], s[1], s[2], s[3], calloc(n, sizeof(float))};
    vtt_tr_bn_backward(&c.x, c.mean, c.invstd, c.gamma, &dy, dg, dbt, &dz);
    char name[64];
    snprintf(name, sizeof name, "batch-norm %dx%dx%dx%d dz", s[0], s[1], s[2], s[3]);
    ck_assert(fd_check(name, c.x.data, n, dz.data, 1e-2f, bn_loss, &c) <= 1.0);
    snprintf(name, sizeof name, "batch-norm %dx%dx%dx%d dgamma", s[0], s[1], s[2], s[3]);
    ck_assert(fd_check(name, c.gamma, s[1], dg, 1e-2f, bn_loss, &c) <= 1.0);
    snprintf(name, sizeof name, "batch-norm %dx%dx%dx%d dbeta", s[0], s[1], s[2], s[3]);
    ck_assert(fd_check(name, c.beta, s[1], dbt, 1e-2f, bn_loss, &c) <= 1.0);
    free(c.x.data), free(c.y.data), free(c.gamma), free(c.beta), free(c.mean), free(c.invstd);
    free(c.r), free(dg), free(dbt), free(dz.data);
}
END_TEST

static double relu_loss(void *p) {
    op_ctx *c = p;
    size_t n = vtm_tensor_numel(&c->x);
    for (size_t i = 0; i < n; i++)
        c->y.data[i] = c->x.data[i] > 0 ? c->x.data[i] : 0;
    return dot(c->y.data, c->r, n);
}

START_TEST(test_relu) {
    vtt_rng_seed(&rng, 3);
    const size_t n = 60;
    op_ctx c = {0};
    c.x = (vt_tensor){1, 3, 4, 5, rvec(n, 0, 0)};
    for (size_t i = 0; i < n; i++) /* |x| >= 0.1 > h: no difference crosses the kink */
        c.x.data[i] = (i % 2 ? 1.0f : -1.0f) * urand(0.1f, 1.0f);
    c.y = (vt_tensor){1, 3, 4, 5, rvec(n, 0, 0)};
    c.r = rvec(n, -1, 1);
    relu_loss(&c);
    float *d = malloc(sizeof(float) * n);
    memcpy(d, c.r, sizeof(float) * n);
    vtt_tr_relu_backward(c.y.data, d, n);
    ck_assert(fd_check("relu", c.x.data, n, d, 1e-2f, relu_loss, &c) <= 1.0);
    free(c.x.data), free(c.y.data), free(c.r), free(d);
}
END_TEST

static double pool_loss(void *p) {
    op_ctx *c = p;
    ck_assert_int_eq(vtm_maxpool2d(&c->x, c->k, c->stride, c->pad, &c->y), 0);
    return dot(c->y.data, c->r, vtm_tensor_numel(&c->y));
}

START_TEST(test_maxpool) {
    static const int g[][5] = {{3, 2, 1, 7, 9}, {2, 2, 0, 6, 5}, {3, 1, 1, 4, 4}};
    vtt_rng_seed(&rng, 11 + _i);
    op_ctx c = {0};
    c.k = g[_i][0], c.stride = g[_i][1], c.pad = g[_i][2];
    const int h = g[_i][3], w = g[_i][4];
    size_t n = (size_t)2 * 2 * h * w;
    /* distinct values 0.05 apart, shuffled: no ties within h = 1e-2 */
    c.x = (vt_tensor){2, 2, h, w, rvec(n, 0, 0)};
    for (size_t i = 0; i < n; i++)
        c.x.data[i] = 0.05f * (float)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = vtt_rng_u64(&rng) % (i + 1);
        float t = c.x.data[i];
        c.x.data[i] = c.x.data[j];
        c.x.data[j] = t;
    }
    int oh = vtm_pool_out(h, c.k, c.stride, c.pad, 0),
        ow = vtm_pool_out(w, c.k, c.stride, c.pad, 0);
    size_t ny = (size_t)2 * 2 * oh * ow;
    c.y = (vt_tensor){2, 2, oh, ow, rvec(ny, 0, 0)};
    c.r = rvec(ny, -1, 1);
    vt_tensor dy = {2, 2, oh, ow, c.r}, dx = {2, 2, h, w, calloc(n, sizeof(float))};
    ck_assert_int_eq(vtt_tr_maxpool_backward(&c.x, c.k, c.stride, c.pad, &dy, &dx), 0);
    char name[64];
    snprintf(name, sizeof name, "max-pool k%d s%d p%d", c.k, c.stride, c.pad);
    ck_assert(fd_check(name, c.x.data, n, dx.data, 1e-2f, pool_loss, &c) <= 1.0);
    free(c.x.data), free(c.y.data), free(c.r), free(dx.data);
}
END_TEST

static double l2_loss(void *p) {
    op_ctx *c = p;
    vtt_tr_l2norm_forward(&c->x, 1e-12f, &c->y, c->nrm);
    return dot(c->y.data, c->r, vtm_tensor_numel(&c->y));
}

START_TEST(test_l2norm) {
    vtt_rng_seed(&rng, 5);
    op_ctx c = {0};
    const size_t n = 2 * 8 * 3 * 4;
    c.x = (vt_tensor){2, 8, 3, 4, rvec(n, -1, 1)};
    c.y = (vt_tensor){2, 8, 3, 4, rvec(n, 0, 0)};
    c.nrm = rvec(2 * 12, 0, 0);
    c.r = rvec(n, -1, 1);
    l2_loss(&c);
    for (int p = 0; p < 12; p++) { /* unit vectors out */
        double s = 0;
        for (int ch = 0; ch < 8; ch++)
            s += (double)c.y.data[ch * 12 + p] * c.y.data[ch * 12 + p];
        ck_assert_float_eq_tol(s, 1.0, 1e-5);
    }
    vt_tensor dy = {2, 8, 3, 4, c.r}, dx = {2, 8, 3, 4, calloc(n, sizeof(float))};
    vtt_tr_l2norm_backward(&c.y, c.nrm, 1e-12f, &dy, &dx);
    ck_assert(fd_check("l2 normalisation", c.x.data, n, dx.data, 1e-3f, l2_loss, &c) <= 1.0);
    free(c.x.data), free(c.y.data), free(c.nrm), free(c.r), free(dx.data);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Windowed attention and the losses
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    float *ft, *fr, *vals, *a, *y, *r;
    int c, h, w, v, radius;
    float temp;
} attn_ctx;

static double attn_loss(void *p) {
    attn_ctx *c = p;
    vtt_tr_attn_forward(c->ft, c->fr, c->c, c->h, c->w, c->radius, c->temp, c->vals, c->v, c->a,
                        c->y);
    return dot(c->y, c->r, (size_t)c->v * c->h * c->w);
}

START_TEST(test_attention) {
    static const int g[][5] = {/* c, h, w, v, radius */
                               {6, 5, 7, 3, 1},
                               {4, 4, 4, 5, -1},
                               {8, 6, 5, 3, 2}};
    vtt_rng_seed(&rng, 21 + _i);
    attn_ctx c = {0};
    c.c = g[_i][0], c.h = g[_i][1], c.w = g[_i][2], c.v = g[_i][3], c.radius = g[_i][4];
    c.temp = 0.5f;
    const int n = c.h * c.w;
    c.ft = rvec((size_t)c.c * n, -1, 1);
    c.fr = rvec((size_t)c.c * n, -1, 1);
    c.vals = rvec((size_t)c.v * n, -1, 1);
    c.a = rvec((size_t)n * n, 0, 0);
    c.y = rvec((size_t)c.v * n, 0, 0);
    c.r = rvec((size_t)c.v * n, -1, 1);
    attn_loss(&c);
    /* rows are distributions, zero outside the window */
    for (int q = 0; q < n; q++) {
        double s = 0;
        for (int p = 0; p < n; p++) {
            s += c.a[(size_t)q * n + p];
            int out = c.radius >= 0 &&
                      (abs(q / c.w - p / c.w) > c.radius || abs(q % c.w - p % c.w) > c.radius);
            if (out)
                ck_assert_float_eq(c.a[(size_t)q * n + p], 0.0f);
        }
        ck_assert_float_eq_tol(s, 1.0, 1e-5);
    }
    float *dft = calloc((size_t)c.c * n, sizeof(float)), *dfr = calloc((size_t)c.c * n, 4);
    float *da = rvec((size_t)n * n, 0, 0);
    vtt_tr_attn_backward(c.ft, c.fr, c.c, c.h, c.w, c.temp, c.vals, c.v, c.a, c.r, da, dft, dfr);
    char name[64];
    snprintf(name, sizeof name, "attention r=%d d(target features)", c.radius);
    ck_assert(fd_check(name, c.ft, (size_t)c.c * n, dft, 1e-2f, attn_loss, &c) <= 1.0);
    snprintf(name, sizeof name, "attention r=%d d(reference features)", c.radius);
    ck_assert(fd_check(name, c.fr, (size_t)c.c * n, dfr, 1e-2f, attn_loss, &c) <= 1.0);
    free(c.ft), free(c.fr), free(c.vals), free(c.a), free(c.y), free(c.r);
    free(dft), free(dfr), free(da);
}
END_TEST

typedef struct {
    float *y, *t, *g;
    int32_t *cls;
    size_t n;
    int v;
} loss_ctx;

static double huber_loss(void *p) {
    loss_ctx *c = p;
    return vtt_tr_smoothl1(c->y, c->t, c->n, 20.0f, 1.0f, c->g);
}

START_TEST(test_smoothl1) {
    vtt_rng_seed(&rng, 31);
    loss_ctx c = {0};
    c.n = 64;
    c.y = rvec(c.n, 0, 0);
    c.t = rvec(c.n, -1, 1);
    c.g = rvec(c.n, 0, 0);
    /* differences in both regimes, each at least 0.01 away from the kink |20 d| = 1 */
    for (size_t i = 0; i < c.n; i++) {
        float d = i % 2 ? urand(0.0f, 0.04f) : urand(0.06f, 0.3f);
        c.y[i] = c.t[i] + (i % 4 < 2 ? d : -d);
    }
    float *g = malloc(sizeof(float) * c.n);
    huber_loss(&c);
    memcpy(g, c.g, sizeof(float) * c.n);
    /* hand values: |20 d| < 1 gives 0.5 (20 d)^2, else |20 d| - 0.5 */
    double want = 0;
    for (size_t i = 0; i < c.n; i++) {
        double d = 20.0 * ((double)c.y[i] - c.t[i]);
        want += fabs(d) < 1 ? 0.5 * d * d : fabs(d) - 0.5;
    }
    ck_assert_float_eq_tol(huber_loss(&c), want, 1e-5 * want);
    ck_assert(fd_check("smooth L1 (scale 20)", c.y, c.n, g, 1e-4f, huber_loss, &c) <= 1.0);
    free(c.y), free(c.t), free(c.g), free(g);
}
END_TEST

static double nll_loss(void *p) {
    loss_ctx *c = p;
    return vtt_tr_nll_prob(c->y, c->cls, c->v, (int)c->n, 1e-8f, 1.0f, c->g);
}

START_TEST(test_nll) {
    vtt_rng_seed(&rng, 41);
    loss_ctx c = {0};
    c.n = 12, c.v = 5;
    c.y = rvec(c.n * c.v, 0.1f, 1.0f);
    c.g = rvec(c.n * c.v, 0, 0);
    c.cls = malloc(sizeof(int32_t) * c.n);
    for (size_t q = 0; q < c.n; q++)
        c.cls[q] = (int32_t)(q % c.v);
    float *g = malloc(sizeof(float) * c.n * c.v);
    double l = nll_loss(&c);
    memcpy(g, c.g, sizeof(float) * c.n * c.v);
    double want = 0;
    for (size_t q = 0; q < c.n; q++)
        want -= log(c.y[(size_t)c.cls[q] * c.n + q] + 1e-8);
    ck_assert_float_eq_tol(l, want, 1e-9 * fabs(want) + 1e-12);
    ck_assert(fd_check("cross-entropy on probabilities", c.y, c.n * c.v, g, 1e-3f, nll_loss, &c) <=
              1.0);
    free(c.y), free(c.g), free(c.cls), free(g);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The whole training executor (conv, BN in training mode, residual adds, ReLUs)
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    vt_tnet *net;
    vt_tensor x;
    float *r;
} net_ctx;

static double net_loss(void *p) {
    net_ctx *c = p;
    const vt_tensor *out;
    ck_assert_int_eq(vtt_tnet_forward(c->net, &c->x, 0.0f, &out), 0);
    return dot(out->data, c->r, vtm_tensor_numel(out));
}

/*
 * Directional derivatives of the whole network: along the analytic gradient itself and along
 * random unit directions d, (L(w + h d) - L(w - h d)) / 2h must equal g . d within
 * RTOL * |g| + ATOL-sized noise. A step spread over every element of a tensor moves each
 * pre-activation by ~h / sqrt(numel), so ReLU kinks are almost never crossed and the float32
 * noise of L stays far below the signal h |g|; per-element differences of a deep network with
 * batch-norm on tiny batches straddle kinks too often to be derivatives.
 */
static double dir_check(const char *what, float *w, size_t n, const float *g, net_ctx *c) {
    double gn = sqrt(dot(g, g, n));
    float *keep = malloc(sizeof(float) * n), *d = malloc(sizeof(float) * n);
    memcpy(keep, w, sizeof(float) * n);
    double worst = 0.0;
    for (int k = 0; k < 4; k++) {
        double dn = 0.0;
        for (size_t i = 0; i < n; i++) { /* k = 0: along g; else random */
            d[i] = k == 0 ? g[i] : urand(-1, 1);
            dn += (double)d[i] * d[i];
        }
        dn = sqrt(dn);
        for (size_t i = 0; i < n; i++)
            d[i] = (float)(d[i] / dn);
        const double h = 2e-3;
        for (size_t i = 0; i < n; i++)
            w[i] = keep[i] + (float)(h * d[i]);
        double lp = net_loss(c);
        for (size_t i = 0; i < n; i++)
            w[i] = keep[i] - (float)(h * d[i]);
        double lm = net_loss(c);
        memcpy(w, keep, sizeof(float) * n);
        double num = (lp - lm) / (2 * h), ana = dot(g, d, n);
        double r = fabs(num - ana) / (NET_RTOL * gn + 1e-12);
        printf("%-44s %s d%d: numeric %.6g analytic %.6g (|g| %.4g)\n", what,
               r <= 1.0 ? "ok  " : "FAIL", k, num, ana, gn);
        worst = r > worst ? r : worst;
    }
    free(keep), free(d);
    return worst;
}

START_TEST(test_network) {
    /* compact-s8 on 2 x 3 x 48 x 64: every parameter tensor of the table, through every layer
     * kind (conv, BN in training mode, residual add, ReLU) */
    const int wino = _i;
    vtt_rng_seed(&rng, 51);
    vt_model *m;
    char err[256];
    ck_assert_int_eq(vt_model_new("compact-s8", 9, &m, err, sizeof err), 0);
    net_ctx c;
    ck_assert_int_eq(vtt_tnet_new(m, &c.net), 0);
    vtt_tnet_set_winograd(c.net, wino);
    c.x = (vt_tensor){2, 3, 48, 64, rvec(2 * 3 * 48 * 64, -1, 1)};
    const vt_tensor *out;
    ck_assert_int_eq(vtt_tnet_forward(c.net, &c.x, 0.0f, &out), 0);
    size_t no = vtm_tensor_numel(out);
    c.r = rvec(no, -1, 1);
    vt_tensor *g = vtt_tnet_out_grad(c.net);
    memcpy(g->data, c.r, sizeof(float) * no);
    vtt_tnet_zero_grad(c.net);
    ck_assert_int_eq(vtt_tnet_backward(c.net), 0);
    for (int i = 0; i < vtm_model_nparams(m); i++) {
        vt_param *p = vtm_model_param(m, i);
        const float *ana = vtt_tnet_grad(c.net, i);
        if (!ana)
            continue; /* running statistics */
        char name[160];
        snprintf(name, sizeof name, "compact-s8 %s %s", wino ? "wino" : "im2col", p->name);
        ck_assert(dir_check(name, p->data, p->numel, ana, &c) <= 1.0);
    }
    free(c.x.data), free(c.r);
    vtt_tnet_free(&c.net);
    vt_model_free(&m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("grad");
    TCase *tc = tm_add_case(s, "ops", 120, test_relu, test_l2norm, test_smoothl1, test_nll, NULL);
    tcase_add_loop_test(tc, test_conv, 0, (int)TM_LEN(conv_cases));
    tcase_add_loop_test(tc, test_bn, 0, 3);
    tcase_add_loop_test(tc, test_maxpool, 0, 3);
    tcase_add_loop_test(tc, test_attention, 0, 3);
    tc = tm_add_case(s, "network", 300, NULL);
    tcase_add_loop_test(tc, test_network, 0, 2);
    return tm_run(s);
}
