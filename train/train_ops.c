/*
 * train_ops.c - backward passes of the encoder ops, and the training-only ops (batch-norm with
 * batch statistics, L2 normalisation with saved norms, windowed attention, the losses).
 *
 * Every backward accumulates into the gradient buffers it is given, so a tensor read by two
 * consumers (a block's input feeds its first convolution and its residual) simply receives
 * both contributions. Reductions over many elements (batch-norm statistics, bias gradients,
 * softmax sums) end in double: a float chain over 10^5 terms would lose the digits the
 * PyTorch comparison checks.
 */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "train_int.h"

/*
 * Reductions: 16 float lanes over chunks of 1024 elements (the compiler vectorises the lane
 * loop; a float chain would not be, as reassociation is not allowed), each chunk added in
 * double. Every lane adds at most 64 terms, so the float rounding stays near 1e-6 relative.
 */
#define LANES 16
#define CHUNK 1024

static double sum_f(const float *p, size_t n) {
    double s = 0.0;
    size_t i = 0;
    for (; i + CHUNK <= n; i += CHUNK) {
        float acc[LANES] = {0};
        for (size_t k = 0; k < CHUNK; k += LANES)
            for (int j = 0; j < LANES; j++)
                acc[j] += p[i + k + j];
        for (int j = 0; j < LANES; j++)
            s += acc[j];
    }
    for (; i < n; i++)
        s += p[i];
    return s;
}

/* sum (p - mu)^2 */
static double sumsq_f(const float *p, size_t n, float mu) {
    double s = 0.0;
    size_t i = 0;
    for (; i + CHUNK <= n; i += CHUNK) {
        float acc[LANES] = {0};
        for (size_t k = 0; k < CHUNK; k += LANES)
            for (int j = 0; j < LANES; j++) {
                float d = p[i + k + j] - mu;
                acc[j] += d * d;
            }
        for (int j = 0; j < LANES; j++)
            s += acc[j];
    }
    for (; i < n; i++) {
        double d = p[i] - mu;
        s += d * d;
    }
    return s;
}

/* *sd = sum g, *sdx = sum g (z - mu) */
static void sum2_f(const float *g, const float *z, size_t n, float mu, double *sd, double *sdx) {
    double a = 0.0, b = 0.0;
    size_t i = 0;
    for (; i + CHUNK <= n; i += CHUNK) {
        float acc[LANES] = {0}, acx[LANES] = {0};
        for (size_t k = 0; k < CHUNK; k += LANES)
            for (int j = 0; j < LANES; j++) {
                acc[j] += g[i + k + j];
                acx[j] += g[i + k + j] * (z[i + k + j] - mu);
            }
        for (int j = 0; j < LANES; j++)
            a += acc[j], b += acx[j];
    }
    for (; i < n; i++) {
        a += g[i];
        b += (double)g[i] * (z[i] - mu);
    }
    *sd += a;
    *sdx += b;
}

static int is_1x1(const vt_conv *cv) {
    return cv->k == 1 && cv->stride == 1 && cv->pad == 0;
}

size_t vtt_tr_conv_bwd_scratch(const vt_conv *cv, int h, int w) {
    int oh, ow;
    vtm_conv_out_size(cv, h, w, &oh, &ow);
    if (oh <= 0 || ow <= 0 || is_1x1(cv))
        return 0;
    size_t kk = (size_t)cv->cin * cv->k * cv->k;
    /* column block + its gradient */
    return 2 * kk * (size_t)vtm_conv_im2col_rows(cv, oh, ow) * ow;
}

