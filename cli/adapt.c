/*
 * adapt.c - per-clip adaptation: the trainer (train/, vt_train_adapt) run on one clip's frames,
 * starting from the shipped weights instead of a random initialisation, and the guard that
 * decides whether the tuned copy replaces them (vt_check_score, model/check.c).
 *
 * The model is loaded again for every clip, so clips never see each other's adaptation. The
 * objective and its settings are the ones the weights record (vtrack.train.*: objective,
 * crop, radius) so the fine-tuning continues the training that made them; the learning rate
 * is a tenth of training's, with a short warm-up, because a few hundred frames of one scene
 * are easy to overfit. Batch-norm runs in training mode, so its running statistics move to
 * the clip's too (most of the gains and of the harm are theirs: docs/RESULTS.md, "What the
 * adaptation changes"). At the end the batch-norm layers are folded again for inference.
 *
 * The guard: the frame the objects are given on and every hold_stride-th frame after it
 * (hold_count in all) are kept at source size and out of the frame cache, so the fine-tuning
 * never sees them; the original and the tuned model are scored on them and the tuned one is
 * kept only if its mean gain over the horizons of the check (vt_check_score's per_h: each
 * span tracked forward and back for the cycle, each pair for recon) outweighs its largest loss
 * on any one of them: mean gain + worst gain > the margin.
 * A check that cannot run keeps the original: adaptation must never make things worse.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapt.h"
#include "train_sources.h"
#include "vt_base.h"
#include "vt_train.h"

void vt_adapt_opts_default(vt_adapt_opts *o) {
    memset(o, 0, sizeof *o);
    o->lr = 1e-4f;
    o->batch = 4;
    o->short_side = 256;
    o->seed = 1;
    o->check = VT_CHECK_CYCLE;
    o->margin = 0.0;
    o->hold_stride = 2;
    o->hold_count = 7;
}

int vt_adapt_check_parse(const char *s, int *check) {
    if (strcmp(s, "cycle") == 0)
        *check = VT_CHECK_CYCLE;
    else if (strcmp(s, "recon") == 0)
        *check = VT_CHECK_RECON;
    else if (strcmp(s, "none") == 0)
        *check = VT_ADAPT_CHECK_NONE;
    else
        return -EINVAL;
    return 0;
}

/* The held-back frames, at source size. */
typedef struct held {
    int64_t first;
    int stride, count;
    int n, w, h;
    uint8_t **rgb;
} held;

static int hold_frame(void *opaque, int64_t index, const uint8_t *rgb, int w, int h, int linesize) {
    held *hb = opaque;
    if (index < hb->first || (index - hb->first) % hb->stride != 0 ||
        (index - hb->first) / hb->stride >= hb->count)
        return 0;
    if (hb->n > 0 && (w != hb->w || h != hb->h))
        return -EINVAL;
    uint8_t *p = malloc((size_t)3 * w * h);
    if (!p)
        return -ENOMEM;
    for (int y = 0; y < h; y++)
        memcpy(p + (size_t)3 * w * y, rgb + (size_t)linesize * y, (size_t)3 * w);
    hb->w = w, hb->h = h;
    hb->rgb[hb->n++] = p;
    return 1;
}

static void held_free(held *hb) {
    for (int i = 0; i < hb->n; i++)
        free(hb->rgb[i]);
    free(hb->rgb);
    hb->rgb = NULL;
    hb->n = 0;
}

/* Score orig and the tuned m on the held-back frames; fills res. A check that cannot run is
 * not an error: res->why says why and the original is kept. */
static int run_check(const vt_adapt_opts *o, const vt_model *orig, const vt_model *m,
                     const vt_adapt_given *given, const held *hb, vt_adapt_result *res, char *err,
                     size_t errlen) {
    if (hb->n < 2) {
        vt_fmt(res->why, sizeof res->why, "%d frame(s) to hold back, the check needs 2", hb->n);
        return 0;
    }
    if (o->check == VT_CHECK_CYCLE && (!given || given->n < 1)) {
        vt_fmt(res->why, sizeof res->why, "no object is given for the cycle check");
        return 0;
    }
    vt_image *im = calloc((size_t)hb->n, sizeof *im);
    double *per = calloc((size_t)2 * hb->n, sizeof *per);
    if (!im || !per) {
        free(im);
        free(per);
        return -ENOMEM;
    }
    for (int i = 0; i < hb->n; i++)
        im[i] = (vt_image){.w = hb->w, .h = hb->h, .linesize = 3 * hb->w, .rgb = hb->rgb[i]};
    const double t0 = vt_mono_s();
    char e[256];
    int rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        rc = vt_check_score(k ? m : orig, &given->params, (vt_check_kind)o->check, im, hb->n,
                            given ? given->shapes : NULL, given ? given->n : 0, &res->score[k],
                            per + (size_t)k * hb->n, e, sizeof e);
        if (rc < 0)
            vt_fmt(err, errlen, "the %s check: %s", vt_check_name((vt_check_kind)o->check), e);
    }
    res->check_s = vt_mono_s() - t0;
    if (rc == 0) {
        /* The gain over the horizons (cycle) or pairs (recon) on average must outweigh the
         * largest loss on any one of them: mean + worst > margin. */
        res->worst = per[hb->n] - per[0];
        for (int h = 1; h < hb->n - 1; h++) {
            const double gain = per[hb->n + h] - per[h];
            res->worst = gain < res->worst ? gain : res->worst;
        }
        res->checked = 1;
        res->accepted = (res->score[1] - res->score[0]) + res->worst > o->margin;
    }
    free(im);
    free(per);
    return rc;
}

