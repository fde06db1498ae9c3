/*
 * test_adapt.c - vtrackd's per-camera adaptation (daemon/reservoir.h, daemon/adapt_worker.h).
 *
 * usage: test_adapt [unit|integration]
 *   unit:        Algorithm R's statistics; the reservoir's byte bound, its files and their
 *                reopening; one run of the worker's body (vtd_adapt_run_once) that changes the
 *                weights and keeps them finite, whose saved copy loads back bit for bit; a
 *                forced-bad update the check rejects
 *   integration: a real vtrackd: a stream with the reservoir on tracks byte for byte as one
 *                without; a run the check rejects keeps the model; an accepted one is swapped in
 *                (`model` event, stats), loaded again at the next start, and reset_model puts the
 *                shipped model back
 * Both need the shipped weights (weights/default.safetensors); without them they exit 77.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapt_worker.h"
#include "dtest.h"
#include "nn.h"
#include "reservoir.h"
#include "testmain.h"
#include "vt_base.h"

static char g_weights[4096];

/* A fresh folder under the scratch folder. */
static const char *fresh_dir(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s", tu_path(name));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    return p;
}

static vtd_adapt_conf conf_default(void) {
    return (vtd_adapt_conf){.enabled = 1,
                            .reservoir_mb = 64,
                            .every_ms = 1000,
                            .clip = 3,
                            .short_side = 256,
                            .min_samples = 8,
                            .hold = 2,
                            .interval_ms = 1000,
                            .steps = 4,
                            .batch = 2,
                            .lr = 1e-4,
                            .max_load = 100,
                            .hours_from = -1,
                            .hours_to = -1,
                            .margin = 0,
                            .seed = 1};
}

/* ---------------------------------------------------------------------------------------------
 * Algorithm R
 * ------------------------------------------------------------------------------------------- */

/* The first k samples fill the slots in order; over many runs every one of N offered samples is
 * kept with probability k/N (20000 runs of N = 100, k = 10: each within 0.1 +- 0.01, about five
 * standard deviations), and the generator is deterministic for a seed. */
START_TEST(test_algorithm_r) {
    enum { N = 100, K = 10, RUNS = 20000 };
    static int kept[N];
    memset(kept, 0, sizeof kept);
    uint64_t rng = 42;
    for (int run = 0; run < RUNS; run++) {
        int slot_of[K];
        for (int n = 0; n < N; n++) {
            int s = vtd_reservoir_choose(&rng, (uint64_t)n, K);
            if (n < K)
                ck_assert_int_eq(s, n);
            ck_assert_int_lt(s, K);
            if (s >= 0)
                slot_of[s] = n;
        }
        for (int s = 0; s < K; s++)
            kept[slot_of[s]]++;
    }
    for (int n = 0; n < N; n++) {
        const double p = (double)kept[n] / RUNS;
        ck_assert_msg(fabs(p - 0.1) < 0.01, "sample %d kept with p = %.4f", n, p);
    }
    uint64_t a = 7, b = 7;
    for (int n = 0; n < 1000; n++)
        ck_assert_int_eq(vtd_reservoir_choose(&a, (uint64_t)n, 5),
                         vtd_reservoir_choose(&b, (uint64_t)n, 5));
    ck_assert_int_eq(vtd_reservoir_choose(&a, 3, 0), -1);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The reservoir on disk
 * ------------------------------------------------------------------------------------------- */

/* Frame `f` of a w x h scene: a texture moving right by 2 pixels a frame, and the sample index
 * written in the first pixel (two bytes) so that a kept sample says which it was. */
static void scene(uint8_t *rgb, int w, int h, int f, int sample) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            const int u = x - 2 * f;
            p[0] = (uint8_t)(128 + 100 * sin(u * 0.21) * cos(y * 0.17));
            p[1] = (uint8_t)(128 + 90 * cos(u * 0.11 + y * 0.05));
            p[2] = (uint8_t)((u * 7 + y * 3) & 255);
        }
    rgb[0] = (uint8_t)(sample & 255);
    rgb[1] = (uint8_t)(sample >> 8);
}