/* x += col2im(col) for output rows [oy0, oy1): the adjoint of vtm_im2col on those rows. */
static void col2im_rows(const vt_conv *cv, const float *col, int h, int w, int oy0, int oy1,
                        float *x) {
    int oh, ow;
    vtm_conv_out_size(cv, h, w, &oh, &ow);
    const int k = cv->k, s = cv->stride, p = cv->pad, d = cv->dil;
    const size_t ncol = (size_t)(oy1 - oy0) * ow;
    for (int ci = 0; ci < cv->cin; ci++) {
        float *xc = x + (size_t)ci * h * w;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const float *row = col + ((size_t)(ci * k + ky) * k + kx) * ncol;
                const int off = kx * d - p;
                /* ox range whose source column is inside the image (as vtm_im2col) */
                int lo, hi;
                vtm_conv_inside(off, s, w, ow, &lo, &hi);
                for (int oy = oy0; oy < oy1; oy++, row += ow) {
                    int iy = vtm_pad_index(oy * s - p + ky * d, h, cv->pad_mode);
                    if (iy < 0)
                        continue;
                    float *xr = xc + (size_t)iy * w;
                    if (cv->pad_mode != VT_PAD_ZEROS)
                        for (int ox = 0; ox < lo; ox++)
                            xr[vtm_pad_index(ox * s + off, w, cv->pad_mode)] += row[ox];
                    if (s == 1) {
                        float *dst = xr + off;
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox] += row[ox];
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            xr[ox * s + off] += row[ox];
                    }
                    if (cv->pad_mode != VT_PAD_ZEROS)
                        for (int ox = hi; ox < ow; ox++)
                            xr[vtm_pad_index(ox * s + off, w, cv->pad_mode)] += row[ox];
                }
            }
    }
}

int vtt_tr_conv_backward(const vt_conv *cv, const vt_tensor *x, const vt_tensor *dz, float *dw,
                         float *db, vt_tensor *dx, float *scratch) {
    if (!cv || !x || !x->data || x->c != cv->cin || !dw || cv->relu)
        return -EINVAL;
    int oh, ow;
    vtm_conv_out_size(cv, x->h, x->w, &oh, &ow);
    if (oh <= 0 || ow <= 0 || vtm_tensor_check(dz, x->n, cv->cout, oh, ow))
        return -EINVAL;
    if (dx && vtm_tensor_check(dx, x->n, x->c, x->h, x->w))
        return -EINVAL;
    const int h = x->h, w = x->w, cin = cv->cin, cout = cv->cout;
    const int kk = cin * cv->k * cv->k;
    const size_t plane = (size_t)oh * ow, xs = (size_t)cin * h * w, zs = (size_t)cout * plane;
    for (int b = 0; b < x->n; b++) {
        const float *xb = x->data + b * xs;
        const float *dzb = dz->data + b * zs;
        float *dxb = dx ? dx->data + b * xs : NULL;
        if (db)
            for (int o = 0; o < cout; o++)
                db[o] += (float)sum_f(dzb + (size_t)o * plane, plane);
        if (is_1x1(cv)) {
            /* dW (cout x cin) += dZ (cout x P) X^T;  dX (cin x P) += W^T dZ */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cout, cin, (int)plane, 1.0f, dzb,
                        (int)plane, xb, (int)plane, 1.0f, dw, cin);
            if (dxb)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cin, (int)plane, cout, 1.0f,
                            cv->w, cin, dzb, (int)plane, 1.0f, dxb, (int)plane);
            continue;
        }
        const int rows = vtm_conv_im2col_rows(cv, oh, ow);
        float *col = scratch;
        float *dcol = scratch + (size_t)kk * rows * ow;
        for (int oy0 = 0; oy0 < oh; oy0 += rows) {
            int oy1 = oy0 + rows < oh ? oy0 + rows : oh;
            int n = (oy1 - oy0) * ow;
            const float *dzt = dzb + (size_t)oy0 * ow;
            vtm_im2col(cv, xb, h, w, oy0, oy1, col);
            /* dW (cout x kk) += dZ_block (cout x n) col^T (n x kk) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cout, kk, n, 1.0f, dzt, (int)plane,
                        col, n, 1.0f, dw, kk);
            if (dxb) {
                /* dcol (kk x n) = W^T (kk x cout) dZ_block (cout x n), scattered back */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kk, n, cout, 1.0f, cv->w, kk,
                            dzt, (int)plane, 0.0f, dcol, n);
                col2im_rows(cv, dcol, h, w, oy0, oy1, dxb);
            }
        }
    }
    return 0;
}

