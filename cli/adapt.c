/*
 * adapt.c - per-clip adaptation: the trainer (model/train.h) run on one clip's frames, starting
 * from the shipped weights instead of a random initialisation.
 *
 * The model is loaded again for every clip, so clips never see each other's adaptation. The
 * objective and its settings are the ones the weights record (vtrack.train.*: objective,
 * crop, radius) so the fine-tuning continues the training that made them; the learning rate
 * is a tenth of training's, with a short warm-up, because a few hundred frames of one scene
 * are easy to overfit. Batch-norm runs in training mode, so its running statistics move to
 * the clip's too. At the end the batch-norm layers are folded again for inference.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adapt.h"
#include "nn.h"
#include "train.h"
#include "train_sources.h"

void vt_adapt_opts_default(vt_adapt_opts *o) {
    memset(o, 0, sizeof *o);
    o->lr = 1e-4f;
    o->batch = 4;
    o->short_side = 256;
    o->seed = 1;
}

/* The training settings the weights record, over the trainer's defaults. */
static int cfg_from_model(const vt_model *m, const vt_adapt_opts *o, vt_train_cfg *c, char *err,
                          size_t errlen) {
    vt_train_objective obj = VT_TRAIN_MAST;
    const char *s = vt_model_meta(m, "vtrack.train.objective");
    if (s && vt_train_objective_parse(s, &obj) < 0) {
        snprintf(err, errlen, "--adapt: the weights' objective '%s' is unknown", s);
        return -EINVAL;
    }
    if (obj != VT_TRAIN_MAST) {
        /* colorize needs the weights' colour centroids and a classifier: not adapted yet */
        snprintf(err, errlen, "--adapt: only mast-trained weights can be adapted (these: %s)", s);
        return -EINVAL;
    }
    vt_train_cfg_default(c, obj);
    if ((s = vt_model_meta(m, "vtrack.train.radius")))
        c->radius = atoi(s);
    if ((s = vt_model_meta(m, "vtrack.prop.temperature")) && atof(s) > 0)
        c->temperature = (float)atof(s);
    c->steps = o->steps;
    c->batch = o->batch;
    c->lr = o->lr;
    c->warmup = o->steps / 10;
    c->seed = o->seed;
    const int crop = o->short_side - o->short_side % 8;
    c->crop = crop < c->crop ? crop : c->crop;
    return 0;
}

/* cfg->steps steps of the trainer on d, updating m in place. */
static int fine_tune(vt_model *m, const vt_train_data *d, const vt_train_cfg *cfg, FILE *log,
                     double loss[2], char *err, size_t errlen) {
    vt_trainer *t = NULL;
    int rc = vt_trainer_new(m, cfg, &t, err, errlen);
    if (rc < 0)
        return rc;
    double first = 0, last = 0;
    const int tenth = cfg->steps / 10 > 0 ? cfg->steps / 10 : 1;
    for (int s = 0; s < cfg->steps && rc == 0; s++) {
        vt_train_step_info info;
        if ((rc = vt_trainer_step(t, d, &info)) < 0) {
            snprintf(err, errlen, "--adapt: step %d: %s", s + 1,
                     rc == -EDOM ? "the loss became NaN/infinite" : strerror(-rc));
            break;
        }
        if (s < tenth)
            first += info.loss / tenth;
        if (s >= cfg->steps - tenth)
            last += info.loss / tenth;
        if (log && ((s + 1) % 10 == 0 || s + 1 == cfg->steps))
            fprintf(log, "\radapting: step %d/%d loss %.4f ", s + 1, cfg->steps, info.loss);
    }
    if (log)
        fputc('\n', log);
    vt_trainer_free(&t);
    if (rc == 0 && loss)
        loss[0] = first, loss[1] = last;
    return rc;
}

int vt_adapt_clip(const char *model, const char *clip, const vt_adapt_opts *o, vt_model **out,
                  double loss[2], char *err, size_t errlen) {
    *out = NULL;
    if (strcmp(model, "lab") == 0) {
        snprintf(err, errlen, "--adapt: the weight-free lab model has nothing to adapt");
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
    if (rc == 0)
        rc = cfg_from_model(m, o, &cfg, err, errlen);
    if (rc == 0)
        rc = vt_train_load(paths, 1, &lo, &d, desc, sizeof desc, err, errlen);
    if (rc == 0 && vt_train_data_frames(d) < 2) {
        snprintf(err, errlen, "--adapt: %s has fewer than two frames", clip);
        rc = -EINVAL;
    }
    if (rc == 0)
        rc = fine_tune(m, d, &cfg, o->log, loss, err, errlen);
    if (rc == 0) {
        /* where the weights come from, as vtrack.provenance says for trained ones */
        char what[1024];
        snprintf(what, sizeof what, "%d steps of %s on %s (lr %g, batch %d, seed %llu)",
                 cfg.steps, vt_train_objective_name(cfg.objective), desc, (double)cfg.lr,
                 cfg.batch, (unsigned long long)cfg.seed);
        if ((rc = vt_model_set_meta(m, "vtrack.adapt", what)) == 0)
            rc = vt_model_refold(m);
        if (rc < 0)
            snprintf(err, errlen, "--adapt: %s", strerror(-rc));
        else if (o->save)
            rc = vt_model_save(m, o->save, err, errlen);
    }
    vt_train_data_free(&d);
    if (rc < 0)
        vt_model_free(&m);
    *out = m;
    return rc;
}
