/*
 * `vtrack train` end to end on one short real clip ($VT_DATA/train/davis16-bear.mp4, 82
 * frames): 200 steps must lower the loss monotonically in its moving average (the mean of
 * each 50 steps below the previous 50's, from the CSV log), the outputs must be well formed
 * (CSV, SVG, loadable weights with the training metadata), and a run interrupted by SIGINT
 * and resumed from its checkpoint must end with bitwise the same weights as the straight run.
 * Bad inputs must fail with a message naming them. And `vtrack recalibrate` on the same clip
 * (test_recalibrate).
 *
 * Skips loudly without the data set.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testmain.h"
#include "commands.h"
#include "nn.h"

static char clip[1024], dir[64];

/* Run a vtrack command (vt_cmd_train or vt_cmd_recalibrate) on a command line split at spaces. */
static int run_line(int (*cmd)(int, char **), char *cmdline) {
    char *argv[64];
    int argc = 0;
    for (char *p = strtok(cmdline, " "); p && argc < 63; p = strtok(NULL, " "))
        argv[argc++] = p;
    argv[argc] = NULL;
    return cmd(argc, argv);
}

static int run_train(const char *extra_fmt, const char *tag, int steps) {
    char cmdline[4096];
    snprintf(cmdline, sizeof cmdline,
             "train --data %s --steps %d --batch 4 --crop 128 --short-side 160 --warmup 20 "
             "--seed 3 --quiet --out %s/%s.safetensors --log %s/%s.csv --checkpoint-every 50 %s",
             clip, steps, dir, tag, dir, tag, extra_fmt);
    return run_line(vt_cmd_train, cmdline);
}

static int read_csv(const char *path, double *loss, int max) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    int n = 0;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    ck_assert_str_eq(line, "step,loss,lr,grad_norm,seconds\n");
    while (fgets(line, sizeof line, f) && n < max) {
        if (!strchr(line, '\n'))
            break; /* a line being written by the other process */
        int step;
        double l;
        ck_assert_int_eq(sscanf(line, "%d,%lf", &step, &l), 2);
        ck_assert_int_eq(step, n + 1);
        loss[n++] = l;
    }
    fclose(f);
    return n;
}

static void load_params(const char *path, vt_model **m) {
    char err[512];
    ck_assert_msg(vt_model_load(path, m, err, sizeof err) == 0, "%s", err);
}

START_TEST(test_200_steps) {
    char path[256];
    snprintf(path, sizeof path, "--plot %s/a.svg", dir);
    ck_assert_int_eq(run_train(path, "a", 200), 0);
    double loss[256];
    snprintf(path, sizeof path, "%s/a.csv", dir);
    int n = read_csv(path, loss, 256);
    ck_assert_int_eq(n, 200);
    double prev = INFINITY;
    for (int w = 0; w < 4; w++) {
        double s = 0;
        for (int i = 0; i < 50; i++)
            s += loss[50 * w + i];
        printf("steps %3d-%3d: mean loss %.4f\n", 50 * w + 1, 50 * w + 50, s / 50);
        ck_assert_msg(s / 50 < prev, "moving average rose: %.4f after %.4f", s / 50, prev);
        prev = s / 50;
    }
    /* the SVG is a complete document; the weights load and say how to use them */
    snprintf(path, sizeof path, "%s/a.svg", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char buf[65536];
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    buf[k] = 0;
    fclose(f);
    ck_assert(strstr(buf, "<svg") && strstr(buf, "<polyline") && strstr(buf, "</svg>"));
    vt_model *m;
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    load_params(path, &m);
    ck_assert_str_eq(vt_model_meta(m, "vtrack.train.steps"), "200");
    ck_assert_str_eq(vt_model_meta(m, "vtrack.train.data"), "davis16-bear.mp4");
    ck_assert_str_eq(vt_model_meta(m, "vtrack.prop.l2norm"), "1");
    vt_model_free(&m);
}
END_TEST

START_TEST(test_interrupt_and_resume) {
    /* child: the same run as test_200_steps; parent: SIGINT once 60 steps are logged */
    char path[256];
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(run_train("", "b", 200));
    snprintf(path, sizeof path, "%s/b.csv", dir);
    double loss[256];
    for (int i = 0; i < 6000; i++) {
        usleep(50000);
        int n = read_csv(path, loss, 256);
        if (n >= 60)
            break;
    }
    kill(pid, SIGINT);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 130);
    int done = read_csv(path, loss, 256);
    ck_assert(done >= 60 && done < 200);
    printf("interrupted after %d steps\n", done);
    /* resume to the end */
    char extra[256];
    snprintf(extra, sizeof extra, "--resume %s/b.safetensors.ckpt", dir);
    char other[512]; /* a setting other than the checkpoint's is refused before anything */
    snprintf(other, sizeof other, "%s --clip 2.5", extra);
    ck_assert_int_eq(run_train(other, "b", 200), 2);
    ck_assert_int_eq(run_train(extra, "b", 200), 0);
    ck_assert_int_eq(read_csv(path, loss, 256), 200);
    /* straight run of the same configuration (test_200_steps may run in another process) */
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    struct stat sb;
    if (stat(path, &sb) != 0)
        ck_assert_int_eq(run_train("", "a", 200), 0);
    vt_model *a, *b;
    load_params(path, &a);
    snprintf(path, sizeof path, "%s/b.safetensors", dir);
    load_params(path, &b);
    for (int i = 0; i < vtm_model_nparams(a); i++) {
        vt_param *pa = vtm_model_param(a, i), *pb = vtm_model_param(b, i);
        ck_assert_str_eq(pa->name, pb->name);
        ck_assert_msg(memcmp(pa->data, pb->data, sizeof(float) * pa->numel) == 0,
                      "%s differs after interrupt + resume", pa->name);
    }
    vt_model_free(&a);
    vt_model_free(&b);
}
END_TEST

