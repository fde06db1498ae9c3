/*
 * The trainer (train/) apart from its gradients (test_grad.c, test_train_ref.c):
 * the frame cache and its thinning, pair sampling, the learning-rate schedule, exact resume
 * from a checkpoint, checkpoint failures (truncated file, wrong file, write errors), the
 * export to inference weights, the colour clusters, no heap allocation per step after the
 * first, and a short run that learns.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "testmain.h"
#include "train_int.h"

#include "alloc_count.h"

#define VW 96
#define VH 72

/* Frame f of synthetic video v: a smooth colour texture moving 2 px right and 1 px down per
 * frame, with pixel (0, 0) marking (video, frame) for the sampling test. */
static void synth_frame(int v, int f, uint8_t *rgb) {
    for (int y = 0; y < VH; y++)
        for (int x = 0; x < VW; x++) {
            double X = x - 2.0 * f, Y = y - 1.0 * f;
            uint8_t *p = rgb + ((size_t)y * VW + x) * 3;
            p[0] = (uint8_t)(128 + 90 * sin(0.21 * X + 0.5 * v) * cos(0.13 * Y));
            p[1] = (uint8_t)(128 + 90 * sin(0.17 * Y + 0.3 * X + v));
            p[2] = (uint8_t)(128 + 90 * cos(0.11 * X - 0.23 * Y + 2.0 * v));
        }
}

static vt_train_data *synth_data(int nvideos, int nframes, size_t cap) {
    vt_train_data *d;
    ck_assert_int_eq(vt_train_data_new(cap, &d), 0);
    uint8_t *rgb = malloc((size_t)VW * VH * 3);
    for (int v = 0; v < nvideos; v++) {
        char name[32];
        snprintf(name, sizeof name, "synth%d", v);
        ck_assert_int_ge(vt_train_data_add_video(d, name, VW, VH), 0);
        for (int f = 0; f < nframes; f++) {
            synth_frame(v, f, rgb);
            ck_assert_int_ge(vt_train_data_add_frame(d, rgb, VW * 3, f), 0);
        }
    }
    free(rgb);
    vt_train_data_finish(d);
    return d;
}

static void small_cfg(vt_train_cfg *c, vt_train_objective obj) {
    vt_train_cfg_default(c, obj);
    c->batch = 2;
    c->crop = 48;
    c->steps = 40;
    c->warmup = 5;
    c->ncolors = 8;
    c->jitter = 0.1f;
    c->seed = 5;
}

/* The synthetic videos (nvideos x nframes, a 64 MiB cache) and a small configuration of obj. */
static vt_train_data *small_setup(int nvideos, int nframes, vt_train_objective obj,
                                  vt_train_cfg *c) {
    small_cfg(c, obj);
    return synth_data(nvideos, nframes, 1 << 26);
}

static vt_trainer *new_trainer(vt_model **m, const vt_train_cfg *c, const vt_train_data *d) {
    char err[256] = "";
    ck_assert_msg(vt_model_new("compact-s8", 3, m, err, sizeof err) == 0, "%s", err);
    vt_trainer *t;
    ck_assert_msg(vt_trainer_new(*m, c, &t, err, sizeof err) == 0, "%s", err);
    if (c->objective == VT_TRAIN_COLORIZE)
        ck_assert_msg(vt_trainer_fit_colors(t, d, err, sizeof err) == 0, "%s", err);
    return t;
}

