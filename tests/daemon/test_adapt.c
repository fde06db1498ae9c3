/*
 * test_adapt.c - vtrackd's per-camera adaptation (daemon/reservoir.h, daemon/adapt_worker.h).
 *
 * usage: test_adapt [unit]
 *   unit: Algorithm R's statistics; the reservoir's byte bound, its files and their reopening
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

#include "dtest.h"
#include "reservoir.h"
#include "testmain.h"
#include "vt_base.h"

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

/* Offer `count` samples of w x h (one each `every_ms`, each `clip` consecutive frames),
 * writing each chosen one as the pool would. *t is the stream's clock in microseconds. */
static void feed(vtd_reservoir *r, const vtd_adapt_conf *a, int w, int h, int first, int count,
                 int64_t *t) {
    uint8_t *rgb = malloc((size_t)3 * w * h);
    ck_assert_ptr_nonnull(rgb);
    char err[256];
    for (int s = first; s < first + count; s++) {
        for (int f = 0; f < a->clip; f++) {
            scene(rgb, w, h, s * a->clip + f, s);
            vtd_reservoir_frame(r, rgb, w, h, 3 * w, *t);
            *t += 1000; /* 1 ms apart: one sample */
        }
        ck_assert_int_ge(vtd_reservoir_write(r, err, sizeof err), 0);
        ck_assert_int_eq(vtd_reservoir_due(r), 0);
        *t += a->every_ms * 1000;
    }
    free(rgb);
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
 * 1 MiB for samples of three 64x48 frames (27687 bytes each): room for 37. After 200 samples
 * the folder holds exactly 37 files, 1024419 bytes, under the budget; the kept ones come from
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
    ck_assert_int_eq(st.capacity, 37);
    ck_assert_int_eq(st.samples, 37);
    ck_assert_uint_eq(st.offered, 200);
    ck_assert_uint_eq(st.budget, 1048576);
    int files;
    const uint64_t du = du_frames(dir, &files);
    ck_assert_int_eq(files, 37);
    ck_assert_uint_eq(du, st.bytes);
    ck_assert_uint_eq(du, 37 * 27687);
    ck_assert_uint_le(du, st.budget);
    vtd_sample *s;
    int n;
    ck_assert_int_eq(vtd_samples_read(dir, &s, &n), 0);
    ck_assert_int_eq(n, 37);
    int lo = 1 << 30, hi = -1, late = 0;
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(s[i].n, 3);
        ck_assert_int_eq(s[i].w, 64);
        const int idx = s[i].rgb[0] | s[i].rgb[1] << 8;
        lo = idx < lo ? idx : lo;
        hi = idx > hi ? idx : hi;
        late += idx >= 100;
    }
    vtd_samples_free(&s, n);
    ck_assert_int_lt(lo, 37);
    ck_assert_int_ge(hi, 150);
    /* uniform over 200: about half of the 37 from the second half (binomial sd 3) */
    ck_assert_msg(late >= 9 && late <= 28, "%d of 37 kept samples from the second half", late);
    vtd_reservoir_free(&r);

    ck_assert_int_eq(vtd_reservoir_open(dir, &a, &r, err, sizeof err), 0);
    vtd_reservoir_stats st2;
    vtd_reservoir_get_stats(r, &st2);
    ck_assert_int_eq(st2.samples, 37);
    ck_assert_uint_eq(st2.offered, 200);
    ck_assert_uint_eq(st2.bytes, st.bytes);
    /* a new size: the reservoir starts again, scaled to the short side (640x480 -> 320x240) */
    a.short_side = 240;
    a.reservoir_mb = 4;
    vtd_reservoir_free(&r);
    ck_assert_int_eq(vtd_reservoir_open(dir, &a, &r, err, sizeof err), 0);
    feed(r, &a, 640, 480, 0, 2, &t);
    vtd_reservoir_get_stats(r, &st);
    ck_assert_int_eq(st.samples, 2);
    ck_assert_int_eq(st.w, 320);
    ck_assert_int_eq(st.h, 240);
    ck_assert_uint_eq(st.offered, 2);
    ck_assert_int_eq(st.capacity, 6); /* 4 MiB / (3 * 230415) */
    du_frames(dir, &files);
    ck_assert_int_eq(files, 2);
    vtd_reservoir_free(&r);
}
END_TEST

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "unit";
    Suite *s = suite_create("daemon-adapt");
    if (strcmp(which, "unit") == 0) {
        tm_add_case(s, which, 120, test_algorithm_r, test_reservoir_bounded, NULL);
    } else {
        fprintf(stderr, "usage: %s [unit]\n", argv[0]);
        return 2;
    }
    int status = tm_run(s);
    tu_cleanup();
    return status;
}
