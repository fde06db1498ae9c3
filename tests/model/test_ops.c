/*
 * Ops against independent truth: convolution (every algorithm) against a direct loop over an
 * explicitly padded image, im2col/col2im adjointness, batch-norm folding against the unfolded
 * computation, pooling against direct loops, bilinear resize and average pooling against values
 * computed by hand from PyTorch's definitions (and checked with torch 1.13), L2 normalisation.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testmain.h"
#include "nn.h"

static uint64_t rng = 42;

static float frand(void) { /* uniform [-1, 1) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

static float *rand_buf(size_t n) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

/* Reference convolution: pad explicitly (zeros, or reflection as numpy.pad(mode='reflect')),
 * then correlate with double accumulation. */
static void conv_ref(int n, int cin, int h, int w, const float *x, int cout, int k, int s, int p,
                     int d, int reflect, const float *wt, const float *b, const float *res,
                     int relu, int oh, int ow, float *y) {
    int hp = h + 2 * p, wp = w + 2 * p;
    double *xp = calloc((size_t)cin * hp * wp, sizeof *xp);
    for (int bi = 0; bi < n; bi++) {
        for (int c = 0; c < cin; c++)
            for (int i = 0; i < hp; i++)
                for (int j = 0; j < wp; j++) {
                    int si = i - p, sj = j - p;
                    double v = 0.0;
                    if (reflect) {
                        si = si < 0 ? -si : (si >= h ? 2 * (h - 1) - si : si);
                        sj = sj < 0 ? -sj : (sj >= w ? 2 * (w - 1) - sj : sj);
                        v = x[(((size_t)bi * cin + c) * h + si) * w + sj];
                    } else if (si >= 0 && si < h && sj >= 0 && sj < w) {
                        v = x[(((size_t)bi * cin + c) * h + si) * w + sj];
                    }
                    xp[((size_t)c * hp + i) * wp + j] = v;
                }
        for (int o = 0; o < cout; o++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < cin; c++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++)
                                acc +=
                                    wt[(((size_t)o * cin + c) * k + ky) * k + kx] *
                                    xp[((size_t)c * hp + oy * s + ky * d) * wp + ox * s + kx * d];
                    size_t yi = (((size_t)bi * cout + o) * oh + oy) * ow + ox;
                    if (res)
                        acc += res[yi];
                    y[yi] = (float)(relu && acc < 0 ? 0.0 : acc);
                }
    }
    free(xp);
}

static const struct conv_case {
    const char *what;
    int n, cin, cout, h, w, k, s, p, d, reflect, bias, relu, res;
} conv_cases[] = {
    {"3x3 same", 1, 5, 7, 9, 11, 3, 1, 1, 1, 0, 1, 1, 0},
    {"3x3 same + residual", 2, 4, 4, 8, 6, 3, 1, 1, 1, 0, 1, 1, 1},
    {"3x3 residual no relu", 1, 3, 6, 7, 7, 3, 1, 1, 1, 0, 0, 0, 1},
    {"1x1 map, 3x3 pad 1", 1, 6, 5, 1, 1, 3, 1, 1, 1, 0, 1, 0, 0},
    {"1x1 map, 7x7 stride 2 pad 3", 1, 3, 4, 1, 1, 7, 2, 3, 1, 0, 1, 1, 0},
    {"1x1 conv", 1, 16, 8, 5, 7, 1, 1, 0, 1, 0, 1, 1, 0},
    {"1x1 conv stride 2", 2, 8, 8, 9, 7, 1, 2, 0, 1, 0, 0, 0, 0},
    {"stride > kernel", 1, 3, 5, 13, 10, 2, 3, 0, 1, 0, 1, 0, 0},
    {"padding > kernel radius", 1, 4, 3, 5, 6, 3, 1, 3, 1, 0, 1, 0, 0},
    {"padding > kernel radius, stride 2", 1, 2, 3, 4, 4, 3, 2, 4, 1, 0, 0, 0, 0},
    {"dilation 2", 1, 3, 4, 12, 11, 3, 1, 2, 2, 0, 1, 1, 0},
    {"dilation 3 stride 2", 1, 3, 2, 15, 13, 3, 2, 1, 3, 0, 1, 0, 0},
    {"7x7 stride 2 pad 3", 1, 3, 8, 17, 23, 7, 2, 3, 1, 0, 0, 1, 0},
    {"3x3 stride 2 odd", 1, 5, 6, 11, 9, 3, 2, 1, 1, 0, 1, 1, 0},
    {"even kernel", 1, 3, 3, 8, 9, 4, 1, 2, 1, 0, 1, 0, 0},
    {"reflect 3x3", 1, 4, 5, 7, 9, 3, 1, 1, 1, 1, 1, 1, 0},
    {"reflect 7x7 stride 2", 1, 3, 4, 10, 12, 7, 2, 3, 1, 1, 0, 1, 0},
    {"reflect 3x3 pad 2 dil 2", 1, 2, 3, 6, 5, 3, 1, 2, 2, 1, 1, 0, 0},
    {"3x3 same, odd sizes, wide", 1, 16, 24, 13, 37, 3, 1, 1, 1, 0, 1, 1, 1},
    {"3x3 no padding", 1, 4, 4, 6, 9, 3, 1, 0, 1, 0, 1, 0, 0},
    {"3x3 padding 2", 1, 4, 4, 5, 5, 3, 1, 2, 1, 0, 1, 0, 0},
    {"3x3 on 2x1", 1, 3, 3, 2, 1, 3, 1, 1, 1, 0, 1, 0, 0},
    /* wide enough for the 16-tile SIMD transforms of both Winograd variants, plus a tail */
    {"3x3 wide rows", 1, 8, 12, 11, 150, 3, 1, 1, 1, 0, 1, 1, 1},
    {"3x3 wide rows, reflect", 2, 5, 6, 9, 70, 3, 1, 1, 1, 1, 1, 0, 0},
};

