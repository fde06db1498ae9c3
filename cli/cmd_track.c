/*
 * vtrack track - offline tracking of a video, a camera or a DAVIS-style folder, through the same
 * stream/ pipeline as vtrackd. Writes palette PNG masks, an overlay video and/or NDJSON events.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>
#include <libavutil/error.h>

#include "commands.h"
#include "tracking.h"
#include "cli_util.h"
#include "vt_base.h"
#include "vt_stream.h"

#define MAX_OBJ VT_PROTO_OBJECTS_MAX

static const char usage_text[] =
    "usage: vtrack track INPUT (--mask PNG | --box X,Y,W,H[:LABEL][@FRAME] ... | --polygon "
    "X,Y,X,Y,X,Y,...[:LABEL][@FRAME] ...)\n"
    "                    [--model FILE|lab] [--tracker mast|colorize] [--profile "
    "accurate|realtime]\n"
    "                    [--out DIR] [--overlay OUT.mp4] [--json [--no-masks]] [--frames N]\n"
    "       vtrack track --davis ROOT [--seq NAME ...] --out DIR [options]\n"
    "\n"
    "Propagates each object given on a frame of INPUT (a file, an rtsp:// or http(s):// URL,\n"
    "/dev/videoN, or a folder of numbered JPEGs) - the first frame unless it says otherwise - to\n"
    "every later frame.\n"
    "\n"
    "objects:\n"
    "  --mask PNG           a mask image of the first frame: palette PNG (each index 1..254 is\n"
    "                       the object with that id) or grey (nonzero = object 1)\n"
    "  --box X,Y,W,H[:L][@F]\n"
    "                       a box in pixels, optional label L, on source frame F (0-based;\n"
    "                       default 0) (repeatable)\n"
    "  --polygon X,Y,...[:L][@F]\n"
    "                       a polygon of at least 3 points, label and frame as for --box\n"
    "                       (repeatable)\n"
    "                       A trailing @ and digits is always the frame: a label cannot end\n"
    "                       in @ and digits. An object on a frame that INPUT does not reach,\n"
    "                       or that --frames stops before, is an error.\n"
    "\n"
    "model:\n" VT_CLI_TRACKER_HELP "\n"
    "outputs:\n"
    "  --out DIR            palette PNG per frame (DIR/00000.png ...; index = object id); with\n"
    "                       --davis, DIR/<seq>/<frame>.png as the DAVIS evaluation expects\n"
    "  --overlay FILE       an MP4 with the objects drawn on the frames: mask, box (dashed\n"
    "                       when occluded or lost) and \"#ID LABEL STATE\"\n"
    "  --json               NDJSON events on stdout, as vtrackd sends them (frame events with\n"
    "                       masks unless --no-masks)\n"
    "  --frames N           stop after N frames\n"
    "  --quiet              no progress bar (it is shown only on a terminal anyway)\n"
    "  --verbose            the parameters and per-stage timings\n"
    "\n"
    "DAVIS protocol:\n"
    "  --davis ROOT         ROOT/JPEGImages/480p/<seq>/ and ROOT/Annotations/480p/<seq>/00000.png\n"
    "  --seq NAME           a sequence (repeatable; default: every sequence)\n"
    "  --baseline identity  no tracking: the first mask copied to every frame\n"
    "  --init box           register each object by its first mask's bounding box (as a camera\n"
    "                       user would draw it) instead of the mask\n"
    "\n"
    "  --adapt-save FILE    with --adapt: also write the adapted weights to FILE (one INPUT\n"
    "                       only)\n";

typedef struct obj_arg {
    int box;
    float b[4];
    float *pts;
    int npts;
    char label[VT_PROTO_LABEL_MAX + 1];
    int64_t frame; /* the source frame it is given on (@FRAME), 0 by default */
} obj_arg;

typedef struct track_opts {
    const char *input, *mask, *out, *overlay, *davis, *baseline;
    const char *seqs[256];
    int nseqs;
    obj_arg objs[MAX_OBJ];
    int nobjs;
    int json, no_masks, quiet, verbose;
    int init_box; /* --davis --init box */
    long frames;
    const char *adapt_save;
    vt_cli_tracker trk; /* --model, --tracker, --profile, --param, --threads, ... */
} track_opts;