/* Offer `count` samples of w x h (one each `every_ms`, each `clip` consecutive frames, the
 * objects `boxes` (nboxes of them) on every frame, moved right by dx pixels a frame within a
 * sample), writing each chosen one as the pool would.
 * *t is the stream's clock in microseconds. */
static void feed_boxes(vtd_reservoir *r, const vtd_adapt_conf *a, int w, int h, int first,
                       int count, int64_t *t, const vtd_obj_box *boxes, int nboxes, int dx) {
    vtd_obj_box moved[4];
    ck_assert_int_le(nboxes, 4);
    uint8_t *rgb = malloc((size_t)3 * w * h);
    ck_assert_ptr_nonnull(rgb);
    char err[256];
    for (int s = first; s < first + count; s++) {
        for (int f = 0; f < a->clip; f++) {
            scene(rgb, w, h, s * a->clip + f, s);
            for (int i = 0; i < nboxes; i++) {
                moved[i] = boxes[i];
                moved[i].box[0] += dx * f;
            }
            vtd_reservoir_frame(r, rgb, w, h, 3 * w, *t, moved, nboxes);
            *t += 1000; /* 1 ms apart: one sample */
        }
        ck_assert_int_ge(vtd_reservoir_write(r, err, sizeof err), 0);
        ck_assert_int_eq(vtd_reservoir_due(r), 0);
        *t += a->every_ms * 1000;
    }
    free(rgb);
}

static void feed(vtd_reservoir *r, const vtd_adapt_conf *a, int w, int h, int first, int count,
                 int64_t *t) {
    feed_boxes(r, a, w, h, first, count, t, NULL, 0, 0);
}

/* The bytes of the files in dir/frames. */
static uint64_t du_frames(const char *dir, int *files) {
    char p[1024];
    snprintf(p, sizeof p, "%s/frames", dir);
    DIR *d = opendir(p);
    ck_assert_ptr_nonnull(d);
    uint64_t sum = 0;
    *files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/frames/%s", dir, e->d_name);
        sum += (uint64_t)tu_file_size(p);
        (*files)++;
    }
    closedir(d);
    return sum;
}

/*
 * 1 MiB for samples of three 64x48 frames (3 * (9229 bytes and the 600 of a boxes line): 29487
 * each): room for 35. After 200 samples the folder holds exactly 35 files, 1032045 bytes, under
 * the budget; the kept ones come from
 * the whole run (not only the first 37 nor the last); reopened, the reservoir has the same
 * samples and counters. Frames above short_side are scaled down; a new frame size starts the
 * reservoir again with the old files deleted (a budget of 4 MiB: 6 samples of 320x240).
 */