/* The case's convolution, without weights. */
static vt_conv case_conv(const struct conv_case *t) {
    return (vt_conv){.cin = t->cin,
                     .cout = t->cout,
                     .k = t->k,
                     .stride = t->s,
                     .pad = t->p,
                     .dil = t->d,
                     .pad_mode = t->reflect ? VT_PAD_REFLECT : VT_PAD_ZEROS,
                     .relu = t->relu};
}

static void run_conv_case(const struct conv_case *t, vt_conv_algo algo) {
    vt_conv cv = case_conv(t);
    int oh, ow;
    vtm_conv_out_size(&cv, t->h, t->w, &oh, &ow);
    ck_assert_int_gt(oh, 0);
    ck_assert_int_gt(ow, 0);
    size_t xn = (size_t)t->n * t->cin * t->h * t->w, yn = (size_t)t->n * t->cout * oh * ow;
    float *x = rand_buf(xn), *wt = rand_buf((size_t)t->cout * t->cin * t->k * t->k);
    float *b = t->bias ? rand_buf(t->cout) : NULL, *res = t->res ? rand_buf(yn) : NULL;
    float *y = calloc(yn, sizeof *y), *yr = calloc(yn, sizeof *yr), *u = NULL;
    cv.w = wt;
    cv.b = b;
    if (algo == VT_CONV_WINO) {
        u = malloc(sizeof(float) * vtm_wino_size(t->cin, t->cout));
        vtm_wino_weights(wt, t->cin, t->cout, u);
        cv.wino = u;
    } else if (algo == VT_CONV_WINO4) {
        u = malloc(sizeof(float) * vtm_wino4_size(t->cin, t->cout));
        vtm_wino4_weights(wt, t->cin, t->cout, u);
        cv.wino4 = u;
    }
    float *scratch = malloc(sizeof(float) * (vtm_conv_scratch(&cv, algo, t->h, t->w) + 1));
    vt_tensor tx = {t->n, t->cin, t->h, t->w, x}, ty = {t->n, t->cout, oh, ow, y};
    vt_tensor tr = {t->n, t->cout, oh, ow, res};
    ck_assert_int_eq(vtm_conv2d(&cv, algo, &tx, res ? &tr : NULL, &ty, scratch), 0);
    conv_ref(t->n, t->cin, t->h, t->w, x, t->cout, t->k, t->s, t->p, t->d, t->reflect, wt, b, res,
             t->relu, oh, ow, yr);
    float maxref = 0, maxerr = 0;
    for (size_t i = 0; i < yn; i++) {
        maxref = fmaxf(maxref, fabsf(yr[i]));
        maxerr = fmaxf(maxerr, fabsf(yr[i] - y[i]));
    }
    ck_assert_msg(maxerr <= 1e-5f * fmaxf(maxref, 1.0f), "%s (algo %d): max error %g (max %g)",
                  t->what, algo, maxerr, maxref);
    free(x), free(wt), free(b), free(res), free(y), free(yr), free(u), free(scratch);
}

START_TEST(test_conv_im2col) {
    run_conv_case(&conv_cases[_i], VT_CONV_IM2COL);
}
END_TEST