/* ------------------------------------------------------------------------------------------
 * Argument parsing
 * ---------------------------------------------------------------------------------------- */

/*
 * Split "SPEC[@FRAME]": a trailing '@' followed by digits only is the frame, so a label cannot
 * end in "@digits"; any other '@' is part of the label. Sets *speclen (SPEC's length) and
 * *frame (0 without one). Returns 0, -ERANGE for a frame above 2^53-1, or -EINVAL for an '@'
 * among the coordinates that is not followed by a frame.
 */
static int split_frame(const char *arg, size_t *speclen, int64_t *frame) {
    const char *at = strrchr(arg, '@'), *colon = strchr(arg, ':');
    *speclen = strlen(arg);
    *frame = 0;
    if (!at)
        return 0;
    size_t nd = strlen(at + 1);
    if (nd > 0 && strspn(at + 1, "0123456789") == nd) {
        unsigned long long v = nd <= 19 ? strtoull(at + 1, NULL, 10) : ULLONG_MAX;
        if (v > (unsigned long long)VT_PROTO_FRAME_MAX)
            return -ERANGE;
        *speclen = (size_t)(at - arg);
        *frame = (int64_t)v;
        return 0;
    }
    return colon && colon < at ? 0 : -EINVAL;
}

/* "x,y,..." with an optional ":label" in arg[0..len); returns the number of values or -1. */
static int parse_floats(const char *arg, size_t len, float *out, int max, char *label,
                        size_t lablen) {
    const char *colon = memchr(arg, ':', len);
    size_t nlen = colon ? (size_t)(colon - arg) : len;
    if (colon) {
        const char *l = colon + 1;
        size_t n = len - nlen - 1;
        if (n == 0 || n > VT_PROTO_LABEL_MAX || vt_proto_text_check(l, n) < 0)
            return -1; /* labels go into JSON events: text only */
        snprintf(label, lablen, "%.*s", (int)n, l);
    }
    char buf[8192];
    if (nlen >= sizeof buf)
        return -1;
    memcpy(buf, arg, nlen);
    buf[nlen] = 0;
    int n = 0;
    char *p = buf;
    for (;;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v) || fabs(v) > 1e6 || n >= max)
            return -1;
        out[n++] = (float)v;
        if (*end == 0)
            break;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
    return n;
}