START_TEST(test_bad_inputs) {
    char *argv1[] = {"train",   "--data", "/nonexistent/clip.mp4", "--out", "/tmp/x",
                     "--quiet", NULL};
    ck_assert_int_eq(vt_cmd_train(6, argv1), 1);
    char *argv2[] = {"train", "--data", clip, "--out", "/tmp/x", "--crop", "100", NULL};
    ck_assert_int_eq(vt_cmd_train(7, argv2), 2); /* not a multiple of the stride */
    char *argv3[] = {"train", "--data", clip, "--out", "/tmp/x", "--objective", "paint", NULL};
    ck_assert_int_eq(vt_cmd_train(7, argv3), 2);
    char bad[256];
    snprintf(bad, sizeof bad, "%s/garbage.ckpt", dir);
    FILE *f = fopen(bad, "w");
    fputs("not a checkpoint", f);
    fclose(f);
    char *argv4[] = {"train", "--data", clip, "--out", "/tmp/x", "--resume", bad, NULL};
    ck_assert_int_eq(vt_cmd_train(7, argv4), 1);
    char *argv5[] = {"train", "--out", "/tmp/x", NULL};
    ck_assert_int_eq(vt_cmd_train(3, argv5), 2);
    /* found out before any decoding (they cost a whole run before) */
    char *argv6[] = {"train", "--data", clip, "--out", "/nonexistent-dir/w.safetensors", NULL};
    ck_assert_int_eq(vt_cmd_train(5, argv6), 2);
    char *argv7[] = {"train", "--data", clip, "--out", "/tmp/x", "--checkpoint", "/tmp/x", NULL};
    ck_assert_int_eq(vt_cmd_train(7, argv7), 2);
    char *argv9[] = {"train", "--data", clip, "--bench", "2", "--resume", bad, NULL};
    ck_assert_int_eq(vt_cmd_train(7, argv9), 2);
    /* a folder with numbered frames and a video: which was meant? (the video was ignored) */
    char mixed[300], cmd[4096];
    snprintf(mixed, sizeof mixed, "%s/mixed", dir);
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && ln -sf %s %s/a.mp4 && ffmpeg -loglevel error -y -f lavfi -i "
             "color=c=gray:s=64x48 -frames:v 1 %s/00000.jpg",
             mixed, clip, mixed, mixed);
    ck_assert_int_eq(system(cmd), 0);
    char *argv10[] = {"train", "--data", mixed, "--out", "/tmp/x", "--quiet", NULL};
    ck_assert_int_eq(vt_cmd_train(6, argv10), 1);
}
END_TEST

/* `vtrack recalibrate` on the clip: only the running statistics change, they are recorded, the
 * same seed writes the same file, and bad inputs fail before any decoding with their message. */
static int run_recal(const char *model, const char *out, const char *extra) {
    char cmdline[4096];
    snprintf(cmdline, sizeof cmdline,
             "recalibrate --model %s --data %s --out %s --short-side 160 --crop 128 --batch 4 "
             "--batches 6 --quiet %s",
             model, clip, out, extra);
    return run_line(vt_cmd_recalibrate, cmdline);
}

