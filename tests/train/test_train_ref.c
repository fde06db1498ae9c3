/*
 * One full training step of each objective against PyTorch autograd
 * (tests/reference/ref_train.py, float64): the same compact-s8 weights (random, with random
 * batch-norm statistics and affine parameters) and the same batch of frame pairs; the loss,
 * the gradient of every trainable tensor and the updated running statistics must agree within
 * 1e-3 relative (max abs error over max abs value, per tensor), and torch.optim.AdamW with
 * clip_grad_norm_ applied to the C gradients must give the C parameters after the step.
 * Run with the im2col convolutions and with Winograd. And vt_bn_stats, `vtrack recalibrate`'s
 * batch-norm statistics (test_bn_stats_vs_torch).
 *
 * Skips (exit 77) when /usr/bin/python3 with torch is not available.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testmain.h"
#include "safetensors.h"
#include "train_int.h"

#define B 2
#define S 64

/* A smooth coloured texture of w x h pixels, moved by (dx, dy): the same seed gives the same
 * texture, so two calls with different shifts make a pair whose correspondence the attention
 * can find. */
static void texture(uint8_t *rgb, int w, int h, int seed, int dx, int dy) {
    vt_rng r;
    vtt_rng_seed(&r, (uint64_t)seed);
    double fx[3][3], fy[3][3], ph[3][3];
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 3; k++) {
            fx[c][k] = 0.05 + 0.3 * vtt_rng_unit(&r);
            fy[c][k] = 0.05 + 0.3 * vtt_rng_unit(&r);
            ph[c][k] = 6.28 * vtt_rng_unit(&r);
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                double v = 128;
                for (int k = 0; k < 3; k++)
                    v += 40 * sin(fx[c][k] * (x + dx) + fy[c][k] * (y + dy) + ph[c][k]);
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                rgb[((size_t)y * w + x) * 3 + c] = (uint8_t)v;
            }
}

static void make_pair_rgb(uint8_t *ref, uint8_t *tgt, int seed, int dx, int dy) {
    texture(ref, S, S, seed, 0, 0);
    texture(tgt, S, S, seed, dx, dy);
}

static void randomise_bn(vt_model *m, uint64_t seed) {
    vt_rng r;
    vtt_rng_seed(&r, seed);
    for (int i = 0; i < vtm_model_nparams(m); i++) {
        vt_param *p = vtm_model_param(m, i);
        if (p->ndim != 1)
            continue;
        for (size_t k = 0; k < p->numel; k++) {
            double u = vtt_rng_unit(&r);
            if (strstr(p->name, "running_var"))
                p->data[k] = (float)(0.5 + 1.5 * u);
            else if (strstr(p->name, "running_mean"))
                p->data[k] = (float)(u - 0.5);
            else if (strstr(p->name, "bn") && strstr(p->name, ".weight"))
                p->data[k] = (float)(0.5 + u);
            else
                p->data[k] = (float)(0.6 * u - 0.3);
        }
    }
}

typedef struct {
    vt_st_out *t;
    int64_t (*shape)[4];
    char (*name)[96];
    int n, cap;
} outs;

static void add(outs *o, const char *name, int ndim, const int64_t *shape, const float *data) {
    ck_assert_int_lt(o->n, o->cap);
    snprintf(o->name[o->n], 96, "%s", name);
    memcpy(o->shape[o->n], shape, sizeof(int64_t) * ndim);
    o->t[o->n] = (vt_st_out){o->name[o->n], ndim, o->shape[o->n], data};
    o->n++;
}

/* Run tests/reference/SCRIPT on the files the test wrote in dir, which must agree; then remove
 * dir. */
static void run_reference(const char *script, const char *dir) {
    char cmd[1200];
    const char *root = getenv("VT_SOURCE_ROOT");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/reference/%s %s", root ? root : "..",
             script, dir);
    fflush(stdout);
    ck_assert_msg(system(cmd) == 0, "PyTorch reference disagrees (see the table above)");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const struct {
    vt_train_objective obj;
    int wino;
} cases[] = {
    {VT_TRAIN_MAST, 0},
    {VT_TRAIN_MAST, 1},
    {VT_TRAIN_COLORIZE, 0},
    {VT_TRAIN_COLORIZE, 1},
};

