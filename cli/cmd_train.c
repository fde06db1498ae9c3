/*
 * vtrack train - learn a correspondence model from unlabeled video (docs/TRAINING.md).
 *
 * Decodes the sources once into a bounded frame cache (cli/train_sources.c), then runs the
 * trainer of train/ (vt_train.h) step by step: progress on a terminal, a CSV log, an SVG loss plot,
 * atomic checkpoints every N steps (with the current weights exported alongside), and on
 * Ctrl-C (SIGINT or SIGTERM) a checkpoint before exiting, from which --resume continues
 * bitwise as if the run had not stopped.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>

#include "commands.h"
#include "train_sources.h"
#include "cli_util.h"
#include "vt_base.h"

#define EXIT_INTERRUPTED 130

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
    stop_signal = sig;
}

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: vtrack train --data PATH... --out FILE [--arch ARCH] [--objective mast|colorize]\n"
        "                    [--steps N] [--batch B] [--crop S] [--lr X] [--threads N]\n"
        "                    [--seed S] [--resume CKPT] [--log CSV] [--plot SVG]\n"
        "                    [--checkpoint-every N] [options]\n"
        "\n"
        "Self-supervised training on unlabeled video: no labels are read, ever.\n"
        "\n"
        "data:\n"
        "  --data PATH...        videos (any format FFmpeg reads), folders of numbered frames,\n"
        "                        or folders of videos; repeatable, several paths per --data\n"
        "  --short-side N        frames are cached with this short side (default 256)\n"
        "  --cache-mb N          cache cap in MiB (default 3072); above it frames are thinned\n"
        "                        evenly in time\n"
        "model and objective:\n"
        "  --arch ARCH           architecture to train (default compact-s8; Lab input)\n"
        "  --objective NAME      mast: reconstruct the target's Lab from the reference's\n"
        "                        (default); colorize: predict its k-means colour class\n"
        "schedule:\n"
        "  --steps N             optimiser steps (default 2000)\n"
        "  --batch B             frame pairs per step (default 8)\n"
        "  --crop S              crop side in pixels, a multiple of the stride (default 256)\n"
        "  --lr X                peak learning rate (default 1e-3); warm-up then cosine\n"
        "  --warmup N            warm-up steps (default 100)\n"
        "  --weight-decay X      AdamW decay on convolution weights (default 0.01)\n"
        "  --clip X              gradient-norm clip, 0 off (default 5)\n"
        "objective details:\n"
        "  --radius R            attention window radius in feature cells, -1 global\n"
        "                        (default 6 for mast, -1 for colorize)\n"
        "  --temperature T       softmax temperature (default 0.05)\n"
        "  --gap MIN,MAX         frame gap of a pair (default 1,10)\n"
        "  --scale MIN,MAX       crop side / frame short side (default 0.6,1)\n"
        "  --jitter X            colour jitter strength on the input (default 0: off)\n"
        "  --colors K            colorize: k-means clusters (default 16)\n"
        "run:\n"
        "  --out FILE            trained weights (safetensors; also written at checkpoints)\n"
        "  --checkpoint FILE     checkpoint path (default FILE.ckpt)\n"
        "  --checkpoint-every N  steps between checkpoints (default 500; 0: end only)\n"
        "  --resume CKPT         continue a run from its checkpoint\n"
        "  --log CSV             append step,loss,lr,grad_norm,seconds per step\n"
        "  --plot SVG            loss curve (written at checkpoints and at the end)\n"
        "  --time-limit S        stop (checkpoint and weights saved) once S seconds of this\n"
        "                        run have passed, even if the schedule is not finished\n"
        "  --threads N           OpenBLAS threads (default 1)\n"
        "  --seed S              random seed (default 1)\n"
        "  --winograd on|off     Winograd 3x3 convolutions (default on)\n"
        "  --bench N             time N steps after warm-up and print frames/s; no files\n"
        "  --quiet               no progress output\n"
        "\n"
        "Ctrl-C saves a checkpoint and the weights, then exits with status 130. Exit status:\n"
        "0 done (or --time-limit reached), 1 runtime failure, 2 usage error.\n");
}

typedef struct opts {
    char **data;
    int ndata;
    const char *out, *ckpt, *resume, *log, *plot, *arch;
    int threads, quiet, wino, every, bench;
    double time_limit;
    long short_side, cache_mb;
    vt_train_cfg cfg;
    /* which schedule fields were given (for --resume consistency) */
    int set_obj, set_steps, set_batch, set_crop, set_lr, set_seed, set_arch;
    unsigned fixed; /* FIX_* bits of the other run settings given (checked on --resume) */
} opts;