int vt_adapt_clip(const char *model, const char *clip, const vt_adapt_opts *o, const vt_model *orig,
                  const vt_adapt_given *given, vt_model **out, vt_adapt_result *res, char *err,
                  size_t errlen) {
    *out = NULL;
    memset(res, 0, sizeof *res);
    if (strcmp(model, "lab") == 0) {
        vt_fmt(err, errlen, "--adapt: the weight-free lab model has nothing to adapt");
        return -EINVAL;
    }
    const int checking = o->check != VT_ADAPT_CHECK_NONE;
    if (checking && (!orig || !given)) {
        vt_fmt(err, errlen, "--adapt: the check needs the original model and the tracker");
        return -EINVAL;
    }
    vt_model *m = NULL;
    vt_train_data *d = NULL;
    vt_train_cfg cfg;
    held hb = {.first = checking ? given->frame : 0,
               .stride = o->hold_stride > 0 ? o->hold_stride : 1,
               .count = checking ? o->hold_count : 0};
    vt_train_load_opts lo = {.short_side = o->short_side,
                             .cap_bytes = (size_t)1 << 30,
                             .max_frames = 100000,
                             .log = NULL};
    if (checking && hb.count > 0) {
        lo.hold = hold_frame;
        lo.hold_opaque = &hb;
    }
    char desc[256];
    char *paths[1] = {(char *)clip};
    int rc = 0;
    if (hb.count > 0 && !(hb.rgb = calloc((size_t)hb.count, sizeof *hb.rgb))) {
        vt_fmt(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = vt_model_load(model, &m, err, errlen);
    if (rc == 0 && (rc = vt_train_cfg_from_model(m, &cfg, err, errlen)) == 0) {
        cfg.steps = o->steps;
        cfg.batch = o->batch;
        cfg.lr = o->lr;
        cfg.warmup = o->steps / 10;
        cfg.seed = o->seed;
        const int crop = o->short_side - o->short_side % 8;
        cfg.crop = crop < cfg.crop ? crop : cfg.crop;
    }
    if (rc == 0)
        rc = vt_train_load(paths, 1, &lo, &d, desc, sizeof desc, err, errlen);
    if (rc == 0 && vt_train_data_frames(d) < 2) {
        vt_fmt(err, errlen, "--adapt: %s has fewer than two frames%s", clip,
               hb.n ? " besides those held back for the check" : "");
        rc = -EINVAL;
    }
    if (rc == 0) {
        /* where the weights come from, as vtrack.provenance says for trained ones */
        char what[1024];
        vt_fmt(what, sizeof what, "%d steps of %s on %s (lr %g, batch %d, seed %llu%s)", cfg.steps,
               vt_train_objective_name(cfg.objective), desc, (double)cfg.lr, cfg.batch,
               (unsigned long long)cfg.seed, hb.n ? ", the check's frames held back" : "");
        rc = vt_train_adapt(m, d, &cfg, what, o->log, res->loss, err, errlen);
    }
    res->held = hb.n;
    if (rc == 0 && checking)
        rc = run_check(o, orig, m, given, &hb, res, err, errlen);
    else if (rc == 0)
        res->accepted = 1;
    if (rc == 0 && res->checked) {
        /* the saved copy says whether the guard kept it: --adapt-save writes it either way */
        char v[256];
        vt_fmt(v, sizeof v, "%s %.4f -> %.4f on %d held-back frames, worst horizon %+.4f: %s",
               vt_check_name((vt_check_kind)o->check), res->score[0], res->score[1], res->held,
               res->worst, res->accepted ? "accepted" : "rejected");
        rc = vt_model_set_meta(m, "vtrack.adapt.check", v);
        if (rc < 0)
            vt_fmt(err, errlen, "%s", strerror(-rc));
    }
    if (rc == 0 && o->save)
        rc = vt_model_save(m, o->save, err, errlen);
    vt_train_data_free(&d);
    held_free(&hb);
    if (rc < 0)
        vt_model_free(&m);
    *out = m;
    return rc;
}