START_TEST(test_conv_auto_and_special) {
    const struct conv_case *t = &conv_cases[_i];
    run_conv_case(t, VT_CONV_AUTO);
    if (t->k == 1 && t->s == 1 && t->p == 0)
        run_conv_case(t, VT_CONV_1X1);
    if (t->k == 3 && t->s == 1 && t->d == 1) {
        run_conv_case(t, VT_CONV_WINO);
        run_conv_case(t, VT_CONV_WINO4);
    }
}
END_TEST

START_TEST(test_conv_rejects) {
    float x[2 * 4 * 4] = {0}, w[2 * 2 * 9] = {0}, y[2 * 4 * 4], s[4096];
    vt_conv cv = {.cin = 2, .cout = 2, .k = 3, .stride = 2, .pad = 1, .dil = 1, .w = w};
    vt_tensor tx = {1, 2, 4, 4, x}, ty = {1, 2, 4, 4, y};
    /* Wrong output shape (stride 2 gives 2x2), Winograd on stride 2, 1x1 path on a 3x3. */
    ck_assert_int_eq(vtm_conv2d(&cv, VT_CONV_AUTO, &tx, NULL, &ty, s), -EINVAL);
    ty.h = ty.w = 2;
    ck_assert_int_eq(vtm_conv2d(&cv, VT_CONV_WINO, &tx, NULL, &ty, s), -EINVAL);
    ck_assert_int_eq(vtm_conv2d(&cv, VT_CONV_1X1, &tx, NULL, &ty, s), -EINVAL);
    ck_assert_int_eq(vtm_conv2d(&cv, VT_CONV_AUTO, &tx, NULL, &ty, s), 0);
    tx.c = 3; /* channel mismatch */
    ck_assert_int_eq(vtm_conv2d(&cv, VT_CONV_AUTO, &tx, NULL, &ty, s), -EINVAL);
    /* Reflection padding must be smaller than the image, as PyTorch requires. */
    tx.c = 2;
    tx.h = tx.w = 1;
    cv.pad_mode = VT_PAD_REFLECT;
    cv.stride = 1;
    ty.h = ty.w = 1;
    ck_assert_int_eq(vtm_conv2d(&cv, VT_CONV_AUTO, &tx, NULL, &ty, s), -EINVAL);
}
END_TEST

START_TEST(test_col2im_adjoint) {
    /* <im2col(x), c> = <x, col2im(c)> for every geometry, reflect included. */
    for (size_t t = 0; t < sizeof conv_cases / sizeof conv_cases[0]; t++) {
        const struct conv_case *q = &conv_cases[t];
        vt_conv cv = case_conv(q); /* im2col and col2im leave out the ReLU */
        int oh, ow;
        vtm_conv_out_size(&cv, q->h, q->w, &oh, &ow);
        size_t xn = (size_t)q->cin * q->h * q->w, cn = (size_t)q->cin * q->k * q->k * oh * ow;
        float *x = rand_buf(xn), *c = rand_buf(cn), *col = malloc(sizeof(float) * cn);
        float *xt = calloc(xn, sizeof(float));
        vtm_im2col(&cv, x, q->h, q->w, 0, oh, col);
        vtm_col2im(&cv, c, q->h, q->w, xt);
        double a = 0, b = 0;
        for (size_t i = 0; i < cn; i++)
            a += (double)col[i] * c[i];
        for (size_t i = 0; i < xn; i++)
            b += (double)x[i] * xt[i];
        ck_assert_msg(fabs(a - b) <= 1e-4 * (fabs(a) + 1), "%s: %g vs %g", q->what, a, b);
        free(x), free(c), free(col), free(xt);
    }
}
END_TEST