enum {
    FIX_WARMUP = 1,
    FIX_WD = 2,
    FIX_CLIP = 4,
    FIX_RADIUS = 8,
    FIX_TEMP = 16,
    FIX_GAP = 32,
    FIX_SCALE = 64,
    FIX_JITTER = 128,
    FIX_COLORS = 256
};

static int parse_pair(const char *s, double min, double max, double *a, double *b) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    char *c = strchr(buf, ',');
    if (!c)
        return -1;
    *c = 0;
    return vt_cli_parse_double(buf, min, max, a) || vt_cli_parse_double(c + 1, min, max, b) ? -1
                                                                                            : 0;
}

static int parse_args(int argc, char **argv, opts *o) {
    memset(o, 0, sizeof *o);
    o->arch = "compact-s8";
    o->threads = 1;
    o->wino = 1;
    o->every = 500;
    o->short_side = 256;
    o->cache_mb = 3072;
    vt_train_cfg_default(&o->cfg, VT_TRAIN_MAST);
    int radius_set = 0;
    o->data = calloc((size_t)argc, sizeof *o->data);
    if (!o->data)
        return 1;
#define NEED_ARG  const char *v = optarg;
#define BAD(what) return vt_cli_usage_error("train", "%s '%s': %s", a, v, what)
    enum {
        O_DATA = 256,
        O_OUT,
        O_CHECKPOINT,
        O_RESUME,
        O_LOG,
        O_PLOT,
        O_ARCH,
        O_OBJECTIVE,
        O_STEPS,
        O_BATCH,
        O_CROP,
        O_LR,
        O_WARMUP,
        O_WEIGHT_DECAY,
        O_CLIP,
        O_RADIUS,
        O_TEMPERATURE,
        O_GAP,
        O_SCALE,
        O_JITTER,
        O_COLORS,
        O_SEED,
        O_THREADS,
        O_CHECKPOINT_EVERY,
        O_SHORT_SIDE,
        O_CACHE_MB,
        O_WINOGRAD,
        O_BENCH,
        O_TIME_LIMIT,
        O_QUIET
    };
    static const struct option lo[] = {
        {"data", required_argument, 0, O_DATA},
        {"out", required_argument, 0, O_OUT},
        {"checkpoint", required_argument, 0, O_CHECKPOINT},
        {"resume", required_argument, 0, O_RESUME},
        {"log", required_argument, 0, O_LOG},
        {"plot", required_argument, 0, O_PLOT},
        {"arch", required_argument, 0, O_ARCH},
        {"objective", required_argument, 0, O_OBJECTIVE},
        {"steps", required_argument, 0, O_STEPS},
        {"batch", required_argument, 0, O_BATCH},
        {"crop", required_argument, 0, O_CROP},
        {"lr", required_argument, 0, O_LR},
        {"warmup", required_argument, 0, O_WARMUP},
        {"weight-decay", required_argument, 0, O_WEIGHT_DECAY},
        {"clip", required_argument, 0, O_CLIP},
        {"radius", required_argument, 0, O_RADIUS},
        {"temperature", required_argument, 0, O_TEMPERATURE},
        {"gap", required_argument, 0, O_GAP},
        {"scale", required_argument, 0, O_SCALE},
        {"jitter", required_argument, 0, O_JITTER},
        {"colors", required_argument, 0, O_COLORS},
        {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS},
        {"checkpoint-every", required_argument, 0, O_CHECKPOINT_EVERY},
        {"short-side", required_argument, 0, O_SHORT_SIDE},
        {"cache-mb", required_argument, 0, O_CACHE_MB},
        {"winograd", required_argument, 0, O_WINOGRAD},
        {"bench", required_argument, 0, O_BENCH},
        {"time-limit", required_argument, 0, O_TIME_LIMIT},
        {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    /* "+": stop at the first argument that is not an option; --data takes the paths after it */
    optind = 1;
    opterr = 0;
    int c, idx;
    for (idx = -1; (c = getopt_long(argc, argv, "+:h", lo, &idx)) != -1; idx = -1) {
        char a[48]; /* the option as written in full, for the messages */
        snprintf(a, sizeof a, "--%s", idx >= 0 ? lo[idx].name : "help");
        long l;
        double d, d2;
        switch (c) {
        case 'h': {
            usage(stdout);
            return -1;
            break;
        }
        case O_DATA: {
            o->data[o->ndata++] = optarg;
            while (optind < argc && strncmp(argv[optind], "--", 2) != 0)
                o->data[o->ndata++] = argv[optind++];
            break;
        }
        case O_OUT: {
            NEED_ARG o->out = v;
            break;
        }
        case O_CHECKPOINT: {
            NEED_ARG o->ckpt = v;
            break;
        }
        case O_RESUME: {
            NEED_ARG o->resume = v;
            break;
        }
        case O_LOG: {
            NEED_ARG o->log = v;
            break;
        }
        case O_PLOT: {
            NEED_ARG o->plot = v;
            break;
        }
        case O_ARCH: {
            NEED_ARG o->arch = v;
            o->set_arch = 1;
            break;
        }
        case O_OBJECTIVE: {
            NEED_ARG vt_train_objective obj;
            if (vt_train_objective_parse(v, &obj) < 0)
                BAD("not mast or colorize");
            o->cfg.objective = obj;
            o->set_obj = 1;
            break;
        }
        case O_STEPS: {
            NEED_ARG if (vt_cli_parse_long(v, 1, 100000000, &l)) BAD("not an integer in [1, 1e8]");
            o->cfg.steps = (int)l;
            o->set_steps = 1;
            break;
        }
        case O_BATCH: {
            NEED_ARG if (vt_cli_parse_long(v, 1, 256, &l)) BAD("not an integer in [1, 256]");
            o->cfg.batch = (int)l;
            o->set_batch = 1;
            break;
        }
        case O_CROP: {
            NEED_ARG if (vt_cli_parse_long(v, 16, 1024, &l)) BAD("not an integer in [16, 1024]");
            o->cfg.crop = (int)l;
            o->set_crop = 1;
            break;
        }
        case O_LR: {
            NEED_ARG if (vt_cli_parse_double(v, 1e-9, 10, &d)) BAD("not a number in (0, 10]");
            o->cfg.lr = (float)d;
            o->set_lr = 1;
            break;
        }
        case O_WARMUP: {
            o->fixed |= FIX_WARMUP;
            NEED_ARG if (vt_cli_parse_long(v, 0, 100000000, &l)) BAD("not a count");
            o->cfg.warmup = (int)l;
            break;
        }
        case O_WEIGHT_DECAY: {
            o->fixed |= FIX_WD;
            NEED_ARG if (vt_cli_parse_double(v, 0, 0.999, &d)) BAD("not a number in [0, 1)");
            o->cfg.weight_decay = (float)d;
            break;
        }
        case O_CLIP: {
            o->fixed |= FIX_CLIP;
            NEED_ARG if (vt_cli_parse_double(v, 0, 1e9, &d)) BAD("not a non-negative number");
            o->cfg.clip = (float)d;
            break;
        }
        case O_RADIUS: {
            o->fixed |= FIX_RADIUS;
            NEED_ARG if (vt_cli_parse_long(v, -1, 256, &l)) BAD("not an integer in [-1, 256]");
            o->cfg.radius = (int)l;
            radius_set = 1;
            break;
        }
        case O_TEMPERATURE: {
            o->fixed |= FIX_TEMP;
            NEED_ARG if (vt_cli_parse_double(v, 1e-3, 100, &d)) BAD("not a number in [0.001, 100]");
            o->cfg.temperature = (float)d;
            break;
        }
        case O_GAP: {
            o->fixed |= FIX_GAP;
            NEED_ARG if (parse_pair(v, 1, 10000, &d, &d2) || d2 < d || d != floor(d) ||
                         d2 != floor(d2)) BAD("not MIN,MAX integers with 1 <= MIN <= MAX");
            o->cfg.gap_min = (int)d;
            o->cfg.gap_max = (int)d2;
            break;
        }
        case O_SCALE: {
            o->fixed |= FIX_SCALE;
            NEED_ARG if (parse_pair(v, 0.06, 1, &d, &d2) || d2 < d)
                BAD("not MIN,MAX with 0.06 <= MIN <= MAX <= 1");
            o->cfg.scale_min = (float)d;
            o->cfg.scale_max = (float)d2;
            break;
        }
        case O_JITTER: {
            o->fixed |= FIX_JITTER;
            NEED_ARG if (vt_cli_parse_double(v, 0, 1, &d)) BAD("not a number in [0, 1]");
            o->cfg.jitter = (float)d;
            break;
        }
        case O_COLORS: {
            o->fixed |= FIX_COLORS;
            NEED_ARG if (vt_cli_parse_long(v, 2, VT_TRAIN_MAX_COLORS, &l)) BAD("not in [2, 64]");
            o->cfg.ncolors = (int)l;
            break;
        }
        case O_SEED: {
            NEED_ARG if (vt_cli_parse_long(v, 0, 2147483647L, &l)) BAD("not an integer >= 0");
            o->cfg.seed = (uint64_t)l;
            o->set_seed = 1;
            break;
        }
        case O_THREADS: {
            NEED_ARG if (vt_cli_parse_long(v, 1, 256, &l)) BAD("not an integer in [1, 256]");
            o->threads = (int)l;
            break;
        }
        case O_CHECKPOINT_EVERY: {
            NEED_ARG if (vt_cli_parse_long(v, 0, 100000000, &l)) BAD("not a count");
            o->every = (int)l;
            break;
        }
        case O_SHORT_SIDE: {
            NEED_ARG if (vt_cli_parse_long(v, 32, 4096, &o->short_side))
                BAD("not an integer in [32, 4096]");
            break;
        }
        case O_CACHE_MB: {
            NEED_ARG if (vt_cli_parse_long(v, 16, 1L << 30, &o->cache_mb)) BAD("not a size in MiB");
            break;
        }
        case O_WINOGRAD: {
            NEED_ARG if (strcmp(v, "on") && strcmp(v, "off")) BAD("not on or off");
            o->wino = strcmp(v, "on") == 0;
            break;
        }
        case O_BENCH: {
            NEED_ARG if (vt_cli_parse_long(v, 1, 100000, &l)) BAD("not a count");
            o->bench = (int)l;
            break;
        }
        case O_TIME_LIMIT: {
            NEED_ARG if (vt_cli_parse_double(v, 1, 1e9, &d)) BAD("not a number of seconds >= 1");
            o->time_limit = d;
            break;
        }
        case O_QUIET: {
            o->quiet = 1;
            break;
        }
        default:
            return vt_cli_option_error("train", c, argv);
        }
    }
    if (optind < argc)
        return vt_cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
#undef NEED_ARG
#undef BAD
    if (!radius_set)
        o->cfg.radius = o->cfg.objective == VT_TRAIN_MAST ? 6 : -1;
    if (o->ndata == 0)
        return vt_cli_usage_error("train", "--data is required");
    if (!o->out && !o->bench)
        return vt_cli_usage_error("train", "--out is required");
    if (!o->resume && o->cfg.crop > o->short_side) /* else checked against the checkpoint's */
        return vt_cli_usage_error("train", "--crop %d is larger than --short-side %ld", o->cfg.crop,
                                  o->short_side);
    if (o->resume && o->bench)
        return vt_cli_usage_error("train", "--bench times fresh steps: not with --resume");
    if (o->bench) {
        o->cfg.steps = o->bench + 3;
        o->every = 0;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Outputs: CSV, SVG, progress
 * ------------------------------------------------------------------------------------------- */

/* Moving average of the n losses ending at index i (inclusive). */
static double mavg(const float *l, int64_t i, int n) {
    int64_t a = i - n + 1 < 0 ? 0 : i - n + 1;
    double s = 0.0;
    for (int64_t k = a; k <= i; k++)
        s += l[k];
    return s / (double)(i - a + 1);
}

static int write_svg(const char *path, const float *loss, int64_t n, const char *title) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    const double W = 800, H = 420, L = 70, R = 20, T = 40, Bm = 50;
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        lo = loss[i] < lo ? loss[i] : lo;
        hi = loss[i] > hi ? loss[i] : hi;
    }
    if (n == 0)
        lo = 0, hi = 1;
    if (hi - lo < 1e-12)
        hi = lo + 1e-3;
    double pad = 0.05 * (hi - lo);
    lo -= pad, hi += pad;
    const double xs = (W - L - R) / (double)(n > 1 ? n - 1 : 1), ys = (H - T - Bm) / (hi - lo);
#define PX(i) (L + (i)*xs)
#define PY(v) (T + (hi - (v)) * ys)
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%.0f\" y=\"24\" font-size=\"15\">%s</text>\n"
            "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
            "stroke=\"#444\"/>\n",
            W, H, L, title, L, T, W - L - R, H - T - Bm);
    for (int k = 0; k <= 5; k++) { /* y ticks */
        double v = lo + (hi - lo) * k / 5.0;
        fprintf(f,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n",
                L, W - R, PY(v), PY(v), L - 6, PY(v) + 4, v);
    }
    for (int k = 0; k <= 5; k++) { /* x ticks */
        double s = (n > 1 ? n - 1 : 1) * k / 5.0;
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.0f</text>\n", PX(s),
                H - Bm + 18, s + 1);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">step</text>\n",
            L + (W - L - R) / 2, H - 12);
    fprintf(f,
            "<text x=\"16\" y=\"%.0f\" transform=\"rotate(-90 16 %.0f)\" "
            "text-anchor=\"middle\">loss</text>\n",
            T + (H - T - Bm) / 2, T + (H - T - Bm) / 2);
    /* raw losses (thinned to at most 2000 points) and their 50-step moving average */
    int64_t every = n > 2000 ? n / 2000 : 1;
    for (int pass = 0; pass < 2; pass++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" points=\"",
                pass ? "#c0392b" : "#9ab", pass ? "2" : "1");
        for (int64_t i = 0; i < n; i += every)
            fprintf(f, "%.1f,%.1f ", PX(i), PY(pass ? mavg(loss, i, 50) : loss[i]));
        fprintf(f, "\"/>\n");
    }
    fprintf(f,
            "<text x=\"%.0f\" y=\"%.0f\" fill=\"#9ab\">per step</text>"
            "<text x=\"%.0f\" y=\"%.0f\" fill=\"#c0392b\">50-step mean</text>\n</svg>\n",
            W - R - 180, T + 16, W - R - 100, T + 16);