static int parse_args(int argc, char **argv, track_opts *o) {
    enum {
        O_NOMASKS = 256,
        O_BASELINE,
        O_INIT,
        O_ADAPT,
        O_ADAPT_LR,
        O_ADAPT_BATCH,
        O_ADAPT_SAVE,
        O_SEED
    };
    static const struct option lo[] = {
        {"mask", required_argument, 0, 'm'},
        {"box", required_argument, 0, 'b'},
        {"polygon", required_argument, 0, 'p'},
        {"out", required_argument, 0, 'o'},
        {"overlay", required_argument, 0, 'v'},
        {"json", no_argument, 0, 'j'},
        {"no-masks", no_argument, 0, O_NOMASKS},
        {"frames", required_argument, 0, 'n'},
        {"davis", required_argument, 0, 'd'},
        {"seq", required_argument, 0, 's'},
        {"quiet", no_argument, 0, 'q'},
        {"verbose", no_argument, 0, 'V'},
        {"baseline", required_argument, 0, O_BASELINE},
        {"init", required_argument, 0, O_INIT},
        {"adapt-save", required_argument, 0, O_ADAPT_SAVE},
        {"help", no_argument, 0, 'h'},
        VT_CLI_TRACKER_LONGOPTS,
        {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    vt_cli_tracker_init(&o->trk);
    o->frames = -1;
    int c;
    while ((c = vt_cli_tracker_getopt(&o->trk, "track", argc, argv, lo)) != -1) {
        switch (c) {
        case VT_CLI_OPT_USAGE:
            return 2;
        case 'm':
            o->mask = optarg;
            break;
        case 'b':
        case 'p': {
            if (o->nobjs >= MAX_OBJ)
                return vt_cli_usage_error("track", "at most %d objects", MAX_OBJ);
            obj_arg *a = &o->objs[o->nobjs];
            const char *opt = c == 'b' ? "--box" : "--polygon";
            size_t speclen;
            int frc = split_frame(optarg, &speclen, &a->frame);
            if (frc == -ERANGE)
                return vt_cli_usage_error("track", "%s '%s': the frame is past 2^53-1", opt,
                                          optarg);
            float vals[2 * 1024];
            int n = frc < 0 ? -1
                            : parse_floats(optarg, speclen, vals, c == 'b' ? 4 : 2 * 1024, a->label,
                                           sizeof a->label);
            if (c == 'b' && (n != 4 || !(vals[2] > 0) || !(vals[3] > 0)))
                return vt_cli_usage_error("track",
                                          "--box '%s': want X,Y,W,H[:LABEL][@FRAME] with W,H > 0 "
                                          "(LABEL: 1..64 bytes of UTF-8 text; FRAME: digits, the "
                                          "0-based source frame)",
                                          optarg);
            if (c == 'p' && (n < 6 || n % 2))
                return vt_cli_usage_error("track",
                                          "--polygon '%s': want at least 3 points "
                                          "X,Y,X,Y,X,Y[:LABEL][@FRAME] (LABEL: 1..64 bytes of "
                                          "UTF-8 text; FRAME: digits, the 0-based source frame)",
                                          optarg);
            a->box = c == 'b';
            if (a->box) {
                memcpy(a->b, vals, sizeof a->b);
            } else {
                a->npts = n / 2;
                a->pts = malloc(sizeof(float) * n);
                if (!a->pts)
                    return 1;
                memcpy(a->pts, vals, sizeof(float) * n);
            }
            o->nobjs++;
            break;
        }
        case 'o':
            o->out = optarg;
            break;
        case 'v':
            o->overlay = optarg;
            break;
        case 'j':
            o->json = 1;
            break;
        case O_NOMASKS:
            o->no_masks = 1;
            break;
        case 'n':
            if (vt_cli_parse_long(optarg, 1, 100000000, &o->frames) < 0)
                return vt_cli_usage_error("track", "--frames '%s': want a positive integer",
                                          optarg);
            break;
        case 'd':
            o->davis = optarg;
            break;
        case 's': {
            if (o->nseqs >= 256)
                return vt_cli_usage_error("track", "too many --seq");
            int dup = 0; /* named twice: tracked once */
            for (int k = 0; k < o->nseqs && !dup; k++)
                dup = strcmp(o->seqs[k], optarg) == 0;
            if (!dup)
                o->seqs[o->nseqs++] = optarg;
            break;
        }
        case O_BASELINE:
            if (strcmp(optarg, "identity"))
                return vt_cli_usage_error("track", "--baseline '%s': only 'identity' exists",
                                          optarg);
            o->baseline = optarg;
            break;
        case O_INIT:
            if (strcmp(optarg, "box") && strcmp(optarg, "mask"))
                return vt_cli_usage_error("track", "--init '%s': want mask or box", optarg);
            o->init_box = strcmp(optarg, "box") == 0;
            break;
        case O_ADAPT_SAVE:
            o->adapt_save = optarg;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'V':
            o->verbose = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        default:
            return vt_cli_option_error("track", c, argv);
        }
    }
    if (o->davis) {
        if (optind < argc)
            return vt_cli_usage_error("track", "--davis takes no INPUT ('%s')", argv[optind]);
        if (!o->out)
            return vt_cli_usage_error("track", "--davis needs --out DIR");
        if (o->mask || o->nobjs)
            return vt_cli_usage_error("track", "--davis takes its objects from the annotations");
        if (o->baseline && o->trk.adapt.steps)
            return vt_cli_usage_error("track", "--baseline has no model to --adapt");
        if (o->adapt_save)
            return vt_cli_usage_error("track", "--adapt-save goes with one INPUT, not --davis");
        return 0;
    }
    if (o->adapt_save && !o->trk.adapt.steps)
        return vt_cli_usage_error("track", "--adapt-save needs --adapt STEPS");
    if (o->nseqs || o->baseline || o->init_box)
        return vt_cli_usage_error("track", "--seq, --baseline and --init go with --davis");
    if (optind != argc - 1)
        return vt_cli_usage_error("track",
                                  optind >= argc ? "no INPUT given" : "more than one INPUT given");
    o->input = argv[optind];
    if (!o->mask && !o->nobjs)
        return vt_cli_usage_error("track", "no object: give --mask, --box or --polygon");
    if (!o->out && !o->overlay && !o->json)
        return vt_cli_usage_error("track", "no output: give --out, --overlay or --json");
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * One run: a source, its objects, the outputs
 * ---------------------------------------------------------------------------------------- */

typedef struct run_ctx {
    const track_opts *o;
    const char *outdir; /* PNG directory or NULL */
    vt_overlay *ov;
    int ov_w, ov_h, ov_ended; /* the overlay's frame size; it ends where the source's changes */
    uint64_t seq;
    int ids_png;           /* PNG index = object id (ids <= 254) */
    int refused;           /* an object given on the command line was refused (message printed) */
    const char *input;     /* what is tracked, for messages */
    uint32_t ids[MAX_OBJ]; /* the --box/--polygon objects' ids, in the order given */
    int added[MAX_OBJ];    /* ... whether they got their `added` event */
    char end_reason[256];  /* why the source ended, in its own words */
    int out_errno;         /* a write to standard output failed with this (0: none) */
    double t_enc, t_aff, t_lab, t_up, t_res;
    long nframes;
} run_ctx;

static void on_event(void *opaque, const vt_stream_event *ev) {
    run_ctx *c = opaque;
    if (ev->kind == VT_STREAM_EVENT_OBJECT && ev->lifecycle == VT_PROTO_LIFECYCLE_REMOVED &&
        ev->reason && strcmp(ev->reason, "untrack") != 0) {
        if (ev->object_frame < 0 && c->nframes > 0) /* its frame never came: the input ended */
            fprintf(stderr, "vtrack track: object %u: %s: %s has %ld frames (0..%ld)\n", ev->object,
                    ev->reason, c->input, c->nframes, c->nframes - 1);
        else
            fprintf(stderr, "vtrack track: object %u: %s\n", ev->object, ev->reason);
        c->refused = 1;
    }
    for (int i = 0; i < c->o->nobjs && ev->kind == VT_STREAM_EVENT_OBJECT; i++)
        if (c->ids[i] == ev->object && ev->lifecycle == VT_PROTO_LIFECYCLE_ADDED)
            c->added[i] = 1;
    if (ev->kind == VT_STREAM_EVENT_STATE && ev->state == VT_PROTO_STREAM_ENDED && ev->reason)
        snprintf(c->end_reason, sizeof c->end_reason, "%s", ev->reason);
    if (!c->o->json)
        return;
    char pre[VT_PROTO_SEQ_PREFIX_MAX];
    size_t n = vt_proto_seq_prefix(pre, ++c->seq);
    const char *tail = ev->tail;
    size_t tn = ev->tail_len;
    if (ev->kind == VT_STREAM_EVENT_FRAME && !c->o->no_masks)
        tail = ev->tail_masks, tn = ev->tail_masks_len;
    if (!c->out_errno && (fwrite(pre, 1, n, stdout) != n || fwrite(tail, 1, tn, stdout) != tn))
        c->out_errno = errno ? errno : EIO;
}

static int write_outputs(run_ctx *c, const vt_stream_event *ev) {
    const vt_track_result *r = ev->result;
    const vt_frame *f = ev->frame;
    char err[256];
    if (c->refused)
        return -EINVAL; /* said in on_event */
    if (c->out_errno) {
        /* the events do not reach their reader (a full disk, a closed pipe): stop */
        fprintf(stderr, "vtrack track: writing the events to standard output: %s\n",
                strerror(c->out_errno));
        return -c->out_errno;
    }
    if (c->outdir) {
        /* label map values are result indices; the PNG stores object ids */
        static uint8_t png[8192 * 8192 / 4];
        uint8_t *buf = (size_t)r->w * r->h <= sizeof png ? png : malloc((size_t)r->w * r->h);
        if (!buf)
            return -ENOMEM;
        uint8_t lut[256] = {0};
        for (int i = 0; i < r->n_objects; i++)
            lut[i + 1] = (uint8_t)(r->objects[i].id <= 254 ? r->objects[i].id : 254);
        for (size_t i = 0; i < (size_t)r->w * r->h; i++)
            buf[i] = lut[r->labels[i]];
        char path[4096];
        snprintf(path, sizeof path, "%s/%05lld.png", c->outdir, (long long)f->index);
        int rc = vt_mask_write_png(path, r->w, r->h, buf, err, sizeof err);
        if (buf != png)
            free(buf);
        if (rc < 0) {
            fprintf(stderr, "vtrack track: %s\n", err);
            return rc;
        }
    }
    if (c->ov && !c->ov_ended && (f->width != c->ov_w || f->height != c->ov_h)) {
        fprintf(stderr,
                "vtrack track: overlay: the source changed size at frame %lld (%dx%d, was "
                "%dx%d): the overlay video ends there\n",
                (long long)f->index, f->width, f->height, c->ov_w, c->ov_h);
        c->ov_ended = 1;
    }
    if (c->ov && !c->ov_ended) {
        vt_overlay_object objs[MAX_OBJ];
        for (int i = 0; i < r->n_objects && i < MAX_OBJ; i++)
            objs[i] = vt_stream_overlay_object(&r->objects[i], i + 1);
        int rc = vt_overlay_write(c->ov, f->rgb, f->width, f->height, f->linesize, r->labels, objs,
                                  r->n_objects < MAX_OBJ ? r->n_objects : MAX_OBJ, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "vtrack track: overlay: %s\n", err);
            return rc;
        }
    }
    return 0;
}

static void progress(const char *what, long done, long total, double t0) {
    double el = vt_mono_s() - t0, fps = el > 0 ? done / el : 0;
    if (total > 0) {
        int w = 30, fill = (int)(w * (double)done / total);
        fprintf(stderr, "\r%s [%.*s%*s] %ld/%ld %.1f fps ETA %.0fs ", what, fill,
                "##############################", w - fill, "", done, total, fps,
                fps > 0 ? (total - done) / fps : 0);
    } else {
        fprintf(stderr, "\r%s %ld frames %.1f fps ", what, done, fps);
    }
    fflush(stderr);
}

typedef struct given {
    /* first-frame objects from --mask / annotation: label image + ids present */
    uint8_t *labels;
    int w, h, palette;
    int ids[256];
    int nids;
} given;

static int load_given(const char *path, given *g) {
    char err[256];
    memset(g, 0, sizeof *g);
    int rc = vt_mask_read_png(path, &g->w, &g->h, &g->labels, &g->palette, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "vtrack track: %s\n", err);
        return rc;
    }
    int seen[256] = {0};
    for (size_t i = 0; i < (size_t)g->w * g->h; i++) {
        if (!g->palette)
            g->labels[i] = g->labels[i] ? 1 : 0; /* grey: any nonzero value is object 1 */
        seen[g->labels[i]] = 1;
    }
    int n = 0;
    for (int v = 1; v < 255; v++) /* 255 is void in palette annotations */
        n += seen[v];
    if (n > MAX_OBJ) {
        fprintf(stderr, "vtrack track: %s: %d objects, at most %d can be tracked\n", path, n,
                MAX_OBJ);
        free(g->labels);
        g->labels = NULL;
        return -E2BIG;
    }
    for (int v = 1; v < 255; v++)
        if (seen[v])
            g->ids[g->nids++] = v;
    return 0;
}

/* The bounding box of label `id`'s pixels (the label is present: load_given saw it). */
static vt_shape label_box(const given *g, int id) {
    int x0 = g->w, y0 = g->h, x1 = -1, y1 = -1;
    for (int y = 0; y < g->h; y++)
        for (int x = 0; x < g->w; x++)
            if (g->labels[(size_t)y * g->w + x] == id) {
                x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
            }
    return (vt_shape){.kind = VT_SHAPE_BOX,
                      .box = {(float)x0, (float)y0, (float)(x1 - x0 + 1), (float)(y1 - y0 + 1)}};
}

/* --adapt's check: the objects given on the earliest frame any is given on (the mask's, frame
 * 0, or the earliest @FRAME of --box/--polygon), as the tracker will be given them. */
static int check_shapes(const track_opts *o, const given *g, vt_shape *out, int64_t *frame) {
    int n = 0;
    *frame = g ? 0 : INT64_MAX;
    for (int i = 0; i < o->nobjs; i++)
        *frame = o->objs[i].frame < *frame ? o->objs[i].frame : *frame;
    if (*frame == INT64_MAX)
        *frame = 0;
    for (int i = 0; g && i < g->nids && n < MAX_OBJ; i++)
        out[n++] = o->init_box ? label_box(g, g->ids[i])
                               : (vt_shape){.kind = VT_SHAPE_LABELS,
                                            .w = g->w,
                                            .h = g->h,
                                            .data = g->labels,
                                            .index = g->ids[i]};
    for (int i = 0; i < o->nobjs && n < MAX_OBJ; i++) {
        const obj_arg *a = &o->objs[i];
        if (a->frame != *frame)
            continue;
        out[n++] =
            a->box ? (vt_shape){.kind = VT_SHAPE_BOX, .box = {a->b[0], a->b[1], a->b[2], a->b[3]}}
                   : (vt_shape){.kind = VT_SHAPE_POLYGON, .points = a->pts, .npoints = a->npts};
    }
    return n;
}

/*
 * Track one source. Objects come from `g` (label image) and/or the --box/--polygon list.
 * Returns 0 or an error; frames counted in c->nframes.
 */
static int run_source(const char *url, const given *g, const track_opts *o, const vt_model *m,
                      run_ctx *c, const char *title) {
    char err[512];
    vt_tracker_params params;
    vt_cli_tracker_params(&o->trk, m, o->verbose, &params);
    c->input = url;
    vt_stream *s = NULL;
    long total = -1;
    const int show = !o->quiet && isatty(2);
    double t0;
    const vt_stream_event *ev;
    int rc = vt_cli_offline_stream(url, m, &params, on_event, c, &s, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "vtrack track: %s\n", err);
        return rc;
    }
    if (g) {
        for (int i = 0; i < g->nids; i++) {
            vt_shape sh = {.kind = VT_SHAPE_LABELS,
                           .w = g->w,
                           .h = g->h,
                           .data = g->labels,
                           .index = g->ids[i]};
            if (o->init_box)
                sh = label_box(g, g->ids[i]);
            if ((rc = vt_stream_track(s, (uint32_t)g->ids[i], NULL, &sh, 0, NULL, err,
                                      sizeof err)) < 0) {
                fprintf(stderr, "vtrack track: object %d: %s\n", g->ids[i], err);
                goto done;
            }
        }
    }
    for (int i = 0; i < o->nobjs; i++) {
        const obj_arg *a = &o->objs[i];
        vt_shape sh =
            a->box ? (vt_shape){.kind = VT_SHAPE_BOX, .box = {a->b[0], a->b[1], a->b[2], a->b[3]}}
                   : (vt_shape){.kind = VT_SHAPE_POLYGON, .points = a->pts, .npoints = a->npts};
        if ((rc = vt_stream_track(s, 0, a->label[0] ? a->label : NULL, &sh, a->frame, &c->ids[i],
                                  err, sizeof err)) < 0) {
            fprintf(stderr, "vtrack track: object %d: %s\n", i + 1, err);
            goto done;
        }
    }
    t0 = vt_mono_s();
    while ((o->frames < 0 || c->nframes < o->frames) && (rc = vt_stream_step(s, &ev)) == 0) {
        if (c->nframes == 0) {
            vt_source_info info;
            int have_info = vt_stream_get_source_info(s, &info) == 0;
            if (have_info && info.nb_frames > 0)
                total = o->frames > 0 && o->frames < info.nb_frames ? o->frames : info.nb_frames;
            if (c->outdir == NULL && o->out && !o->davis)
                c->outdir = o->out;
            if (o->overlay && !c->ov) {
                vt_overlay_opts oo;
                vt_overlay_opts_default(&oo);
                if (have_info && info.fps_num > 0 && info.fps_den > 0)
                    oo.fps_num = info.fps_num, oo.fps_den = info.fps_den;
                if ((rc = vt_overlay_new(&c->ov, o->overlay, ev->frame->width, ev->frame->height,
                                         &oo, err, sizeof err)) < 0) {
                    fprintf(stderr, "vtrack track: %s\n", err);
                    goto done;
                }
                c->ov_w = ev->frame->width, c->ov_h = ev->frame->height;
            }
        }
        const vt_track_timing *tm = &ev->result->timing;
        c->t_res += tm->resize, c->t_enc += tm->encode, c->t_aff += tm->affinity;
        c->t_lab += tm->labels, c->t_up += tm->upsample;
        if ((rc = write_outputs(c, ev)) < 0)
            goto done;
        c->nframes++;
        if (show)
            progress(title, c->nframes, total, t0);
    }
    if (show)
        fputc('\n', stderr);
    if (rc == 0) {
        /* --frames stopped first: objects given for a later frame were never tracked */
        for (int i = 0; i < o->nobjs; i++)
            if (!c->added[i] && o->objs[i].frame >= c->nframes) {
                fprintf(stderr,
                        "vtrack track: object %u: --frames %ld stops before its frame %lld\n",
                        c->ids[i], o->frames, (long long)o->objs[i].frame);
                c->refused = 1;
            }
    }
    if ((rc == AVERROR_EOF || rc == 0) && c->refused) {
        rc = -EINVAL; /* an object given was not tracked: said above */
    } else if (rc == AVERROR_EOF || rc == 0) {
        rc = 0;
    } else {
        if (c->end_reason[0]) /* the source's own words ("no video stream", ...) */
            fprintf(stderr, "vtrack track: %s\n", c->end_reason);
        else
            fprintf(stderr, "vtrack track: %s: %s\n", url, av_err2str(rc));
    }
done:
    vt_stream_free(&s);
    return rc;
}

