/*
 * synth.h - synthetic video with exact ground truth for the tracker tests: textured shapes
 * (ellipses and rectangles) moving, scaling and occluding one another over a textured
 * background. Header-only; deterministic for a seed.
 */
#ifndef VT_TEST_SYNTH_H
#define VT_TEST_SYNTH_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SYNTH_MAX 8

typedef struct synth_obj {
    int ellipse;
    double x0, y0, vx, vy; /* centre and velocity (px/frame) */
    double rx, ry, grow;   /* half sizes and growth per frame (factor) */
    uint8_t base[3], alt[3];
    double freq;     /* texture frequency */
    int z;           /* drawing order: higher occludes lower */
    int first, last; /* frames on which it exists */
    int stop;        /* frame from which it stands still */
} synth_obj;

typedef struct synth {
    int w, h, nobj;
    synth_obj obj[SYNTH_MAX];
    float *bgtex; /* [h][w][3] */
} synth;

static uint32_t synth_rand(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static double synth_unit(uint32_t *s) {
    return (synth_rand(s) & 0xffffff) / (double)0x1000000;
}

/* Background: a smooth colour field from a few random sinusoids plus fine noise. */
static inline void synth_init(synth *s, int w, int h, uint32_t seed) {
    memset(s, 0, sizeof *s);
    s->w = w, s->h = h;
    s->bgtex = malloc(sizeof(float) * 3 * w * h);
    uint32_t r = seed | 1;
    double fx[3][3], fy[3][3], ph[3][3];
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 3; k++) {
            fx[c][k] = 0.01 + 0.05 * synth_unit(&r);
            fy[c][k] = 0.01 + 0.05 * synth_unit(&r);
            ph[c][k] = 6.28 * synth_unit(&r);
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                double v = 110;
                for (int k = 0; k < 3; k++)
                    v += 25 * sin(fx[c][k] * x + fy[c][k] * y + ph[c][k]);
                v += 20 * (synth_unit(&r) - 0.5);
                s->bgtex[((size_t)y * w + x) * 3 + c] = (float)v;
            }
}

static inline void synth_free(synth *s) {
    free(s->bgtex);
    s->bgtex = NULL;
}

/* Add an object; colours are saturated and distinct from the greyish background. */
static inline int synth_add(synth *s, int ellipse, double x0, double y0, double vx, double vy,
                            double rx, double ry, double grow, const uint8_t base[3],
                            const uint8_t alt[3], int z) {
    synth_obj *o = &s->obj[s->nobj];
    o->ellipse = ellipse;
    o->x0 = x0, o->y0 = y0, o->vx = vx, o->vy = vy;
    o->rx = rx, o->ry = ry, o->grow = grow;
    memcpy(o->base, base, 3);
    memcpy(o->alt, alt, 3);
    o->freq = 0.35;
    o->z = z;
    o->first = 0;
    o->last = 1 << 30;
    o->stop = 1 << 30;
    return ++s->nobj; /* object id = index + 1 */
}

/* Object o's centre on frame t. */
static inline void synth_centre(const synth_obj *o, int t, double *cx, double *cy) {
    const int m = t < o->stop ? t : o->stop;
    *cx = o->x0 + o->vx * m, *cy = o->y0 + o->vy * m;
}

/* Render frame t: rgb (w*h*3) and labels (w*h, 0 = background, i+1 = object i). */
static inline void synth_render(const synth *s, int t, uint8_t *rgb, uint8_t *labels) {
    const int w = s->w, h = s->h;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        for (int c = 0; c < 3; c++) {
            float v = s->bgtex[i * 3 + c];
            rgb[i * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        labels[i] = 0;
    }
    for (int z = 0; z < 16; z++) {
        for (int k = 0; k < s->nobj; k++) {
            const synth_obj *o = &s->obj[k];
            if (o->z != z || t < o->first || t > o->last)
                continue;
            double cx, cy;
            synth_centre(o, t, &cx, &cy);
            double g = pow(o->grow, t), rx = o->rx * g, ry = o->ry * g;
            int x0 = (int)floor(cx - rx), x1 = (int)ceil(cx + rx);
            int y0 = (int)floor(cy - ry), y1 = (int)ceil(cy + ry);
            for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < h; y++)
                for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < w; x++) {
                    double dx = (x + 0.5 - cx) / rx, dy = (y + 0.5 - cy) / ry;
                    int in =
                        o->ellipse ? dx * dx + dy * dy <= 1.0 : fabs(dx) <= 1.0 && fabs(dy) <= 1.0;
                    if (!in)
                        continue;
                    /* texture in object coordinates: it moves with the object */
                    double u = (x + 0.5 - cx) / g, v = (y + 0.5 - cy) / g;
                    int stripe = sin(o->freq * (u + 0.6 * v)) > 0;
                    const uint8_t *col = stripe ? o->base : o->alt;
                    size_t i = (size_t)y * w + x;
                    memcpy(rgb + i * 3, col, 3);
                    labels[i] = (uint8_t)(k + 1);
                }
        }
    }
}

#endif
