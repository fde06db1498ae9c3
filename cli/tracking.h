/*
 * tracking.h - what the commands that run the tracker offline share (`vtrack track`, `vtrack
 * eval --mot`): the tracker options (model, preset, parameters, threads), their help text, and
 * the stream that runs the pipeline of vtrackd on a file, every frame, on the caller's thread.
 */
#ifndef VT_CLI_TRACKING_H
#define VT_CLI_TRACKING_H

#include <getopt.h>
#include <stddef.h>

#include "adapt.h"
#include "vt_stream.h"

/* getopt_long codes of the tracker options (above any character a command uses). */
enum {
    VT_CLI_OPT_MODEL = 0x1000,
    VT_CLI_OPT_TRACKER,
    VT_CLI_OPT_PROFILE,
    VT_CLI_OPT_THREADS,
    VT_CLI_OPT_TOPK,
    VT_CLI_OPT_TEMPERATURE,
    VT_CLI_OPT_RADIUS,
    VT_CLI_OPT_PARAM,
    VT_CLI_OPT_ADAPT,
    VT_CLI_OPT_ADAPT_LR,
    VT_CLI_OPT_ADAPT_BATCH,
    VT_CLI_OPT_SEED,
    VT_CLI_OPT_ADAPT_CHECK,
    VT_CLI_OPT_ADAPT_MARGIN,
};

/* The tracker options' entries of a `struct option` table. */
/* clang-format off */
#define VT_CLI_TRACKER_LONGOPTS                                                                    \
    {"model", required_argument, 0, VT_CLI_OPT_MODEL},                                             \
    {"tracker", required_argument, 0, VT_CLI_OPT_TRACKER},                                         \
    {"profile", required_argument, 0, VT_CLI_OPT_PROFILE},                                         \
    {"threads", required_argument, 0, VT_CLI_OPT_THREADS},                                         \
    {"topk", required_argument, 0, VT_CLI_OPT_TOPK},                                               \
    {"temperature", required_argument, 0, VT_CLI_OPT_TEMPERATURE},                                 \
    {"radius", required_argument, 0, VT_CLI_OPT_RADIUS},                                           \
    {"param", required_argument, 0, VT_CLI_OPT_PARAM},                                             \
    {"adapt", required_argument, 0, VT_CLI_OPT_ADAPT},                                             \
    {"adapt-lr", required_argument, 0, VT_CLI_OPT_ADAPT_LR},                                       \
    {"adapt-batch", required_argument, 0, VT_CLI_OPT_ADAPT_BATCH},                                 \
    {"seed", required_argument, 0, VT_CLI_OPT_SEED},                                               \
    {"adapt-check", required_argument, 0, VT_CLI_OPT_ADAPT_CHECK},                                 \
    {"adapt-margin", required_argument, 0, VT_CLI_OPT_ADAPT_MARGIN}
/* clang-format on */

/* Their help, one section of a usage text. */
#define VT_CLI_TRACKER_HELP                                                                        \
    "  --model FILE|lab     weights (safetensors) or the weight-free Lab features; default:\n"     \
    "                       $VT_MODEL, else the shipped weights/default.safetensors, else lab\n"   \
    "  --tracker NAME       mast (memory, windows, ROI; default) or colorize (global attention)\n" \
    "  --profile NAME       accurate (480p, default) or realtime (360p, smaller windows)\n"        \
    "  --topk N, --temperature T, --radius R   override the preset's affinity parameters\n"        \
    "  --param NAME=VALUE   set any tracker parameter (repeatable; see --verbose for the list:\n"  \
    "                       proc_short, radius_first, soft_labels, short_count, roi_age, ...)\n"   \
    "  --threads N          OpenBLAS threads (default 1)\n"                                        \
    "  --adapt STEPS        before tracking a clip, fine-tune a copy of the model on the clip's\n" \
    "                       own frames for STEPS steps with its training objective (mast; no\n"    \
    "                       labels are read)\n"                                                    \
    "  --adapt-lr LR        peak learning rate of the fine-tuning (default 1e-4)\n"                \
    "  --adapt-batch N      frame pairs per step (default 4)\n"                                    \
    "  --seed N             the fine-tuning's random seed (default 1): a seed gives bitwise the\n" \
    "                       same adapted model\n"                                                  \
    "  --adapt-check NAME   keep the adapted copy only if it scores higher than the original\n"    \
    "                       on 7 frames held back from the fine-tuning (the objects' frame and\n"  \
    "                       every 2nd after it): cycle (default: the objects tracked forward\n"    \
    "                       and back, IoU of the two ways), recon (the objective's colour\n"       \
    "                       reconstruction on held-back pairs) or none (always keep it)\n"         \
    "  --adapt-margin M     keep the adapted copy only if its mean gain over the check's\n"        \
    "                       horizons plus its worst horizon's gain exceeds M (default 0: the\n"    \
    "                       mean gain outweighs any loss; -2: every copy is kept)\n"