/* ---------------------------------------------------------------------------------------------
 * Data and sampling
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_cache_thinning) {
    const size_t fb = (size_t)VW * VH * 3;
    vt_train_data *d;
    /* room for 10 frames: 2 videos x 16 frames must thin to stride 4 (8 frames) */
    ck_assert_int_eq(vt_train_data_new(10 * fb, &d), 0);
    uint8_t *rgb = calloc(fb, 1);
    for (int v = 0; v < 2; v++) {
        ck_assert_int_eq(vt_train_data_add_video(d, "v", VW, VH), v);
        for (int f = 0; f < 16; f++) {
            rgb[0] = (uint8_t)f;
            ck_assert_int_ge(vt_train_data_add_frame(d, rgb, VW * 3, f), 0);
            ck_assert_uint_le(d->bytes, d->cap_bytes);
        }
    }
    ck_assert_int_eq(d->stride, 4);
    ck_assert_int_eq(vt_train_data_frames(d), 8);
    for (int v = 0; v < 2; v++)
        for (int j = 0; j < d->v[v].n; j++) {
            ck_assert_int_eq(d->v[v].index[j], 4 * j);
            ck_assert_int_eq(d->v[v].rgb[j][0], 4 * j); /* the pixels follow their index */
        }
    ck_assert_int_eq(d->offered, 32);
    ck_assert_uint_eq(d->bytes, 8 * fb);
    /* a one-frame video has no pair and is dropped */
    ck_assert_int_eq(vt_train_data_add_video(d, "single", VW, VH), 2);
    ck_assert_int_eq(vt_train_data_add_frame(d, rgb, VW * 3, 0), 0);
    ck_assert_int_eq(vt_train_data_finish(d), 8);
    ck_assert_int_eq(d->nv, 2);
    /* bad input */
    ck_assert_int_eq(vt_train_data_add_frame(d, rgb, VW * 3 - 1, 1), -EINVAL);
    ck_assert_int_eq(vt_train_data_add_video(d, "huge", 0, 10), -EINVAL);
    free(rgb);
    vt_train_data_free(&d);
    ck_assert_ptr_null(d);
    vt_train_data_free(&d);
    /* room for 2 frames and 3 videos: the third video's first frame cannot fit (every video
     * keeps its first), an error rather than doubling the stride past INT_MAX (SIGFPE) */
    ck_assert_int_eq(vt_train_data_new(2 * fb, &d), 0);
    rgb = calloc(fb, 1);
    for (int v = 0; v < 2; v++) {
        ck_assert_int_eq(vt_train_data_add_video(d, "v", VW, VH), v);
        ck_assert_int_eq(vt_train_data_add_frame(d, rgb, VW * 3, 0), 0);
    }
    ck_assert_int_eq(vt_train_data_add_video(d, "v", VW, VH), 2);
    ck_assert_int_eq(vt_train_data_add_frame(d, rgb, VW * 3, 0), -ENOSPC);
    free(rgb);
    vt_train_data_free(&d);
}
END_TEST

START_TEST(test_sampling_pairs) {
    /* Solid frames whose colour encodes (video, frame): every crop, flip and scale keeps the
     * colour, so each pair can be traced to its two source frames. */
    const size_t fb = (size_t)VW * VH * 3;
    for (int thin = 0; thin < 2; thin++) {
        vt_train_data *d;
        ck_assert_int_eq(vt_train_data_new(thin ? 60 * fb : 1000 * fb, &d), 0);
        uint8_t *rgb = malloc(fb);
        for (int v = 0; v < 3; v++) {
            vt_train_data_add_video(d, "solid", VW, VH);
            for (int f = 0; f < 40; f++) {
                for (size_t i = 0; i < fb; i += 3)
                    rgb[i] = (uint8_t)(50 * v), rgb[i + 1] = (uint8_t)(5 * f), rgb[i + 2] = 9;
                vt_train_data_add_frame(d, rgb, VW * 3, f);
            }
        }
        vt_train_data_finish(d);
        ck_assert_int_eq(d->stride, thin ? 2 : 1);
        vt_train_cfg c;
        small_cfg(&c, VT_TRAIN_MAST);
        c.jitter = 0;
        c.batch = 4;
        vt_model *m;
        vt_trainer *t = new_trainer(&m, &c, d);
        int seen_gap[12] = {0};
        for (int it = 0; it < 50; it++) {
            ck_assert_int_eq(vtt_trainer_sample(t, d), 0);
            vt_train_batch *b = vtt_trainer_batch(t);
            for (int k = 0; k < b->B; k++) {
                const uint8_t *r = b->rgb + (size_t)k * b->S * b->S * 3;
                const uint8_t *g = b->rgb + (size_t)(b->B + k) * b->S * b->S * 3;
                ck_assert_int_eq(r[0], g[0]); /* same video */
                int gap = abs(r[1] - g[1]) / 5;
                ck_assert_int_ge(gap, 1);
                ck_assert_int_le(gap, 10);
                if (thin)
                    ck_assert_int_eq(gap % 2, 0);
                seen_gap[gap]++;
                ck_assert(b->drop[k] == 1 || b->drop[k] == 2);
            }
        }
        /* the gaps cover the range */
        for (int g = thin ? 2 : 1; g <= 10; g += thin ? 2 : 1)
            ck_assert_int_gt(seen_gap[g], 0);
        free(rgb);
        vt_trainer_free(&t);
        vt_model_free(&m);
        vt_train_data_free(&d);
    }
}
END_TEST

