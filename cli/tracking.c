/* tracking.c - the tracker options and the offline stream shared by the commands that track
 * (tracking.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tracking.h"
#include "vt_base.h"
#include "vt_config.h"
#include "cli_util.h"

void vt_cli_tracker_init(vt_cli_tracker *t) {
    memset(t, 0, sizeof *t);
    t->tracker = "mast";
    t->profile = "accurate";
    t->threads = 1;
    t->topk = -1;
    t->radius = -2;
    t->temperature = -1;
    vt_adapt_opts_default(&t->adapt);
    optind = 1;
    opterr = 0;
}

int vt_cli_tracker_getopt(vt_cli_tracker *t, const char *cmd, int argc, char **argv,
                          const struct option *lo) {
    for (;;) {
        const int c = getopt_long(argc, argv, ":h", lo, NULL);
        if (c == -1)
            return -1;
        const int taken = vt_cli_tracker_option(t, cmd, c, optarg);
        if (taken == 2)
            return VT_CLI_OPT_USAGE;
        if (!taken)
            return c;
    }
}

int vt_cli_tracker_option(vt_cli_tracker *t, const char *cmd, int code, const char *arg) {
    long v;
    switch (code) {
    case VT_CLI_OPT_MODEL:
        t->model = arg;
        break;
    case VT_CLI_OPT_TRACKER:
        if (strcmp(arg, "mast") && strcmp(arg, "colorize"))
            return vt_cli_usage_error(cmd, "--tracker '%s': want mast or colorize", arg);
        t->tracker = arg;
        break;
    case VT_CLI_OPT_PROFILE:
        if (strcmp(arg, "accurate") && strcmp(arg, "realtime"))
            return vt_cli_usage_error(cmd, "--profile '%s': want accurate or realtime", arg);
        t->profile = arg;
        break;
    case VT_CLI_OPT_THREADS:
        if (vt_cli_parse_long(arg, 1, 256, &v) < 0)
            return vt_cli_usage_error(cmd, "--threads '%s': want 1..256", arg);
        t->threads = (int)v;
        break;
    case VT_CLI_OPT_TOPK:
        if (vt_cli_parse_long(arg, 0, 4096, &v) < 0)
            return vt_cli_usage_error(cmd, "--topk '%s': want 0..4096", arg);
        t->topk = (int)v;
        break;
    case VT_CLI_OPT_RADIUS:
        if (vt_cli_parse_long(arg, -1, 256, &v) < 0)
            return vt_cli_usage_error(cmd, "--radius '%s': want -1 (global) or 0..256", arg);
        t->radius = (int)v;
        break;
    case VT_CLI_OPT_ADAPT:
        if (vt_cli_parse_long(arg, 0, 100000, &v) < 0)
            return vt_cli_usage_error(cmd, "--adapt '%s': want 0..100000 steps", arg);
        t->adapt.steps = (int)v;
        break;
    case VT_CLI_OPT_ADAPT_LR: {
        double x;
        if (vt_cli_parse_double(arg, 1e-9, 1, &x) < 0)
            return vt_cli_usage_error(cmd, "--adapt-lr '%s': want a number from 1e-9 to 1", arg);
        t->adapt.lr = (float)x;
        break;
    }
    case VT_CLI_OPT_ADAPT_BATCH:
        if (vt_cli_parse_long(arg, 1, 64, &v) < 0)
            return vt_cli_usage_error(cmd, "--adapt-batch '%s': want 1..64", arg);
        t->adapt.batch = (int)v;
        break;
    case VT_CLI_OPT_ADAPT_CHECK:
        if (vt_adapt_check_parse(arg, &t->adapt.check) < 0)
            return vt_cli_usage_error(cmd, "--adapt-check '%s': want cycle, recon or none", arg);
        break;
    case VT_CLI_OPT_ADAPT_MARGIN:
        if (vt_cli_parse_double(arg, -2, 2, &t->adapt.margin) < 0)
            return vt_cli_usage_error(cmd, "--adapt-margin '%s': want a number in [-2, 2]", arg);
        break;
    case VT_CLI_OPT_SEED:
        if (vt_cli_parse_long(arg, 0, 2147483647, &v) < 0)
            return vt_cli_usage_error(cmd, "--seed '%s': want 0..2147483647", arg);
        t->adapt.seed = (uint64_t)v;
        break;
    case VT_CLI_OPT_TEMPERATURE: {
        char *end;
        double x = strtod(arg, &end);
        if (*end || !(x > 1e-6) || !(x < 1e6))
            return vt_cli_usage_error(cmd, "--temperature '%s': want a positive number", arg);
        t->temperature = (float)x;
        break;
    }
    case VT_CLI_OPT_PARAM: {
        vt_tracker_params tmp;
        const char *eq = strchr(arg, '=');
        char key[64];
        if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof key || t->nparams >= VT_CLI_PARAMS_MAX)
            return vt_cli_usage_error(cmd, "--param '%s': want NAME=VALUE", arg);
        memcpy(key, arg, (size_t)(eq - arg));
        key[eq - arg] = 0;
        memset(&tmp, 0, sizeof tmp);
        int prc = vt_tracker_params_set(&tmp, key, eq + 1);
        if (prc == -ENOENT)
            return vt_cli_usage_error(cmd, "--param: unknown parameter '%s'", key);
        if (prc < 0)
            return vt_cli_usage_error(cmd, "--param %s: bad value '%s'", key, eq + 1);
        if (strcmp(key, "max_objects") == 0 &&
            (tmp.max_objects < 1 || tmp.max_objects > VT_PROTO_OBJECTS_MAX))
            return vt_cli_usage_error(cmd, "--param max_objects=%s: 1..%d", eq + 1,
                                      VT_PROTO_OBJECTS_MAX);
        t->params[t->nparams++] = arg;
        break;
    }
    default:
        return 0;
    }
    t->given++;
    return 1;
}

const char *vt_cli_tracker_model_name(const vt_cli_tracker *t, char *path, size_t len) {
    return t->model ? t->model : vt_stream_default_model(path, len);
}

int vt_cli_adapted_model(const vt_cli_tracker *t, const char *cmd, const char *clip,
                         const char *title, const char *save, int quiet, const vt_shape *shapes,
                         int n, int64_t frame, vt_model **am) {
    char err[512], path[4096];
    const char *name = vt_cli_tracker_model_name(t, path, sizeof path);
    double t0 = vt_mono_s();
    vt_adapt_opts ao = t->adapt;
    ao.save = save;
    ao.log = !quiet && isatty(2) ? stderr : NULL;
    vt_model *orig = NULL, *tuned = NULL;
    vt_adapt_given given = {.frame = frame, .shapes = shapes, .n = n};
    vt_adapt_result res;
    *am = NULL;
    /* the check compares the tuned copy with the model as loaded: load that one too */
    if (ao.check != VT_ADAPT_CHECK_NONE && strcmp(name, "lab") != 0) {
        if (vt_model_load(name, &orig, err, sizeof err) < 0) {
            fprintf(stderr, "vtrack %s: %s: %s\n", cmd, title, err);
            return -1;
        }
        vt_cli_tracker_params(t, orig, 0, &given.params);
    }
    if (vt_adapt_clip(name, clip, &ao, orig, &given, &tuned, &res, err, sizeof err) < 0) {
        fprintf(stderr, "vtrack %s: %s: %s\n", cmd, title, err);
        vt_model_free(&orig);
        return -1;
    }
    if (!quiet) {
        fprintf(stderr, "%-20s adapted: %d steps in %.1f s, loss %.4f -> %.4f\n", title,
                t->adapt.steps, vt_mono_s() - t0, res.loss[0], res.loss[1]);
        if (res.checked)
            fprintf(stderr,
                    "%-20s adapt: check %s %.4f -> %.4f on %d held-back frames, worst horizon "
                    "%+.4f (%.1f s), %s\n",
                    title, vt_check_name((vt_check_kind)ao.check), res.score[0], res.score[1],
                    res.held, res.worst, res.check_s, res.accepted ? "accepted" : "rejected");
        else if (ao.check != VT_ADAPT_CHECK_NONE)
            fprintf(stderr, "%-20s adapt: check not run (%s), rejected\n", title, res.why);
    }
    if (res.accepted) {
        *am = tuned;
        vt_model_free(&orig);
    } else {
        *am = orig; /* the original, exactly as a run without --adapt loads it */
        vt_model_free(&tuned);
    }
    return 0;
}

