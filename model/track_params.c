/*
 * track_params.c - the tracker's parameters: the presets (mast, colorize x accurate, realtime),
 * setting one by name, describing them, and checking their ranges. docs/TRACKING.md has the
 * table of values and the reasons.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "track_int.h"
#include "vt_model.h"

static int scale_cells(int cells_at_s4, int stride) {
    int r = (cells_at_s4 * 4 + stride / 2) / stride;
    return r < 1 ? 1 : r;
}

static double meta_num(const vt_model *m, const char *key, double def) {
    const char *v = m ? vt_model_meta(m, key) : NULL;
    if (!v || !*v)
        return def;
    char *end;
    double d = strtod(v, &end);
    return *end ? def : d;
}

int vt_tracker_params_preset(vt_tracker_params *p, const char *tracker, const char *profile,
                             const vt_model *m) {
    int realtime;
    if (!profile || strcmp(profile, "accurate") == 0)
        realtime = 0;
    else if (strcmp(profile, "realtime") == 0)
        realtime = 1;
    else
        return -EINVAL;
    int stride = m ? vt_model_stride(m) : 8;
    memset(p, 0, sizeof *p);
    p->max_objects = 32;
    p->max_anchors = 4;
    /* realtime: 360p, where the compact encoder still keeps one core at ~20 fps; at 240p
     * objects get too few cells (dev J&F 48.5 instead of 58.8, docs/RESULTS.md) */
    p->proc_short = realtime ? 360 : 480;
    p->proc_long_max = realtime ? 640 : 864;
    /* Features: unit norm and a sharp softmax over the best few candidates, unless the
     * model's metadata says it was trained otherwise (a converted MAST checkpoint uses raw
     * dot products and a plain softmax). */
    p->l2norm = (int)meta_num(m, "vtrack.prop.l2norm", 1);
    p->temperature = (float)meta_num(m, "vtrack.prop.temperature", 0.05);
    /* Averaging the labels of the 10 best matches (MAST, CRW) blurs boundaries; the 5 best
     * track better on the dev set for raw colour (J&F 49.6 -> 55.0) and for the trained
     * compact encoder (65.2 -> 67.8). Fewer still wins a little more for raw colour (58.5 at
     * top-3) but is fooled by repetitive texture (the striped objects of the synthetic tests
     * lose 0.13 IoU), so 5 it is, unless the weights' metadata says otherwise
     * (docs/RESULTS.md). */
    p->topk = (int)meta_num(m, "vtrack.prop.topk", 5);
    p->lost_score = 0.35f;
    /* Seen: a mask that shows at least a tenth of what the object's predicted box should show.
     * Hidden longer than 25 frames (1 s at 25 fps, 2.5 s at 10): lost, no box reported (it is
     * still looked for, and comes back as recovered). */
    p->lost_area = 0.1f;
    p->lost_frames = 25;
    p->box_refine = 1;
    /* Objects move continuously: a label far from where the object's motion puts it is a
     * look-alike or background it left, not the object. The margin around the predicted box is
     * small (0.15 of its larger side, plus twice the filter's uncertainty and, for an object no
     * other is near, how far its mask has been reaching beyond its box): on the crossing set a
     * margin of the whole side lets labels pass between people who walk side by side
     * (docs/TRACKING.md, "Motion gate"). */
    p->gate = 0.15f;
    p->gate_min = scale_cells(2, stride);
    /* docs/TRACKING.md, "Objects and their surroundings" and "A fixed camera". */
    p->appearance = 1;
    p->background = 1;
    p->locate = 1;
    p->strays = 1;
    /* On a camera looking down at the ground, of two people the one whose feet are lower in
     * the image is the nearer: 0.2 of the height keeps people walking side by side, whose feet
     * differ by less, out of it (docs/TRACKING.md, "Who is behind whom"). */
    p->behind = 0.2f;
    if (!tracker || strcmp(tracker, "mast") == 0) {
        /* MAST (Lai et al. 2020), benchmark.py: references {0, 5} long-term and t-1, t-3, t-5
         * short-term, windows of 25x25 cells at stride 4, ROI localisation of references more
         * than 15 frames old with a 25x25 coarse grid dilated up to 4x, hard labels. */
        p->long_every = 5;
        p->long_count = 1;
        p->long_rolling = 0;
        p->short_count = 3;
        p->short_gap = 2;
        p->radius_first = p->radius_long = p->radius_short = scale_cells(12, stride);
        p->roi_age = 16;
        p->roi_radius = scale_cells(12, stride);
        p->roi_dilation = 4;
        p->soft_labels = 0;
        if (realtime) {
            /* One core: fewer and closer references; a rolling long-term memory keeps up with
             * a camera's slow changes; windows cover the same image extent at half size. */
            p->long_every = 25;
            p->long_count = 2;
            p->long_rolling = 1;
            p->short_count = 2;
            p->short_gap = 1;
            p->radius_first = p->radius_long = p->radius_short = scale_cells(6, stride);
            p->roi_radius = scale_cells(6, stride);
        }
    } else if (strcmp(tracker, "colorize") == 0) {
        /* Vondrick et al. 2018: labels are copied from reference frames through a softmax
         * over all positions of each reference (no window); trained with 3 references, so
         * the references are the first frame and the 3 latest frames. */
        p->long_every = 0;
        p->short_count = 3;
        p->short_gap = 1;
        p->radius_first = p->radius_long = p->radius_short = VT_RADIUS_GLOBAL;
        p->roi_age = 0;
        p->roi_radius = 1;
        p->roi_dilation = 1;
        p->soft_labels = 1;
        if (realtime) {
            p->radius_short = scale_cells(6, stride);
        }
    } else {
        return -EINVAL;
    }
    return 0;
}