#define VT_CLI_PARAMS_MAX 64

typedef struct vt_cli_tracker {
    const char *model;                     /* NULL: vt_stream_default_model() */
    const char *tracker;                   /* "mast" (default) or "colorize" */
    const char *profile;                   /* "accurate" (default) or "realtime" */
    int threads;                           /* OpenBLAS threads, default 1 */
    int topk, radius;                      /* -1 / -2: the preset's */
    float temperature;                     /* <= 0: the preset's */
    const char *params[VT_CLI_PARAMS_MAX]; /* "NAME=VALUE", checked */
    int nparams;
    vt_adapt_opts adapt; /* --adapt: adapt.steps 0 (the default) is off */
    int given;           /* how many tracker options were given */
} vt_cli_tracker;

/* The defaults: `vtrack track` with no option; and a new scan of the command line (getopt's
 * optind = 1, its own messages off: the commands print theirs). */
void vt_cli_tracker_init(vt_cli_tracker *t);

/*
 * Take option `code` (a VT_CLI_OPT_* code) with its value `arg` for command `cmd` ("track").
 * Returns 1 when it was a tracker option and is taken, 0 when `code` is not a tracker option,
 * 2 (the usage-error status, message printed) when the value is bad.
 */
int vt_cli_tracker_option(vt_cli_tracker *t, const char *cmd, int code, const char *arg);

/* vt_cli_tracker_getopt's answer after a tracker option's bad value (message printed). */
#define VT_CLI_OPT_USAGE (-2)

/*
 * The next option of command `cmd`'s line, by getopt_long with the long options `lo` (which hold
 * VT_CLI_TRACKER_LONGOPTS) and the short options ":h"; the tracker options are taken into t on
 * the way. Returns the next option's code for the caller (getopt's '?' and ':' included), -1
 * at the end, or VT_CLI_OPT_USAGE. Start a scan with optind = 1 (vt_cli_tracker_init does).
 */
int vt_cli_tracker_getopt(vt_cli_tracker *t, const char *cmd, int argc, char **argv,
                          const struct option *lo);

/*
 * --adapt: the model the options name, fine-tuned on the frames of `clip`, into *am (the caller
 * frees it) if it passes the check (--adapt-check), else the model as loaded; `save` (may be
 * NULL) also writes the tuned weights there, whatever the verdict. `shapes` (n of them, given
 * on 0-based frame `frame` of the clip) are the objects the cycle check tracks. Says on stderr
 * how long it took, the loss before and after and the check's scores and verdict unless
 * `quiet`. 0, or -1 with "vtrack CMD: TITLE: <why>" printed.
 */
int vt_cli_adapted_model(const vt_cli_tracker *t, const char *cmd, const char *clip,
                         const char *title, const char *save, int quiet, const vt_shape *shapes,
                         int n, int64_t frame, vt_model **am);

/* The weights --model names, or the default ones (vt_stream_default_model, into path). */
const char *vt_cli_tracker_model_name(const vt_cli_tracker *t, char *path, size_t len);

/* Load the model the options name; prints "vtrack CMD: <why>" on failure (0 or < 0). With
 * `verbose`, names the model on stderr. */
int vt_cli_tracker_model(const vt_cli_tracker *t, const char *cmd, int verbose, vt_model **m);

/* The tracker parameters: the preset of t->tracker and t->profile for `m`, then the overrides.
 * With `verbose`, describes them on stderr. */
void vt_cli_tracker_params(const vt_cli_tracker *t, const vt_model *m, int verbose,
                           vt_tracker_params *p);

/* Source options for reading a local file or folder offline: every frame once, as fast as it
 * decodes, no reconnection, one decoder thread. */
void vt_cli_offline_source(vt_source_opts *so);

/*
 * A stream that tracks `url` (a local file, a folder of numbered frames, or a URL) offline:
 * every frame (lossless), as fast as it decodes, no reconnection, with model `m`, parameters
 * `p` and the event callback; step it with vt_stream_step(). 0 or < 0 with the reason in err.
 */
int vt_cli_offline_stream(const char *url, const vt_model *m, const vt_tracker_params *p,
                          vt_stream_event_cb on_event, void *opaque, vt_stream **s, char *err,
                          size_t errlen);

#endif
