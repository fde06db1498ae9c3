/*
 * shape.c - object shapes: validation and deep copies, and rasterisation into a mask. A pixel
 * belongs to a box or a polygon when its centre lies inside (even-odd rule for polygons).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "track_int.h"
#include "vt_model.h"

int vt_shape_copy(vt_shape *dst, const vt_shape *src, char *err, size_t errlen) {
    memset(dst, 0, sizeof *dst);
    switch (src->kind) {
    case VT_SHAPE_MASK:
    case VT_SHAPE_LABELS: {
        if (src->w <= 0 || src->h <= 0 || !src->data || src->w > 16384 || src->h > 16384) {
            vt_fmt(err, errlen, "mask size %dx%d invalid", src->w, src->h);
            return -EINVAL;
        }
        size_t n = (size_t)src->w * src->h;
        uint8_t *d = malloc(n);
        if (!d)
            return -ENOMEM;
        memcpy(d, src->data, n);
        *dst = *src;
        dst->data = d;
        return 0;
    }
    case VT_SHAPE_BOX:
        for (int i = 0; i < 4; i++)
            if (!isfinite(src->box[i])) {
                vt_fmt(err, errlen, "box coordinate %d is not finite", i);
                return -EINVAL;
            }
        if (!(src->box[2] > 0) || !(src->box[3] > 0)) {
            vt_fmt(err, errlen, "box width and height must be positive");
            return -EINVAL;
        }
        *dst = *src;
        dst->data = NULL, dst->points = NULL;
        return 0;
    case VT_SHAPE_POLYGON: {
        if (src->npoints < 3 || src->npoints > 100000 || !src->points) {
            vt_fmt(err, errlen, "a polygon needs 3 to 100000 points, got %d", src->npoints);
            return -EINVAL;
        }
        for (int i = 0; i < 2 * src->npoints; i++)
            if (!isfinite(src->points[i])) {
                vt_fmt(err, errlen, "polygon coordinate %d is not finite", i);
                return -EINVAL;
            }
        float *p = malloc(sizeof(float) * 2 * src->npoints);
        if (!p)
            return -ENOMEM;
        memcpy(p, src->points, sizeof(float) * 2 * src->npoints);
        *dst = *src;
        dst->points = p;
        dst->data = NULL;
        return 0;
    }
    }
    vt_fmt(err, errlen, "unknown shape kind %d", (int)src->kind);
    return -EINVAL;
}

void vt_shape_clear(vt_shape *s) {
    free((void *)s->data);
    free((void *)s->points);
    s->data = NULL;
    s->points = NULL;
}

/* Even-odd scanline fill of a polygon, sampled at pixel centres. */
static void fill_polygon(uint8_t *m, int w, int h, const float *pt, int np) {
    double *xs = NULL;
    /* At most np crossings per scanline; small, bounded by the point limit. */
    xs = malloc(sizeof(double) * np);
    if (!xs)
        return;
    for (int y = 0; y < h; y++) {
        double yc = y + 0.5;
        int nx = 0;
        for (int i = 0; i < np; i++) {
            double x1 = pt[2 * i], y1 = pt[2 * i + 1];
            double x2 = pt[2 * ((i + 1) % np)], y2 = pt[2 * ((i + 1) % np) + 1];
            if ((y1 <= yc && y2 > yc) || (y2 <= yc && y1 > yc))
                xs[nx++] = x1 + (yc - y1) * (x2 - x1) / (y2 - y1);
        }
        /* insertion sort: few crossings per line */
        for (int i = 1; i < nx; i++) {
            double v = xs[i];
            int j = i - 1;
            while (j >= 0 && xs[j] > v) {
                xs[j + 1] = xs[j];
                j--;
            }
            xs[j + 1] = v;
        }
        for (int i = 0; i + 1 < nx; i += 2) {
            /* pixels whose centre x + 0.5 lies in [xs[i], xs[i+1]) */
            int a = (int)ceil(xs[i] - 0.5), b = (int)ceil(xs[i + 1] - 0.5);
            if (a < 0)
                a = 0;
            if (b > w)
                b = w;
            if (a < b)
                memset(m + (size_t)y * w + a, 1, b - a);
        }
    }
    free(xs);
}

int vtm_shape_rasterise(const vt_shape *s, uint8_t *m, int w, int h) {
    switch (s->kind) {
    case VT_SHAPE_MASK:
    case VT_SHAPE_LABELS:
        if (s->w != w || s->h != h)
            return -EINVAL;
        for (size_t i = 0; i < (size_t)w * h; i++)
            m[i] = s->kind == VT_SHAPE_MASK ? s->data[i] != 0 : s->data[i] == s->index;
        break;
    case VT_SHAPE_BOX: {
        memset(m, 0, (size_t)w * h);
        /* pixels whose centre lies inside the box */
        int x0 = (int)ceil(s->box[0] - 0.5), y0 = (int)ceil(s->box[1] - 0.5);
        int x1 = (int)ceil(s->box[0] + s->box[2] - 0.5),
            y1 = (int)ceil(s->box[1] + s->box[3] - 0.5);
        x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
        x1 = x1 > w ? w : x1, y1 = y1 > h ? h : y1;
        for (int y = y0; y < y1; y++)
            if (x0 < x1)
                memset(m + (size_t)y * w + x0, 1, x1 - x0);
        break;
    }
    case VT_SHAPE_POLYGON:
        memset(m, 0, (size_t)w * h);
        fill_polygon(m, w, h, s->points, s->npoints);
        break;
    }
    return 0;
}

int64_t vt_shape_pixels(const vt_shape *s, int w, int h) {
    if (w <= 0 || h <= 0)
        return -EINVAL;
    uint8_t *m = malloc((size_t)w * h);
    if (!m)
        return -ENOMEM;
    int rc = vtm_shape_rasterise(s, m, w, h);
    int64_t n = 0;
    for (size_t i = 0; rc == 0 && i < (size_t)w * h; i++)
        n += m[i] != 0;
    free(m);
    return rc < 0 ? rc : n;
}
