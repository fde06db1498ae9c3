/*
 * check.c - an unsupervised score of a model on a few held-back frames of a clip (issue 17's
 * guard on per-clip adaptation: vt_check_score). Two mechanisms:
 *
 *   cycle  the objects given on the first frame are tracked forward over the frames with the
 *          model's tracker, then the last frame's masks are given to a fresh tracker and
 *          tracked back to the first frame; the score is the mean IoU, over the objects and the
 *          frames but the last, of the masks on the way back with those on the way forward
 *          (the tracker's own output, so a box counts as the mask it was refined into).
 *   recon  the objective's own loss on held-back pairs: each frame's Lab colours (8x8-cell
 *          means) reconstructed from the previous frame's through the model's unit-norm
 *          feature affinity (window radius_short, the tracker's temperature); the score is
 *          1 - the mean absolute error, in the trainer's normalised Lab units.
 *
 * Both use nothing but the public interface (encoder, tracker), on the frames as given.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vt_base.h"
#include "vt_model.h"

/* ---------------------------------------------------------------------------------------------
 * cycle: forward and back through the tracker
 * ------------------------------------------------------------------------------------------- */

static const vt_object_result *find_object(const vt_track_result *r, uint32_t id) {
    for (int i = 0; i < r->n_objects; i++)
        if (r->objects[i].id == id)
            return &r->objects[i];
    return NULL;
}

/* Copy each object's mask (ids 1..k) from r into masks[k][w*h]; a missing object: zeros. */
static void take_masks(const vt_track_result *r, int k, uint8_t *masks, size_t npix) {
    for (int i = 0; i < k; i++) {
        const vt_object_result *o = find_object(r, (uint32_t)(i + 1));
        if (o && o->mask)
            memcpy(masks + (size_t)i * npix, o->mask, npix);
        else
            memset(masks + (size_t)i * npix, 0, npix);
    }
}

static double iou(const uint8_t *a, const uint8_t *b, size_t npix) {
    int64_t in = 0, un = 0;
    for (size_t j = 0; j < npix; j++)
        in += a[j] && b[j], un += a[j] || b[j];
    return un ? (double)in / (double)un : 0.0;
}

/* Track the objects given as masks on frames[h] back to frames[0] with a fresh tracker; each
 * frame's masks on the way compared with the forward pass's there. Adds the mean IoU over the
 * objects and frames 0..h-1 to *score. */
static int cycle_back(const vt_model *m, const vt_tracker_params *p, const vt_image *frames, int h,
                      int k, const uint8_t *fwd, uint8_t *back, double *score, char *err,
                      size_t errlen) {
    const size_t npix = (size_t)frames[0].w * frames[0].h, per = (size_t)k * npix;
    vt_tracker *t = NULL;
    const vt_track_result *r = NULL;
    int rc = vt_tracker_new(m, p, &t, err, errlen);
    const uint8_t *end = fwd + (size_t)h * per;
    for (int i = 0; i < k && rc == 0; i++) {
        vt_shape s = {.kind = VT_SHAPE_MASK,
                      .w = frames[0].w,
                      .h = frames[0].h,
                      .data = end + (size_t)i * npix};
        int any = 0;
        for (size_t j = 0; j < npix && !any; j++)
            any = s.data[j] != 0;
        if (any) /* an object lost on the way forward does not come back: IoU 0 */
            rc = vt_tracker_add_object(t, (uint32_t)(i + 1), NULL, &s, err, errlen);
    }
    double sum = 0;
    for (int f = h; f >= 0 && rc == 0; f--) {
        if ((rc = vt_tracker_step(t, &frames[f], NULL, &r)) < 0) {
            vt_fmt(err, errlen, "tracking held-back frame %d back failed", f);
            break;
        }
        if (f == h)
            continue; /* the given masks themselves */
        take_masks(r, k, back, npix);
        for (int i = 0; i < k; i++)
            sum += iou(fwd + (size_t)f * per + (size_t)i * npix, back + (size_t)i * npix, npix);
    }
    vt_tracker_free(&t);
    if (rc == 0)
        *score = sum / ((double)k * h);
    return rc;
}