START_TEST(test_step_vs_torch) {
    char err[512] = "", dir[] = "/tmp/vt_train_refXXXXXX", path[600];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    vt_model *m;
    ck_assert_msg(vt_model_new("compact-s8", 77, &m, err, sizeof err) == 0, "%s", err);
    randomise_bn(m, 99);
    vt_train_cfg cfg;
    vt_train_cfg_default(&cfg, cases[_i].obj);
    cfg.batch = B;
    cfg.crop = S;
    cfg.steps = 10;
    cfg.warmup = 3;
    cfg.clip = 0.05f; /* small enough that clipping is exercised */
    cfg.radius = cases[_i].obj == VT_TRAIN_MAST ? 2 : -1;
    vt_trainer *t;
    ck_assert_msg(vt_trainer_new(m, &cfg, &t, err, sizeof err) == 0, "%s", err);
    vtt_tnet_set_winograd(vtt_trainer_net(t), cases[_i].wino);
    if (cases[_i].obj == VT_TRAIN_COLORIZE) {
        float ab[32];
        for (int k = 0; k < 16; k++) { /* a ring of hues plus greys */
            double r = k < 4 ? 4.0 * k : 30.0, th = 2 * M_PI * k / 12.0;
            ab[2 * k] = (float)(r * cos(th));
            ab[2 * k + 1] = (float)(r * sin(th));
        }
        ck_assert_int_eq(vtt_trainer_set_colors(t, ab, 16), 0);
    }
    uint8_t *rgb = malloc((size_t)2 * B * S * S * 3);
    for (int b = 0; b < B; b++)
        make_pair_rgb(rgb + (size_t)b * S * S * 3, rgb + (size_t)(B + b) * S * S * 3, 10 + b, 3 + b,
                      -2);
    const int drop[B] = {1, 2};
    ck_assert_int_eq(vtt_trainer_set_batch(t, rgb, drop), 0);
    snprintf(path, sizeof path, "%s/w0.safetensors", dir);
    ck_assert_msg(vt_model_save(m, path, err, sizeof err) == 0, "%s", err);

    double loss;
    ck_assert_int_eq(vtt_trainer_forward_backward(t, &loss), 0);
    ck_assert(isfinite(loss));
    const int np = vtm_model_nparams(m);
    float **grad_copy = calloc(np, sizeof *grad_copy), **run = calloc(np, sizeof *run);
    for (int i = 0; i < np; i++) {
        vt_param *p = vtm_model_param(m, i);
        float *g = vtt_tnet_grad(vtt_trainer_net(t), i);
        if (g) {
            grad_copy[i] = malloc(sizeof(float) * p->numel);
            memcpy(grad_copy[i], g, sizeof(float) * p->numel);
        } else {
            run[i] = malloc(sizeof(float) * p->numel);
            memcpy(run[i], p->data, sizeof(float) * p->numel);
        }
    }
    vt_train_step_info info;
    ck_assert_int_eq(vtt_trainer_update(t, loss, &info), 0);
    ck_assert_msg(info.grad_norm > cfg.clip, "clip %g not exercised (norm %g)", cfg.clip,
                  info.grad_norm);

    outs o = {0};
    o.cap = 3 * np + 8;
    o.t = calloc(o.cap, sizeof *o.t);
    o.shape = calloc(o.cap, sizeof *o.shape);
    o.name = calloc(o.cap, sizeof *o.name);
    vt_train_batch *bt = vtt_trainer_batch(t);
    const int N = bt->fh * bt->fw, V = bt->V;
    float lossf = (float)loss;
    float *tcls = malloc(sizeof(float) * B * N);
    for (int i = 0; i < B * N; i++)
        tcls[i] = (float)bt->tgt_cls[i];
    add(&o, "input", 4, (int64_t[]){2 * B, 3, S, S}, bt->input);
    add(&o, "ref_val", 3, (int64_t[]){B, V, N}, bt->ref_val);
    add(&o, "tgt_val", 3, (int64_t[]){B, 3, N}, bt->tgt_val);
    add(&o, "tgt_cls", 2, (int64_t[]){B, N}, tcls);
    add(&o, "loss", 1, (int64_t[]){1}, &lossf);
    for (int i = 0; i < np; i++) {
        vt_param *p = vtm_model_param(m, i);
        char name[96];
        int64_t sh[4] = {p->shape[0], p->shape[1], p->shape[2], p->shape[3]};
        snprintf(name, sizeof name, "%s.%s", grad_copy[i] ? "grad" : "run", p->name);
        add(&o, name, p->ndim, sh, grad_copy[i] ? grad_copy[i] : run[i]);
        if (grad_copy[i]) {
            snprintf(name, sizeof name, "w1.%s", p->name);
            add(&o, name, p->ndim, sh, p->data);
        }
    }
    char v[12][32];
    snprintf(v[0], 32, "%d", B);
    snprintf(v[1], 32, "%d", S);
    snprintf(v[2], 32, "%d", cfg.radius);
    snprintf(v[3], 32, "%.9g", cfg.temperature);
    snprintf(v[4], 32, "%.9g", cfg.huber_scale);
    snprintf(v[5], 32, "%.17g", vtt_trainer_lr_at(t, 0));
    snprintf(v[6], 32, "%.9g", cfg.weight_decay);
    snprintf(v[7], 32, "%.9g", cfg.clip);
    snprintf(v[8], 32, "%.9g", cfg.beta1);
    snprintf(v[9], 32, "%.9g", cfg.beta2);
    snprintf(v[10], 32, "%.9g", cfg.adam_eps);
    const char *meta[] = {"objective",
                          vt_train_objective_name(cfg.objective),
                          "batch",
                          v[0],
                          "crop",
                          v[1],
                          "radius",
                          v[2],
                          "temperature",
                          v[3],
                          "huber_scale",
                          v[4],
                          "lr_step",
                          v[5],
                          "weight_decay",
                          v[6],
                          "clip",
                          v[7],
                          "beta1",
                          v[8],
                          "beta2",
                          v[9],
                          "adam_eps",
                          v[10],
                          NULL};
    snprintf(path, sizeof path, "%s/io.safetensors", dir);
    ck_assert_msg(vtm_st_write(path, o.t, o.n, meta, err, sizeof err) == 0, "%s", err);

    printf("--- %s, %s convolutions (loss %.6g, grad norm %.4g)\n",
           vt_train_objective_name(cfg.objective), cases[_i].wino ? "Winograd" : "im2col", loss,
           info.grad_norm);
    run_reference("ref_train.py", dir);
    for (int i = 0; i < np; i++) {
        free(grad_copy[i]);
        free(run[i]);
    }
    free(grad_copy), free(run), free(tcls), free(rgb);
    free(o.t), free(o.shape), free(o.name);
    vt_trainer_free(&t);
    vt_model_free(&m);
}
END_TEST