START_TEST(test_reservoir_bounded) {
    const char *dir = fresh_dir("res");
    vtd_adapt_conf a = conf_default();
    a.reservoir_mb = 1;
    vtd_reservoir *r;
    char err[256];
    ck_assert_int_eq(vtd_reservoir_open(dir, &a, &r, err, sizeof err), 0);
    int64_t t = 5000000;
    feed(r, &a, 64, 48, 0, 200, &t);
    vtd_reservoir_stats st;
    vtd_reservoir_get_stats(r, &st);
    ck_assert_int_eq(st.capacity, 35);
    ck_assert_int_eq(st.samples, 35);
    ck_assert_uint_eq(st.offered, 200);
    ck_assert_uint_eq(st.budget, 1048576);
    int files;
    const uint64_t du = du_frames(dir, &files);
    ck_assert_int_eq(files, 35);
    ck_assert_uint_eq(du, st.bytes);
    ck_assert_uint_eq(du, 35 * 29487);
    ck_assert_uint_le(du, st.budget);
    vtd_sample *s;
    int n;
    ck_assert_int_eq(vtd_samples_read(dir, &s, &n), 0);
    ck_assert_int_eq(n, 35);
    int lo = 1 << 30, hi = -1, late = 0;
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(s[i].n, 3);
        ck_assert_int_eq(s[i].w, 64);
        ck_assert_int_eq(s[i].nboxes[0] + s[i].nboxes[1] + s[i].nboxes[2], 0);
        const int idx = s[i].rgb[0] | s[i].rgb[1] << 8;
        lo = idx < lo ? idx : lo;
        hi = idx > hi ? idx : hi;
        late += idx >= 100;
    }
    vtd_samples_free(&s, n);
    ck_assert_int_lt(lo, 35);
    ck_assert_int_ge(hi, 150);
    /* uniform over 200: about half of the 35 from the second half (binomial sd 3) */
    ck_assert_msg(late >= 8 && late <= 27, "%d of 35 kept samples from the second half", late);
    vtd_reservoir_free(&r);

    ck_assert_int_eq(vtd_reservoir_open(dir, &a, &r, err, sizeof err), 0);
    vtd_reservoir_stats st2;
    vtd_reservoir_get_stats(r, &st2);
    ck_assert_int_eq(st2.samples, 35);
    ck_assert_uint_eq(st2.offered, 200);
    ck_assert_uint_eq(st2.bytes, st.bytes);
    /* a new size: the reservoir starts again, scaled to the short side (640x480 -> 320x240),
     * the objects' boxes with it: outward to whole pixels ([100,50,41,21] covers x 50..70.5
     * and y 25..35.5: [50,25,21,11]), clipped ([600,440,100,100]: [300,220,20,20]); a box
     * outside the frame is dropped */
    a.short_side = 240;
    a.reservoir_mb = 4;
    vtd_reservoir_free(&r);
    ck_assert_int_eq(vtd_reservoir_open(dir, &a, &r, err, sizeof err), 0);
    const vtd_obj_box boxes[3] = {
        {7, {100, 50, 41, 21}}, {8, {700, 0, 10, 10}}, {2147483647, {600, 440, 100, 100}}};
    feed_boxes(r, &a, 640, 480, 0, 2, &t, boxes, 3, 0);
    vtd_reservoir_get_stats(r, &st);
    ck_assert_int_eq(st.samples, 2);
    ck_assert_int_eq(st.w, 320);
    ck_assert_int_eq(st.h, 240);
    ck_assert_uint_eq(st.offered, 2);
    ck_assert_int_eq(st.capacity, 6); /* 4 MiB / (3 * (230415 + 600)) */
    du_frames(dir, &files);
    ck_assert_int_eq(files, 2);
    ck_assert_int_eq(vtd_samples_read(dir, &s, &n), 0);
    ck_assert_int_eq(n, 2);
    const vtd_obj_box want[2] = {{7, {50, 25, 21, 11}}, {2147483647, {300, 220, 20, 20}}};
    for (int i = 0; i < n; i++)
        for (int f = 0; f < 3; f++) { /* every frame's */
            ck_assert_int_eq(s[i].nboxes[f], 2);
            ck_assert_int_eq(memcmp(s[i].boxes[f], want, sizeof want), 0);
        }
    vtd_samples_free(&s, n);
    vtd_reservoir_free(&r);
}
END_TEST

/* Write `header` (a PPM header, comments and all) and 4x3 pixels, then a second image whose
 * header has no comment. */
static void sample_file(const char *dir, int slot, const char *header) {
    char p[1024];
    snprintf(p, sizeof p, "%s/frames/s%05d.ppm", dir, slot);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    static const uint8_t px[36];
    fputs(header, f);
    fwrite(px, 1, sizeof px, f);
    fputs("P6\n4 3\n255\n", f);
    fwrite(px, 1, sizeof px, f);
    ck_assert_int_eq(fclose(f), 0);
}

/*
 * Sample files as the reader meets them: without a boxes line (an older vtrackd), with one
 * after another comment, and six it must refuse (a box beyond the frame, a number too few, a
 * negative one, a comment line longer than any vtrackd writes, a number beyond 16384, id 0):
 * only the first three are samples, with the objects they say on their first frame and none on
 * the second.
 */