static int run_cycle(const vt_model *m, const vt_tracker_params *p, const vt_image *frames, int n,
                     const vt_shape *shapes, int k, double *score, double *per_h, char *err,
                     size_t errlen) {
    const size_t npix = (size_t)frames[0].w * frames[0].h, per = (size_t)k * npix;
    /* fwd[f]: every object's mask on frame f on the way forward */
    uint8_t *fwd = calloc((size_t)n, per), *back = calloc(1, per);
    vt_tracker *t = NULL;
    const vt_track_result *r = NULL;
    int rc = fwd && back ? 0 : -ENOMEM;
    if (rc == 0)
        rc = vt_tracker_new(m, p, &t, err, errlen);
    for (int i = 0; i < k && rc == 0; i++)
        rc = vt_tracker_add_object(t, (uint32_t)(i + 1), NULL, &shapes[i], err, errlen);
    for (int f = 0; f < n && rc == 0; f++) {
        if ((rc = vt_tracker_step(t, &frames[f], NULL, &r)) < 0)
            vt_fmt(err, errlen, "tracking held-back frame %d forward failed", f);
        else
            take_masks(r, k, fwd + (size_t)f * per, npix);
    }
    vt_tracker_free(&t);
    /* back from every frame: horizons 1 .. n-1 */
    double sum = 0;
    for (int h = 1; h < n && rc == 0; h++) {
        double sh = 0;
        rc = cycle_back(m, p, frames, h, k, fwd, back, &sh, err, errlen);
        sum += sh;
        if (per_h)
            per_h[h - 1] = sh;
    }
    if (rc == 0)
        *score = sum / (n - 1);
    free(fwd);
    free(back);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * recon: the reconstruction loss on held-back pairs
 * ------------------------------------------------------------------------------------------- */

/* Unit-norm features [c][h][w] -> per cell [h*w][c] (rows contiguous for the dot products). */
static void cells_of(const vt_features *f, float *out) {
    const int n = f->h * f->w;
    for (int q = 0; q < n; q++) {
        double s = 0;
        for (int c = 0; c < f->c; c++)
            s += (double)f->data[(size_t)c * n + q] * f->data[(size_t)c * n + q];
        const float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
        for (int c = 0; c < f->c; c++)
            out[(size_t)q * f->c + c] = f->data[(size_t)c * n + q] * inv;
    }
}

/* Lab means over each stride x stride cell of a fh x fw grid, normalised as the trainer's mast
 * input ((L - 50)/50, a/110, b/110): out[fh*fw][3]. `lab` is planar [3][h][w]. */
static void lab_cells(const float *lab, int w, int h, int stride, int fw, int fh, float *out) {
    for (int cy = 0; cy < fh; cy++)
        for (int cx = 0; cx < fw; cx++) {
            double s[3] = {0, 0, 0};
            int cnt = 0;
            for (int y = cy * stride; y < (cy + 1) * stride && y < h; y++)
                for (int x = cx * stride; x < (cx + 1) * stride && x < w; x++, cnt++)
                    for (int c = 0; c < 3; c++)
                        s[c] += lab[(size_t)c * w * h + (size_t)y * w + x];
            float *o = out + ((size_t)cy * fw + cx) * 3;
            cnt = cnt ? cnt : 1;
            o[0] = (float)((s[0] / cnt - 50.0) / 50.0);
            o[1] = (float)(s[1] / cnt / 110.0);
            o[2] = (float)(s[2] / cnt / 110.0);
        }
}

static int run_recon(const vt_model *m, const vt_tracker_params *p, const vt_image *frames, int n,
                     double *score, double *per_h, char *err, size_t errlen) {
    vt_encoder *e = NULL;
    int rc = vt_encoder_new(m, &e);
    if (rc < 0) {
        vt_fmt(err, errlen, "cannot create an encoder");
        return rc;
    }
    float *feat = NULL, *col = NULL, *lab = NULL, *wgt = NULL;
    int c = 0, fh = 0, fw = 0, stride = 0;
    const int w = frames[0].w, h = frames[0].h;
    for (int f = 0; f < n && rc == 0; f++) {
        vt_features out;
        if ((rc = vt_encoder_run(e, &frames[f], &out)) < 0) {
            vt_fmt(err, errlen, "encoding held-back frame %d failed", f);
            break;
        }
        if (f == 0) {
            c = out.c, fh = out.h, fw = out.w, stride = out.stride;
            const size_t cells = (size_t)fh * fw;
            feat = malloc(sizeof *feat * cells * c * n);
            col = malloc(sizeof *col * cells * 3 * n);
            lab = malloc(sizeof *lab * 3 * (size_t)w * h);
            wgt = malloc(sizeof *wgt * cells);
            if (!feat || !col || !lab || !wgt) {
                rc = -ENOMEM;
                break;
            }
        }
        const size_t cells = (size_t)fh * fw;
        cells_of(&out, feat + (size_t)f * cells * c);
        vt_lab_from_rgb(&frames[f], lab);
        lab_cells(lab, w, h, stride, fw, fh, col + (size_t)f * cells * 3);
    }
    vt_encoder_free(&e);
    if (rc == 0) {
        const int r = p->radius_short;
        const float inv_t = 1.0f / p->temperature;
        const size_t cells = (size_t)fh * fw;
        double err_sum = 0;
        for (int f = 1; f < n; f++) {
            const float *ut = feat + (size_t)f * cells * c,
                        *ur = feat + (size_t)(f - 1) * cells * c;
            const float *vt = col + (size_t)f * cells * 3, *vr = col + (size_t)(f - 1) * cells * 3;
            double pair = 0;
            for (int qy = 0; qy < fh; qy++)
                for (int qx = 0; qx < fw; qx++) {
                    const float *u = ut + ((size_t)qy * fw + qx) * c;
                    const int y0 = r < 0 || qy - r < 0 ? 0 : qy - r;
                    const int y1 = r < 0 || qy + r >= fh ? fh - 1 : qy + r;
                    const int x0 = r < 0 || qx - r < 0 ? 0 : qx - r;
                    const int x1 = r < 0 || qx + r >= fw ? fw - 1 : qx + r;
                    float mx = -INFINITY;
                    int k = 0;
                    for (int py = y0; py <= y1; py++)
                        for (int px = x0; px <= x1; px++, k++) {
                            const float *v = ur + ((size_t)py * fw + px) * c;
                            float d = 0;
                            for (int j = 0; j < c; j++)
                                d += u[j] * v[j];
                            wgt[k] = d * inv_t;
                            mx = wgt[k] > mx ? wgt[k] : mx;
                        }
                    double z = 0, y[3] = {0, 0, 0};
                    k = 0;
                    for (int py = y0; py <= y1; py++)
                        for (int px = x0; px <= x1; px++, k++) {
                            const double a = exp((double)(wgt[k] - mx));
                            const float *v = vr + ((size_t)py * fw + px) * 3;
                            z += a;
                            y[0] += a * v[0], y[1] += a * v[1], y[2] += a * v[2];
                        }
                    const float *tv = vt + ((size_t)qy * fw + qx) * 3;
                    for (int j = 0; j < 3; j++)
                        pair += fabs(y[j] / z - tv[j]) / 3.0;
                }
            if (per_h)
                per_h[f - 1] = 1.0 - pair / (double)cells;
            err_sum += pair;
        }
        *score = 1.0 - err_sum / ((double)cells * (n - 1));
    }
    free(feat);
    free(col);
    free(lab);
    free(wgt);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The public entry
 * ------------------------------------------------------------------------------------------- */

const char *vt_check_name(vt_check_kind kind) {
    return kind == VT_CHECK_CYCLE ? "cycle" : kind == VT_CHECK_RECON ? "recon" : "?";
}

int vt_check_score(const vt_model *m, const vt_tracker_params *p, vt_check_kind kind,
                   const vt_image *frames, int n, const vt_shape *shapes, int nshapes,
                   double *score, double *per_h, char *err, size_t errlen) {
    *score = 0;
    if (!frames || n < 2) {
        vt_fmt(err, errlen, "the check needs at least two held-back frames (got %d)", n);
        return -EINVAL;
    }
    for (int f = 1; f < n; f++)
        if (frames[f].w != frames[0].w || frames[f].h != frames[0].h) {
            vt_fmt(err, errlen, "held-back frame %d is %dx%d, the first %dx%d", f, frames[f].w,
                   frames[f].h, frames[0].w, frames[0].h);
            return -EINVAL;
        }
    switch (kind) {
    case VT_CHECK_CYCLE:
        if (nshapes < 1 || !shapes) {
            vt_fmt(err, errlen, "the cycle check needs the objects of the first held-back frame");
            return -EINVAL;
        }
        if (nshapes > p->max_objects) {
            vt_fmt(err, errlen, "the cycle check got %d objects, the tracker takes %d", nshapes,
                   p->max_objects);
            return -EINVAL;
        }
        return run_cycle(m, p, frames, n, shapes, nshapes, score, per_h, err, errlen);
    case VT_CHECK_RECON:
        return run_recon(m, p, frames, n, score, per_h, err, errlen);
    }
    vt_fmt(err, errlen, "unknown check %d", (int)kind);
    return -EINVAL;
}
