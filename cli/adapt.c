/*
 * adapt.c - per-clip adaptation: the trainer (train/, vt_train_adapt) run on one clip's frames,
 * starting from the shipped weights instead of a random initialisation.
 *
 * The model is loaded again for every clip, so clips never see each other's adaptation. The
 * objective and its settings are the ones the weights record (vtrack.train.*: objective,
 * crop, radius) so the fine-tuning continues the training that made them; the learning rate
 * is a tenth of training's, with a short warm-up, because a few hundred frames of one scene
 * are easy to overfit. Batch-norm runs in training mode, so its running statistics move to
 * the clip's too. At the end the batch-norm layers are folded again for inference.
 */
#include <errno.h>
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
}

int vt_adapt_clip(const char *model, const char *clip, const vt_adapt_opts *o, vt_model **out,
                  double loss[2], char *err, size_t errlen) {
    *out = NULL;
    if (strcmp(model, "lab") == 0) {
        vt_fmt(err, errlen, "--adapt: the weight-free lab model has nothing to adapt");
        return -EINVAL;
    }
    vt_model *m = NULL;
    vt_train_data *d = NULL;
    vt_train_cfg cfg;
    const vt_train_load_opts lo = {.short_side = o->short_side,
                                   .cap_bytes = (size_t)1 << 30,
                                   .max_frames = 100000,
                                   .log = NULL};
    char desc[256];
    char *paths[1] = {(char *)clip};
    int rc = vt_model_load(model, &m, err, errlen);
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
        vt_fmt(err, errlen, "--adapt: %s has fewer than two frames", clip);
        rc = -EINVAL;
    }
    if (rc == 0) {
        /* where the weights come from, as vtrack.provenance says for trained ones */
        char what[1024];
        vt_fmt(what, sizeof what, "%d steps of %s on %s (lr %g, batch %d, seed %llu)", cfg.steps,
               vt_train_objective_name(cfg.objective), desc, (double)cfg.lr, cfg.batch,
               (unsigned long long)cfg.seed);
        rc = vt_train_adapt(m, d, &cfg, what, o->log, loss, err, errlen);
    }
    if (rc == 0 && o->save)
        rc = vt_model_save(m, o->save, err, errlen);
    vt_train_data_free(&d);
    if (rc < 0)
        vt_model_free(&m);
    *out = m;
    return rc;
}
