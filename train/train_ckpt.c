/*
 * train_ckpt.c - training checkpoints and the export of trained weights.
 *
 * A checkpoint is a safetensors file (written atomically by vtm_st_write: temporary file,
 * fsync, rename) holding
 *   every model parameter under its own name (running statistics included),
 *   "adam.m.<name>", "adam.v.<name>" for every trainable tensor,
 *   "train.loss" [steps done] and, for colorize, "train.colors" [K][2],
 * and in __metadata__ the architecture, the step, the generator state and every field of the
 * training configuration, so `--resume` rebuilds exactly the state the run had: the next
 * step draws the same batch and produces bitwise the same parameters as an uninterrupted run.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "train_int.h"

#define CKPT_MARK "vtrack.train.checkpoint"

/* The configuration fields as (key, kind, offset): numbers stored with full precision. */
enum { F_INT, F_FLOAT, F_U64 };
static const struct {
    const char *key;
    int kind;
    size_t off;
} cfg_fields[] = {
    {"objective", F_INT, offsetof(vt_train_cfg, objective)},
    {"steps", F_INT, offsetof(vt_train_cfg, steps)},
    {"batch", F_INT, offsetof(vt_train_cfg, batch)},
    {"crop", F_INT, offsetof(vt_train_cfg, crop)},
    {"lr", F_FLOAT, offsetof(vt_train_cfg, lr)},
    {"weight_decay", F_FLOAT, offsetof(vt_train_cfg, weight_decay)},
    {"beta1", F_FLOAT, offsetof(vt_train_cfg, beta1)},
    {"beta2", F_FLOAT, offsetof(vt_train_cfg, beta2)},
    {"adam_eps", F_FLOAT, offsetof(vt_train_cfg, adam_eps)},
    {"warmup", F_INT, offsetof(vt_train_cfg, warmup)},
    {"lr_min", F_FLOAT, offsetof(vt_train_cfg, lr_min)},
    {"clip", F_FLOAT, offsetof(vt_train_cfg, clip)},
    {"radius", F_INT, offsetof(vt_train_cfg, radius)},
    {"temperature", F_FLOAT, offsetof(vt_train_cfg, temperature)},
    {"huber_scale", F_FLOAT, offsetof(vt_train_cfg, huber_scale)},
    {"gap_min", F_INT, offsetof(vt_train_cfg, gap_min)},
    {"gap_max", F_INT, offsetof(vt_train_cfg, gap_max)},
    {"scale_min", F_FLOAT, offsetof(vt_train_cfg, scale_min)},
    {"scale_max", F_FLOAT, offsetof(vt_train_cfg, scale_max)},
    {"jitter", F_FLOAT, offsetof(vt_train_cfg, jitter)},
    {"flip", F_INT, offsetof(vt_train_cfg, flip)},
    {"ncolors", F_INT, offsetof(vt_train_cfg, ncolors)},
    {"bn_momentum", F_FLOAT, offsetof(vt_train_cfg, bn_momentum)},
    {"seed", F_U64, offsetof(vt_train_cfg, seed)},
};
#define NFIELDS ((int)(sizeof cfg_fields / sizeof cfg_fields[0]))

static void field_str(const vt_train_cfg *c, int i, char *buf, size_t n) {
    const char *p = (const char *)c + cfg_fields[i].off;
    switch (cfg_fields[i].kind) {
    case F_INT:
        snprintf(buf, n, "%d", *(const int *)p);
        break;
    case F_FLOAT:
        snprintf(buf, n, "%.9g", (double)*(const float *)p);
        break;
    default:
        snprintf(buf, n, "%" PRIu64, *(const uint64_t *)p);
        break;
    }
}

static int field_parse(vt_train_cfg *c, int i, const char *s) {
    char *p = (char *)c + cfg_fields[i].off, *end;
    errno = 0;
    switch (cfg_fields[i].kind) {
    case F_INT: {
        long v = strtol(s, &end, 10);
        if (end == s || *end || errno || v < -1000000000L || v > 1000000000L)
            return -EINVAL;
        *(int *)p = (int)v;
        break;
    }
    case F_FLOAT: {
        double v = strtod(s, &end);
        if (end == s || *end || errno || !isfinite(v))
            return -EINVAL;
        *(float *)p = (float)v;
        break;
    }
    default: {
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || *end || errno || s[0] == '-')
            return -EINVAL;
        *(uint64_t *)p = (uint64_t)v;
        break;
    }
    }
    return 0;
}