#undef PX
#undef PY
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

static void fmt_time(double s, char *buf, size_t n) {
    if (!isfinite(s) || s < 0)
        s = 0;
    long t = (long)(s + 0.5);
    snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

/* ---------------------------------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Save the checkpoint, the weights and the plot. */
static int save_all(vt_trainer *t, const opts *o, const char *ckpt, const char *desc,
                    const char *sources) {
    char err[512] = "";
    int rc = vt_trainer_save(t, ckpt, desc, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "vtrack train: cannot write checkpoint: %s\n", err);
        return rc;
    }
    if (o->out && (rc = vt_trainer_export(t, o->out, sources, err, sizeof err)) < 0) {
        fprintf(stderr, "vtrack train: cannot write weights: %s\n", err);
        return rc;
    }
    if (o->plot) {
        int64_t n;
        const float *l = vt_trainer_losses(t, &n);
        char title[160];
        snprintf(title, sizeof title, "vtrack train %s: %s, %lld steps",
                 vt_train_objective_name(vt_trainer_cfg(t)->objective),
                 vt_model_arch(vt_trainer_model(t)), (long long)n);
        if ((rc = write_svg(o->plot, l, n, title)) < 0) {
            fprintf(stderr, "vtrack train: cannot write plot '%s': %s\n", o->plot, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* The folder of each output must exist and be writable, and no two outputs may be the same
 * file: found out before the training, not when its first save fails or one output overwrites
 * another. */
static int check_outputs(const opts *o, const char *ckpt) {
    const char *name[4] = {"--out", "--checkpoint", "--log", "--plot"};
    const char *path[4] = {o->out, ckpt, o->log, o->plot};
    char full[4][2 * PATH_MAX];
    for (int i = 0; i < 4; i++) {
        if (!path[i])
            continue;
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", path[i]);
        char *slash = strrchr(dir, '/');
        const char *base = slash ? slash + 1 : path[i];
        if (slash == dir)
            dir[1] = 0;
        else if (slash)
            *slash = 0;
        else
            snprintf(dir, sizeof dir, ".");
        char real[PATH_MAX];
        if (!realpath(dir, real) || access(real, W_OK) != 0) {
            fprintf(stderr, "vtrack train: %s %s: cannot write in the folder '%s': %s\n", name[i],
                    path[i], dir, strerror(errno));
            return -1;
        }
        snprintf(full[i], sizeof full[i], "%s/%s", real, base);
        for (int j = 0; j < i; j++)
            if (path[j] && strcmp(full[i], full[j]) == 0) {
                fprintf(stderr, "vtrack train: %s and %s name the same file (%s)\n", name[j],
                        name[i], path[i]);
                return -1;
            }
    }
    return 0;
}

/* One progress report: a bar redrawn in place on a terminal, else a log line. */
static void print_progress(const vt_train_step_info *info, int64_t total, double avg, double step_s,
                           double wall, int tty) {
    char eta[32], el[32];
    fmt_time(step_s * (double)(total - info->step), eta, sizeof eta);
    fmt_time(wall, el, sizeof el);
    if (tty) {
        const int width = 24;
        int fill = (int)(width * (double)info->step / (double)total);
        char bar[32];
        for (int k = 0; k < width; k++)
            bar[k] = k < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r[%s] step %lld/%lld  loss %.4f (avg %.4f)  %.2f steps/s  ETA %s ", bar,
                (long long)info->step, (long long)total, info->loss, avg, 1.0 / step_s, eta);
    } else {
        fprintf(stderr,
                "step %lld/%lld loss %.4f avg50 %.4f lr %.3g |g| %.3g %.2f steps/s "
                "elapsed %s ETA %s\n",
                (long long)info->step, (long long)total, info->loss, avg, info->lr, info->grad_norm,
                1.0 / step_s, el, eta);
    }
}

/* The data description ("name:frames, name:frames, ...") without its frame counts, for the
 * weights' metadata (malloc'd; NULL when out of memory). */
static char *source_names(const char *desc) {
    size_t sl = strlen(desc) + 1;
    char *sources = malloc(sl);
    if (!sources)
        return NULL;
    size_t k = 0;
    for (const char *p = desc; *p;) {
        const char *c = strchr(p, ':'), *e = strstr(p, ", ");
        if (!e)
            e = p + strlen(p);
        const char *stop = c && c < e ? c : e;
        if (k)
            k += (size_t)snprintf(sources + k, sl - k, ", ");
        k += (size_t)snprintf(sources + k, sl - k, "%.*s", (int)(stop - p), p);
        p = *e ? e + 2 : e;
    }
    sources[k] = 0;
    return sources;
}

/*
 * The model and its trainer: from the checkpoint --resume names (every setting given on the
 * command line must agree with it; its data description goes to stored_desc), or new. Returns 0,
 * or the exit status after a message.
 */
static int open_trainer(const opts *o, vt_model **m, vt_trainer **t, char *stored_desc,
                        size_t desc_len) {
    char err[1024];
    int rc;
    if (o->resume) {
        if ((rc = vt_trainer_load(o->resume, m, t, stored_desc, desc_len, err, sizeof err)) < 0) {
            fprintf(stderr, "vtrack train: %s\n", err);
            return 1;
        }
        const vt_train_cfg *c = vt_trainer_cfg(*t);
#define SAME(flag, cond, name)                                                                     \
    if (flag && !(cond)) {                                                                         \
        fprintf(stderr, "vtrack train: %s differs from the checkpoint's (%s)\n", name, o->resume); \
        return 2;                                                                                  \
    }
        SAME(o->set_arch, strcmp(o->arch, vt_model_arch(*m)) == 0, "--arch");
        SAME(o->set_obj, o->cfg.objective == c->objective, "--objective");
        SAME(o->set_steps, o->cfg.steps == c->steps, "--steps");
        SAME(o->set_batch, o->cfg.batch == c->batch, "--batch");
        SAME(o->set_crop, o->cfg.crop == c->crop, "--crop");
        SAME(o->set_lr, fabsf(o->cfg.lr - c->lr) <= 1e-7f * c->lr, "--lr");
        SAME(o->set_seed, o->cfg.seed == c->seed, "--seed");
        /* the other settings are the checkpoint's too: given, they must agree */
#define NEAR(a, b) (fabsf((a) - (b)) <= 1e-6f * fmaxf(1.0f, fabsf(b)))
        SAME(o->fixed & FIX_WARMUP, o->cfg.warmup == c->warmup, "--warmup");
        SAME(o->fixed & FIX_WD, NEAR(o->cfg.weight_decay, c->weight_decay), "--weight-decay");
        SAME(o->fixed & FIX_CLIP, NEAR(o->cfg.clip, c->clip), "--clip");
        SAME(o->fixed & FIX_RADIUS, o->cfg.radius == c->radius, "--radius");
        SAME(o->fixed & FIX_TEMP, NEAR(o->cfg.temperature, c->temperature), "--temperature");
        SAME(o->fixed & FIX_GAP, o->cfg.gap_min == c->gap_min && o->cfg.gap_max == c->gap_max,
             "--gap");
        SAME(o->fixed & FIX_SCALE,
             NEAR(o->cfg.scale_min, c->scale_min) && NEAR(o->cfg.scale_max, c->scale_max),
             "--scale");
        SAME(o->fixed & FIX_JITTER, NEAR(o->cfg.jitter, c->jitter), "--jitter");
        SAME(o->fixed & FIX_COLORS, o->cfg.ncolors == c->ncolors, "--colors");
#undef NEAR
#undef SAME
        if (c->crop > o->short_side) {
            fprintf(stderr,
                    "vtrack train: the checkpoint's crop %d is larger than --short-side %ld\n",
                    c->crop, o->short_side);
            return 2;
        }
        if (!o->quiet)
            fprintf(stderr, "vtrack train: resuming %s at step %lld of %d\n", o->resume,
                    (long long)vt_trainer_steps_done(*t), c->steps);
    } else {
        if ((rc = vt_model_new(o->arch, o->cfg.seed, m, err, sizeof err)) < 0) {
            fprintf(stderr, "vtrack train: %s\n", err);
            return rc == -EINVAL ? 2 : 1;
        }
        if ((rc = vt_trainer_new(*m, &o->cfg, t, err, sizeof err)) < 0) {
            fprintf(stderr, "vtrack train: %s\n", err);
            return rc == -EINVAL ? 2 : 1;
        }
    }
    return 0;
}

/* The training loop and what follows it: a checkpoint, the weights, the summary (or the
 * benchmark's figures: `times` holds one entry per step then). The exit status. */
static int train_steps(const opts *o, vt_model *m, vt_trainer *t, vt_train_data *data, FILE *csv,
                       const char *ckpt, const char *desc, const char *sources, double *times) {
    const vt_train_cfg *cfg = vt_trainer_cfg(t);
    int status = 1, rc;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    const int tty = !o->quiet && isatty(STDERR_FILENO);
    const int64_t total = cfg->steps;
    const double wall0 = vt_trainer_wall(t), t0 = vt_mono_s();
    double last_print = t0, step_ema = 0.0;
    int64_t first = vt_trainer_steps_done(t);
    int timed_out = 0;
    while (vt_trainer_steps_done(t) < total && !stop_signal) {
        if (o->time_limit > 0 && vt_mono_s() - t0 >= o->time_limit) {
            timed_out = 1;
            break;
        }
        double ts = vt_mono_s();
        vt_train_step_info info;
        if ((rc = vt_trainer_step(t, data, &info)) < 0) {
            if (tty)
                fprintf(stderr, "\n");
            if (rc == -EDOM)
                fprintf(stderr,
                        "vtrack train: the loss or the gradient became NaN/infinite at "
                        "step %lld; lower --lr\n",
                        (long long)vt_trainer_steps_done(t) + 1);
            else
                fprintf(stderr, "vtrack train: step %lld failed: %s\n",
                        (long long)vt_trainer_steps_done(t) + 1, strerror(-rc));
            return status;
        }
        double now = vt_mono_s(), dt = now - ts;
        if (times)
            times[info.step - 1] = dt;
        step_ema = step_ema == 0.0 ? dt : 0.95 * step_ema + 0.05 * dt;
        vt_trainer_set_wall(t, wall0 + (now - t0));
        if (csv) { /* one line per step, flushed: a run can be followed with tail -f */
            fprintf(csv, "%lld,%.7g,%.6g,%.6g,%.3f\n", (long long)info.step, info.loss, info.lr,
                    info.grad_norm, vt_trainer_wall(t));
            if (fflush(csv) != 0 || ferror(csv)) {
                fprintf(stderr, "\nvtrack train: cannot write log '%s': %s\n", o->log,
                        strerror(errno ? errno : EIO));
                return status; /* the checkpoint written so far stays */
            }
        }
        int64_t nl;
        const float *losses = vt_trainer_losses(t, &nl);
        double avg = mavg(losses, nl - 1, 50);
        if (!o->quiet &&
            (tty || now - last_print >= 30.0 || info.step == total || info.step == first + 1)) {
            print_progress(&info, total, avg, step_ema, vt_trainer_wall(t), tty);
            last_print = now;
        }
        if (o->every > 0 && info.step % o->every == 0 && info.step < total) {
            if ((rc = save_all(t, o, ckpt, desc, sources)) < 0)
                return status;
        }
    }
    if (tty)
        fprintf(stderr, "\n");
    if (o->bench && vt_trainer_steps_done(t) < total) {
        fprintf(stderr, "vtrack train: --bench stopped after %lld of %lld steps: no timing\n",
                (long long)vt_trainer_steps_done(t), (long long)total);
        status = stop_signal ? EXIT_INTERRUPTED : 1;
        return status;
    }
    if (o->bench) {
        /* the first three steps warm up (plans, caches, page faults) */
        int n = o->bench;
        qsort(times + 3, (size_t)n, sizeof *times, cmp_double);
        double med = times[3 + n / 2];
        printf("train-bench arch=%s objective=%s batch=%d crop=%d threads=%d winograd=%s "
               "steps=%d median_ms=%.1f frames_per_s=%.2f\n",
               vt_model_arch(m), vt_train_objective_name(cfg->objective), cfg->batch, cfg->crop,
               o->threads, o->wino ? "on" : "off", n, 1e3 * med, 2.0 * cfg->batch / med);
        status = 0;
        return status;
    }
    if ((rc = save_all(t, o, ckpt, desc, sources)) < 0)
        return status;
    if (stop_signal) {
        fprintf(stderr,
                "vtrack train: interrupted at step %lld of %lld; checkpoint %s (continue with "
                "--resume %s), weights %s\n",
                (long long)vt_trainer_steps_done(t), (long long)total, ckpt, ckpt, o->out);
        status = EXIT_INTERRUPTED;
    } else if (timed_out) {
        fprintf(stderr,
                "vtrack train: time limit of %.0f s reached at step %lld of %lld (the schedule "
                "did not finish); weights %s, checkpoint %s (--resume continues)\n",
                o->time_limit, (long long)vt_trainer_steps_done(t), (long long)total, o->out, ckpt);
        status = 0;
    } else {
        int64_t nl;
        const float *losses = vt_trainer_losses(t, &nl);
        char el[32];
        fmt_time(vt_trainer_wall(t), el, sizeof el);
        if (!o->quiet)
            fprintf(stderr,
                    "vtrack train: done: %lld steps in %s, final loss %.4f (50-step mean "
                    "%.4f); weights %s, checkpoint %s\n",
                    (long long)nl, el, losses[nl - 1], mavg(losses, nl - 1, 50), o->out, ckpt);
        status = 0;
    }
    return status;
}

int vt_cmd_train(int argc, char **argv) {
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        free(o.data);
        return rc < 0 ? 0 : rc;
    }
    int status = 1;
    char err[1024] = "", ckpt_buf[4200], stored_desc[4096] = "";
    vt_model *m = NULL;
    vt_trainer *t = NULL;
    const vt_train_cfg *cfg = NULL;
    vt_train_data *data = NULL;
    vt_train_load_opts lo = {.short_side = (int)o.short_side,
                             .cap_bytes = (size_t)o.cache_mb << 20,
                             .max_frames = 100000,
                             .log = o.quiet ? NULL : stderr};
    double t_load;
    FILE *csv = NULL;
    char *desc = NULL, *sources = NULL;
    const size_t desc_len = 64 * 1024;
    double *times = NULL;
    openblas_set_num_threads(o.threads);

    const char *ckpt = o.ckpt;
    if (!ckpt && o.out) {
        snprintf(ckpt_buf, sizeof ckpt_buf, "%s.ckpt", o.out);
        ckpt = ckpt_buf;
    }
    if (!o.bench && check_outputs(&o, ckpt) < 0) {
        status = 2;
        goto done;
    }
    if (!(desc = calloc(1, desc_len)))
        goto done;

    /* The model and trainer: from a checkpoint, or new. */
    if ((rc = open_trainer(&o, &m, &t, stored_desc, sizeof stored_desc)) != 0) {
        status = rc;
        goto done;
    }
    vt_trainer_set_winograd(t, o.wino);
    cfg = vt_trainer_cfg(t);

    /* Data. */
    t_load = vt_mono_s();
    if (!o.quiet)
        fprintf(stderr, "vtrack train: decoding %d path(s) into the frame cache\n", o.ndata);
    if ((rc = vt_train_load(o.data, o.ndata, &lo, &data, desc, desc_len, err, sizeof err)) < 0) {
        fprintf(stderr, "vtrack train: %s\n", err);
        goto done;
    }
    {
        int64_t nf = vt_train_data_frames(data);
        if (!o.quiet)
            fprintf(stderr,
                    "vtrack train: cache: %lld frames of %d videos (%lld offered), %.1f MiB "
                    "(%.0f KiB per frame on average, RGB24 at short side %ld), cap %ld MiB, "
                    "temporal stride %d; decoded in %.1f s\n",
                    (long long)nf, data->nv, (long long)data->offered, data->bytes / 1048576.0,
                    data->bytes / 1024.0 / (double)nf, o.short_side, o.cache_mb, data->stride,
                    vt_mono_s() - t_load);
        if (o.resume && stored_desc[0] && strncmp(stored_desc, desc, sizeof stored_desc - 1))
            fprintf(stderr,
                    "vtrack train: warning: the data (videos, frames, or the size --short-side "
                    "caches them at) differ from the checkpoint's; the run continues but is not "
                    "the one it would have been\n");
    }
    if (cfg->objective == VT_TRAIN_COLORIZE) {
        int k;
        if (!vt_trainer_colors(t, &k)) {
            if ((rc = vt_trainer_fit_colors(t, data, err, sizeof err)) < 0) {
                fprintf(stderr, "vtrack train: %s\n", err);
                goto done;
            }
        }
        const float *ab = vt_trainer_colors(t, &k);
        if (!o.quiet) {
            fprintf(stderr, "vtrack train: %d colour classes (a,b):", k);
            for (int i = 0; i < k; i++)
                fprintf(stderr, " %.0f,%.0f", ab[2 * i], ab[2 * i + 1]);
            fprintf(stderr, "\n");
        }
    }
    /* The source list for the weights' metadata: names only. */
    if (!(sources = source_names(desc)))
        goto done;

    if (o.log) {
        csv = fopen(o.log, o.resume ? "a" : "w");
        if (!csv) {
            fprintf(stderr, "vtrack train: cannot write log '%s': %s\n", o.log, strerror(errno));
            goto done;
        }
        fseek(csv, 0, SEEK_END);
        if (ftell(csv) == 0)
            fprintf(csv, "step,loss,lr,grad_norm,seconds\n");
    }
    if (o.bench && !(times = calloc((size_t)cfg->steps, sizeof *times)))
        goto done;
    status = train_steps(&o, m, t, data, csv, ckpt, desc, sources, times);
done:
    free(sources);
    if (csv && fclose(csv) != 0 && status == 0) {
        fprintf(stderr, "vtrack train: cannot write log '%s': %s\n", o.log, strerror(errno));
        status = 1;
    }
    free(times);
    free(desc);
    vt_train_data_free(&data);
    vt_trainer_free(&t);
    vt_model_free(&m);
    free(o.data);
    return status;
}
