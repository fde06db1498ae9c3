/*
 * ops.c - the element-wise, pooling, resize and normalisation ops, and batch-norm folding.
 * Semantics follow PyTorch's functional ops, named at each function.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "nn.h"

void vtm_bn_fold(const float *w, const float *b, int cout, int fan, const float *gamma,
                 const float *beta, const float *mean, const float *var, float eps, float *w_out,
                 float *b_out) {
    for (int o = 0; o < cout; o++) {
        /* Double precision for the scale: var + eps can be tiny and the fold happens once. */
        double s = (double)gamma[o] / sqrt((double)var[o] + (double)eps);
        const float *wo = w + (size_t)o * fan;
        float *dst = w_out + (size_t)o * fan;
        for (int i = 0; i < fan; i++)
            dst[i] = (float)(wo[i] * s);
        double bo = b ? b[o] : 0.0;
        b_out[o] = (float)((bo - mean[o]) * s + beta[o]);
    }
}

void vtm_relu(vt_tensor *x) {
    size_t n = vtm_tensor_numel(x);
    float *d = x->data;
    for (size_t i = 0; i < n; i++)
        d[i] = d[i] > 0.0f ? d[i] : 0.0f;
}

int vtm_add(const vt_tensor *a, const vt_tensor *b, int relu, vt_tensor *y) {
    if (!a || vtm_tensor_check(b, a->n, a->c, a->h, a->w) ||
        vtm_tensor_check(y, a->n, a->c, a->h, a->w) || !a->data)
        return -EINVAL;
    size_t n = vtm_tensor_numel(a);
    for (size_t i = 0; i < n; i++) {
        float v = a->data[i] + b->data[i];
        y->data[i] = relu && v < 0.0f ? 0.0f : v;
    }
    return 0;
}

int vtm_pool_out(int in, int k, int stride, int pad, int ceil_mode) {
    int span = in + 2 * pad - k;
    if (span < 0 || stride < 1)
        return 0;
    int out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    /* PyTorch: in ceil mode the last window must start inside the input or left padding. */
    if (ceil_mode && (out - 1) * stride >= in + pad)
        out--;
    return out;
}

/* The 3x3 stride-2 pool of every ResNet stem, separably: the vertical max of the window's rows
 * into one row (contiguous, vectorised), then the horizontal max at stride 2. */
#define POOL_ROW_MAX 8192
static void maxpool_3s2(const float *xp, int h, int w, int pad, float *yp, int oh, int ow) {
    float vm[POOL_ROW_MAX + 4];
    for (int oy = 0; oy < oh; oy++) {
        int y0 = 2 * oy - pad, y1 = y0 + 3;
        y0 = y0 < 0 ? 0 : y0;
        y1 = y1 > h ? h : y1;
        const float *r = xp + (size_t)y0 * w;
        for (int j = 0; j < w; j++)
            vm[j] = r[j];
        for (int iy = y0 + 1; iy < y1; iy++) {
            r = xp + (size_t)iy * w;
            for (int j = 0; j < w; j++)
                vm[j] = vm[j] > r[j] ? vm[j] : r[j];
        }
        float *yr = yp + (size_t)oy * ow;
        /* Interior columns: window 2*ox - pad .. 2*ox - pad + 2 inside [0, w). */
        int lo = (pad + 1) / 2, hi = (w - 3 + pad) / 2 + 1;
        if (w - 3 + pad < 0)
            hi = 0;
        if (hi > ow)
            hi = ow;
        if (lo > hi)
            lo = hi;
        const float *q = vm - pad;
        for (int ox = lo; ox < hi; ox++) {
            float a = q[2 * ox], b = q[2 * ox + 1], c = q[2 * ox + 2];
            float m = a > b ? a : b;
            yr[ox] = m > c ? m : c;
        }
        for (int ox = 0; ox < ow; ox++) {
            if (ox == lo)
                ox = hi;
            if (ox >= ow)
                break;
            float m = -INFINITY;
            for (int ix = 2 * ox - pad; ix < 2 * ox - pad + 3; ix++)
                if (ix >= 0 && ix < w)
                    m = m > vm[ix] ? m : vm[ix];
            yr[ox] = m;
        }
    }
}