/* vt_bn_stats (train/train_bnstats.c) against PyTorch (tests/reference/ref_bnstats.py): two
 * videos of different sizes, compact-s8 with random statistics; the crops must be windows of
 * the frames converted as the tracker converts a frame (checked with OpenCV's Lab), and each
 * running statistic the mean over the batches of torch's batch statistics in training mode
 * (BatchNorm2d with momentum=None), within 1e-3 relative; every other tensor bitwise the
 * same, and the same seed bitwise the same statistics. */
#define BN_B       3
#define BN_S       40
#define BN_BATCHES 4

START_TEST(test_bn_stats_vs_torch) {
    char err[512] = "", dir[] = "/tmp/vt_bnstats_refXXXXXX", path[600];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    static const int vw[2] = {72, 64}, vh[2] = {56, 88}, vn[2] = {3, 2};
    vt_train_data *d;
    ck_assert_int_eq(vt_train_data_new((size_t)1 << 24, &d), 0);
    uint8_t *rgb = malloc((size_t)3 * 88 * 88);
    for (int v = 0; v < 2; v++) {
        ck_assert_int_ge(vt_train_data_add_video(d, v ? "b" : "a", vw[v], vh[v]), 0);
        for (int f = 0; f < vn[v]; f++) {
            texture(rgb, vw[v], vh[v], 100 * v + f, 0, 0);
            ck_assert_int_eq(vt_train_data_add_frame(d, rgb, 3 * vw[v], f), 0);
        }
    }
    ck_assert_int_eq(vt_train_data_finish(d), 5);

    vt_model *m, *twice;
    ck_assert_msg(vt_model_new("compact-s8", 77, &m, err, sizeof err) == 0, "%s", err);
    randomise_bn(m, 98);
    snprintf(path, sizeof path, "%s/w0.safetensors", dir);
    ck_assert_msg(vt_model_save(m, path, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(vt_model_load(path, &twice, err, sizeof err) == 0, "%s", err);
    const int np = vtm_model_nparams(m);
    float **before = calloc(np, sizeof *before);
    for (int i = 0; i < np; i++) {
        vt_param *p = vtm_model_param(m, i);
        before[i] = malloc(sizeof(float) * p->numel);
        memcpy(before[i], p->data, sizeof(float) * p->numel);
    }

    vt_bn_stats_opts o;
    vt_bn_stats_opts_default(&o);
    o.batch = BN_B, o.crop = BN_S, o.batches = BN_BATCHES, o.seed = 5;
    /* the batches vt_bn_stats will draw: the same generator, seeded the same */
    const size_t per = (size_t)BN_B * 3 * BN_S * BN_S;
    float *in = malloc(sizeof(float) * per * BN_BATCHES);
    vt_rng r;
    vtt_rng_seed(&r, o.seed);
    for (int k = 0; k < BN_BATCHES; k++)
        vtt_bn_stats_sample(m, d, &r, BN_B, BN_S, in + per * k);
    ck_assert_msg(vt_bn_stats(m, d, &o, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(vt_bn_stats(twice, d, &o, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(vt_model_meta(m, "vtrack.bn_stats"), "4 batches of 3 crops of 40x40, seed 5");

    outs out = {0};
    out.cap = np + 8;
    out.t = calloc(out.cap, sizeof *out.t);
    out.shape = calloc(out.cap, sizeof *out.shape);
    out.name = calloc(out.cap, sizeof *out.name);
    float *fr[2];
    for (int v = 0; v < 2; v++) {
        const vt_train_video *vv = &d->v[v];
        size_t fsz = (size_t)3 * vv->w * vv->h;
        fr[v] = malloc(sizeof(float) * fsz * vv->n);
        for (int f = 0; f < vv->n; f++)
            for (size_t k = 0; k < fsz; k++)
                fr[v][fsz * f + k] = vv->rgb[f][k];
        add(&out, v ? "frames.1" : "frames.0", 4, (int64_t[]){vv->n, vv->h, vv->w, 3}, fr[v]);
    }
    add(&out, "input", 4, (int64_t[]){(int64_t)BN_B * BN_BATCHES, 3, BN_S, BN_S}, in);
    int nrun = 0;
    for (int i = 0; i < np; i++) {
        vt_param *p = vtm_model_param(m, i), *q = vtm_model_param(twice, i);
        const int running = strstr(p->name, ".running_") != NULL;
        ck_assert_msg(memcmp(p->data, q->data, sizeof(float) * p->numel) == 0,
                      "%s: the same seed gave other statistics", p->name);
        if (!running) {
            ck_assert_msg(memcmp(p->data, before[i], sizeof(float) * p->numel) == 0, "%s changed",
                          p->name);
            continue;
        }
        ck_assert_msg(memcmp(p->data, before[i], sizeof(float) * p->numel) != 0,
                      "%s did not change", p->name);
        char name[96];
        snprintf(name, sizeof name, "run.%s", p->name);
        add(&out, name, 1, (int64_t[]){(int64_t)p->numel}, p->data);
        nrun++;
    }
    ck_assert_int_eq(nrun, 18); /* nine BN layers in compact-s8 */
    float mean[3], std[3];
    vtm_model_norm(m, mean, std);
    char v[4][64];
    snprintf(v[0], 64, "%d", BN_B);
    snprintf(v[1], 64, "%d", BN_BATCHES);
    snprintf(v[2], 64, "%.9g,%.9g,%.9g", mean[0], mean[1], mean[2]);
    snprintf(v[3], 64, "%.9g,%.9g,%.9g", std[0], std[1], std[2]);
    const char *meta[] = {"batch", v[0], "batches", v[1], "mean", v[2], "std", v[3], NULL};
    snprintf(path, sizeof path, "%s/io.safetensors", dir);
    ck_assert_msg(vtm_st_write(path, out.t, out.n, meta, err, sizeof err) == 0, "%s", err);

    run_reference("ref_bnstats.py", dir);

    for (int i = 0; i < np; i++)
        free(before[i]);
    free(before), free(in), free(rgb), free(fr[0]), free(fr[1]);
    free(out.t), free(out.shape), free(out.name);
    vt_model_free(&m);
    vt_model_free(&twice);
    vt_train_data_free(&d);
}
END_TEST

int main(void) {
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null") != 0) {
        fprintf(stderr, "SKIP: /usr/bin/python3 with torch and numpy is needed for the training "
                        "reference (apt-get install python3-torch)\n");
        return 77;
    }
    Suite *s = suite_create("train_reference");
    TCase *tc = tm_add_case(s, "step", 300, NULL);
    tcase_add_loop_test(tc, test_step_vs_torch, 0, (int)TM_LEN(cases));
    tcase_add_test(tm_add_case(s, "bn_stats", 300, NULL), test_bn_stats_vs_torch);
    return tm_run(s);
}
