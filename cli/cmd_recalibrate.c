/*
 * vtrack recalibrate - trained weights with their batch-norm statistics taken again on video
 * seen as the tracker sees it (train/train_bnstats.c, vt_bn_stats; docs/TRAINING.md). No
 * label is read and no weight changes; the output is a weights file like any other.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "cli_util.h"
#include "commands.h"
#include "train_sources.h"
#include "vt_base.h"
#include "vt_train.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: vtrack recalibrate --model FILE --data PATH... --out FILE [--short-side N]\n"
            "                          [--crop S] [--batch B] [--batches N] [--seed S]\n"
            "                          [--cache-mb N] [--threads N] [--quiet]\n"
            "\n"
            "Take the batch-norm statistics of trained weights again on unlabeled video, at the\n"
            "size the tracker works at and with its input conversion; every weight stays.\n"
            "\n"
            "  --model FILE      the weights (safetensors) to start from\n"
            "  --data PATH...    videos, folders of numbered frames, or folders of videos;\n"
            "                    repeatable, several paths per --data\n"
            "  --out FILE        where to write the weights with the new statistics\n"
            "  --short-side N    frames are scaled to this short side first, as the tracker\n"
            "                    scales them (default 480, the accurate profile's proc_short)\n"
            "  --crop S          crop side in pixels, cut from the scaled frames without\n"
            "                    resizing (default 256; at most the short side)\n"
            "  --batch B         crops per batch (default 8)\n"
            "  --batches N       batches; the statistics are their mean (default 200)\n"
            "  --seed S          which frames and where (default 1)\n"
            "  --cache-mb N      frame cache cap in MiB (default 3072; above it frames are\n"
            "                    thinned evenly in time)\n"
            "  --threads N       OpenBLAS threads (default 1)\n"
            "  --quiet           no progress output\n"
            "\n"
            "Exit status: 0 written, 1 runtime failure (unreadable weights or video), 2 usage\n"
            "error.\n");
}

typedef struct opts {
    const char *model, *out;
    char **data;
    int ndata, quiet;
    long short_side, cache_mb, threads;
    vt_bn_stats_opts bn;
} opts;

/* 0 parsed, -1 --help printed, 2 usage error (printed). */
static int parse_args(int argc, char **argv, opts *o) {
    enum {
        O_MODEL = 256,
        O_DATA,
        O_OUT,
        O_SHORT,
        O_CROP,
        O_BATCH,
        O_BATCHES,
        O_SEED,
        O_CACHE,
        O_THREADS,
        O_QUIET
    };
    static const struct option lo[] = {{"model", required_argument, 0, O_MODEL},
                                       {"data", required_argument, 0, O_DATA},
                                       {"out", required_argument, 0, O_OUT},
                                       {"short-side", required_argument, 0, O_SHORT},
                                       {"crop", required_argument, 0, O_CROP},
                                       {"batch", required_argument, 0, O_BATCH},
                                       {"batches", required_argument, 0, O_BATCHES},
                                       {"seed", required_argument, 0, O_SEED},
                                       {"cache-mb", required_argument, 0, O_CACHE},
                                       {"threads", required_argument, 0, O_THREADS},
                                       {"quiet", no_argument, 0, O_QUIET},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    o->short_side = 480;
    o->cache_mb = 3072;
    o->threads = 1;
    vt_bn_stats_opts_default(&o->bn);
    optind = 1;
    opterr = 0;
    int c, idx;
    for (idx = -1; (c = getopt_long(argc, argv, "+:h", lo, &idx)) != -1; idx = -1) {
        const char *name = idx >= 0 ? lo[idx].name : "";
        long l;
        switch (c) {
        case 'h':
            usage(stdout);
            return -1;
        case O_MODEL:
            o->model = optarg;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_DATA:
            o->data[o->ndata++] = optarg;
            while (optind < argc && strncmp(argv[optind], "--", 2) != 0)
                o->data[o->ndata++] = argv[optind++];
            break;
        case O_SHORT:
            if (vt_cli_parse_long(optarg, 32, 4096, &o->short_side))
                return vt_cli_usage_error("recalibrate", "--%s '%s': not an integer in [32, 4096]",
                                          name, optarg);
            break;
        case O_CROP:
        case O_BATCH:
        case O_BATCHES: {
            const long lim[3][2] = {{16, 4096}, {2, 256}, {1, 1000000}};
            const int k = c - O_CROP;
            if (vt_cli_parse_long(optarg, lim[k][0], lim[k][1], &l))
                return vt_cli_usage_error("recalibrate", "--%s '%s': not an integer in [%ld, %ld]",
                                          name, optarg, lim[k][0], lim[k][1]);
            *(c == O_CROP ? &o->bn.crop : c == O_BATCH ? &o->bn.batch : &o->bn.batches) = (int)l;
            break;
        }
        case O_SEED:
            if (vt_cli_parse_long(optarg, 0, 2147483647L, &l))
                return vt_cli_usage_error("recalibrate", "--seed '%s': not an integer >= 0",
                                          optarg);
            o->bn.seed = (uint64_t)l;
            break;
        case O_CACHE:
            if (vt_cli_parse_long(optarg, 16, 1L << 30, &o->cache_mb))
                return vt_cli_usage_error("recalibrate", "--cache-mb '%s': not a size in MiB",
                                          optarg);
            break;
        case O_THREADS:
            if (vt_cli_parse_long(optarg, 1, 256, &o->threads))
                return vt_cli_usage_error("recalibrate", "--threads '%s': not in [1, 256]", optarg);
            break;
        case O_QUIET:
            o->quiet = 1;
            break;
        default:
            return vt_cli_option_error("recalibrate", c, argv);
        }
    }
    if (optind < argc)
        return vt_cli_usage_error("recalibrate", "unexpected argument '%s'", argv[optind]);
    if (!o->model || !o->out || o->ndata == 0)
        return vt_cli_usage_error("recalibrate", "--model, --data and --out are required");
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", o->out);
    if (access(dirname(dir), W_OK) != 0) /* found out before the decoding, not after it */
        return vt_cli_usage_error("recalibrate", "--out %s: cannot write in its folder: %s", o->out,
                                  strerror(errno));
    if (o->bn.crop > o->short_side)
        return vt_cli_usage_error("recalibrate", "--crop %d is larger than --short-side %ld",
                                  o->bn.crop, o->short_side);
    return 0;
}

int vt_cmd_recalibrate(int argc, char **argv) {
    opts o = {0};
    o.data = calloc((size_t)argc, sizeof *o.data);
    if (!o.data) {
        fprintf(stderr, "vtrack recalibrate: out of memory\n");
        return 1;
    }
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) {
        free(o.data);
        return rc < 0 ? 0 : rc;
    }
    openblas_set_num_threads((int)o.threads);
    char err[512] = "", desc[1024] = "", what[1100];
    vt_model *m = NULL;
    vt_train_data *d = NULL;
    const vt_train_load_opts lo = {.short_side = (int)o.short_side,
                                   .cap_bytes = (size_t)o.cache_mb << 20,
                                   .max_frames = 100000,
                                   .log = o.quiet ? NULL : stderr};
    rc = vt_model_load(o.model, &m, err, sizeof err);
    if (rc == 0)
        rc = vt_bn_stats_check(m, &o.bn, err, sizeof err);
    if (rc == 0)
        rc = vt_train_load(o.data, o.ndata, &lo, &d, desc, sizeof desc, err, sizeof err);
    if (rc == 0 && !o.quiet)
        fprintf(stderr,
                "vtrack recalibrate: %lld frames of %d videos at short side %ld, temporal "
                "stride %d\n",
                (long long)vt_train_data_frames(d), d->nv, o.short_side, d->stride);
    if (rc == 0)
        rc = vt_bn_stats(m, d, &o.bn, o.quiet ? NULL : stderr, err, sizeof err);
    if (rc == 0) {
        vt_fmt(what, sizeof what, "short side %ld: %s", o.short_side, desc);
        if ((rc = vt_model_set_meta(m, "vtrack.bn_stats.data", what)) < 0)
            vt_fmt(err, sizeof err, "%s", strerror(-rc));
    }
    if (rc == 0)
        rc = vt_model_save(m, o.out, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "vtrack recalibrate: %s\n", err);
    else if (!o.quiet)
        fprintf(stderr, "vtrack recalibrate: wrote %s\n", o.out);
    vt_train_data_free(&d);
    vt_model_free(&m);
    free(o.data);
    return rc < 0 ? 1 : 0;
}
