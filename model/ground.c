/*
 * ground.c - the ground plane of a fixed camera (see ground.h).
 */
#include <math.h>
#include <string.h>

#include "ground.h"

void vtm_ground_reset(vt_ground *g) {
    memset(g, 0, sizeof *g);
}

static void fit(vt_ground *g, int frame_h) {
    g->ok = 0;
    if (g->n < 3)
        return;
    double sx = 0, sy = 0, lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < g->n; i++) {
        sx += g->bottom[i], sy += g->height[i];
        lo = fmin(lo, g->bottom[i]), hi = fmax(hi, g->bottom[i]);
    }
    const double mx = sx / g->n, my = sy / g->n;
    if (hi - lo < 0.1 * frame_h)
        return;
    double sxx = 0, sxy = 0;
    for (int i = 0; i < g->n; i++) {
        sxx += (g->bottom[i] - mx) * (g->bottom[i] - mx);
        sxy += (g->bottom[i] - mx) * (g->height[i] - my);
    }
    const double a = sxy / sxx;
    if (!(a > 0))
        return;
    const double c = my - a * mx; /* height = a bottom + c */
    double r2 = 0;
    for (int i = 0; i < g->n; i++) {
        const double r = g->height[i] - (a * g->bottom[i] + c);
        r2 += r * r;
    }
    if (sqrt(r2 / g->n) > 0.15 * my)
        return;
    g->a = a;
    g->y0 = -c / a;
    g->ok = 1;
}

void vtm_ground_add(vt_ground *g, const float box[4], int frame_h) {
    if (box[1] <= 0 || box[1] + box[3] >= frame_h || box[3] <= box[2])
        return;
    g->bottom[g->next] = box[1] + box[3];
    g->height[g->next] = box[3];
    g->next = (g->next + 1) % VT_GROUND_MAX;
    g->n += g->n < VT_GROUND_MAX;
    fit(g, frame_h);
}

double vtm_ground_ratio(const vt_ground *g, const float box[4]) {
    if (!g->ok)
        return 0.0;
    const double line = g->a * (box[1] + box[3] - g->y0);
    return line > 0 ? box[3] / line : 0.0;
}

double vtm_ground_height(const vt_ground *g, double k, double cy) {
    const double ka = k * g->a;
    if (!g->ok || !(k > 0) || ka >= 1.5 || cy <= g->y0)
        return 0.0;
    return ka * (cy - g->y0) / (1.0 - ka / 2);
}