int vt_trainer_save(const vt_trainer *t, const char *path, const char *data_desc, char *err,
                    size_t errlen) {
    vt_model *m = t->m;
    const int np = vtm_model_nparams(m);
    const int cap = 3 * np + 2;
    int rc = -ENOMEM, n = 0, k = 0, nv = 0;
    vt_st_out *out = calloc((size_t)cap, sizeof *out);
    int64_t(*shapes)[4] = calloc((size_t)cap, sizeof *shapes);
    char(*names)[VT_NAME_MAX + 32] = calloc((size_t)cap, sizeof *names);
    const char **meta = calloc(2 * (NFIELDS + 8) + 1, sizeof *meta);
    char(*vals)[96] = calloc(NFIELDS + 8, sizeof *vals);
    if (!out || !shapes || !names || !meta || !vals) {
        vt_fmt(err, errlen, "%s: out of memory", path);
        goto done;
    }
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < np; i++) {
            const vt_param *p = vtm_model_param(m, i);
            const float *data = p->data;
            if (pass > 0) {
                data = pass == 1 ? t->am[i] : t->av[i];
                if (!data)
                    continue;
            }
            snprintf(names[n], sizeof names[n], "%s%s",
                     pass == 0   ? ""
                     : pass == 1 ? "adam.m."
                                 : "adam.v.",
                     p->name);
            for (int d = 0; d < 4; d++)
                shapes[n][d] = p->shape[d];
            out[n] = (vt_st_out){names[n], p->ndim, shapes[n], data};
            n++;
        }
    if (t->step > 0) {
        snprintf(names[n], sizeof names[n], "train.loss");
        shapes[n][0] = t->step < t->cfg.steps ? t->step : t->cfg.steps;
        out[n] = (vt_st_out){names[n], 1, shapes[n], t->losses};
        n++;
    }
    if (t->have_colors) {
        snprintf(names[n], sizeof names[n], "train.colors");
        shapes[n][0] = t->cfg.ncolors;
        shapes[n][1] = 2;
        out[n] = (vt_st_out){names[n], 2, shapes[n], t->colors};
        n++;
    }
    char keys[NFIELDS][48];
    meta[k++] = "vtrack.arch";
    meta[k++] = vt_model_arch(m);
    meta[k++] = CKPT_MARK;
    meta[k++] = "1";
    snprintf(vals[nv], sizeof vals[nv], "%" PRId64, t->step);
    meta[k++] = "vtrack.train.step";
    meta[k++] = vals[nv++];
    snprintf(vals[nv], sizeof vals[nv], "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
             t->rng.s[0], t->rng.s[1], t->rng.s[2], t->rng.s[3]);
    meta[k++] = "vtrack.train.rng";
    meta[k++] = vals[nv++];
    snprintf(vals[nv], sizeof vals[nv], "%.3f", t->wall);
    meta[k++] = "vtrack.train.wall";
    meta[k++] = vals[nv++];
    if (data_desc) {
        meta[k++] = "vtrack.train.data";
        meta[k++] = data_desc;
    }
    for (int i = 0; i < NFIELDS; i++) {
        snprintf(keys[i], sizeof keys[i], "vtrack.train.cfg.%s", cfg_fields[i].key);
        field_str(&t->cfg, i, vals[nv], sizeof vals[nv]);
        meta[k++] = keys[i];
        meta[k++] = vals[nv++];
    }
    meta[k] = NULL;
    rc = vtm_st_write(path, out, n, meta, err, errlen);
done:
    free(out);
    free(shapes);
    free(names);
    free(meta);
    free(vals);
    return rc;
}

/* Read tensor `name` of exactly `numel` floats with the shape of p (or 1-D/2-D given). */
static int read_exact(vt_st_file *f, const char *name, int ndim, const int64_t *shape, float *dst,
                      char *err, size_t errlen) {
    const char *fn = vtm_st_name(f);
    const vt_st_tensor *tt = vtm_st_find(f, name);
    if (!tt) {
        vt_fmt(err, errlen, "%s: checkpoint tensor '%s' missing", fn, name);
        return -EINVAL;
    }
    int same = tt->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = tt->shape[d] == shape[d];
    if (!same) {
        vt_fmt(err, errlen, "%s: checkpoint tensor '%s' has the wrong shape", fn, name);
        return -EINVAL;
    }
    int rc = vtm_st_read_f32(f, tt, dst, err, errlen);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < tt->numel; i++)
        if (!isfinite(dst[i])) {
            vt_fmt(err, errlen, "%s: checkpoint tensor '%s' holds a NaN or infinity at %zu", fn,
                   name, i);
            return -EINVAL;
        }
    return 0;
}