START_TEST(test_bn_fold) {
    /* conv then BN (unfolded, by hand) equals the folded conv. */
    enum { CIN = 3, COUT = 4, H = 5, W = 6, K = 3 };
    float *x = rand_buf(CIN * H * W), *w = rand_buf(COUT * CIN * K * K), *b = rand_buf(COUT);
    float g[COUT], be[COUT], mu[COUT], var[COUT];
    for (int o = 0; o < COUT; o++) {
        g[o] = 0.5f + frand() * 0.4f;
        be[o] = frand();
        mu[o] = frand();
        var[o] = 0.2f + 0.5f * (frand() + 1.0f);
    }
    float yraw[COUT * H * W], yfold[COUT * H * W], wf[COUT * CIN * K * K], bf[COUT];
    conv_ref(1, CIN, H, W, x, COUT, K, 1, 1, 1, 0, w, b, NULL, 0, H, W, yraw);
    vtm_bn_fold(w, b, COUT, CIN * K * K, g, be, mu, var, VT_BN_EPS, wf, bf);
    conv_ref(1, CIN, H, W, x, COUT, K, 1, 1, 1, 0, wf, bf, NULL, 0, H, W, yfold);
    for (int o = 0; o < COUT; o++)
        for (int i = 0; i < H * W; i++) {
            float want = (yraw[o * H * W + i] - mu[o]) / sqrtf(var[o] + VT_BN_EPS) * g[o] + be[o];
            ck_assert_float_eq_tol(yfold[o * H * W + i], want, 1e-5f * (1 + fabsf(want)));
        }
    /* Without a conv bias, and folding in place. */
    vtm_bn_fold(w, NULL, COUT, CIN * K * K, g, be, mu, var, VT_BN_EPS, w, b);
    for (int o = 0; o < COUT; o++)
        ck_assert_float_eq_tol(b[o], -mu[o] / sqrtf(var[o] + VT_BN_EPS) * g[o] + be[o], 1e-6f);
    free(x), free(w), free(b);
}
END_TEST

START_TEST(test_maxpool) {
    static const int geo[][4] = {{3, 2, 1, 0}, {3, 2, 0, 0}, {2, 2, 0, 0}, {3, 3, 1, 0},
                                 {1, 3, 0, 0}, {3, 1, 1, 0}, {4, 2, 2, 0}};
    static const int widths[] = {1, 2, 4, 7, 10, 37};
    for (size_t g = 0; g < sizeof geo / sizeof geo[0]; g++) {
        int k = geo[g][0], s = geo[g][1], p = geo[g][2];
        for (int h = 1; h <= 9; h += 4)
            for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
                int w = widths[wi];
                int oh = vtm_pool_out(h, k, s, p, 0), ow = vtm_pool_out(w, k, s, p, 0);
                if (oh <= 0 || ow <= 0)
                    continue;
                float *x = rand_buf(2 * h * w), *y = malloc(sizeof(float) * 2 * oh * ow);
                vt_tensor tx = {1, 2, h, w, x}, ty = {1, 2, oh, ow, y};
                ck_assert_int_eq(vtm_maxpool2d(&tx, k, s, p, &ty), 0);
                for (int c = 0; c < 2; c++)
                    for (int oy = 0; oy < oh; oy++)
                        for (int ox = 0; ox < ow; ox++) {
                            float m = -INFINITY;
                            for (int i = 0; i < k; i++)
                                for (int j = 0; j < k; j++) {
                                    int iy = oy * s - p + i, ix = ox * s - p + j;
                                    if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                        m = fmaxf(m, x[(c * h + iy) * w + ix]);
                                }
                            ck_assert_float_eq(y[(c * oh + oy) * ow + ox], m);
                        }
                free(x), free(y);
            }
    }
    /* 3/2 pad 1 on 7 gives 4, as torch.nn.MaxPool2d(3, 2, 1). */
    ck_assert_int_eq(vtm_pool_out(7, 3, 2, 1, 0), 4);
    ck_assert_int_eq(vtm_pool_out(240, 3, 2, 1, 0), 120);
}
END_TEST

START_TEST(test_avgpool) {
    /* avg_pool2d(arange(25).view(5,5), 3, 3, ceil_mode=True) = [[6, 8.5], [18.5, 21]]: the
     * right and bottom windows are partial and divide by the pixels they cover. */
    float x[25], y[4];
    for (int i = 0; i < 25; i++)
        x[i] = (float)i;
    vt_tensor tx = {1, 1, 5, 5, x}, ty = {1, 1, 2, 2, y};
    ck_assert_int_eq(vtm_avgpool2d(&tx, 3, 3, 1, &ty), 0);
    const float want[4] = {6.0f, 8.5f, 18.5f, 21.0f};
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(y[i], want[i], 1e-6f);
    /* Floor mode drops the partial windows: one 3x3 window, mean of 0..2,5..7,10..12 = 6. */
    ty.h = ty.w = 1;
    ck_assert_int_eq(vtm_avgpool2d(&tx, 3, 3, 0, &ty), 0);
    ck_assert_float_eq_tol(y[0], 6.0f, 1e-6f);
}
END_TEST

