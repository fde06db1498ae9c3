/*
 * train_adapt.c - fine-tuning shipped weights on new frames (issue 17's per-clip adaptation):
 * the trainer started from a loaded model instead of a random one, then the model made ready
 * for inference again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "train_int.h"
#include "vt_base.h"
#include "vt_train.h"

int vt_train_cfg_from_model(const vt_model *m, vt_train_cfg *c, char *err, size_t errlen) {
    vt_train_objective obj = VT_TRAIN_MAST;
    const char *s = vt_model_meta(m, "vtrack.train.objective");
    if (s && vt_train_objective_parse(s, &obj) < 0) {
        vt_fmt(err, errlen, "the weights' objective '%s' is unknown", s);
        return -EINVAL;
    }
    if (obj != VT_TRAIN_MAST) {
        /* colorize would need the weights' colour centroids back in the trainer: not yet */
        vt_fmt(err, errlen, "only mast-trained weights can be fine-tuned (these: %s)", s);
        return -EINVAL;
    }
    vt_train_cfg_default(c, obj);
    if ((s = vt_model_meta(m, "vtrack.train.radius")))
        c->radius = atoi(s);
    if ((s = vt_model_meta(m, "vtrack.train.crop")) && atoi(s) >= 64 && atoi(s) % 8 == 0)
        c->crop = atoi(s);
    if ((s = vt_model_meta(m, "vtrack.prop.temperature")) && atof(s) > 0)
        c->temperature = (float)atof(s);
    return 0;
}

int vt_train_adapt(vt_model *m, const vt_train_data *d, const vt_train_cfg *cfg,
                   const char *provenance, FILE *log, double loss[2], char *err, size_t errlen) {
    vt_trainer *t = NULL;
    int rc = vt_trainer_new(m, cfg, &t, err, errlen);
    if (rc < 0)
        return rc;
    double first = 0, last = 0;
    const int tenth = cfg->steps / 10 > 0 ? cfg->steps / 10 : 1;
    for (int s = 0; s < cfg->steps; s++) {
        vt_train_step_info info;
        if ((rc = vt_trainer_step(t, d, &info)) < 0) {
            vt_fmt(err, errlen, "step %d: %s", s + 1,
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
    if (rc < 0)
        return rc; /* err says which step */
    if ((provenance && (rc = vtm_model_set_meta(m, "vtrack.adapt", provenance)) < 0) ||
        (rc = vtm_model_refold(m)) < 0) {
        vt_fmt(err, errlen, "%s", strerror(-rc));
        return rc;
    }
    if (loss)
        loss[0] = first, loss[1] = last;
    return 0;
}