START_TEST(test_batch_contents) {
    /* A uniform orange frame: MAST input planes are the normalised Lab times 3/2 with the
     * dropped channel zeroed; values and targets are the cell means, normalised. */
    vt_train_cfg c;
    small_cfg(&c, VT_TRAIN_MAST);
    vt_train_data *d = synth_data(1, 4, 1 << 26);
    vt_model *m;
    vt_trainer *t = new_trainer(&m, &c, d);
    const int S = c.crop, B = c.batch;
    uint8_t *rgb = malloc((size_t)2 * B * S * S * 3);
    for (size_t i = 0; i < (size_t)2 * B * S * S; i++)
        rgb[3 * i] = 210, rgb[3 * i + 1] = 120, rgb[3 * i + 2] = 40;
    const int drop[2] = {1, 2};
    ck_assert_int_eq(vtt_trainer_set_batch(t, rgb, drop), 0);
    vt_train_batch *b = vtt_trainer_batch(t);
    float lab[3];
    vt_image px = {1, 1, 3, rgb};
    vt_lab_from_rgb(&px, lab);
    const size_t SS = (size_t)S * S;
    for (int f = 0; f < 2 * B; f++) {
        const float *in = b->input + (size_t)f * 3 * SS;
        int dr = drop[f % B];
        ck_assert_float_eq_tol(in[0], (lab[0] - 50) / 50 * 1.5f, 1e-5);
        ck_assert_float_eq(in[dr * SS + 77], 0.0f);
        ck_assert_float_eq_tol(in[(3 - dr) * SS + 5], lab[3 - dr] / 110 * 1.5f, 1e-5);
    }
    const int N = b->fh * b->fw;
    ck_assert_int_eq(b->fh, S / 8);
    ck_assert_float_eq_tol(b->tgt_val[0], (lab[0] - 50) / 50, 1e-5);
    ck_assert_float_eq_tol(b->ref_val[(size_t)1 * 3 * N + N + 3], lab[1] / 110, 1e-5);
    ck_assert_float_eq_tol(b->tgt_val[2 * N + 7], lab[2] / 110, 1e-5);
    ck_assert(fabsf(lab[1]) > 10 && fabsf(lab[2]) > 10); /* a real colour */
    /* a drop channel outside {1, 2} is refused */
    const int bad[2] = {0, 1};
    ck_assert_int_eq(vtt_trainer_set_batch(t, rgb, bad), -EINVAL);
    free(rgb);
    vt_trainer_free(&t);
    vt_model_free(&m);
    vt_train_data_free(&d);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Configuration and schedule
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_config_errors) {
    vt_model *m, *rgbm;
    char err[256];
    ck_assert_int_eq(vt_model_new("compact-s8", 1, &m, err, sizeof err), 0);
    ck_assert_int_eq(vt_model_new("r18-s8", 1, &rgbm, err, sizeof err), 0);
    vt_train_cfg c;
    vt_trainer *t;
    small_cfg(&c, VT_TRAIN_MAST);
    c.crop = 60; /* not a multiple of 8 */
    ck_assert_int_eq(vt_trainer_new(m, &c, &t, err, sizeof err), -EINVAL);
    ck_assert_msg(strstr(err, "crop 60"), "%s", err);
    small_cfg(&c, VT_TRAIN_MAST);
    ck_assert_int_eq(vt_trainer_new(rgbm, &c, &t, err, sizeof err), -EINVAL);
    ck_assert_msg(strstr(err, "Lab"), "%s", err);
    small_cfg(&c, VT_TRAIN_MAST);
    c.gap_min = 5, c.gap_max = 2;
    ck_assert_int_eq(vt_trainer_new(m, &c, &t, err, sizeof err), -EINVAL);
    ck_assert_msg(strstr(err, "gap"), "%s", err);
    small_cfg(&c, VT_TRAIN_MAST);
    c.lr = -1;
    ck_assert_int_eq(vt_trainer_new(m, &c, &t, err, sizeof err), -EINVAL);
    ck_assert_msg(strstr(err, "lr"), "%s", err);
    /* allowed sizes whose attention (4 x 256 x 16384^2 bytes, 275 GB) no test machine holds:
     * refused up front, not left to the OOM killer */
    small_cfg(&c, VT_TRAIN_MAST);
    c.crop = 1024, c.batch = 256;
    ck_assert_int_eq(vt_trainer_new(m, &c, &t, err, sizeof err), -ENOMEM);
    ck_assert_msg(strstr(err, "for the attention alone"), "%s", err);
    vt_train_objective o;
    ck_assert_int_eq(vt_train_objective_parse("colorize", &o), 0);
    ck_assert_int_eq(o, VT_TRAIN_COLORIZE);
    ck_assert_int_eq(vt_train_objective_parse("mask", &o), -EINVAL);
    vt_model_free(&m);
    vt_model_free(&rgbm);
}
END_TEST