START_TEST(test_bilinear) {
    /* 2x2 -> 4x4: source coordinate (i + 0.5)/2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped
     * below at 0 and at the last pixel above. */
    float x[4] = {1, 2, 3, 4}, y[16];
    vt_tensor tx = {1, 1, 2, 2, x}, ty = {1, 1, 4, 4, y};
    ck_assert_int_eq(vtm_resize_bilinear(&tx, &ty), 0);
    const float w1[16] = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                          2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
    for (int i = 0; i < 16; i++)
        ck_assert_float_eq_tol(y[i], w1[i], 1e-6f);
    /* The ramp 4y + x (3x4) to 2x3: rows sample y = 0.25, 1.75 (scale 1.5), columns
     * x = 1/6, 1.5, 17/6 (scale 4/3), so values are 4 sy + sx. */
    float r[12], z[6];
    for (int i = 0; i < 12; i++)
        r[i] = (float)i;
    vt_tensor tr = {1, 1, 3, 4, r}, tz = {1, 1, 2, 3, z};
    ck_assert_int_eq(vtm_resize_bilinear(&tr, &tz), 0);
    const float w2[6] = {1.0f + 1.0f / 6, 2.5f, 1.0f + 17.0f / 6,
                         7.0f + 1.0f / 6, 8.5f, 7.0f + 17.0f / 6};
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq_tol(z[i], w2[i], 1e-5f);
    /* Upsampling the ramp to 5x7 (scale 0.6 and 4/7): first row and column clamp to 0, last
     * row samples y = 2.2 -> clamped to row 2, so row 4 = 8 + sx. */
    float u[35];
    vt_tensor tu = {1, 1, 5, 7, u};
    ck_assert_int_eq(vtm_resize_bilinear(&tr, &tu), 0);
    const float row0[7] = {0.0f, 0.357143f, 0.928571f, 1.5f, 2.071429f, 2.642857f, 3.0f};
    for (int j = 0; j < 7; j++) {
        ck_assert_float_eq_tol(u[j], row0[j], 1e-5f);
        ck_assert_float_eq_tol(u[28 + j], 8.0f + row0[j], 1e-5f);
        ck_assert_float_eq_tol(u[7 + j], 1.6f + row0[j], 1e-5f); /* y = 0.4 */
    }
}
END_TEST

START_TEST(test_l2norm_add_relu) {
    float x[2 * 3] = {3, 0, -1, 4, 0, 0}; /* pixels: (3,4), (0,0), (-1,0) */
    vt_tensor t = {1, 2, 1, 3, x};
    vtm_l2norm_channels(&t, 1e-12f);
    ck_assert_float_eq_tol(x[0], 0.6f, 1e-6f);
    ck_assert_float_eq_tol(x[3], 0.8f, 1e-6f);
    ck_assert_float_eq(x[1], 0.0f); /* zero vector stays zero (eps) */
    ck_assert_float_eq_tol(x[2], -1.0f, 1e-6f);
    float a[4] = {1, -2, 3, -4}, b[4] = {-2, 1, 1, 1}, y[4];
    vt_tensor ta = {1, 1, 2, 2, a}, tb = {1, 1, 2, 2, b}, ty = {1, 1, 2, 2, y};
    ck_assert_int_eq(vtm_add(&ta, &tb, 1, &ty), 0);
    ck_assert_float_eq(y[0], 0.0f);
    ck_assert_float_eq(y[2], 4.0f);
    ck_assert_int_eq(vtm_add(&ta, &tb, 0, &ta), 0);
    ck_assert_float_eq(a[1], -1.0f);
    vtm_relu(&ta);
    ck_assert_float_eq(a[1], 0.0f);
    ck_assert_float_eq(a[2], 4.0f);
}
END_TEST

START_TEST(test_arena) {
    vt_arena a = {0};
    ck_assert_int_eq(vtm_arena_reserve(&a, 100), 0);
    float *p = vtm_arena_take(&a, 10), *q = vtm_arena_take(&a, 10);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq((int)(q - p), 16); /* 64-byte slices */
    ck_assert_int_eq((int)((uintptr_t)q % 64), 0);
    float *base = a.base;
    ck_assert_int_eq(vtm_arena_reserve(&a, 50), 0); /* big enough: kept */
    ck_assert_ptr_eq(a.base, base);
    ck_assert_ptr_null(vtm_arena_take(&a, 1000));
    vtm_arena_free(&a);
    vtm_arena_free(&a);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ops");
    int nconv = (int)TM_LEN(conv_cases);
    TCase *tc = tm_add_case(s, "core", 60, test_conv_rejects, test_col2im_adjoint, test_bn_fold,
                            test_maxpool, test_avgpool, test_bilinear, test_l2norm_add_relu,
                            test_arena, NULL);
    tcase_add_loop_test(tc, test_conv_im2col, 0, nconv);
    tcase_add_loop_test(tc, test_conv_auto_and_special, 0, nconv);
    return tm_run(s);
}