int vt_tracker_params_set(vt_tracker_params *p, const char *name, const char *value) {
    static const struct {
        const char *name;
        size_t off;
        int is_float;
    } fields[] = {
#define I(f) {#f, offsetof(vt_tracker_params, f), 0}
#define F(f)                                                                                       \
    { #f, offsetof(vt_tracker_params, f), 1 }
        I(proc_short),  I(proc_long_max), I(max_objects), I(max_anchors), I(long_every),
        I(long_count),  I(long_rolling),  I(short_count), I(short_gap),   I(radius_first),
        I(radius_long), I(radius_short),  I(roi_age),     I(roi_radius),  I(roi_dilation),
        I(topk),        F(temperature),   I(soft_labels), I(l2norm),      F(lost_score),
        I(lost_frames), I(box_refine),    F(lost_area),   F(gate),        I(gate_min),
        I(appearance),  I(background),    I(locate),      I(strays),      F(behind),
#undef I
#undef F
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strcmp(fields[i].name, name) != 0)
            continue;
        char *end;
        void *dst = (char *)p + fields[i].off;
        if (fields[i].is_float) {
            double v = strtod(value, &end);
            if (end == value || *end || !isfinite(v))
                return -EINVAL;
            *(float *)dst = (float)v;
        } else if (strncmp(name, "radius_", 7) == 0 && strcmp(value, "global") == 0) {
            *(int *)dst = VT_RADIUS_GLOBAL;
        } else {
            long v = strtol(value, &end, 10);
            if (end == value || *end || v < INT32_MIN || v > INT32_MAX)
                return -EINVAL;
            *(int *)dst = (int)v;
        }
        return 0;
    }
    return -ENOENT;
}

