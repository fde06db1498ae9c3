/*
 * motion.c - Kalman filter on an object's box (see motion.h).
 *
 * Centre coordinates, state (x, v), F = [[1, 1], [0, 1]], H = [1, 0]:
 *   predict:  x += v;  P = F P F' + diag(q_x, q_v)
 *   update:   S = pxx + r;  K = (pxx, pxv) / S;  x += K0 (z - x);  v += K1 (z - x);
 *             P = (I - K H) P
 * Sides, state x alone: predict pxx += q_x; update as above with K = pxx / S.
 * The noise levels of motion.h are multiplied by s, the box's larger side.
 */
#include <math.h>
#include <string.h>

#include "motion.h"

static double size_of(const vt_motion_axis a[4]) {
    double s = a[2].x > a[3].x ? a[2].x : a[3].x;
    return s > 1.0 ? s : 1.0;
}

static void box_to_z(const float box[4], double z[4]) {
    z[0] = box[0] + 0.5 * box[2];
    z[1] = box[1] + 0.5 * box[3];
    z[2] = box[2];
    z[3] = box[3];
}

void vtm_motion_init(vt_motion *m, const float box[4]) {
    memset(m, 0, sizeof *m);
    double z[4];
    box_to_z(box, z);
    double s = box[2] > box[3] ? box[2] : box[3];
    s = s > 1.0 ? s : 1.0;
    for (int i = 0; i < 4; i++) {
        vt_motion_axis *a = &m->a[i];
        const double sp = i < 2 ? VT_MOTION_STD_POS : VT_MOTION_STD_SIDE;
        a->x = z[i];
        a->pxx = (sp * s) * (sp * s);
        if (i < 2)
            a->pvv = (10 * VT_MOTION_STD_VEL * s) * (10 * VT_MOTION_STD_VEL * s);
    }
    memcpy(m->last_box, box, sizeof m->last_box);
    memcpy(m->last_a, m->a, sizeof m->last_a);
}

static void predict_axes(vt_motion_axis a[4]) {
    const double s = size_of(a);
    for (int i = 0; i < 2; i++) {
        vt_motion_axis *e = &a[i];
        const double qx = (VT_MOTION_STD_POS * s) * (VT_MOTION_STD_POS * s);
        const double qv = (VT_MOTION_STD_VEL * s) * (VT_MOTION_STD_VEL * s);
        e->x += e->v;
        e->pxx += 2 * e->pxv + e->pvv + qx;
        e->pxv += e->pvv;
        e->pvv += qv;
    }
    for (int i = 2; i < 4; i++)
        a[i].pxx += (VT_MOTION_STD_SIDE * s) * (VT_MOTION_STD_SIDE * s);
}

void vtm_motion_predict(vt_motion *m) {
    predict_axes(m->a);
    m->frame++;
}

static void update_axes(vt_motion_axis a[4], const double z[4], const double trust[4]) {
    const double s = size_of(a);
    for (int i = 0; i < 4; i++) {
        if (!(trust[i] > 0.0))
            continue;
        vt_motion_axis *e = &a[i];
        const double sm = i < 2 ? VT_MOTION_STD_POS : VT_MOTION_STD_SIDE_MEAS;
        const double r = (sm * s) * (sm * s) * trust[i] * trust[i];
        const double sv = e->pxx + r;
        const double k0 = e->pxx / sv, k1 = e->pxv / sv;
        const double y = z[i] - e->x;
        const double pxx = e->pxx, pxv = e->pxv;
        e->x += k0 * y;
        e->v += k1 * y;
        e->pxx = (1 - k0) * pxx;
        e->pxv = (1 - k0) * pxv;
        e->pvv -= k1 * pxv;
    }
    for (int i = 2; i < 4; i++)
        a[i].x = a[i].x < 1.0 ? 1.0 : a[i].x;
}

void vtm_motion_update(vt_motion *m, const float box[4], const double trust[4]) {
    double z[4];
    box_to_z(box, z);
    const int64_t gap = m->frame - m->last_frame;
    if (gap > 1) {
        /* Re-run from the last measurement along the straight path to this one: virtual
         * measurements at frames last+1 .. now-1, then the real one. Coordinates this
         * measurement does not trust are left to the prediction along the way too. */
        double z0[4];
        box_to_z(m->last_box, z0);
        memcpy(m->a, m->last_a, sizeof m->a);
        for (int64_t k = 1; k < gap; k++) {
            predict_axes(m->a);
            double zk[4];
            for (int i = 0; i < 4; i++)
                zk[i] = z0[i] + (z[i] - z0[i]) * (double)k / (double)gap;
            update_axes(m->a, zk, trust);
        }
        predict_axes(m->a);
    }
    update_axes(m->a, z, trust);
    /* What the next re-update starts from: this measurement where trusted, else the filter's
     * own value. */
    for (int i = 0; i < 4; i++)
        if (!(trust[i] > 0.0))
            z[i] = m->a[i].x;
    m->last_box[0] = (float)(z[0] - 0.5 * z[2]);
    m->last_box[1] = (float)(z[1] - 0.5 * z[3]);
    m->last_box[2] = (float)z[2];
    m->last_box[3] = (float)z[3];
    memcpy(m->last_a, m->a, sizeof m->last_a);
    m->last_frame = m->frame;
}

void vtm_motion_box(const vt_motion *m, float box[4]) {
    const double w = m->a[2].x > 1.0 ? m->a[2].x : 1.0, h = m->a[3].x > 1.0 ? m->a[3].x : 1.0;
    box[0] = (float)(m->a[0].x - 0.5 * w);
    box[1] = (float)(m->a[1].x - 0.5 * h);
    box[2] = (float)w;
    box[3] = (float)h;
}

double vtm_motion_pos_std(const vt_motion *m) {
    double v = m->a[0].pxx > m->a[1].pxx ? m->a[0].pxx : m->a[1].pxx;
    return sqrt(v > 0 ? v : 0);
}
