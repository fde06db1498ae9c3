/*
 * train_bnstats.c - batch-norm statistics taken again for trained weights (`vtrack
 * recalibrate`): no weight changes, only each BN layer's running mean and variance.
 *
 * Why: the encoder is trained on crops scaled so that an object is 0.53-0.89 of the size it has
 * in the tracker's image, and its input then has MAST's channel dropout (one of a/b zeroed,
 * everything scaled by 1.5); the tracker gives it whole frames at its processing size, every
 * channel, unscaled. The running statistics the training leaves describe the former, and the
 * tracker normalises the latter with them (docs/RESULTS.md, "Batch-norm statistics taken at the
 * tracker's scale").
 *
 * How: crops of the cached frames at their own size (the cache holds them at the tracker's
 * short side; no resizing), each converted exactly as the tracker converts a frame
 * (vtm_model_preprocess), go through the training executor in batches; each batch is
 * normalised with its own statistics, as in training, and every running statistic becomes the
 * plain mean over the batches of the batch mean and of the unbiased batch variance (PyTorch's
 * BatchNorm2d with momentum=None; the "precise BN" of Wu & Johnson 2021). A batch draws its
 * crops from frames anywhere in the data, so no batch is one scene.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "train_int.h"
#include "vt_base.h"
#include "vt_train.h"

void vt_bn_stats_opts_default(vt_bn_stats_opts *o) {
    memset(o, 0, sizeof *o);
    o->batch = 8;
    o->crop = 256;
    o->batches = 200;
    o->seed = 1;
}

void vtt_bn_stats_sample(const vt_model *m, const vt_train_data *d, vt_rng *r, int n, int S,
                         float *in) {
    const int64_t total = vt_train_data_frames(d);
    const size_t plane = (size_t)S * S;
    for (int b = 0; b < n; b++) {
        int v, j; /* a frame uniformly over every cached frame, then a uniform position in it */
        vtt_data_pick(r, d, total, &v, &j);
        const vt_train_video *vv = &d->v[v];
        const int x = vtt_rng_int(r, 0, vv->w - S), y = vtt_rng_int(r, 0, vv->h - S);
        vt_image img = {S, S, 3 * vv->w, vv->rgb[j] + ((size_t)y * vv->w + x) * 3};
        vtm_model_preprocess(m, &img, in + (size_t)b * 3 * plane);
    }
}

int vt_bn_stats_check(const vt_model *m, const vt_bn_stats_opts *o, char *err, size_t errlen) {
    const vt_arch *a = vtm_model_spec(m);
    if (!a->learned) {
        vt_fmt(err, errlen, "the '%s' features have no batch-norm statistics", a->name);
        return -EINVAL;
    }
    if (o->batch < 2 || o->batch > 256 || o->crop < 2 * a->stride || o->crop > 4096 ||
        o->batches < 1 || o->batches > 1000000) {
        vt_fmt(err, errlen,
               "bad batch-norm settings: batch %d (2 to 256), crop %d (%d to 4096), batches %d "
               "(1 to 1000000)",
               o->batch, o->crop, 2 * a->stride, o->batches);
        return -EINVAL;
    }
    return 0;
}

int vt_bn_stats(vt_model *m, const vt_train_data *d, const vt_bn_stats_opts *o, FILE *log,
                char *err, size_t errlen) {
    int rc = vt_bn_stats_check(m, o, err, errlen);
    if (rc < 0)
        return rc;
    const int S = o->crop, B = o->batch;
    if (vt_train_data_frames(d) < 1) {
        vt_fmt(err, errlen, "no frames to take the statistics on");
        return -EINVAL;
    }
    for (int v = 0; v < d->nv; v++) {
        if (d->v[v].n > 0 && (d->v[v].w < S || d->v[v].h < S)) {
            vt_fmt(err, errlen,
                   "a %d-pixel crop does not fit in %s's %dx%d frames: lower --crop or raise "
                   "--short-side",
                   S, d->v[v].name, d->v[v].w, d->v[v].h);
            return -EINVAL;
        }
    }
    vt_tnet *net = NULL;
    rc = vtt_tnet_new(m, &net);
    const size_t plane = (size_t)S * S;
    float *in = rc == 0 ? malloc(sizeof(float) * 3 * plane * B) : NULL;
    if (rc == 0 && !in)
        rc = -ENOMEM;
    if (rc == 0)
        rc = vtt_tnet_plan(net, B, S, S);
    vt_rng r;
    vtt_rng_seed(&r, o->seed);
    for (int k = 0; rc == 0 && k < o->batches; k++) {
        vtt_bn_stats_sample(m, d, &r, B, S, in);
        const vt_tensor x = {B, 3, S, S, in};
        const vt_tensor *out;
        /* momentum 1/(k+1): after batch k each statistic is the mean of the k+1 batches' */
        rc = vtt_tnet_forward(net, &x, 1.0f / (float)(k + 1), &out);
        if (log && ((k + 1) % 10 == 0 || k + 1 == o->batches))
            fprintf(log, "\rbatch-norm statistics: batch %d/%d ", k + 1, o->batches);
    }
    if (log)
        fputc('\n', log);
    free(in);
    vtt_tnet_free(&net);
    if (rc == 0) {
        char what[160];
        vt_fmt(what, sizeof what, "%d batches of %d crops of %dx%d, seed %llu", o->batches, B, S, S,
               (unsigned long long)o->seed);
        if ((rc = vtm_model_set_meta(m, "vtrack.bn_stats", what)) == 0)
            rc = vtm_model_refold(m);
    }
    if (rc < 0)
        vt_fmt(err, errlen, "%s", strerror(-rc));
    return rc;
}