void vtt_tr_bn_forward(const vt_tensor *z, const float *gamma, const float *beta, float eps,
                       float momentum, float *running_mean, float *running_var, float *mean,
                       float *invstd, vt_tensor *y) {
    const int n = z->n, c = z->c;
    const size_t plane = (size_t)z->h * z->w;
    const double M = (double)n * plane;
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int b = 0; b < n; b++)
            s += sum_f(z->data + ((size_t)b * c + ch) * plane, plane);
        const double mu = s / M;
        double v = 0.0; /* two passes: exact enough where sum(x^2) - M mu^2 would cancel */
        for (int b = 0; b < n; b++)
            v += sumsq_f(z->data + ((size_t)b * c + ch) * plane, plane, (float)mu);
        const double var = v / M;
        const double is = 1.0 / sqrt(var + eps);
        mean[ch] = (float)mu;
        invstd[ch] = (float)is;
        if (running_mean) {
            running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mu);
            running_var[ch] = (float)((1.0 - momentum) * running_var[ch] +
                                      momentum * (M > 1 ? var * M / (M - 1) : var));
        }
        const float scale = (float)(gamma[ch] * is),
                    shift = (float)(beta[ch] - mu * gamma[ch] * is);
        for (int b = 0; b < n; b++) {
            const float *p = z->data + ((size_t)b * c + ch) * plane;
            float *q = y->data + ((size_t)b * c + ch) * plane;
            for (size_t i = 0; i < plane; i++)
                q[i] = p[i] * scale + shift;
        }
    }
}

void vtt_tr_bn_backward(const vt_tensor *z, const float *mean, const float *invstd,
                        const float *gamma, const vt_tensor *dy, float *dgamma, float *dbeta,
                        vt_tensor *dz) {
    const int n = z->n, c = z->c;
    const size_t plane = (size_t)z->h * z->w;
    const double M = (double)n * plane;
    for (int ch = 0; ch < c; ch++) {
        const float mu = mean[ch], is = invstd[ch];
        double sd = 0.0, sdx = 0.0;
        for (int b = 0; b < n; b++)
            sum2_f(dy->data + ((size_t)b * c + ch) * plane, z->data + ((size_t)b * c + ch) * plane,
                   plane, mu, &sd, &sdx);
        sdx *= is;
        dgamma[ch] += (float)sdx;
        dbeta[ch] += (float)sd;
        /* dz = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) */
        const float k = gamma[ch] * is;
        const float a = (float)(sd / M), bq = (float)(sdx / M);
        for (int b = 0; b < n; b++) {
            const float *zp = z->data + ((size_t)b * c + ch) * plane;
            const float *dp = dy->data + ((size_t)b * c + ch) * plane;
            float *out = dz->data + ((size_t)b * c + ch) * plane;
            for (size_t i = 0; i < plane; i++) {
                float xh = (zp[i] - mu) * is;
                out[i] = k * (dp[i] - a - xh * bq);
            }
        }
    }
}

void vtt_tr_relu_backward(const float *y, float *d, size_t n) {
    for (size_t i = 0; i < n; i++)
        d[i] = y[i] > 0.0f ? d[i] : 0.0f;
}