/* The model and trainer a checkpoint file holds, into *mout and *tout (also on failure: the
 * caller frees them). */
static int load_checkpoint(vt_st_file *f, const char *path, vt_model **mout, vt_trainer **tout,
                           char *data_desc, size_t len, char *err, size_t errlen) {
    char sub[256];
    int rc;
    const char *mark = vtm_st_meta(f, CKPT_MARK);
    if (!mark || strcmp(mark, "1") != 0) {
        vt_fmt(err, errlen, "%s: not a vtrack training checkpoint (no %s in __metadata__)", path,
               CKPT_MARK);
        return -EINVAL;
    }
    const char *arch = vtm_st_meta(f, "vtrack.arch");
    if ((rc = vt_model_new(arch, 0, mout, sub, sizeof sub)) < 0) {
        vt_fmt(err, errlen, "%s: %s", path, sub);
        return rc;
    }
    vt_model *m = *mout;
    vt_train_cfg cfg;
    vt_train_cfg_default(&cfg, VT_TRAIN_MAST);
    for (int i = 0; i < NFIELDS; i++) {
        char key[64];
        snprintf(key, sizeof key, "vtrack.train.cfg.%s", cfg_fields[i].key);
        const char *v = vtm_st_meta(f, key);
        if (!v || field_parse(&cfg, i, v) < 0) {
            vt_fmt(err, errlen, "%s: metadata %s is %s%.32s%s", path, key, v ? "'" : "missing",
                   v ? v : "", v ? "', not a number" : "");
            return -EINVAL;
        }
    }
    if ((rc = vt_trainer_new(m, &cfg, tout, sub, sizeof sub)) < 0) {
        vt_fmt(err, errlen, "%s: %s", path, sub);
        return rc;
    }
    vt_trainer *t = *tout;
    const char *sv = vtm_st_meta(f, "vtrack.train.step"), *rv = vtm_st_meta(f, "vtrack.train.rng");
    char *end = NULL;
    long long step = sv ? strtoll(sv, &end, 10) : -1;
    if (!sv || *end || step < 0 || step > cfg.steps) {
        vt_fmt(err, errlen, "%s: metadata vtrack.train.step '%.32s' is not in [0, %d]", path,
               sv ? sv : "(missing)", cfg.steps);
        return -EINVAL;
    }
    if (!rv || strlen(rv) != 64 || strspn(rv, "0123456789abcdef") != 64) {
        vt_fmt(err, errlen, "%s: metadata vtrack.train.rng is not 64 hex digits", path);
        return -EINVAL;
    }
    for (int i = 0; i < 4; i++) {
        char h[17];
        memcpy(h, rv + 16 * i, 16);
        h[16] = 0;
        t->rng.s[i] = strtoull(h, NULL, 16);
    }
    const int np = vtm_model_nparams(m);
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < np; i++) {
            vt_param *p = vtm_model_param(m, i);
            float *dst = pass == 0 ? p->data : pass == 1 ? t->am[i] : t->av[i];
            if (!dst)
                continue;
            char name[VT_NAME_MAX + 32];
            snprintf(name, sizeof name, "%s%s",
                     pass == 0   ? ""
                     : pass == 1 ? "adam.m."
                                 : "adam.v.",
                     p->name);
            int64_t shape[4] = {p->shape[0], p->shape[1], p->shape[2], p->shape[3]};
            if ((rc = read_exact(f, name, p->ndim, shape, dst, err, errlen)) < 0)
                return rc;
        }
    if (step > 0) {
        int64_t shape[1] = {step};
        if ((rc = read_exact(f, "train.loss", 1, shape, t->losses, err, errlen)) < 0)
            return rc;
    }
    if (cfg.objective == VT_TRAIN_COLORIZE) {
        int64_t shape[2] = {cfg.ncolors, 2};
        if ((rc = read_exact(f, "train.colors", 2, shape, t->colors, err, errlen)) < 0)
            return rc;
        t->have_colors = 1;
    }
    t->step = step;
    const char *wv = vtm_st_meta(f, "vtrack.train.wall");
    t->wall = wv ? strtod(wv, NULL) : 0.0;
    t->wall = isfinite(t->wall) && t->wall >= 0 ? t->wall : 0.0;
    if (data_desc && len) {
        const char *dd = vtm_st_meta(f, "vtrack.train.data");
        snprintf(data_desc, len, "%s", dd ? dd : "");
    }
    if ((rc = vtm_model_refold(m)) < 0) {
        vt_fmt(err, errlen, "%s: out of memory", path);
        return rc;
    }
    return 0;
}

