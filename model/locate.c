/*
 * locate.c - an object's template and its search (see locate.h).
 *
 * A sample at a continuous point (x, y) of the cell grid reads the features bilinearly from the
 * four nearest cell centres (cell k's centre is at k + 0.5). The search scores the template at
 * every whole-cell shift within the radius (at most 17 x 17 shifts of at most 12 x 12 samples),
 * then refines the best one.
 */
#include <math.h>
#include <string.h>

#include "locate.h"

size_t vtm_locate_floats(int c) {
    return (size_t)VT_LOCATE_GRID * VT_LOCATE_GRID * ((size_t)c + 1);
}

void vtm_locate_init(vt_locate *l, int c, float *storage) {
    l->c = c;
    l->gw = l->gh = 0;
    l->tmpl = storage;
    l->wt = storage + (size_t)VT_LOCATE_GRID * VT_LOCATE_GRID * c;
    l->valid = 0;
}

static int grid_of(float side) {
    int g = (int)lround(side);
    return g < 2 ? 2 : g > VT_LOCATE_GRID ? VT_LOCATE_GRID : g;
}

/* Bilinear read of one continuous point into v[c]; 0 when it lies outside the centres' hull
 * by more than half a cell (then v is untouched). */
static int sample(const float *feat, int fw, int fh, int c, double x, double y, float *v) {
    double u = x - 0.5, w = y - 0.5;
    if (u < -0.5 || w < -0.5 || u > fw - 0.5 || w > fh - 0.5)
        return 0;
    u = u < 0 ? 0 : u > fw - 1 ? fw - 1 : u;
    w = w < 0 ? 0 : w > fh - 1 ? fh - 1 : w;
    const int x0 = (int)u, y0 = (int)w;
    const int x1 = x0 + 1 < fw ? x0 + 1 : x0, y1 = y0 + 1 < fh ? y0 + 1 : y0;
    const float fx = (float)(u - x0), fy = (float)(w - y0);
    const size_t n = (size_t)fw * fh;
    const float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
    const size_t i00 = (size_t)y0 * fw + x0, i01 = (size_t)y0 * fw + x1, i10 = (size_t)y1 * fw + x0,
                 i11 = (size_t)y1 * fw + x1;
    for (int ch = 0; ch < c; ch++) {
        const float *f = feat + ch * n;
        v[ch] = w00 * f[i00] + w01 * f[i01] + w10 * f[i10] + w11 * f[i11];
    }
    return 1;
}

void vtm_locate_learn(vt_locate *l, const float *feat, int fw, int fh, const float box[4],
                      const float *cover, float rate) {
    const int c = l->c;
    int gw = grid_of(box[2]), gh = grid_of(box[3]);
    if (!cover && l->valid) {
        gw = l->gw, gh = l->gh; /* features only: the grid and weights stay */
    } else if (!l->valid || gw != l->gw || gh != l->gh) {
        rate = 1.0f; /* a new grid (the object's size changed a lot): start again */
    }
    float v[1024];
    if (c > 1024)
        return;
    for (int j = 0; j < gh; j++) {
        for (int i = 0; i < gw; i++) {
            const double x = box[0] + (i + 0.5) * box[2] / gw, y = box[1] + (j + 0.5) * box[3] / gh;
            const size_t s = (size_t)j * gw + i;
            float *t = l->tmpl + s * c;
            float wgt = 0.0f;
            if (!cover && l->valid) {
                if (sample(feat, fw, fh, c, x, y, v))
                    for (int ch = 0; ch < c; ch++)
                        t[ch] = (1 - rate) * t[ch] + rate * v[ch];
                continue;
            }
            if (sample(feat, fw, fh, c, x, y, v)) {
                int cx = (int)x, cy = (int)y;
                cx = cx < 0 ? 0 : cx >= fw ? fw - 1 : cx;
                cy = cy < 0 ? 0 : cy >= fh ? fh - 1 : cy;
                wgt = cover ? cover[(size_t)cy * fw + cx] : 1.0f;
            } else {
                memset(v, 0, sizeof(float) * c);
            }
            for (int ch = 0; ch < c; ch++)
                t[ch] = rate >= 1.0f ? v[ch] : (1 - rate) * t[ch] + rate * v[ch];
            l->wt[s] = rate >= 1.0f ? wgt : (1 - rate) * l->wt[s] + rate * wgt;
        }
    }
    if (!cover && l->valid)
        return;
    l->gw = gw;
    l->gh = gh;
    float wsum = 0;
    for (int s = 0; s < gw * gh; s++)
        wsum += l->wt[s];
    l->valid = wsum > 0.5f;
}