int vtt_tr_maxpool_backward(const vt_tensor *x, int k, int stride, int pad, const vt_tensor *dy,
                            vt_tensor *dx) {
    if (!x || !x->data || k < 1 || stride < 1 || pad < 0)
        return -EINVAL;
    int oh = vtm_pool_out(x->h, k, stride, pad, 0), ow = vtm_pool_out(x->w, k, stride, pad, 0);
    if (vtm_tensor_check(dy, x->n, x->c, oh, ow) || vtm_tensor_check(dx, x->n, x->c, x->h, x->w))
        return -EINVAL;
    for (int p = 0; p < x->n * x->c; p++) {
        const float *xp = x->data + (size_t)p * x->h * x->w;
        const float *gp = dy->data + (size_t)p * oh * ow;
        float *dp = dx->data + (size_t)p * x->h * x->w;
        for (int oy = 0; oy < oh; oy++) {
            int y0 = oy * stride - pad, y1 = y0 + k;
            y0 = y0 < 0 ? 0 : y0;
            y1 = y1 > x->h ? x->h : y1;
            for (int ox = 0; ox < ow; ox++) {
                int x0 = ox * stride - pad, x1 = x0 + k;
                x0 = x0 < 0 ? 0 : x0;
                x1 = x1 > x->w ? x->w : x1;
                float m = -INFINITY;
                size_t best = (size_t)y0 * x->w + x0;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        float v = xp[(size_t)iy * x->w + ix];
                        if (v > m || isnan(v)) {
                            m = v;
                            best = (size_t)iy * x->w + ix;
                            if (isnan(v))
                                goto found;
                        }
                    }
            found:
                dp[best] += gp[(size_t)oy * ow + ox];
            }
        }
    }
    return 0;
}

void vtt_tr_l2norm_forward(const vt_tensor *x, float eps, vt_tensor *y, float *nrm) {
    const size_t plane = (size_t)x->h * x->w;
    for (int b = 0; b < x->n; b++) {
        const float *xb = x->data + (size_t)b * x->c * plane;
        float *yb = y->data + (size_t)b * x->c * plane;
        float *nb = nrm + (size_t)b * plane;
        for (size_t p = 0; p < plane; p++)
            nb[p] = 0.0f;
        /* channel-outer loops keep the reads contiguous; the norm accumulates in float over
         * C = 64 terms, then the division uses the double square root */
        for (int c = 0; c < x->c; c++) {
            const float *xc = xb + c * plane;
            for (size_t p = 0; p < plane; p++)
                nb[p] += xc[p] * xc[p];
        }
        for (size_t p = 0; p < plane; p++)
            nb[p] = (float)sqrt((double)nb[p]);
        for (int c = 0; c < x->c; c++) {
            const float *xc = xb + c * plane;
            float *yc = yb + c * plane;
            for (size_t p = 0; p < plane; p++)
                yc[p] = xc[p] / (nb[p] > eps ? nb[p] : eps);
        }
    }
}

void vtt_tr_l2norm_backward(const vt_tensor *y, const float *nrm, float eps, const vt_tensor *dy,
                            vt_tensor *dx) {
    const size_t plane = (size_t)y->h * y->w;
    for (int b = 0; b < y->n; b++) {
        const size_t off = (size_t)b * y->c * plane;
        const float *yb = y->data + off, *gb = dy->data + off;
        float *db = dx->data + off;
        const float *nb = nrm + (size_t)b * plane;
        for (size_t p = 0; p < plane; p++) {
            float dot = 0.0f;
            for (int c = 0; c < y->c; c++)
                dot += yb[c * plane + p] * gb[c * plane + p];
            if (nb[p] > eps) {
                /* y = x/|x|: dx = (dy - y <y, dy>) / |x| */
                float inv = 1.0f / nb[p];
                for (int c = 0; c < y->c; c++)
                    db[c * plane + p] += (gb[c * plane + p] - yb[c * plane + p] * dot) * inv;
            } else {
                for (int c = 0; c < y->c; c++)
                    db[c * plane + p] += gb[c * plane + p] / eps;
            }
        }
    }
}

/* Window of cell q on an h x w grid: rows [*y0, *y1], columns [*x0, *x1] (inclusive). */
static void window(int q, int h, int w, int radius, int *y0, int *y1, int *x0, int *x1) {
    if (radius < 0) {
        *y0 = 0, *y1 = h - 1, *x0 = 0, *x1 = w - 1;
        return;
    }
    int qy = q / w, qx = q % w;
    *y0 = qy - radius < 0 ? 0 : qy - radius;
    *y1 = qy + radius > h - 1 ? h - 1 : qy + radius;
    *x0 = qx - radius < 0 ? 0 : qx - radius;
    *x1 = qx + radius > w - 1 ? w - 1 : qx + radius;
}