START_TEST(test_sample_files) {
    const char *dir = fresh_dir("files");
    char p[1024];
    snprintf(p, sizeof p, "%s/frames", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    sample_file(dir, 0, "P6\n4 3\n255\n");
    sample_file(dir, 1, "P6\n# vtrack boxes 3 1 1 2 2 9 0 0 4 3   \n4 3\n255\n");
    sample_file(dir, 2, "P6\n# vtrack boxes 1 0 0 5 1\n4 3\n255\n");
    sample_file(dir, 3, "P6\n# vtrack boxes 1 1 2 3\n4 3\n255\n");
    sample_file(dir, 4, "P6 # made by hand\n# vtrack boxes 5 0 1 4 2\n4 3\n255\n");
    sample_file(dir, 5, "P6\n# vtrack boxes 1 -1 0 2 2\n4 3\n255\n");
    char longer[800];
    snprintf(longer, sizeof longer, "P6\n# %0700d\n4 3\n255\n", 7);
    sample_file(dir, 6, longer);
    sample_file(dir, 7, "P6\n# vtrack boxes 1 0 0 99999999999 1\n4 3\n255\n");
    sample_file(dir, 8, "P6\n# vtrack boxes 0 0 0 1 1\n4 3\n255\n");
    vtd_sample *s;
    int n;
    ck_assert_int_eq(vtd_samples_read(dir, &s, &n), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(s[0].slot, 0);
    ck_assert_int_eq(s[0].nboxes[0], 0);
    ck_assert_int_eq(s[1].slot, 1);
    ck_assert_int_eq(s[1].nboxes[0], 2);
    const vtd_obj_box want1[2] = {{3, {1, 1, 2, 2}}, {9, {0, 0, 4, 3}}};
    ck_assert_int_eq(memcmp(s[1].boxes[0], want1, sizeof want1), 0);
    ck_assert_int_eq(s[2].slot, 4);
    ck_assert_int_eq(s[2].nboxes[0], 1);
    ck_assert_uint_eq(s[2].boxes[0][0].id, 5);
    ck_assert_int_eq(s[2].boxes[0][0].box[1], 1);
    ck_assert_int_eq(s[2].boxes[0][0].box[3], 2);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(s[i].n, 2);
        ck_assert_int_eq(s[i].nboxes[1], 0);
    }
    vtd_samples_free(&s, n);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * One run of the worker
 * ------------------------------------------------------------------------------------------- */

/* A reservoir of `count` samples of the moving scene at 128x96, with one object on it or none. */
static const char *reservoir_of(const char *name, int count, int with_object) {
    const char *dir = fresh_dir(name);
    vtd_adapt_conf a = conf_default();
    vtd_reservoir *r;
    char err[256];
    ck_assert_int_eq(vtd_reservoir_open(dir, &a, &r, err, sizeof err), 0);
    int64_t t = 1;
    /* the live tracker's box moves with the scene (2 pixels right a frame) */
    const vtd_obj_box box = {1, {40, 30, 40, 40}};
    feed_boxes(r, &a, 128, 96, 0, count, &t, &box, with_object, 2);
    vtd_reservoir_free(&r);
    return dir;
}

static void run_setup(vtd_adapt_run *run, const char *dir, const vt_model *in_use,
                      const char *save) {
    memset(run, 0, sizeof *run);
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    snprintf(run->model_path, sizeof run->model_path, "%s", g_weights);
    snprintf(run->base, sizeof run->base, "%s", g_weights);
    run->in_use = in_use;
    run->conf = conf_default();
    ck_assert_int_eq(vt_tracker_params_preset(&run->params, "mast", "realtime", in_use), 0);
    snprintf(run->stream, sizeof run->stream, "cam");
    run->run_seed = 3;
    run->save = save;
}

/* Every parameter finite; 1 if some differ from `ref`'s. */
static int params_differ_finite(vt_model *m, vt_model *ref) {
    int differ = 0;
    ck_assert_int_eq(vtm_model_nparams(m), vtm_model_nparams(ref));
    for (int i = 0; i < vtm_model_nparams(m); i++) {
        const vt_param *p = vtm_model_param(m, i), *q = vtm_model_param(ref, i);
        ck_assert_uint_eq(p->numel, q->numel);
        for (size_t k = 0; k < p->numel; k++) {
            ck_assert_msg(isfinite(p->data[k]), "%s[%zu] is not finite", p->name, k);
            differ |= p->data[k] != q->data[k];
        }
    }
    return differ;
}

/*
 * 4 steps on 10 samples with an object (2 held back, checked by following it: 2 frames each): the
 * copy's weights differ from the shipped ones and are all finite; with margin -2 it is accepted
 * and saved; the saved file loads back bit for bit (every parameter) with its provenance
 * (vtrack.adapt, vtrack.adapt.check).
 */
START_TEST(test_run_accepts_and_round_trips) {
    const char *dir = reservoir_of("run-ok", 10, 1);
    char err[256];
    vt_model *orig = NULL, *back = NULL;
    ck_assert_msg(vt_model_load(g_weights, &orig, err, sizeof err) == 0, "%s", err);
    char save[600];
    snprintf(save, sizeof save, "%s/model.safetensors", dir);
    vtd_adapt_run run;
    run_setup(&run, dir, orig, save);
    run.conf.margin = -2; /* every copy passes: this test is about the weights */
    vtd_adapt_run_once(&run);
    ck_assert_msg(run.rc == 0, "%s", run.err);
    ck_assert_int_eq(run.samples, 10);
    ck_assert_int_eq(run.held, 2);
    ck_assert_int_eq(run.pairs, 4);
    ck_assert(run.checked && run.accepted);
    ck_assert_int_eq(run.check, VTD_CHECK_FOLLOW);
    ck_assert(isfinite(run.before) && isfinite(run.after));
    ck_assert_ptr_nonnull(run.tuned);
    ck_assert_msg(params_differ_finite(run.tuned, orig), "the weights did not change");
    ck_assert_msg(vt_model_load(save, &back, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < vtm_model_nparams(back); i++) {
        const vt_param *p = vtm_model_param(back, i), *q = vtm_model_param(run.tuned, i);
        ck_assert_str_eq(p->name, q->name);
        ck_assert_int_eq(memcmp(p->data, q->data, p->numel * sizeof *p->data), 0);
    }
    ck_assert_ptr_nonnull(strstr(vt_model_meta(back, "vtrack.adapt"), "4 steps of mast"));
    ck_assert_ptr_nonnull(
        strstr(vt_model_meta(back, "vtrack.adapt.check"), "follow 0.")); /* a score in [0, 1] */
    ck_assert_str_eq(vt_model_meta(back, "vtrack.adapt.steps"), "4");
    ck_assert_str_eq(vt_model_meta(back, "vtrack.adapt.frames"), "24");
    ck_assert_str_eq(vt_model_meta(back, "vtrack.adapt.base"), g_weights);
    vt_model_free(&back);
    vt_model_free(&run.tuned);
    vt_model_free(&orig);
}
END_TEST

/* The forced-bad update: every convolution weight replaced by noise after the fine-tuning. */
static void spoil(vt_model *m, void *opaque) {
    (void)opaque;
    uint64_t s = 99;
    for (int i = 0; i < vtm_model_nparams(m); i++) {
        vt_param *p = vtm_model_param(m, i);
        if (p->ndim != 4)
            continue;
        for (size_t k = 0; k < p->numel; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            p->data[k] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
        }
    }
    ck_assert_int_eq(vtm_model_refold(m), 0);
}

/* A forced-bad update is rejected by either check (its score falls: follow on samples with an
 * object, recon on samples without), nothing is saved, and no model is handed back: the stream
 * keeps the one it has. */
START_TEST(test_run_rejects_bad_update) {
    char err[256];
    vt_model *orig = NULL;
    ck_assert_msg(vt_model_load(g_weights, &orig, err, sizeof err) == 0, "%s", err);
    char save[600];
    vtd_adapt_run run;
    for (int boxed = 0; boxed < 2; boxed++) {
        const char *dir = reservoir_of(boxed ? "run-bad-follow" : "run-bad-recon", 10, boxed);
        snprintf(save, sizeof save, "%s/model.safetensors", dir);
        run_setup(&run, dir, orig, save);
        run.after_tune = spoil;
        vtd_adapt_run_once(&run);
        ck_assert_msg(run.rc == 0, "%s", run.err);
        ck_assert(run.checked);
        ck_assert_int_eq(run.check, boxed ? VTD_CHECK_FOLLOW : VTD_CHECK_RECON);
        const char *kind = vtd_check_name(run.check);
        fprintf(stderr, "forced-bad update: %s %.4f -> %.4f on %d, worst %+.4f\n", kind, run.before,
                run.after, run.pairs, run.worst);
        ck_assert_msg(!run.accepted, "%s %.4f -> %.4f accepted", kind, run.before, run.after);
        ck_assert_msg(run.after < run.before && run.worst < 0, "%s %.4f -> %.4f, worst %+.4f", kind,
                      run.before, run.after, run.worst);
        ck_assert_ptr_null(run.tuned);
        ck_assert_int_ne(access(save, F_OK), 0);
    }
    /* too few samples: the run fails without touching anything */
    run_setup(&run, reservoir_of("run-few", 3, 1), orig, save);
    vtd_adapt_run_once(&run);
    ck_assert_int_lt(run.rc, 0);
    ck_assert_ptr_nonnull(strstr(run.err, "3 samples"));
    ck_assert_ptr_null(run.tuned);
    vt_model_free(&orig);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * vtrackd
 * ------------------------------------------------------------------------------------------- */

/* Stream `name` on the test clip, with `adapt` (a JSON object's text, or NULL: off). */
static void stream_json(char *buf, size_t len, const char *name, const char *url,
                        const char *pacing, const char *adapt) {
    snprintf(buf, len,
             "{\"name\":\"%s\",\"url\":\"%s\",\"pacing\":\"%s\",\"objects\":[{\"id\":1,"
             "\"box\":[40,30,40,40],\"frame\":0}]%s%s}",
             name, url, pacing, adapt ? ",\"adapt\":" : "", adapt ? adapt : "");
}

static const char *daemon_config(const char *dir, const char *streams) {
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "{\"listen\":\"127.0.0.1:@PORT@\",\"model\":\"%s\",\"log_level\":\"debug\","
             "\"state_dir\":\"%s\",\"streams\":[%s]}",
             g_weights, dir, streams);
    return buf;
}

/* The `adapt` object of stream `name` in a stats reply (borrowed from j), or NULL. */
static const cJSON *adapt_stats(const cJSON *j, const char *name) {
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stats"), "streams")) {
        if (strcmp(dt_str(e, "stream"), name) == 0)
            return cJSON_GetObjectItem(e, "adapt");
    }
    return NULL;
}

/* Ask stats until `field` of stream's adapt reaches `min` (or `model` equals want_model). */
static cJSON *wait_stats(dt_conn *c, const char *stream, const char *field, double min,
                         int timeout_ms) {
    const int64_t end = tu_now_ms() + timeout_ms;
    for (;;) {
        cJSON *j = dt_command(c, "{\"op\":\"stats\"}\n", 5000);
        ck_assert(dt_is_type(j, "reply"));
        const cJSON *ad = adapt_stats(j, stream);
        ck_assert_ptr_nonnull(ad);
        if (dt_num(ad, field, 0) >= min)
            return j;
        cJSON_Delete(j);
        ck_assert_msg(tu_now_ms() < end, "stream %s: adapt.%s never reached %g", stream, field,
                      min);
        tu_sleep_ms(200);
    }
}

/* The "objects" of every frame event of `stream`, as text, until its `ended`. */
/* The frame events of `stream` until it ends, each frame's objects as JSON in out[frame]
 * (frames 0..max-1); returns how many came. They must come in order without a gap; the first
 * may be later than frame 0, since a configured stream starts before any client connects. */
static int collect_frames(dt_conn *c, const char *stream, char **out, int max, int *first) {
    int n = 0;
    const int64_t end = tu_now_ms() + 60000;
    for (;;) {
        cJSON *j = dt_read_msg(c, 5000);
        ck_assert_msg(j != NULL && tu_now_ms() < end, "no end of stream %s", stream);
        const char *s = dt_str(j, "stream");
        if (s && strcmp(s, stream) == 0) {
            if (dt_is_type(j, "frame")) {
                const int f = (int)dt_num(j, "frame", -1);
                if (!n)
                    *first = f;
                ck_assert_int_eq(f, *first + n);
                ck_assert_int_lt(f, max);
                out[f] = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "objects"));
                n++;
            } else if (dt_is_type(j, "stream") && strcmp(dt_str(j, "state"), "ended") == 0) {
                cJSON_Delete(j);
                return n;
            }
        }
        cJSON_Delete(j);
    }
}