int vt_cli_tracker_model(const vt_cli_tracker *t, const char *cmd, int verbose, vt_model **m) {
    char err[512], path[4096];
    const char *name = vt_cli_tracker_model_name(t, path, sizeof path);
    int rc = vt_model_load(name, m, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "vtrack %s: %s\n", cmd, err);
    else if (verbose)
        fprintf(stderr, "model: %s (%s)\n", name, vt_model_arch(*m));
    else if (!t->model && strcmp(name, "lab") == 0)
        /* Nobody asked for the far weaker weight-free features: say so rather than track badly
         * in silence (a binary copied out of its build tree, an install without weights). */
        fprintf(stderr,
                "vtrack %s: no trained weights found ($VT_MODEL is unset, and there is no "
                "default.safetensors in the build tree or %s): tracking with the weight-free "
                "lab features; pass --model FILE\n",
                cmd, VT_DATADIR);
    return rc;
}

void vt_cli_tracker_params(const vt_cli_tracker *t, const vt_model *m, int verbose,
                           vt_tracker_params *p) {
    vt_tracker_params_preset(p, t->tracker, t->profile, m);
    if (t->topk >= 0)
        p->topk = t->topk;
    if (t->temperature > 0)
        p->temperature = t->temperature;
    if (t->radius >= -1)
        p->radius_first = p->radius_long = p->radius_short = t->radius;
    for (int i = 0; i < t->nparams; i++) {
        char key[64];
        const char *eq = strchr(t->params[i], '=');
        memcpy(key, t->params[i], (size_t)(eq - t->params[i]));
        key[eq - t->params[i]] = 0;
        vt_tracker_params_set(p, key, eq + 1); /* checked when the option was taken */
    }
    if (verbose) {
        char buf[1024];
        vt_tracker_params_describe(p, buf, sizeof buf);
        fputs(buf, stderr);
    }
}

void vt_cli_offline_source(vt_source_opts *so) {
    vt_source_opts_default(so);
    so->allow_local = 1;
    so->pacing = VT_SOURCE_PACING_FAST;
    so->reconnect = 0;
    so->decoder_threads = 1;
}

int vt_cli_offline_stream(const char *url, const vt_model *m, const vt_tracker_params *p,
                          vt_stream_event_cb on_event, void *opaque, vt_stream **s, char *err,
                          size_t errlen) {
    vt_stream_config cfg = {0};
    cfg.name = "track";
    cfg.url = url;
    vt_cli_offline_source(&cfg.source);
    cfg.mode = VT_STREAM_LOSSLESS;
    cfg.model = m;
    cfg.params = *p;
    cfg.on_event = on_event;
    cfg.opaque = opaque;
    return vt_stream_new(&cfg, s, err, errlen);
}