int vt_trainer_load(const char *path, vt_model **mout, vt_trainer **tout, char *data_desc,
                    size_t len, char *err, size_t errlen) {
    *mout = NULL;
    *tout = NULL;
    vt_st_file *f = NULL;
    vt_model *m = NULL;
    vt_trainer *t = NULL;
    int rc = vtm_st_open(path, &f, err, errlen);
    if (rc < 0)
        return rc;
    rc = load_checkpoint(f, path, &m, &t, data_desc, len, err, errlen);
    if (rc < 0) {
        vt_trainer_free(&t);
        vt_model_free(&m);
        vtm_st_close(&f);
        return rc;
    }
    vtm_st_close(&f);
    *mout = m;
    *tout = t;
    return 0;
}

int vt_trainer_export(vt_trainer *t, const char *path, const char *sources, char *err,
                      size_t errlen) {
    vt_model *m = t->m;
    const vt_train_cfg *c = &t->cfg;
    char buf[512];
    int rc = 0;
#define SET(k, ...)                                                                                \
    do {                                                                                           \
        snprintf(buf, sizeof buf, __VA_ARGS__);                                                    \
        if (!rc)                                                                                   \
            rc = vtm_model_set_meta(m, k, buf);                                                    \
    } while (0)
    /* How the tracker must compare these features: as trained. */
    SET("vtrack.prop.temperature", "%.6g", (double)c->temperature);
    SET("vtrack.prop.l2norm", "1");
    SET("vtrack.train.objective", "%s", vt_train_objective_name(c->objective));
    SET("vtrack.train.steps", "%" PRId64, t->step);
    SET("vtrack.train.batch", "%d", c->batch);
    SET("vtrack.train.crop", "%d", c->crop);
    SET("vtrack.train.lr", "%.6g", (double)c->lr);
    SET("vtrack.train.radius", "%d", c->radius);
    SET("vtrack.train.seed", "%" PRIu64, c->seed);
    SET("vtrack.train.wall_seconds", "%.0f", t->wall);
    SET("vtrack.provenance",
        "vtrack train, objective %s (self-supervised, no labels): %" PRId64
        " steps of %d frame pairs, %dx%d crops, gap %d-%d frames, AdamW lr %.3g wd %.3g, "
        "warm-up %d + cosine, clip %.3g, window radius %d cells, temperature %.3g, seed %" PRIu64,
        vt_train_objective_name(c->objective), t->step, c->batch, c->crop, c->crop, c->gap_min,
        c->gap_max, (double)c->lr, (double)c->weight_decay, c->warmup, (double)c->clip, c->radius,
        (double)c->temperature, c->seed);
    if (sources && !rc)
        rc = vtm_model_set_meta(m, "vtrack.train.data", sources);
    if (c->objective == VT_TRAIN_COLORIZE && t->have_colors && !rc) {
        /* "a,b;a,b;..." in Lab units: the colour classes the model was trained to predict */
        char cs[VT_TRAIN_MAX_COLORS * 32];
        size_t l = 0;
        for (int k = 0; k < c->ncolors; k++)
            l += snprintf(cs + l, sizeof cs - l, "%s%.4g,%.4g", k ? ";" : "",
                          (double)t->colors[2 * k], (double)t->colors[2 * k + 1]);
        rc = vtm_model_set_meta(m, "vtrack.colorize.centroids", cs);
        SET("vtrack.input.grey", "1");
    }
#undef SET
    if (rc) {
        vt_fmt(err, errlen, "%s: out of memory", path);
        return rc;
    }
    return vt_model_save(m, path, err, errlen);
}