START_TEST(test_recalibrate) {
    const char *root = getenv("VT_SOURCE_ROOT");
    char model[1024], a[256], b[256], c[256], cmd[1024];
    snprintf(model, sizeof model, "%s/weights/default.safetensors", root ? root : "..");
    snprintf(a, sizeof a, "%s/recal_a.safetensors", dir);
    snprintf(b, sizeof b, "%s/recal_b.safetensors", dir);
    snprintf(c, sizeof c, "%s/recal_c.safetensors", dir);
    ck_assert_int_eq(run_recal(model, a, ""), 0);
    ck_assert_int_eq(run_recal(model, b, ""), 0);
    ck_assert_int_eq(run_recal(model, c, "--seed 2"), 0);
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    ck_assert_msg(system(cmd) == 0, "the same seed wrote another file");
    vt_model *m0, *m1, *m2;
    load_params(model, &m0);
    load_params(a, &m1);
    load_params(c, &m2);
    ck_assert_int_eq(vtm_model_nparams(m0), vtm_model_nparams(m1));
    int nrun = 0;
    for (int i = 0; i < vtm_model_nparams(m0); i++) {
        const vt_param *p0 = vtm_model_param(m0, i), *p1 = vtm_model_param(m1, i),
                       *p2 = vtm_model_param(m2, i);
        ck_assert_str_eq(p0->name, p1->name);
        const int same = memcmp(p0->data, p1->data, sizeof(float) * p0->numel) == 0;
        if (!strstr(p0->name, ".running_")) {
            ck_assert_msg(same, "%s changed", p0->name);
            continue;
        }
        nrun++;
        ck_assert_msg(!same, "%s did not change", p0->name);
        ck_assert_msg(memcmp(p1->data, p2->data, sizeof(float) * p0->numel) != 0,
                      "%s: another seed gave the same statistics", p0->name);
        for (size_t k = 0; k < p1->numel; k++) /* a variance is positive, everything finite */
            ck_assert(isfinite(p1->data[k]) && (!strstr(p0->name, "var") || p1->data[k] > 0));
    }
    ck_assert_int_eq(nrun, 18);
    ck_assert_str_eq(vt_model_meta(m1, "vtrack.bn_stats"),
                     "6 batches of 4 crops of 128x128, seed 1");
    const char *data = vt_model_meta(m1, "vtrack.bn_stats.data");
    ck_assert_ptr_nonnull(data);
    ck_assert_msg(strstr(data, "short side 160") && strstr(data, "davis16-bear"), "%s", data);
    ck_assert_str_eq(vt_model_meta(m1, "vtrack.provenance"),
                     vt_model_meta(m0, "vtrack.provenance"));
    vt_model_free(&m0);
    vt_model_free(&m1);
    vt_model_free(&m2);

    /* bad inputs */
    ck_assert_int_eq(run_recal("lab", a, ""), 1); /* nothing to recalibrate */
    ck_assert_int_eq(run_recal("/nonexistent.safetensors", a, ""), 1);
    ck_assert_int_eq(run_recal(model, "/nonexistent-dir/w.safetensors", ""), 2);
    ck_assert_int_eq(run_recal(model, a, "--crop 192"), 2); /* above the short side */
    ck_assert_int_eq(run_recal(model, a, "--batch 1"), 2);  /* no batch statistics */
    ck_assert_int_eq(run_recal(model, a, "--batches 0"), 2);
    ck_assert_int_eq(run_recal(model, a, "--seed -1"), 2);
    ck_assert_int_eq(run_recal(model, a, "--frobnicate"), 2);
    char *argv1[] = {"recalibrate", "--model", model, "--out", a, NULL}; /* no --data */
    ck_assert_int_eq(vt_cmd_recalibrate(5, argv1), 2);
}
END_TEST

int main(void) {
    const char *data = getenv("VT_DATA");
    snprintf(clip, sizeof clip, "%s/train/davis16-bear.mp4", data ? data : "");
    if (!data || access(clip, R_OK) != 0) {
        fprintf(stderr, "SKIP: %s not readable (set VT_DATA to ../shared/data)\n", clip);
        return 77;
    }
    snprintf(dir, sizeof dir, "/tmp/vt_train_cliXXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    Suite *s = suite_create("train_cli");
    tm_add_case(s, "cli", 1800, test_bad_inputs, test_200_steps, test_interrupt_and_resume,
                test_recalibrate, NULL);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* test_interrupt_and_resume reuses a.safetensors */
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (nf == 0 && system(cmd) != 0)
        nf = 1;
    return nf ? 1 : 0;
}