double vtm_locate_score(const vt_locate *l, const float *feat, int fw, int fh, const float box[4]) {
    if (!l->valid)
        return -2.0;
    const int c = l->c;
    float v[1024];
    double num = 0, den = 0, all = 0;
    for (int j = 0; j < l->gh; j++) {
        for (int i = 0; i < l->gw; i++) {
            const size_t s = (size_t)j * l->gw + i;
            all += l->wt[s];
            const double x = box[0] + (i + 0.5) * box[2] / l->gw;
            const double y = box[1] + (j + 0.5) * box[3] / l->gh;
            if (!(l->wt[s] > 0) || !sample(feat, fw, fh, c, x, y, v))
                continue;
            double d = 0;
            for (int ch = 0; ch < c; ch++)
                d += (double)v[ch] * l->tmpl[s * c + ch];
            num += l->wt[s] * d;
            den += l->wt[s];
        }
    }
    return den > 0.3 * all && den > 0 ? num / den : -2.0;
}

double vtm_locate_find(const vt_locate *l, const float *feat, int fw, int fh, const float box[4],
                       int radius, float penalty, float *scores, float out[4]) {
    memcpy(out, box, sizeof(float) * 4);
    if (!l->valid)
        return -2.0;
    const int r = radius < 0 ? 0 : radius, side = 2 * r + 1;
    float best = -1e30f, best_raw = -2.0f;
    int bx = 0, by = 0;
    for (int dy = -r; dy <= r; dy++) {
        for (int dx = -r; dx <= r; dx++) {
            const float b[4] = {box[0] + dx, box[1] + dy, box[2], box[3]};
            const float raw = (float)vtm_locate_score(l, feat, fw, fh, b);
            scores[(dy + r) * side + dx + r] = raw;
            if (raw < -1.5f)
                continue;
            const float pen = penalty * (float)(dx * dx + dy * dy);
            if (raw - pen > best)
                best = raw - pen, best_raw = raw, bx = dx, by = dy;
        }
    }
    if (best_raw < -1.5f)
        return -2.0;
    /* Sub-cell refinement along each axis through the two neighbours (when both exist). */
    double ox = 0, oy = 0;
    const float s0 = best_raw;
    if (bx > -r && bx < r) {
        const float sl = scores[(by + r) * side + bx - 1 + r],
                    sr = scores[(by + r) * side + bx + 1 + r];
        const double den = sl - 2 * s0 + sr;
        if (sl > -1.5f && sr > -1.5f && den < -1e-6)
            ox = 0.5 * (sl - sr) / den;
    }
    if (by > -r && by < r) {
        const float su = scores[(by - 1 + r) * side + bx + r],
                    sd = scores[(by + 1 + r) * side + bx + r];
        const double den = su - 2 * s0 + sd;
        if (su > -1.5f && sd > -1.5f && den < -1e-6)
            oy = 0.5 * (su - sd) / den;
    }
    ox = ox < -0.5 ? -0.5 : ox > 0.5 ? 0.5 : ox;
    oy = oy < -0.5 ? -0.5 : oy > 0.5 ? 0.5 : oy;
    out[0] = (float)(box[0] + bx + ox);
    out[1] = (float)(box[1] + by + oy);
    /* Scale: the box 6 % larger or smaller about its centre, kept when it matches better by
     * more than a hair (a walker coming nearer grows by a few percent per frame at most). */
    float sbest = best_raw;
    const float base[4] = {out[0], out[1], out[2], out[3]};
    for (int k = 0; k < 2; k++) {
        const float f = k ? 1.06f : 1.0f / 1.06f;
        const float cx = base[0] + 0.5f * base[2], cy = base[1] + 0.5f * base[3];
        const float b[4] = {cx - 0.5f * f * base[2], cy - 0.5f * f * base[3], f * base[2],
                            f * base[3]};
        const float sc = (float)vtm_locate_score(l, feat, fw, fh, b);
        if (sc > sbest + 0.005f) {
            sbest = sc;
            memcpy(out, b, sizeof b);
        }
    }
    return sbest;
}