START_TEST(test_schedule) {
    vt_train_cfg c;
    small_cfg(&c, VT_TRAIN_MAST);
    c.steps = 110, c.warmup = 10, c.lr = 1e-3f, c.lr_min = 0.01f;
    vt_model *m;
    char err[256];
    ck_assert_int_eq(vt_model_new("compact-s8", 1, &m, err, sizeof err), 0);
    vt_trainer *t;
    ck_assert_int_eq(vt_trainer_new(m, &c, &t, err, sizeof err), 0);
    /* warm-up: lr (s + 1) / 10; then lr (0.01 + 0.99 (1 + cos(pi p)) / 2), p = (s - 10)/100 */
    ck_assert_float_eq_tol(vtt_trainer_lr_at(t, 0), 1e-4, 1e-9);
    ck_assert_float_eq_tol(vtt_trainer_lr_at(t, 9), 1e-3, 1e-9);
    ck_assert_float_eq_tol(vtt_trainer_lr_at(t, 10), 1e-3, 1e-9);
    ck_assert_float_eq_tol(vtt_trainer_lr_at(t, 60), 1e-3 * (0.01 + 0.99 * 0.5), 1e-9);
    ck_assert_float_eq_tol(vtt_trainer_lr_at(t, 110), 1e-5, 1e-9);
    vt_trainer_free(&t);
    vt_model_free(&m);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Steps, resume, checkpoints, export
 * ------------------------------------------------------------------------------------------- */

static void snapshot(vt_trainer *t, float **out, size_t *n) {
    vt_model *m = vt_trainer_model(t);
    size_t total = 0;
    for (int i = 0; i < vtm_model_nparams(m); i++)
        total += 3 * vtm_model_param(m, i)->numel;
    float *s = malloc(sizeof(float) * total), *p = s;
    for (int i = 0; i < vtm_model_nparams(m); i++) {
        vt_param *pp = vtm_model_param(m, i);
        memcpy(p, pp->data, sizeof(float) * pp->numel);
        p += pp->numel;
        for (int k = 0; k < 2; k++) {
            float *mv = k ? vtt_trainer_adam_v(t, i) : vtt_trainer_adam_m(t, i);
            if (mv)
                memcpy(p, mv, sizeof(float) * pp->numel);
            else
                memset(p, 0, sizeof(float) * pp->numel);
            p += pp->numel;
        }
    }
    *out = s;
    *n = total;
}

START_TEST(test_resume_exact) {
    /* 6 steps straight == 3 steps, checkpoint, load, 3 steps: bitwise (parameters, running
     * statistics, Adam moments and the losses), for both objectives */
    const vt_train_objective obj = _i ? VT_TRAIN_COLORIZE : VT_TRAIN_MAST;
    vt_train_cfg c;
    vt_train_data *d = small_setup(2, 12, obj, &c);
    c.steps = 6, c.warmup = 2;
    char err[512] = "", path[] = "/tmp/vt_train_ckptXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);

    vt_model *m1;
    vt_trainer *t1 = new_trainer(&m1, &c, d);
    for (int s = 0; s < 6; s++)
        ck_assert_int_eq(vt_trainer_step(t1, d, NULL), 0);
    ck_assert_int_eq(vt_trainer_step(t1, d, NULL), -ERANGE); /* the schedule is over */

    vt_model *m2;
    vt_trainer *t2 = new_trainer(&m2, &c, d);
    for (int s = 0; s < 3; s++)
        ck_assert_int_eq(vt_trainer_step(t2, d, NULL), 0);
    vt_trainer_set_wall(t2, 12.5);
    ck_assert_msg(vt_trainer_save(t2, path, "synth:12", err, sizeof err) == 0, "%s", err);
    vt_trainer_free(&t2);
    vt_model_free(&m2);
    char desc[64];
    ck_assert_msg(vt_trainer_load(path, &m2, &t2, desc, sizeof desc, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_str_eq(desc, "synth:12");
    ck_assert_int_eq(vt_trainer_steps_done(t2), 3);
    ck_assert_float_eq_tol(vt_trainer_wall(t2), 12.5, 1e-9);
    for (int s = 0; s < 3; s++)
        ck_assert_int_eq(vt_trainer_step(t2, d, NULL), 0);

    float *a, *b;
    size_t na, nb;
    snapshot(t1, &a, &na);
    snapshot(t2, &b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(a, b, sizeof(float) * na) == 0, "resumed run differs");
    int64_t l1, l2;
    const float *la = vt_trainer_losses(t1, &l1), *lb = vt_trainer_losses(t2, &l2);
    ck_assert_int_eq(l1, 6);
    ck_assert_int_eq(l2, 6);
    ck_assert(memcmp(la, lb, sizeof(float) * 6) == 0);
    int k1, k2;
    if (obj == VT_TRAIN_COLORIZE)
        ck_assert(memcmp(vt_trainer_colors(t1, &k1), vt_trainer_colors(t2, &k2),
                         sizeof(float) * 2 * c.ncolors) == 0);
    /* a different seed gives a different run (the comparison above can fail) */
    vt_model *m3;
    c.seed = 6;
    vt_trainer *t3 = new_trainer(&m3, &c, d);
    for (int s = 0; s < 6; s++)
        ck_assert_int_eq(vt_trainer_step(t3, d, NULL), 0);
    float *e;
    size_t ne;
    snapshot(t3, &e, &ne);
    ck_assert(memcmp(a, e, sizeof(float) * na) != 0);
    free(a), free(b), free(e);
    unlink(path);
    vt_trainer_free(&t1);
    vt_trainer_free(&t2);
    vt_trainer_free(&t3);
    vt_model_free(&m1);
    vt_model_free(&m2);
    vt_model_free(&m3);
    vt_train_data_free(&d);
}
END_TEST

START_TEST(test_checkpoint_errors) {
    vt_train_cfg c;
    vt_train_data *d = small_setup(1, 6, VT_TRAIN_MAST, &c);
    vt_model *m, *m2;
    vt_trainer *t = new_trainer(&m, &c, d), *t2;
    ck_assert_int_eq(vt_trainer_step(t, d, NULL), 0);
    char err[512] = "", dir[] = "/tmp/vt_train_errXXXXXX", path[600], bad[600], cmd[1400];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    ck_assert_msg(vt_trainer_save(t, path, NULL, err, sizeof err) == 0, "%s", err);

    /* truncated: the file name and the fault in the message, nothing returned */
    snprintf(bad, sizeof bad, "%s/cut.ckpt", dir);
    snprintf(cmd, sizeof cmd, "head -c 5000 %s > %s", path, bad);
    ck_assert_int_eq(system(cmd), 0);
    err[0] = 0;
    ck_assert_int_lt(vt_trainer_load(bad, &m2, &t2, NULL, 0, err, sizeof err), 0);
    ck_assert_ptr_null(m2);
    ck_assert_ptr_null(t2);
    ck_assert_msg(strstr(err, "cut.ckpt"), "%s", err);
    printf("truncated checkpoint: %s\n", err);

    /* a weights file is not a checkpoint */
    snprintf(bad, sizeof bad, "%s/w.safetensors", dir);
    ck_assert_int_eq(vt_trainer_export(t, bad, "synth", err, sizeof err), 0);
    ck_assert_int_eq(vt_trainer_load(bad, &m2, &t2, NULL, 0, err, sizeof err), -EINVAL);
    ck_assert_msg(strstr(err, "not a vtrack training checkpoint"), "%s", err);

    /* missing file */
    snprintf(bad, sizeof bad, "%s/none.ckpt", dir);
    ck_assert_int_lt(vt_trainer_load(bad, &m2, &t2, NULL, 0, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "none.ckpt"), "%s", err);

    /* a write that runs out of space (RLIMIT_FSIZE stands in for a full disk: writes fail
     * with EFBIG): an error naming the file, and the previous checkpoint left intact */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 20000;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ck_assert_int_eq(vt_trainer_step(t, d, NULL), 0);
    err[0] = 0;
    int rc = vt_trainer_save(t, path, NULL, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    ck_assert_int_lt(rc, 0);
    ck_assert_msg(strstr(err, "run.ckpt"), "%s", err);
    printf("checkpoint on a full disk: %s\n", err);
    ck_assert_msg(vt_trainer_load(path, &m2, &t2, NULL, 0, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(vt_trainer_steps_done(t2), 1); /* the old one */
    vt_trainer_free(&t2);
    vt_model_free(&m2);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    vt_trainer_free(&t);
    vt_model_free(&m);
    vt_train_data_free(&d);
}
END_TEST

START_TEST(test_export) {
    const vt_train_objective obj = _i ? VT_TRAIN_COLORIZE : VT_TRAIN_MAST;
    vt_train_cfg c;
    vt_train_data *d = small_setup(2, 8, obj, &c);
    vt_model *m;
    vt_trainer *t = new_trainer(&m, &c, d);
    for (int s = 0; s < 2; s++)
        ck_assert_int_eq(vt_trainer_step(t, d, NULL), 0);
    char err[512], path[] = "/tmp/vt_train_expXXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ck_assert_msg(vt_trainer_export(t, path, "synth0, synth1", err, sizeof err) == 0, "%s", err);
    vt_model *l;
    ck_assert_msg(vt_model_load(path, &l, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(vt_model_arch(l), "compact-s8");
    ck_assert_str_eq(vt_model_meta(l, "vtrack.prop.l2norm"), "1");
    ck_assert_float_eq_tol(atof(vt_model_meta(l, "vtrack.prop.temperature")), 0.05, 1e-7);
    ck_assert_str_eq(vt_model_meta(l, "vtrack.train.data"), "synth0, synth1");
    ck_assert_str_eq(vt_model_meta(l, "vtrack.train.objective"), vt_train_objective_name(obj));
    /* every parameter, running statistics included, as trained */
    for (int i = 0; i < vtm_model_nparams(m); i++) {
        vt_param *a = vtm_model_param(m, i), *b = vtm_model_param_find(l, a->name);
        ck_assert_ptr_nonnull(b);
        ck_assert(memcmp(a->data, b->data, sizeof(float) * a->numel) == 0);
    }
    vt_param *bn = vtm_model_param_find(l, "bn1.running_var");
    int moved = 0;
    for (size_t k = 0; k < bn->numel; k++)
        moved += fabsf(bn->data[k] - 1.0f) > 1e-6f;
    ck_assert_int_gt(moved, 0); /* the running statistics were updated by training */
    if (obj == VT_TRAIN_COLORIZE) {
        /* grey input: the first layer ignores a and b */
        vt_param *w = vtm_model_param_find(l, "conv1.weight");
        for (int o = 0; o < 32; o++)
            for (int k = 9; k < 27; k++)
                ck_assert_float_eq(w->data[o * 27 + k], 0.0f);
        const char *cs = vt_model_meta(l, "vtrack.colorize.centroids");
        ck_assert_ptr_nonnull(cs);
        int semis = 0;
        for (const char *p = cs; *p; p++)
            semis += *p == ';';
        ck_assert_int_eq(semis, c.ncolors - 1);
        /* the exported model runs through the public encoder */
        vt_encoder *e;
        ck_assert_int_eq(vt_encoder_new(l, &e), 0);
        uint8_t *img = malloc((size_t)VW * VH * 3);
        synth_frame(0, 0, img);
        vt_image im = {VW, VH, VW * 3, img};
        vt_features f;
        ck_assert_int_eq(vt_encoder_run(e, &im, &f), 0);
        ck_assert_int_eq(f.c, 64);
        free(img);
        vt_encoder_free(&e);
    }
    unlink(path);
    vt_model_free(&l);
    vt_trainer_free(&t);
    vt_model_free(&m);
    vt_train_data_free(&d);
}
END_TEST

START_TEST(test_colors) {
    /* Four pure colours in equal parts: 4 clusters land on their four (a, b). */
    vt_train_data *d;
    ck_assert_int_eq(vt_train_data_new(1 << 26, &d), 0);
    static const uint8_t cols[4][3] = {
        {200, 30, 30}, {30, 200, 30}, {30, 30, 200}, {128, 128, 128}};
    uint8_t *rgb = malloc((size_t)VW * VH * 3);
    float lab[4][3];
    for (int v = 0; v < 4; v++) {
        vt_image px = {1, 1, 3, cols[v]};
        vt_lab_from_rgb(&px, lab[v]);
        vt_train_data_add_video(d, "c", VW, VH);
        for (size_t i = 0; i < (size_t)VW * VH; i++)
            memcpy(rgb + 3 * i, cols[v], 3);
        for (int f = 0; f < 3; f++)
            vt_train_data_add_frame(d, rgb, VW * 3, f);
    }
    vt_train_data_finish(d);
    vt_train_cfg c;
    small_cfg(&c, VT_TRAIN_COLORIZE);
    c.ncolors = 4;
    vt_model *m;
    vt_trainer *t = new_trainer(&m, &c, d);
    int k;
    const float *ab = vt_trainer_colors(t, &k);
    ck_assert_int_eq(k, 4);
    for (int v = 0; v < 4; v++) {
        float best = INFINITY;
        for (int j = 0; j < 4; j++) {
            float da = ab[2 * j] - lab[v][1], db = ab[2 * j + 1] - lab[v][2];
            best = fminf(best, sqrtf(da * da + db * db));
        }
        ck_assert_msg(best < 0.01f, "colour %d: nearest centroid %.3f away", v, best);
    }
    /* classes of a batch: a pure-red pair has every cell in the red cluster */
    const int S = c.crop;
    uint8_t *crops = malloc((size_t)2 * c.batch * S * S * 3);
    for (size_t i = 0; i < (size_t)2 * c.batch * S * S; i++)
        memcpy(crops + 3 * i, cols[0], 3);
    ck_assert_int_eq(vtt_trainer_set_batch(t, crops, NULL), 0);
    vt_train_batch *b = vtt_trainer_batch(t);
    int red = b->tgt_cls[0];
    ck_assert_float_eq_tol(ab[2 * red], lab[0][1], 0.01);
    for (int q = 0; q < b->fh * b->fw; q++) {
        ck_assert_int_eq(b->tgt_cls[q], red);
        ck_assert_float_eq(b->ref_val[(size_t)red * b->fh * b->fw + q], 1.0f);
    }
    free(crops);
    free(rgb);
    vt_trainer_free(&t);
    vt_model_free(&m);
    vt_train_data_free(&d);
}
END_TEST

START_TEST(test_no_alloc_per_step) {
    vt_train_cfg c;
    vt_train_data *d = small_setup(2, 10, _i ? VT_TRAIN_COLORIZE : VT_TRAIN_MAST, &c);
    vt_model *m;
    vt_trainer *t = new_trainer(&m, &c, d);
    vtt_tnet_set_winograd(vtt_trainer_net(t), 1);
    ck_assert_int_eq(vt_trainer_step(t, d, NULL), 0); /* warm-up */
    /* (Check's assertions allocate: the loop only records) */
    long before = n_alloc;
    int rc = 0;
    for (int s = 0; s < 3; s++)
        rc |= vt_trainer_step(t, d, NULL);
    long allocs = n_alloc - before;
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(allocs, 0);
    vt_trainer_free(&t);
    vt_model_free(&m);
    vt_train_data_free(&d);
}
END_TEST

START_TEST(test_learns) {
    /* 40 steps on the moving texture: the mean loss of the last 10 steps is well below the
     * first 10's (the texture's motion is exactly what the attention has to find) */
    vt_train_cfg c;
    vt_train_data *d = small_setup(2, 16, VT_TRAIN_MAST, &c);
    c.jitter = 0;
    vt_model *m;
    vt_trainer *t = new_trainer(&m, &c, d);
    vtt_tnet_set_winograd(vtt_trainer_net(t), 1);
    vt_train_step_info info;
    for (int s = 0; s < c.steps; s++) {
        ck_assert_int_eq(vt_trainer_step(t, d, &info), 0);
        ck_assert(isfinite(info.loss) && isfinite(info.grad_norm));
    }
    int64_t n;
    const float *l = vt_trainer_losses(t, &n);
    double first = 0, last = 0;
    for (int s = 0; s < 10; s++)
        first += l[s], last += l[n - 10 + s];
    printf("synthetic MAST: mean loss of steps 1-10 %.4f, of steps 31-40 %.4f\n", first / 10,
           last / 10);
    ck_assert_msg(last < 0.8 * first, "loss %.4f -> %.4f", first / 10, last / 10);
    vt_trainer_free(&t);
    vt_model_free(&m);
    vt_train_data_free(&d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("train");
    TCase *tc = tm_add_case(s, "trainer", 300, test_cache_thinning, test_sampling_pairs,
                            test_batch_contents, test_config_errors, test_schedule,
                            test_checkpoint_errors, test_colors, test_learns, NULL);
    tcase_add_loop_test(tc, test_resume_exact, 0, 2);
    tcase_add_loop_test(tc, test_export, 0, 2);
    tcase_add_loop_test(tc, test_no_alloc_per_step, 0, 2);
    return tm_run(s);
}