void vt_tracker_params_describe(const vt_tracker_params *p, char *buf, size_t len) {
    char r[3][16];
    const int radii[3] = {p->radius_first, p->radius_long, p->radius_short};
    for (int i = 0; i < 3; i++) {
        if (radii[i] == VT_RADIUS_GLOBAL)
            snprintf(r[i], sizeof r[i], "global");
        else
            snprintf(r[i], sizeof r[i], "%d", radii[i]);
    }
    snprintf(buf, len,
             "processing: short side %d, long side <= %d\n"
             "memory: %d anchors (radius %s), long-term every %d x%d %s (radius %s), "
             "short-term %d gap %d (radius %s)\n"
             "roi: age >= %d, coarse radius %d, dilation <= %d\n"
             "affinity: top-%d, temperature %.3f, %s features, %s labels\n"
             "seen: score >= %.2f and area >= %.2f of the predicted; lost after %d hidden frames; "
             "boxes %s\n"
             "gate: %.2f x box side + 2 sd, at least %d cells; appearance %s; background %s; "
             "locate %s; strays %s; behind: feet lower by %.2f x height\n",
             p->proc_short, p->proc_long_max, p->max_anchors, r[0], p->long_every, p->long_count,
             p->long_rolling ? "rolling" : "first", r[1], p->short_count, p->short_gap, r[2],
             p->roi_age, p->roi_radius, p->roi_dilation, p->topk, p->temperature,
             p->l2norm ? "unit-norm" : "raw", p->soft_labels ? "soft" : "hard", p->lost_score,
             p->lost_area, p->lost_frames, p->box_refine ? "refined into masks" : "taken as masks",
             p->gate, p->gate_min, p->appearance ? "on" : "off", p->background ? "on" : "off",
             p->locate ? "on" : "off", p->strays ? "on" : "off", p->behind);
}

int vtm_tracker_params_check(const vt_tracker_params *p, char *err, size_t errlen) {
#define BAD(cond, field)                                                                           \
    if (cond) {                                                                                    \
        vt_fmt(err, errlen, "tracker parameter %s out of range", field);                           \
        return -EINVAL;                                                                            \
    }
    BAD(p->proc_short < 0 || p->proc_short > 4096, "proc_short");
    BAD(p->proc_long_max < 0 || p->proc_long_max > 8192, "proc_long_max");
    BAD(p->max_objects < 1 || p->max_objects > 254, "max_objects");
    BAD(p->max_anchors < 1 || p->max_anchors > 64, "max_anchors");
    BAD(p->long_every < 0 || p->long_count < 0 || p->long_count > 64, "long_every/long_count");
    BAD(p->short_count < 0 || p->short_count > 64 || p->short_gap < 1 || p->short_gap > 64,
        "short_count/short_gap");
    BAD(p->radius_first < VT_RADIUS_GLOBAL || p->radius_first > 256, "radius_first");
    BAD(p->radius_long < VT_RADIUS_GLOBAL || p->radius_long > 256, "radius_long");
    BAD(p->radius_short < VT_RADIUS_GLOBAL || p->radius_short > 256, "radius_short");
    BAD(p->roi_age < 0 || p->roi_radius < 0 || p->roi_radius > 64 || p->roi_dilation < 1 ||
            p->roi_dilation > 16,
        "roi_age/roi_radius/roi_dilation");
    BAD(p->topk < 0 || p->topk > 4096, "topk");
    BAD(!(p->temperature > 1e-6f) || !(p->temperature < 1e6f), "temperature");
    BAD(!(p->lost_score >= 0.0f) || !(p->lost_score <= 1.0f) || p->lost_frames < 1,
        "lost_score/lost_frames");
    BAD(!(p->lost_area >= 0.0f) || !(p->lost_area <= 1.0f), "lost_area");
    BAD(!(p->gate >= 0.0f) || !(p->gate <= 100.0f) || p->gate_min < 0 || p->gate_min > 4096,
        "gate/gate_min");
    BAD(p->appearance < 0 || p->appearance > 1, "appearance");
    BAD(p->background < 0 || p->background > 1, "background");
    BAD(p->locate < 0 || p->locate > 1, "locate");
    BAD(p->strays < 0 || p->strays > 1, "strays");
    BAD(!(p->behind >= 0.0f) || !(p->behind <= 100.0f), "behind");
#undef BAD
    return 0;
}