int vtm_maxpool2d(const vt_tensor *x, int k, int stride, int pad, vt_tensor *y) {
    if (!x || !x->data || k < 1 || stride < 1 || pad < 0 || 2 * pad > k)
        return -EINVAL;
    int oh = vtm_pool_out(x->h, k, stride, pad, 0), ow = vtm_pool_out(x->w, k, stride, pad, 0);
    if (oh <= 0 || ow <= 0 || vtm_tensor_check(y, x->n, x->c, oh, ow))
        return -EINVAL;
    const int h = x->h, w = x->w;
    /* NaN is not propagated (PyTorch's max-pool propagates it): the networks here pool ReLU
     * outputs, and vtm_relu maps NaN to 0, so no NaN reaches a pool. */
    if (k == 3 && stride == 2 && w <= POOL_ROW_MAX) {
        for (int p = 0; p < x->n * x->c; p++)
            maxpool_3s2(x->data + (size_t)p * h * w, h, w, pad, y->data + (size_t)p * oh * ow, oh,
                        ow);
        return 0;
    }
    for (int p = 0; p < x->n * x->c; p++) {
        const float *xp = x->data + (size_t)p * h * w;
        float *yp = y->data + (size_t)p * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            int y0 = oy * stride - pad, y1 = y0 + k;
            y0 = y0 < 0 ? 0 : y0;
            y1 = y1 > h ? h : y1;
            for (int ox = 0; ox < ow; ox++) {
                int x0 = ox * stride - pad, x1 = x0 + k;
                x0 = x0 < 0 ? 0 : x0;
                x1 = x1 > w ? w : x1;
                float m = -INFINITY;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        float v = xp[(size_t)iy * w + ix];
                        m = m > v ? m : v;
                    }
                yp[(size_t)oy * ow + ox] = m;
            }
        }
    }
    return 0;
}

int vtm_avgpool2d(const vt_tensor *x, int k, int stride, int ceil_mode, vt_tensor *y) {
    if (!x || !x->data || k < 1 || stride < 1)
        return -EINVAL;
    int oh = vtm_pool_out(x->h, k, stride, 0, ceil_mode);
    int ow = vtm_pool_out(x->w, k, stride, 0, ceil_mode);
    if (oh <= 0 || ow <= 0 || vtm_tensor_check(y, x->n, x->c, oh, ow))
        return -EINVAL;
    for (int p = 0; p < x->n * x->c; p++) {
        const float *xp = x->data + (size_t)p * x->h * x->w;
        float *yp = y->data + (size_t)p * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            int y0 = oy * stride, y1 = y0 + k > x->h ? x->h : y0 + k;
            for (int ox = 0; ox < ow; ox++) {
                int x0 = ox * stride, x1 = x0 + k > x->w ? x->w : x0 + k;
                double s = 0.0;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        s += xp[(size_t)iy * x->w + ix];
                yp[(size_t)oy * ow + ox] = (float)(s / ((y1 - y0) * (x1 - x0)));
            }
        }
    }
    return 0;
}

/* Source coordinate of output index i for align_corners=False, as PyTorch's
 * area_pixel_compute_source_index: scale*(i + 0.5) - 0.5, clamped at 0. */
static void bilinear_coords(int in, int out, int i, int *i0, int *i1, float *l1) {
    float scale = (float)in / (float)out;
    float src = scale * ((float)i + 0.5f) - 0.5f;
    if (src < 0.0f)
        src = 0.0f;
    int a = (int)src;
    if (a > in - 1)
        a = in - 1;
    *i0 = a;
    *i1 = a + (a < in - 1 ? 1 : 0);
    *l1 = src - (float)a;
}

int vtm_resize_bilinear(const vt_tensor *x, vt_tensor *y) {
    if (!x || !x->data || !y || x->h < 1 || x->w < 1 || y->h < 1 || y->w < 1 ||
        vtm_tensor_check(y, x->n, x->c, y->h, y->w))
        return -EINVAL;
    if (y->data == x->data)
        return -EINVAL;
    for (int p = 0; p < x->n * x->c; p++) {
        const float *xp = x->data + (size_t)p * x->h * x->w;
        float *yp = y->data + (size_t)p * y->h * y->w;
        for (int oy = 0; oy < y->h; oy++) {
            int y0, y1;
            float ly;
            bilinear_coords(x->h, y->h, oy, &y0, &y1, &ly);
            const float *ra = xp + (size_t)y0 * x->w, *rb = xp + (size_t)y1 * x->w;
            for (int ox = 0; ox < y->w; ox++) {
                int x0, x1;
                float lx;
                bilinear_coords(x->w, y->w, ox, &x0, &x1, &lx);
                float top = (1.0f - lx) * ra[x0] + lx * ra[x1];
                float bot = (1.0f - lx) * rb[x0] + lx * rb[x1];
                yp[(size_t)oy * y->w + ox] = (1.0f - ly) * top + ly * bot;
            }
        }
    }
    return 0;
}

void vtm_l2norm_channels(vt_tensor *x, float eps) {
    const size_t plane = (size_t)x->h * x->w;
    for (int b = 0; b < x->n; b++) {
        float *xb = x->data + (size_t)b * x->c * plane;
        for (size_t p = 0; p < plane; p++) {
            double s = 0.0;
            for (int c = 0; c < x->c; c++)
                s += (double)xb[c * plane + p] * xb[c * plane + p];
            double n = sqrt(s);
            float inv = (float)(1.0 / (n > eps ? n : eps));
            for (int c = 0; c < x->c; c++)
                xb[c * plane + p] *= inv;
        }
    }
}