/* Sequence names under ROOT/Annotations/480p, sorted. */
static int list_sequences(const char *root, char ***names) {
    char path[4096];
    snprintf(path, sizeof path, "%s/Annotations/480p", root);
    int n = vt_cli_list_dir(path, names);
    if (n < 0) {
        fprintf(stderr, "vtrack track: --davis: cannot open %s: %s\n", path, strerror(-n));
        return -1;
    }
    if (n == 0)
        fprintf(stderr, "vtrack track: --davis: no sequence folders in %s\n", path);
    return n;
}

static int count_frames(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".jpg") != NULL;
    closedir(d);
    return n;
}

static int run_davis(const track_opts *o) {
    char **all = NULL;
    int nall = 0;
    const char *const *seqs = o->seqs;
    int nseqs = o->nseqs;
    if (!nseqs) {
        if ((nall = list_sequences(o->davis, &all)) <= 0)
            return 1;
        seqs = (const char *const *)all;
        nseqs = nall;
    }
    vt_model *m = NULL;
    /* with --adapt each sequence loads its own copy */
    if (!o->baseline && !o->trk.adapt.steps &&
        vt_cli_tracker_model(&o->trk, "track", o->verbose, &m) < 0)
        return 1;
    int status = 0;
    long total_frames = 0;
    double t_all = vt_mono_s();
    run_ctx sum = {0};
    for (int i = 0; i < nseqs; i++) {
        char ann[4096], jpg[4096], out[4096];
        snprintf(ann, sizeof ann, "%s/Annotations/480p/%s/00000.png", o->davis, seqs[i]);
        snprintf(jpg, sizeof jpg, "%s/JPEGImages/480p/%s", o->davis, seqs[i]);
        snprintf(out, sizeof out, "%s/%s", o->out, seqs[i]);
        if (vt_cli_mkdir_p(out) < 0) {
            fprintf(stderr, "vtrack track: cannot create %s: %s\n", out, strerror(errno));
            status = 1;
            break;
        }
        given g;
        if (load_given(ann, &g) < 0) {
            status = 1;
            break;
        }
        double t0 = vt_mono_s();
        run_ctx c = {.o = o, .outdir = out};
        int rc = 0;
        if (o->baseline) {
            int n = count_frames(jpg);
            char err[256], path[4200];
            for (int f = 0; f < n && rc == 0; f++) {
                snprintf(path, sizeof path, "%s/%05d.png", out, f);
                rc = vt_mask_write_png(path, g.w, g.h, g.labels, err, sizeof err);
                if (rc < 0)
                    fprintf(stderr, "vtrack track: %s\n", err);
            }
            c.nframes = n;
        } else if (o->trk.adapt.steps > 0) {
            vt_model *am = NULL;
            vt_shape shapes[MAX_OBJ];
            int64_t f0;
            int ns = check_shapes(o, &g, shapes, &f0);
            rc = vt_cli_adapted_model(&o->trk, "track", jpg, seqs[i], NULL, o->quiet, shapes, ns,
                                      f0, &am);
            if (rc == 0)
                rc = run_source(jpg, &g, o, am, &c, seqs[i]);
            vt_model_free(&am);
        } else {
            rc = run_source(jpg, &g, o, m, &c, seqs[i]);
        }
        free(g.labels);
        if (rc < 0) {
            status = 1;
            break;
        }
        double dt = vt_mono_s() - t0;
        if (!o->quiet)
            fprintf(stderr, "%-20s %4ld frames %7.1f ms/frame\n", seqs[i], c.nframes,
                    1000 * dt / (c.nframes ? c.nframes : 1));
        total_frames += c.nframes;
        sum.t_res += c.t_res, sum.t_enc += c.t_enc, sum.t_aff += c.t_aff;
        sum.t_lab += c.t_lab, sum.t_up += c.t_up;
    }
    double dt = vt_mono_s() - t_all;
    if (!o->quiet && status == 0) {
        double nf = total_frames ? (double)total_frames : 1;
        fprintf(stderr, "%d sequences, %ld frames, %.1f ms/frame", nseqs, total_frames,
                1000 * dt / nf);
        if (!o->baseline)
            fprintf(stderr,
                    " (resize %.1f, encoder %.1f, affinity %.1f, labels %.1f, "
                    "upsample+results %.1f)",
                    sum.t_res / nf, sum.t_enc / nf, sum.t_aff / nf, sum.t_lab / nf, sum.t_up / nf);
        fputc('\n', stderr);
    }
    vt_model_free(&m);
    for (int i = 0; i < nall; i++)
        free(all[i]);
    free(all);
    return status;
}