/*
 * Adaptation on but no run (min_samples out of reach): the reservoir samples every 0.1 s from
 * the tracker thread, and the stream's masks are byte for byte those of the same stream without
 * adaptation (two daemons, one lossless stream each, every frame's objects compared).
 */
START_TEST(test_reservoir_changes_nothing) {
    const char *v = dt_video("a160.mp4", 160, 120, 60, 25);
    ck_assert_ptr_nonnull(v);
    static char *frames[2][64];
    int n[2], first[2];
    for (int k = 0; k < 2; k++) {
        const char *dir = fresh_dir(k ? "same-on" : "same-off");
        char sj[1024];
        stream_json(sj, sizeof sj, "s", v, "lossless",
                    k ? "{\"every_s\":0.1,\"min_samples\":99999}" : NULL);
        dt_daemon d;
        ck_assert_int_eq(dt_start(&d, daemon_config(dir, sj), NULL), 0);
        dt_conn c;
        ck_assert_int_eq(dt_hello(&c, d.port), 0);
        dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\",\"masks\":true}\n", 5000),
                        "subscribe");
        n[k] = collect_frames(&c, "s", frames[k], 64, &first[k]);
        cJSON *j = dt_command(&c, "{\"op\":\"stats\"}\n", 5000);
        const cJSON *ad = adapt_stats(j, "s");
        ck_assert_int_eq(ad != NULL, k); /* absent when off */
        if (ad)
            ck_assert_double_gt(dt_num(cJSON_GetObjectItem(ad, "reservoir"), "offered", 0), 0);
        cJSON_Delete(j);
        dt_close(&c);
        ck_assert_int_eq(dt_stop(&d, SIGTERM, 10000, NULL), 0);
    }
    /* both to the last frame; compared where both were subscribed, most of the video */
    const int from = first[0] > first[1] ? first[0] : first[1];
    ck_assert_int_eq(first[0] + n[0], 60);
    ck_assert_int_eq(first[1] + n[1], 60);
    ck_assert_int_le(from, 10);
    for (int f = from; f < 60; f++)
        ck_assert_msg(strcmp(frames[0][f], frames[1][f]) == 0, "frame %d differs", f);
    for (int k = 0; k < 2; k++)
        for (int f = first[k]; f < 60; f++)
            free(frames[k][f]);
}
END_TEST