void vtt_tr_attn_forward(const float *ft, const float *fr, int c, int h, int w, int radius,
                         float temperature, const float *vals, int v, float *a, float *y) {
    const int n = h * w;
    /* Dense scores with one GEMM, then the window mask: at the training grid (32 x 32 cells)
     * a dense N x N product in BLAS costs less than a scalar loop over the windows. */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, c, 1.0f / temperature, ft, n, fr, n,
                0.0f, a, n);
    for (int q = 0; q < n; q++) {
        int y0, y1, x0, x1;
        window(q, h, w, radius, &y0, &y1, &x0, &x1);
        float *row = a + (size_t)q * n;
        float m = -INFINITY;
        for (int py = y0; py <= y1; py++)
            for (int px = x0; px <= x1; px++)
                m = row[py * w + px] > m ? row[py * w + px] : m;
        double s = 0.0;
        for (int py = y0; py <= y1; py++)
            for (int px = x0; px <= x1; px++) {
                float e = expf(row[py * w + px] - m);
                row[py * w + px] = e;
                s += e;
            }
        const float inv = (float)(1.0 / s);
        if (radius >= 0) {
            memset(row, 0, sizeof(float) * (size_t)y0 * w);
            memset(row + (size_t)(y1 + 1) * w, 0, sizeof(float) * (size_t)(h - 1 - y1) * w);
        }
        for (int py = y0; py <= y1; py++) {
            float *r = row + (size_t)py * w;
            for (int px = 0; px < x0; px++)
                r[px] = 0.0f;
            for (int px = x0; px <= x1; px++)
                r[px] *= inv;
            for (int px = x1 + 1; px < w; px++)
                r[px] = 0.0f;
        }
    }
    /* y (v x N) = vals (v x N) a^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, v, n, n, 1.0f, vals, n, a, n, 0.0f, y, n);
}

void vtt_tr_attn_backward(const float *ft, const float *fr, int c, int h, int w, float temperature,
                          const float *vals, int v, const float *a, const float *dy, float *da,
                          float *dft, float *dfr) {
    const int n = h * w;
    /* da (N x N) = dy^T (N x v) vals (v x N) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, v, 1.0f, dy, n, vals, n, 0.0f, da,
                n);
    /* softmax backward, then the 1/T of the scores: ds = a (da - <a, da>) / T; a = 0 outside
     * the window, so ds is too */
    const float invt = 1.0f / temperature;
    for (int q = 0; q < n; q++) {
        const float *ar = a + (size_t)q * n;
        float *dr = da + (size_t)q * n;
        double dot = 0.0;
        for (int p = 0; p < n; p++)
            dot += (double)ar[p] * dr[p];
        const float d = (float)dot;
        for (int p = 0; p < n; p++)
            dr[p] = ar[p] * (dr[p] - d) * invt;
    }
    /* dft[c][q] += sum_p fr[c][p] ds[q][p];  dfr[c][p] += sum_q ft[c][q] ds[q][p] */
    if (dft)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c, n, n, 1.0f, fr, n, da, n, 1.0f, dft,
                    n);
    if (dfr)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c, n, n, 1.0f, ft, n, da, n, 1.0f,
                    dfr, n);
}

double vtt_tr_smoothl1(const float *y, const float *t, size_t n, float scale, float gscale,
                       float *dy) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        float d = scale * (y[i] - t[i]);
        float ad = fabsf(d);
        if (ad < 1.0f) {
            s += 0.5 * (double)d * d;
            dy[i] = d * scale * gscale;
        } else {
            s += ad - 0.5;
            dy[i] = (d > 0.0f ? scale : -scale) * gscale;
        }
    }
    return s;
}

double vtt_tr_nll_prob(const float *p, const int32_t *cls, int v, int n, float eps, float gscale,
                       float *dp) {
    double s = 0.0;
    memset(dp, 0, sizeof(float) * (size_t)v * n);
    for (int q = 0; q < n; q++) {
        float pq = p[(size_t)cls[q] * n + q] + eps;
        s -= log((double)pq);
        dp[(size_t)cls[q] * n + q] = -gscale / pq;
    }
    return s;
}