static int run_single(const track_opts *o) {
    given g = {0}, *gp = NULL;
    if (o->mask) {
        if (load_given(o->mask, &g) < 0)
            return 1;
        if (g.nids == 0) {
            fprintf(stderr, "vtrack track: --mask %s: the mask is empty\n", o->mask);
            free(g.labels);
            return 1;
        }
        gp = &g;
    }
    if (o->out && vt_cli_mkdir_p(o->out) < 0) {
        fprintf(stderr, "vtrack track: cannot create %s: %s\n", o->out, strerror(errno));
        free(g.labels);
        return 1;
    }
    vt_model *m = NULL;
    vt_shape shapes[MAX_OBJ];
    int64_t f0;
    const int ns = check_shapes(o, gp, shapes, &f0);
    /* with --adapt, the copy fine-tuned on INPUT if it passes the check, else the original */
    if ((o->trk.adapt.steps > 0 ? vt_cli_adapted_model(&o->trk, "track", o->input, "tracking",
                                                       o->adapt_save, o->quiet, shapes, ns, f0, &m)
                                : vt_cli_tracker_model(&o->trk, "track", o->verbose, &m)) < 0) {
        free(g.labels);
        return 1;
    }
    run_ctx c = {.o = o};
    double t0 = vt_mono_s();
    int rc = run_source(o->input, gp, o, m, &c, "tracking");
    if (c.ov) {
        char err[256];
        if (vt_overlay_close(c.ov, err, sizeof err) < 0) {
            fprintf(stderr, "vtrack track: overlay: %s\n", err);
            rc = -1;
        }
        vt_overlay_free(&c.ov);
    }
    if (rc == 0 && !o->quiet && !o->json) {
        double nf = c.nframes ? (double)c.nframes : 1;
        fprintf(stderr, "%ld frames, %.1f ms/frame\n", c.nframes, 1000 * (vt_mono_s() - t0) / nf);
    }
    /* Events still buffered are flushed, and a failure reported, by main's finish(). */
    vt_model_free(&m);
    free(g.labels);
    return rc < 0 ? 1 : 0;
}

int vt_cmd_track(int argc, char **argv) {
    track_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc == 0) {
        openblas_set_num_threads(o.trk.threads);
        rc = o.davis ? run_davis(&o) : run_single(&o);
    } else {
        rc = rc < 0 ? 0 : rc; /* --help */
    }
    for (int i = 0; i < o.nobjs; i++)
        free(o.objs[i].pts);
    return rc;
}