#define FAST_ADAPT                                                                                 \
    "{\"every_s\":0.1,\"min_samples\":4,\"hold\":1,\"interval_s\":1,\"steps\":2,\"batch\":1,"      \
    "\"max_load\":1000,\"reservoir_mb\":4,\"margin\":%s}"

/* vtrackd on `video` as stream "cam", adapting fast with the given margin, state in `dir`; c is
 * connected to it. */
static void start_adapting(dt_daemon *d, dt_conn *c, const char *dir, const char *video,
                           const char *margin) {
    char adapt[512], sj[2048];
    snprintf(adapt, sizeof adapt, FAST_ADAPT, margin);
    stream_json(sj, sizeof sj, "cam", video, "camera", adapt);
    ck_assert_int_eq(dt_start(d, daemon_config(dir, sj), NULL), 0);
    ck_assert_int_eq(dt_hello(c, d->port), 0);
}

static void stop_adapting(dt_daemon *d, dt_conn *c) {
    dt_close(c);
    ck_assert_int_eq(dt_stop(d, SIGTERM, 20000, NULL), 0);
}

/*
 * A run the check cannot pass (margin 1) is rejected: stats count it, the stream keeps the
 * shipped model, nothing is saved. With margin -2 a run is accepted: the stream's subscribers get
 * a `model` event, stats say "adapted" with the provenance, the model file is in the state
 * directory; the next start loads it; reset_model deletes it and puts the shipped model back.
 */
START_TEST(test_daemon_adapts) {
    const char *v = dt_video("a160.mp4", 160, 120, 60, 25);
    ck_assert_ptr_nonnull(v);
    const char *dir = fresh_dir("daemon-adapt");
    char model[700];
    snprintf(model, sizeof model, "%s/adapt/cam/model.safetensors", dir);
    dt_daemon d;
    dt_conn c;
    start_adapting(&d, &c, dir, v, "1");
    cJSON *j = wait_stats(&c, "cam", "rejected", 1, 90000);
    const cJSON *ad = adapt_stats(j, "cam");
    ck_assert_str_eq(dt_str(ad, "model"), "shipped");
    ck_assert_double_eq(dt_num(ad, "accepted", -1), 0);
    ck_assert_ptr_nonnull(strstr(dt_str(cJSON_GetObjectItem(ad, "last"), "outcome"), "rejected"));
    /* the stream tracks an object: its samples carry it, and the check follows it */
    ck_assert_ptr_nonnull(strstr(dt_str(cJSON_GetObjectItem(ad, "last"), "outcome"), "follow"));
    cJSON_Delete(j);
    ck_assert_int_ne(access(model, F_OK), 0);
    ck_assert(dt_log_has(&d, "adapt: rejected"));
    stop_adapting(&d, &c);

    /* accepted: swapped in */
    start_adapting(&d, &c, dir, v, "-2");
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    j = dt_wait_type(&c, "model", "stream", "cam", 90000);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(dt_str(j, "model"), "adapted");
    ck_assert_str_eq(dt_str(j, "reason"), "accepted");
    ck_assert_ptr_nonnull(strstr(dt_str(j, "provenance"), "2 steps of mast"));
    cJSON_Delete(j);
    j = dt_wait_type(&c, "object", "reason", "the model changed", 10000);
    ck_assert_ptr_nonnull(j); /* the object placed again on the new model's first frame */
    cJSON_Delete(j);
    j = dt_command(&c, "{\"op\":\"stats\"}\n", 5000);
    ad = adapt_stats(j, "cam");
    ck_assert_str_eq(dt_str(ad, "model"), "adapted");
    ck_assert_ptr_nonnull(dt_str(ad, "provenance"));
    cJSON_Delete(j);
    ck_assert_int_eq(access(model, F_OK), 0);
    stop_adapting(&d, &c);

    /* the next start tracks with it; reset_model puts the shipped one back */
    start_adapting(&d, &c, dir, v, "1");
    ck_assert(dt_log_has(&d, "tracking with its saved model"));
    j = dt_command(&c, "{\"op\":\"stats\"}\n", 5000);
    ck_assert_str_eq(dt_str(adapt_stats(j, "cam"), "model"), "adapted");
    cJSON_Delete(j);
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    dt_expect_reply(dt_command(&c, "{\"op\":\"reset_model\",\"stream\":\"cam\"}\n", 5000),
                    "reset_model");
    j = dt_wait_type(&c, "model", "stream", "cam", 5000);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(dt_str(j, "model"), "shipped");
    ck_assert_str_eq(dt_str(j, "reason"), "reset");
    cJSON_Delete(j);
    ck_assert_int_ne(access(model, F_OK), 0);
    j = dt_command(&c, "{\"op\":\"stats\"}\n", 5000);
    ck_assert_str_eq(dt_str(adapt_stats(j, "cam"), "model"), "shipped");
    cJSON_Delete(j);
    j = dt_command(&c, "{\"op\":\"reset_model\",\"stream\":\"nope\"}\n", 5000);
    ck_assert(dt_is_type(j, "error"));
    ck_assert_str_eq(dt_str(j, "code"), "not_found");
    cJSON_Delete(j);
    stop_adapting(&d, &c);
}
END_TEST

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "unit";
    const char *root = getenv("VT_SOURCE_ROOT");
    snprintf(g_weights, sizeof g_weights, "%s/weights/default.safetensors", root ? root : ".");
    if (access(g_weights, R_OK) != 0) { /* the shipped weights are what is adapted */
        fprintf(stderr, "test_adapt: %s missing: skipped\n", g_weights);
        return 77;
    }
    Suite *s = suite_create("daemon-adapt");
    if (strcmp(which, "unit") == 0) {
        tm_add_case(s, which, 120, test_algorithm_r, test_reservoir_bounded, test_sample_files,
                    test_run_accepts_and_round_trips, test_run_rejects_bad_update, NULL);
    } else if (strcmp(which, "integration") == 0) {
        tm_add_case(s, which, 240, test_reservoir_changes_nothing, test_daemon_adapts, NULL);
    } else {
        fprintf(stderr, "usage: %s [unit|integration]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int status = tm_run(s);
    tu_cleanup();
    return status;
}
