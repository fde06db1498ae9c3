/*
 * The tracker on synthetic video with exact ground truth (synth.h), with the weight-free `lab`
 * features: one object moving and scaling, three objects occluding each other, an object added
 * mid-sequence, a removed object that must never reappear, an object that leaves the frame
 * (lost as it goes; lost with no box at the edge; its box kept on its mask while a look-alike
 * walks in where it left), one covered but for a sliver (lost, then recovered), a look-alike
 * walking into the place the object held on the first frame (the motion gate), a person under 3
 * cells wide sized by the ground plane beside a twin its mask takes, shapes rasterised exactly, API
 * errors, and no heap allocation per step after warm-up (malloc/calloc/realloc are wrapped by the
 * linker for this test, see meson.build).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testmain.h"
#include "synth.h"
#include "vt_model.h"

/* ---- allocation counter (ld --wrap) ---- */
#include "alloc_count.h"

static vt_model *model;

static void setup(void) {
    char err[256];
    ck_assert_msg(vt_model_new("lab", 0, &model, err, sizeof err) == 0, "%s", err);
}

static void teardown(void) {
    vt_model_free(&model);
}

static vt_tracker *make_tracker_refine(const char *preset, int box_refine) {
    vt_tracker_params p;
    ck_assert_int_eq(vt_tracker_params_preset(&p, preset, "accurate", model), 0);
    p.box_refine = box_refine;
    /* VT_TEST_PARAMS="name=value,..." overrides parameters, to explore failures by hand. */
    const char *env = getenv("VT_TEST_PARAMS");
    if (env) {
        char buf[256], *save = NULL;
        snprintf(buf, sizeof buf, "%s", env);
        for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (eq) {
                *eq = 0;
                ck_assert_int_eq(vt_tracker_params_set(&p, kv, eq + 1), 0);
            }
        }
    }
    vt_tracker *t = NULL;
    char err[256];
    ck_assert_msg(vt_tracker_new(model, &p, &t, err, sizeof err) == 0, "%s", err);
    return t;
}

static vt_tracker *make_tracker(const char *preset) {
    return make_tracker_refine(preset, 1);
}

static double iou(const uint8_t *a, const uint8_t *b, size_t n) {
    size_t i_ = 0, u = 0;
    for (size_t i = 0; i < n; i++) {
        i_ += a[i] && b[i];
        u += a[i] || b[i];
    }
    return u ? (double)i_ / u : 1.0;
}

static const vt_object_result *find(const vt_track_result *r, uint32_t id) {
    for (int i = 0; i < r->n_objects; i++)
        if (r->objects[i].id == id)
            return &r->objects[i];
    return NULL;
}

/* Object o's exact bounding box on frame f, as a box shape. */
static vt_shape synth_box(const synth_obj *o, int f) {
    const double g = pow(o->grow, f);
    double cx, cy;
    synth_centre(o, f, &cx, &cy);
    return (vt_shape){.kind = VT_SHAPE_BOX,
                      .box = {(float)(cx - o->rx * g), (float)(cy - o->ry * g),
                              (float)(2 * o->rx * g), (float)(2 * o->ry * g)}};
}

/*
 * One step of a scene whose first object is given by its box on frame 0 (as id 1): frame f of
 * `s` is rendered into rgb and gt (s->w x s->h) and tracked. Returns that object's result, which
 * is printed, after `tag`, when VT_TEST_VERBOSE is set.
 */
static const vt_object_result *step_first_boxed(vt_tracker *t, const synth *s, int f, uint8_t *rgb,
                                                uint8_t *gt, const char *tag) {
    synth_render(s, f, rgb, gt);
    if (f == 0) {
        const vt_shape sh = synth_box(&s->obj[0], 0);
        ck_assert_int_eq(vt_tracker_add_object(t, 1, NULL, &sh, NULL, 0), 0);
    }
    const vt_image img = {.w = s->w, .h = s->h, .linesize = s->w * 3, .rgb = rgb};
    const vt_track_result *r;
    ck_assert_int_eq(vt_tracker_step(t, &img, NULL, &r), 0);
    ck_assert_int_eq(r->n_objects, 1);
    const vt_object_result *o = &r->objects[0];
    if (getenv("VT_TEST_VERBOSE"))
        printf("%s frame %d: state %d box %d %d %d %d area %lld\n", tag, f, o->state, o->bbox[0],
               o->bbox[1], o->bbox[2], o->bbox[3], (long long)o->area);
    return o;
}

/*
 * Track `s` for `frames` frames, giving object k's ground-truth mask on frame add_at[k] (or its
 * box when as_box[k]), removing it on frame remove_at[k] (-1 never). Returns per-object mean
 * IoU over the frames after it was added (and before it was removed / while it exists).
 */
static void run(synth *s, const char *preset, int frames, const int *add_at, const int *as_box,
                const int *remove_at, double *mean_iou) {
    vt_tracker *t = make_tracker(preset);
    const int w = s->w, h = s->h;
    uint8_t *rgb = malloc((size_t)w * h * 3), *gt = malloc((size_t)w * h);
    uint8_t *objgt = malloc((size_t)w * h);
    double sum[SYNTH_MAX] = {0};
    int cnt[SYNTH_MAX] = {0};
    for (int f = 0; f < frames; f++) {
        synth_render(s, f, rgb, gt);
        for (int k = 0; k < s->nobj; k++) {
            if (add_at[k] == f) {
                vt_shape sh = {.kind = VT_SHAPE_LABELS, .w = w, .h = h, .data = gt, .index = k + 1};
                if (as_box && as_box[k])
                    sh = synth_box(&s->obj[k], f);
                char err[128];
                ck_assert_msg(
                    vt_tracker_add_object(t, (uint32_t)k + 1, "obj", &sh, err, sizeof err) == 0,
                    "%s", err);
            }
            if (remove_at && remove_at[k] == f)
                ck_assert_int_eq(vt_tracker_remove_object(t, (uint32_t)k + 1), 0);
        }
        vt_image img = {.w = w, .h = h, .linesize = w * 3, .rgb = rgb};
        const vt_track_result *r;
        ck_assert_int_eq(vt_tracker_step(t, &img, NULL, &r), 0);
        ck_assert_int_eq(r->frame, f);
        if (getenv("VT_TEST_DUMP")) {
            /* frame | ground truth | prediction, as a PPM for eyeballing failures */
            char path[256];
            snprintf(path, sizeof path, "%s/%s-%d-%d-%02d.ppm", getenv("VT_TEST_DUMP"), preset,
                     s->nobj, frames, f);
            FILE *fp = fopen(path, "wb");
            if (fp) {
                static const uint8_t pal[5][3] = {
                    {0, 0, 0}, {255, 0, 0}, {0, 0, 255}, {0, 255, 0}, {255, 255, 0}};
                fprintf(fp, "P6 %d %d 255\n", 3 * w, h);
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < 3 * w; x++) {
                        size_t i = (size_t)y * w + x % w;
                        int v = x < w ? -1
                                : x < 2 * w
                                    ? gt[i]
                                    : (r->labels[i] ? (int)r->objects[r->labels[i] - 1].id : 0);
                        fwrite(v < 0 ? rgb + 3 * i : pal[v % 5], 1, 3, fp);
                    }
                fclose(fp);
            }
        }
        for (int k = 0; k < s->nobj; k++) {
            const vt_object_result *o = find(r, (uint32_t)k + 1);
            int alive = f >= add_at[k] && add_at[k] >= 0 &&
                        !(remove_at && remove_at[k] >= 0 && f >= remove_at[k]);
            if (!alive) {
                ck_assert_msg(o == NULL, "object %d reported on frame %d", k + 1, f);
                /* and none of its pixels: every label value maps to a reported object */
                for (size_t i = 0; i < (size_t)w * h; i++)
                    ck_assert_int_le(r->labels[i], r->n_objects);
                continue;
            }
            ck_assert_ptr_nonnull(o);
            if (f == add_at[k])
                ck_assert_int_eq(o->event, VT_OBJECT_EVENT_ADDED);
            for (size_t i = 0; i < (size_t)w * h; i++)
                objgt[i] = gt[i] == k + 1;
            double j = iou(o->mask, objgt, (size_t)w * h);
            if (f > add_at[k]) {
                sum[k] += j;
                cnt[k]++;
            }
            if (getenv("VT_TEST_VERBOSE"))
                printf("frame %d object %d IoU %.3f area %lld score %.2f state %d\n", f, k + 1, j,
                       (long long)o->area, o->score, o->state);
            /* the label map and the object's mask agree */
            int ri = (int)(o - r->objects) + 1;
            for (size_t i = 0; i < (size_t)w * h; i += 97)
                ck_assert_int_eq(o->mask[i], r->labels[i] == ri);
        }
    }
    for (int k = 0; k < s->nobj; k++)
        mean_iou[k] = cnt[k] ? sum[k] / cnt[k] : 0.0;
    free(rgb), free(gt), free(objgt);
    vt_tracker_free(&t);
    ck_assert_ptr_null(t);
}

static const uint8_t RED[3] = {220, 40, 40}, ORANGE[3] = {250, 150, 30};
static const uint8_t BLUE[3] = {40, 60, 230}, CYAN[3] = {40, 200, 230};
static const uint8_t GREEN[3] = {40, 200, 60}, YELLOW[3] = {230, 230, 40};

START_TEST(test_one_object) {
    synth s;
    synth_init(&s, 320, 240, 7);
    synth_add(&s, 1, 80, 100, 3.0, 1.0, 30, 24, 1.008, RED, ORANGE, 1);
    int add[1] = {0};
    double m[1];
    run(&s, _i ? "colorize" : "mast", 40, add, NULL, NULL, m);
    printf("one object (%s): mean IoU %.3f\n", _i ? "colorize" : "mast", m[0]);
    ck_assert_msg(m[0] >= 0.85, "mean IoU %.3f < 0.85", m[0]);
    synth_free(&s);
}
END_TEST

START_TEST(test_three_objects_occluding) {
    synth s;
    synth_init(&s, 320, 240, 11);
    /* paths cross around frame 27: each object is partly hidden by the one in front */
    synth_add(&s, 1, 60, 60, 4.0, 1.0, 28, 22, 1.0, RED, ORANGE, 1);
    synth_add(&s, 0, 260, 90, -3.5, 1.0, 24, 30, 1.005, BLUE, CYAN, 2);
    synth_add(&s, 1, 160, 200, 0.5, -2.5, 26, 20, 0.995, GREEN, YELLOW, 3);
    int add[3] = {0, 0, 0};
    double m[3];
    run(&s, "mast", 40, add, NULL, NULL, m);
    printf("three objects: mean IoU %.3f %.3f %.3f\n", m[0], m[1], m[2]);
    for (int k = 0; k < 3; k++)
        ck_assert_msg(m[k] >= 0.75, "object %d mean IoU %.3f < 0.75", k + 1, m[k]);
    synth_free(&s);
}
END_TEST

START_TEST(test_added_mid_sequence_and_removed) {
    synth s;
    synth_init(&s, 320, 240, 5);
    synth_add(&s, 1, 70, 70, 2.5, 1.0, 26, 22, 1.0, RED, ORANGE, 1);
    synth_add(&s, 0, 240, 160, -2.0, -1.0, 26, 20, 1.0, BLUE, CYAN, 2); /* given by its box */
    synth_add(&s, 1, 160, 60, 0.0, 2.0, 20, 20, 1.0, GREEN, YELLOW, 3);
    int add[3] = {0, 10, 0}, box[3] = {0, 1, 0}, rem[3] = {-1, -1, 20};
    double m[3];
    run(&s, "mast", 36, add, box, rem, m);
    printf("added at 10: mean IoU %.3f; others %.3f %.3f\n", m[1], m[0], m[2]);
    ck_assert_msg(m[1] >= 0.75, "object added mid-sequence: mean IoU %.3f", m[1]);
    ck_assert_msg(m[0] >= 0.75, "object 1: mean IoU %.3f", m[0]);
    synth_free(&s);
}
END_TEST

/* A mast/accurate tracker with one parameter changed. */
static vt_tracker *mast_with(const char *name, float value) {
    vt_tracker_params p;
    char v[32], err[256];
    ck_assert_int_eq(vt_tracker_params_preset(&p, "mast", "accurate", model), 0);
    snprintf(v, sizeof v, "%g", value);
    ck_assert_int_eq(vt_tracker_params_set(&p, name, v), 0);
    vt_tracker *t = NULL;
    ck_assert_msg(vt_tracker_new(model, &p, &t, err, sizeof err) == 0, "%s", err);
    return t;
}

/* Render frame f of `s` into rgb/gt, give object 1 (gt == 1, copied to m1) on frame 0, step;
 * returns object 1's result. */
static const vt_object_result *step_object1(vt_tracker *t, synth *s, int f, uint8_t *rgb,
                                            uint8_t *gt, uint8_t *m1) {
    const int w = s->w, h = s->h;
    synth_render(s, f, rgb, gt);
    if (f == 0) {
        for (int i = 0; i < w * h; i++)
            m1[i] = gt[i] == 1;
        vt_shape sh = {.kind = VT_SHAPE_MASK, .w = w, .h = h, .data = m1};
        ck_assert_int_eq(vt_tracker_add_object(t, 1, NULL, &sh, NULL, 0), 0);
    }
    vt_image img = {.w = w, .h = h, .linesize = w * 3, .rgb = rgb};
    const vt_track_result *r;
    ck_assert_int_eq(vt_tracker_step(t, &img, NULL, &r), 0);
    return &r->objects[0];
}

/* Render frame f of `s` into rgb/gt, give objects 1 and 2 by their masks on frame 0 (m is
 * scratch of w*h bytes), and step. */
static const vt_track_result *step_two(vt_tracker *t, const synth *s, int f, uint8_t *rgb,
                                       uint8_t *gt, uint8_t *m) {
    const int w = s->w, h = s->h;
    synth_render(s, f, rgb, gt);
    if (f == 0) {
        for (uint32_t id = 1; id <= 2; id++) {
            for (int i = 0; i < w * h; i++)
                m[i] = gt[i] == id;
            vt_shape sh = {.kind = VT_SHAPE_MASK, .w = w, .h = h, .data = m};
            ck_assert_int_eq(vt_tracker_add_object(t, id, NULL, &sh, NULL, 0), 0);
        }
    }
    vt_image img = {.w = w, .h = h, .linesize = w * 3, .rgb = rgb};
    const vt_track_result *r;
    ck_assert_int_eq(vt_tracker_step(t, &img, NULL, &r), 0);
    return r;
}

/* Box IoU of x, y, w, h boxes. */
static double box_iou(const int a[4], const double b[4]) {
    double x0 = a[0] > b[0] ? a[0] : b[0], y0 = a[1] > b[1] ? a[1] : b[1];
    double x1 = a[0] + a[2] < b[0] + b[2] ? a[0] + a[2] : b[0] + b[2];
    double y1 = a[1] + a[3] < b[1] + b[3] ? a[1] + a[3] : b[1] + b[3];
    double i = x1 > x0 && y1 > y0 ? (x1 - x0) * (y1 - y0) : 0;
    double u = (double)a[2] * a[3] + b[2] * b[3] - i;
    return u > 0 ? i / u : 0;
}

/* What happened to object 1 while it was hidden. */
typedef struct hidden_run {
    int occluded_at, recovered_at, lost_at; /* first frame of each event, -1: none */
    int min_area;                           /* smallest mask while covered */
    double box_iou_hidden;                  /* worst box IoU with the truth while covered */
} hidden_run;

/* Tracks object 1 while an untracked rectangle slides over it, leaving visible only a sliver
 * (a few percent of its area) for frames 21..31, then uncovers it. */
static void run_occlusion(float lost_area, hidden_run *h) {
    synth s;
    synth_init(&s, 240, 160, 5);
    /* object 1: still ellipse, rows 62..98; object 2: rectangle over rows 40..94, moving right
     * at 6 px/frame, covering columns 82..118 from frame 21 to frame 31 */
    synth_add(&s, 1, 100, 80, 0.0, 0.0, 18, 18, 1.0, RED, ORANGE, 1);
    synth_add(&s, 0, -60, 67, 6.0, 0.0, 50, 27, 1.0, BLUE, CYAN, 2);
    vt_tracker *t = mast_with("lost_area", lost_area);
    uint8_t *rgb = malloc(240 * 160 * 3), *gt = malloc(240 * 160), *m1 = malloc(240 * 160);
    h->occluded_at = h->recovered_at = h->lost_at = -1;
    h->min_area = 240 * 160;
    h->box_iou_hidden = 1.0;
    const double truth[4] = {82, 62, 36, 36};
    for (int f = 0; f < 50; f++) {
        const vt_object_result *o = step_object1(t, &s, f, rgb, gt, m1);
        ck_assert_uint_eq(o->id, 1);
        if (o->event == VT_OBJECT_EVENT_OCCLUDED && h->occluded_at < 0)
            h->occluded_at = f;
        if (o->event == VT_OBJECT_EVENT_RECOVERED && h->recovered_at < 0)
            h->recovered_at = f;
        if (o->event == VT_OBJECT_EVENT_LOST && h->lost_at < 0)
            h->lost_at = f;
        if (f >= 21 && f <= 31) {
            if ((int)o->area < h->min_area)
                h->min_area = (int)o->area;
            double j = box_iou(o->bbox, truth);
            if (j < h->box_iou_hidden)
                h->box_iou_hidden = j;
        }
    }
    free(rgb), free(gt), free(m1);
    vt_tracker_free(&t);
    synth_free(&s);
}

START_TEST(test_occluded_then_recovered) {
    /* The tracker keeps the visible sliver (a non-empty mask with a confident score): only the
     * collapse of its area against what its predicted box should show (1018 px for an ellipse
     * of radius 18) says the object is hidden. While hidden it keeps its id and its box (the
     * predicted one, where the ellipse stands); it is never lost, and comes back. */
    hidden_run h;
    run_occlusion(0.1f, &h);
    ck_assert_msg(h.min_area < 102, "smallest area while covered: %d", h.min_area);
    ck_assert_msg(h.occluded_at >= 21 && h.occluded_at <= 26, "occluded at frame %d",
                  h.occluded_at);
    ck_assert_msg(h.recovered_at >= 31 && h.recovered_at <= 36, "recovered at frame %d",
                  h.recovered_at);
    ck_assert_msg(h.lost_at < 0, "lost at frame %d", h.lost_at);
    /* the predicted box stays on the ellipse (the sliver drags it a little) */
    ck_assert_msg(h.box_iou_hidden >= 0.15, "box IoU while hidden %.2f", h.box_iou_hidden);
    /* without the area criterion nothing is hidden: the test depends on it */
    run_occlusion(0.0f, &h);
    ck_assert_msg(h.occluded_at < 0, "occluded at frame %d without lost_area", h.occluded_at);
}
END_TEST

/*
 * Object 1: a disc of radius 14 at y 80, x = 60 + 2f; object 2: an 88x68 rectangle at y 80,
 * x = 260 - 2f, in front. The disc is hidden while |x1 - x2| <= 44 - 14 = 30, that is 200 - 4f
 * in [-30, 30]: frames 43..57, 15 frames; it is whole again from frame 65 (200 - 4f <= -58).
 */
static void behind_square_scene(synth *s) {
    synth_init(s, 320, 160, 13);
    synth_add(s, 1, 60, 80, 2.0, 0.0, 14, 14, 1.0, RED, ORANGE, 1);
    synth_add(s, 0, 260, 80, -2.0, 0.0, 44, 34, 1.0, BLUE, CYAN, 2);
}

/* Box IoU of a with object o's exact box on frame f. */
static double synth_box_iou(const int a[4], const synth_obj *o, int f) {
    const vt_shape sh = synth_box(o, f);
    const double b[4] = {sh.box[0], sh.box[1], sh.box[2], sh.box[3]};
    return box_iou(a, b);
}

/*
 * Two tracked objects: object 1 walks right and passes behind object 2, a larger rectangle
 * walking left, which hides it completely for 15 frames. Object 1 must be reported occluded
 * (with a box where it is), come back with its id, and be followed after; object 2 must not
 * take its place.
 */
START_TEST(test_hidden_behind_another) {
    synth s;
    /* The disc must be back by frame 65, and followed after. */
    behind_square_scene(&s);
    vt_tracker *t = make_tracker("mast");
    const int w = 320, hh = 160;
    uint8_t *rgb = malloc((size_t)w * hh * 3), *gt = malloc((size_t)w * hh);
    uint8_t *m = malloc((size_t)w * hh);
    int occluded_at = -1, recovered_at = -1, lost = 0;
    double after = 0, after2 = 0;
    int n_after = 0;
    for (int f = 0; f < 75; f++) {
        const vt_track_result *r = step_two(t, &s, f, rgb, gt, m);
        const vt_object_result *o1 = find(r, 1), *o2 = find(r, 2);
        ck_assert_ptr_nonnull(o1);
        ck_assert_ptr_nonnull(o2);
        if (o1->event == VT_OBJECT_EVENT_OCCLUDED && occluded_at < 0)
            occluded_at = f;
        if (o1->event == VT_OBJECT_EVENT_RECOVERED && recovered_at < 0)
            recovered_at = f;
        lost |= o1->state == VT_OBJECT_LOST || o2->state == VT_OBJECT_LOST;
        if (f >= 46 && f <= 54) {
            /* hidden: the predicted box goes on behind the square, over the disc */
            const double j = synth_box_iou(o1->bbox, &s.obj[0], f);
            ck_assert_msg(j >= 0.1, "frame %d: box IoU %.2f", f, j);
        }
        if (f >= 66) {
            for (int i = 0; i < w * hh; i++)
                m[i] = gt[i] == 1;
            after += iou(o1->mask, m, (size_t)w * hh);
            for (int i = 0; i < w * hh; i++)
                m[i] = gt[i] == 2;
            after2 += iou(o2->mask, m, (size_t)w * hh);
            n_after++;
        }
    }
    after /= n_after, after2 /= n_after;
    printf("hidden behind another: occluded at %d, recovered at %d, IoU after %.3f (the "
           "other %.3f)\n",
           occluded_at, recovered_at, after, after2);
    ck_assert_msg(occluded_at >= 40 && occluded_at <= 48, "occluded at frame %d", occluded_at);
    ck_assert_msg(recovered_at >= 55 && recovered_at <= 65, "recovered at frame %d", recovered_at);
    ck_assert_msg(!lost, "an object was lost");
    /* Followed after: 0.65 since the banks learn only while clear of other objects (not while
     * the square is within half the disc's size of it, frames 32-68); over 0.7 before. A disc
     * lost or carried off by the square scores near 0. */
    ck_assert_msg(after >= 0.6, "object 1 after it came back: mean IoU %.3f", after);
    ck_assert_msg(after2 >= 0.7, "object 2 after: mean IoU %.3f", after2);
    free(rgb), free(gt), free(m);
    vt_tracker_free(&t);
    synth_free(&s);
}
END_TEST

/*
 * Two identical objects cross: both discs have the same colours and texture, one walks right on
 * row 70, the other left on row 90, the second in front where they overlap (frames 17..33).
 * Each keeps its identity: after the crossing object 1 is on the disc walking right.
 */
START_TEST(test_identical_objects_crossing) {
    synth s;
    synth_init(&s, 320, 160, 17);
    synth_add(&s, 1, 60, 70, 4.0, 0.0, 16, 16, 1.0, RED, ORANGE, 1);
    synth_add(&s, 1, 260, 90, -4.0, 0.0, 16, 16, 1.0, RED, ORANGE, 2);
    int add[2] = {0, 0};
    double m[2];
    /* the run's per-frame checks compare each id with its own disc */
    run(&s, "mast", 50, add, NULL, NULL, m);
    printf("identical objects crossing: mean IoU %.3f %.3f\n", m[0], m[1]);
    ck_assert_msg(m[0] >= 0.7 && m[1] >= 0.7, "mean IoU %.3f %.3f", m[0], m[1]);
    synth_free(&s);
}
END_TEST

/*
 * Who is behind whom: object 1, a disc far from the camera (its bottom at row 82), walks right
 * at 1.5 px/frame; object 2, the same colours and texture but nearer (larger, its bottom at row
 * 104, drawn in front), walks right at 4 px/frame and overtakes it, hiding most of it on frames
 * 22..42. Returns the worst and the mean IoU of object 1's box with its disc's from frame 20 on
 * (through the overtaking and after it).
 */
static void run_overtaken(float behind, double *worst, double *mean) {
    synth s;
    synth_init(&s, 320, 160, 23);
    synth_add(&s, 1, 100, 70, 1.5, 0.0, 12, 12, 1.0, RED, ORANGE, 1);
    synth_add(&s, 1, 20, 84, 4.0, 0.0, 20, 20, 1.0, RED, ORANGE, 2);
    vt_tracker *t = mast_with("behind", behind);
    const int w = 320, hh = 160;
    uint8_t *rgb = malloc((size_t)w * hh * 3), *gt = malloc((size_t)w * hh);
    uint8_t *m = malloc((size_t)w * hh);
    *worst = 1.0, *mean = 0.0;
    int n = 0;
    for (int f = 0; f < 64; f++) {
        const vt_track_result *r = step_two(t, &s, f, rgb, gt, m);
        const vt_object_result *o1 = find(r, 1);
        ck_assert_ptr_nonnull(o1);
        if (f >= 20) {
            const double truth[4] = {100 + 1.5 * f - 12, 58, 24, 24};
            const double j = box_iou(o1->bbox, truth);
            if (getenv("VT_TEST_VERBOSE"))
                printf("behind %.2f frame %d: box %d %d %d %d IoU %.2f state %d\n", behind, f,
                       o1->bbox[0], o1->bbox[1], o1->bbox[2], o1->bbox[3], j, o1->state);
            *worst = j < *worst ? j : *worst;
            *mean += j;
            n++;
        }
    }
    *mean /= n;
    free(rgb), free(gt), free(m);
    vt_tracker_free(&t);
    synth_free(&s);
}

START_TEST(test_overtaken_behind) {
    /* With the depth order the far disc's box goes on at its own pace while the near one passes
     * in front of it; without it, the near disc (which looks the same) carries the far one's
     * box away, and the test depends on that. */
    double worst, mean, worst0, mean0;
    run_overtaken(0.2f, &worst, &mean);
    run_overtaken(0.0f, &worst0, &mean0);
    printf("overtaken: box IoU of the one behind: worst %.2f mean %.2f with the depth order, "
           "worst %.2f mean %.2f without\n",
           worst, mean, worst0, mean0);
    ck_assert_msg(worst >= 0.5 && mean >= 0.7, "with the depth order: worst %.2f mean %.2f", worst,
                  mean);
    ck_assert_msg(worst0 < 0.3, "without the depth order: worst %.2f", worst0);
}
END_TEST

/*
 * An object that walks out of the frame is lost as it goes: never reported hidden (occluded),
 * and never tracked with no box. Before, it stayed tracked for the frame of grace a tracked
 * object has (its predicted box already outside the frame: no box), then occluded for a frame.
 */
START_TEST(test_lost_when_leaving) {
    synth s;
    synth_init(&s, 240, 160, 3);
    /* moves right at 8 px/frame and leaves the frame around frame 22 */
    synth_add(&s, 1, 60, 80, 8.0, 0.0, 20, 20, 1.0, RED, ORANGE, 1);
    vt_tracker *t = make_tracker("mast");
    uint8_t *rgb = malloc(240 * 160 * 3), *gt = malloc(240 * 160);
    int lost_at = -1, n_lost_events = 0, no_box = 0, occluded = 0;
    for (int f = 0; f < 40; f++) {
        synth_render(&s, f, rgb, gt);
        if (f == 0) {
            vt_shape sh = {.kind = VT_SHAPE_MASK, .w = 240, .h = 160, .data = gt};
            ck_assert_int_eq(vt_tracker_add_object(t, 9, NULL, &sh, NULL, 0), 0);
        }
        vt_image img = {.w = 240, .h = 160, .linesize = 240 * 3, .rgb = rgb};
        const vt_track_result *r;
        ck_assert_int_eq(vt_tracker_step(t, &img, NULL, &r), 0);
        ck_assert_int_eq(r->n_objects, 1);
        const vt_object_result *o = &r->objects[0];
        if (o->event == VT_OBJECT_EVENT_LOST) {
            n_lost_events++;
            lost_at = f;
        }
        if (f < 15)
            ck_assert_int_eq(o->state, VT_OBJECT_TRACKING);
        no_box += o->state != VT_OBJECT_LOST && o->bbox[2] == 0;
        occluded += o->state == VT_OBJECT_OCCLUDED;
        if (getenv("VT_TEST_VERBOSE"))
            printf("leaving frame %d: state %d box %d %d %d %d\n", f, o->state, o->bbox[0],
                   o->bbox[1], o->bbox[2], o->bbox[3]);
    }
    printf("leaving: lost at frame %d; %d frames not lost without a box, %d occluded\n", lost_at,
           no_box, occluded);
    ck_assert_int_eq(n_lost_events, 1);
    ck_assert_int_eq(no_box, 0);
    ck_assert_int_eq(occluded, 0);
    ck_assert_msg(lost_at >= 20 && lost_at <= 32, "lost at frame %d", lost_at);
    free(rgb), free(gt);
    vt_tracker_free(&t);
    synth_free(&s);
}
END_TEST

/*
 * An object walks out at the left edge, stands there mostly outside the frame for a while (its
 * filter comes to rest with its centre just outside), then goes (steps through a door, say).
 * Lost with its predicted centre outside the frame, it reports no box: the part of that box
 * still inside is a sliver along the edge where nothing is (the demo's woman 3 kept one at
 * x = 0 for the rest of the video).
 */
START_TEST(test_lost_at_edge_no_box) {
    synth s;
    synth_init(&s, 240, 160, 3);
    synth_add(&s, 1, 40, 80, -1.0, 0.0, 8, 20, 1.0, RED, ORANGE, 1);
    s.obj[0].stop = 42; /* from here its centre is at x = -2: 6 columns show */
    s.obj[0].last = 54;
    vt_tracker *t = make_tracker("mast");
    uint8_t *rgb = malloc(240 * 160 * 3), *gt = malloc(240 * 160);
    int lost_at = -1, boxes_while_lost = 0, boxes_at_edge = 0;
    for (int f = 0; f < 80; f++) {
        const vt_object_result *o = step_first_boxed(t, &s, f, rgb, gt, "edge");
        const synth_obj *so = &s.obj[0];
        if (f > so->stop && f <= so->last) /* standing at the edge, 6 columns in the frame */
            boxes_at_edge += o->state == VT_OBJECT_TRACKING && o->bbox[0] == 0 && o->bbox[2] >= 3 &&
                             o->bbox[2] <= 9;
        if (f <= so->last)
            continue;
        if (o->state == VT_OBJECT_LOST && lost_at < 0)
            lost_at = f;
        if (o->state == VT_OBJECT_LOST)
            boxes_while_lost += o->bbox[2] > 0 && o->bbox[3] > 0;
    }
    printf("left at the edge: tracked with its box on %d of its 12 frames there, lost at frame "
           "%d, %d frames with a box while lost\n",
           boxes_at_edge, lost_at, boxes_while_lost);
    ck_assert_int_eq(boxes_at_edge, 12);
    ck_assert_msg(lost_at >= 55 && lost_at <= 60, "lost at frame %d", lost_at);
    ck_assert_int_eq(boxes_while_lost, 0);
    free(rgb), free(gt);
    vt_tracker_free(&t);
    synth_free(&s);
}
END_TEST

/*
 * An object walks out of the frame on the left at 1.5 px a frame while a look-alike nobody
 * registered walks in there at 3 (frame 50 on): the object's label passes to the newcomer, as
 * the propagation does between look-alikes. Whatever it follows, on every frame it is reported
 * seen (tracking or recovered) it must have a box, and once its mask is clear of the edge
 * (after 3 frames to catch up) that box must hold at least half of it. Its template was
 * dropped at the edge (re-learnt on a box mostly outside the frame, it kept no weight), and the
 * tracker went on believing the template placed it: the mask no longer moved its box, which
 * walked out of the frame on its old velocity while the mask, 1000 pixels, stayed inside (27
 * frames tracked with no box at all).
 */
START_TEST(test_box_holds_mask_at_edge) {
    synth s;
    synth_init(&s, 320, 240, 5);
    synth_add(&s, 1, 80, 110, -1.5, 0.0, 10, 20, 1.0, RED, ORANGE, 1);
    synth_add(&s, 1, -12 - 3.0 * 50, 125, 3.0, 0.0, 12, 24, 1.0, RED, ORANGE, 2);
    s.obj[1].first = 50;
    vt_tracker *t = make_tracker("mast");
    uint8_t *rgb = malloc(320 * 240 * 3), *gt = malloc(320 * 240);
    int seen = 0, no_box = 0, clear = 0, under_half = 0;
    for (int f = 0; f < 100; f++) {
        const vt_object_result *o = step_first_boxed(t, &s, f, rgb, gt, "mask at edge");
        if ((o->state != VT_OBJECT_TRACKING && o->state != VT_OBJECT_RECOVERED) || o->area < 50)
            continue;
        int64_t in = 0, all = 0;
        int x_min = 320;
        for (int y = 0; y < 240; y++)
            for (int x = 0; x < 320; x++) {
                if (!o->mask[y * 320 + x])
                    continue;
                all++;
                x_min = x < x_min ? x : x_min;
                in += x >= o->bbox[0] && x < o->bbox[0] + o->bbox[2] && y >= o->bbox[1] &&
                      y < o->bbox[1] + o->bbox[3];
            }
        seen++;
        no_box += o->bbox[2] == 0;
        if (x_min > 0) { /* its mask clear of the frame's edge */
            clear++;
            under_half += 2 * in < all;
        }
    }
    printf("mask at the edge: seen on %d frames, %d of them with no box; its mask clear of the "
           "edge on %d, %d of them with under half of it in the box\n",
           seen, no_box, clear, under_half);
    ck_assert_msg(seen >= 60 && clear >= 30, "seen on %d frames, clear on %d", seen, clear);
    ck_assert_int_eq(no_box, 0);
    /* the first frames clear of the edge: its box was sized by the edge rule and catches up */
    ck_assert_msg(under_half <= 3, "%d frames with under half the mask in the box", under_half);
    free(rgb), free(gt);
    vt_tracker_free(&t);
    synth_free(&s);
}
END_TEST

/*
 * An object walks out on the right (lost as it goes), and a look-alike nobody registered comes
 * to stand in the middle of the frame. The one that left must not come back on it: it has left,
 * and what its label still finds in the frame is the propagation's on a look-alike, far from the
 * edge where it went. Its gate is no guard by then: the filter's uncertainty grows while it is
 * not seen until the gate covers the frame (KITTI-17's person 1, gone for 55 frames, came back
 * that way on person 8, 1200 pixels from its predicted box; docs/RESULTS.md, "A lost object
 * that has left is seen only at the edge"). Seed 3's background: on the old rule it is recovered
 * on the look-alike at frame 95 (on seeds 4 and 5 the propagation gives it too little there).
 * Nor does its label stay there, `lost` as it is: its gate is cut to a band along the edge it
 * left by (before the band: a lost mask of 863 pixels on the look-alike).
 */
START_TEST(test_gone_not_back_inside) {
    synth s;
    synth_init(&s, 240, 160, 3);
    synth_add(&s, 1, 60, 80, 6.0, 0.0, 14, 50, 1.0, RED, ORANGE, 1);
    synth_add(&s, 1, 130, 80, 0.0, 0.0, 14, 50, 1.0, RED, ORANGE, 2);
    s.obj[1].first = 60;
    vt_tracker *t = make_tracker("mast");
    uint8_t *rgb = malloc(240 * 160 * 3), *gt = malloc(240 * 160);
    int lost_at = -1, back = 0, boxes = 0, stray = 0;
    for (int f = 0; f < 120; f++) {
        const vt_object_result *o = step_first_boxed(t, &s, f, rgb, gt, "gone");
        if (o->state == VT_OBJECT_LOST && lost_at < 0)
            lost_at = f;
        if (lost_at < 0)
            continue;
        back += o->state != VT_OBJECT_LOST;
        boxes += o->bbox[2] > 0;
        /* its mask more than 80 pixels (nearly three of its widths) from the right edge */
        int n = 0;
        for (int y = 0; y < 160; y++)
            for (int x = 0; x < 240 - 80; x++)
                n += o->mask[y * 240 + x] != 0;
        stray = n > stray ? n : stray;
    }
    printf("gone: lost at frame %d; after that %d frames not lost, %d with a box, at most %d mask "
           "pixels away from the edge\n",
           lost_at, back, boxes, stray);
    ck_assert_msg(lost_at >= 28 && lost_at <= 36, "lost at frame %d", lost_at);
    ck_assert_int_eq(back, 0);
    ck_assert_int_eq(boxes, 0);
    ck_assert_int_eq(stray, 0);
    free(rgb), free(gt);
    vt_tracker_free(&t);
    synth_free(&s);
}
END_TEST

/* A mast/accurate tracker with several parameters changed ("name=value" strings). */
static vt_tracker *mast_with_all(const char *const *kv, int n) {
    vt_tracker_params p;
    char err[256];
    ck_assert_int_eq(vt_tracker_params_preset(&p, "mast", "accurate", model), 0);
    for (int i = 0; i < n; i++) {
        char name[64];
        const char *eq = strchr(kv[i], '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq - kv[i]), kv[i]);
        ck_assert_int_eq(vt_tracker_params_set(&p, name, eq + 1), 0);
    }
    vt_tracker *t = NULL;
    ck_assert_msg(vt_tracker_new(model, &p, &t, err, sizeof err) == 0, "%s", err);
    return t;
}

/*
 * behind_square_scene with lost_frames = 5: the disc, hidden from frame 43 to 57, is lost while
 * still behind the square. A lost object keeps its predicted box (where it
 * is still looked for), which goes on over the hidden disc at its pace; it used to have no box,
 * or the box of a few stray pixels. It still comes back with its id.
 */
START_TEST(test_lost_keeps_predicted_box) {
    synth s;
    behind_square_scene(&s);
    const char *kv[] = {"lost_frames=5"};
    vt_tracker *t = mast_with_all(kv, 1);
    const int w = 320, hh = 160;
    uint8_t *rgb = malloc((size_t)w * hh * 3), *gt = malloc((size_t)w * hh);
    uint8_t *m = malloc((size_t)w * hh);
    int lost_at = -1, recovered_at = -1, n_lost = 0;
    double worst = 1.0;
    for (int f = 0; f < 75; f++) {
        const vt_track_result *r = step_two(t, &s, f, rgb, gt, m);
        const vt_object_result *o1 = find(r, 1);
        ck_assert_ptr_nonnull(o1);
        if (o1->event == VT_OBJECT_EVENT_LOST && lost_at < 0)
            lost_at = f;
        if (o1->event == VT_OBJECT_EVENT_RECOVERED && lost_at >= 0 && recovered_at < 0)
            recovered_at = f;
        if (o1->state == VT_OBJECT_LOST) {
            const double j = synth_box_iou(o1->bbox, &s.obj[0], f);
            worst = j < worst ? j : worst;
            n_lost++;
        }
    }
    printf("lost behind another: lost at %d for %d frames, recovered at %d, worst box IoU %.2f\n",
           lost_at, n_lost, recovered_at, worst);
    ck_assert_msg(lost_at >= 46 && lost_at <= 54 && n_lost >= 3, "lost at frame %d, %d frames",
                  lost_at, n_lost);
    /* The prediction of a disc moving at a constant 2 px/frame: the same bound as the hidden
     * frames in test_hidden_behind_another (the mask's last slivers drag it a little). */
    ck_assert_msg(worst >= 0.1, "box IoU while lost %.2f", worst);
    ck_assert_msg(recovered_at >= 55 && recovered_at <= 65, "recovered at frame %d", recovered_at);
    free(rgb), free(gt), free(m);
    vt_tracker_free(&t);
    synth_free(&s);
}
END_TEST

/* Object 1 walks right at 4 px/frame; an untracked object that looks the same follows 100 px
 * behind and, from frame 25 on, stands where object 1 stood on the first frame (the anchor's
 * labelled place). Returns the largest number of object 1's pixels on the look-alike. */
static int run_lookalike(const char *const *kv, int n) {
    synth s;
    synth_init(&s, 320, 120, 11);
    synth_add(&s, 1, 60, 60, 4.0, 0.0, 16, 16, 1.0, RED, ORANGE, 1);
    synth_add(&s, 1, -40, 60, 4.0, 0.0, 16, 16, 1.0, RED, ORANGE, 1);
    vt_tracker *t = mast_with_all(kv, n);
    uint8_t *rgb = malloc(320 * 120 * 3), *gt = malloc(320 * 120), *m1 = malloc(320 * 120);
    int worst = 0;
    for (int f = 0; f < 45; f++) {
        const vt_object_result *o = step_object1(t, &s, f, rgb, gt, m1);
        int on2 = 0, on1 = 0;
        for (int i = 0; i < 320 * 120; i++) {
            on2 += o->mask[i] && gt[i] == 2;
            on1 += o->mask[i] && gt[i] == 1;
        }
        if (on2 > worst)
            worst = on2;
        /* the object itself is followed all along, gate or not */
        if (gt[60 * 320 + (int)(60 + 4.0 * f)] == 1)
            ck_assert_msg(on1 > 400, "frame %d: %d pixels on the object", f, on1);
    }
    free(rgb), free(gt), free(m1);
    vt_tracker_free(&t);
    synth_free(&s);
    return worst;
}

START_TEST(test_lookalike_gated) {
    /* A disc of radius 16 has ~800 pixels. Without the object-level reasoning that can be
     * switched off (the motion gate, the appearance banks, the background model, the template,
     * the stray labels' removal) the first
     * frame's labels make the look-alike object 1 as well (the test depends on them); with the
     * defaults, nothing of it; and the gate alone keeps it off. */
    const char *off[] = {"gate=0", "appearance=0", "background=0", "locate=0", "strays=0"};
    const char *gate_only[] = {"appearance=0", "background=0", "locate=0", "strays=0"};
    int ungated = run_lookalike(off, 5), gated = run_lookalike(NULL, 0);
    int gate_alone = run_lookalike(gate_only, 4);
    printf("look-alike: %d pixels of object 1 on it without the gate, appearance and background "
           "model, %d with the defaults, %d with the gate alone\n",
           ungated, gated, gate_alone);
    ck_assert_msg(ungated > 200, "without them %d pixels on the look-alike", ungated);
    ck_assert_msg(gated == 0, "with the defaults %d pixels on the look-alike", gated);
    ck_assert_msg(gate_alone == 0, "with the gate alone %d pixels on the look-alike", gate_alone);
}
END_TEST

/*
 * Object 1 walks right at 3 px/frame; an untracked object that looks the same walks left at
 * 3 px/frame 10 px lower and passes it around frame 33, touching and overlapping it. Object 1's
 * box must stay on its own disc while they touch and go on with it after they part. (A guard of
 * the behaviour, not of one mechanism: it holds with and without the rule that a mask a third
 * too large teaches neither the template nor the banks, whose gain is measured on the crossing
 * set, docs/RESULTS.md.)
 */
START_TEST(test_passes_untracked_lookalike) {
    synth s;
    synth_init(&s, 320, 140, 29);
    synth_add(&s, 1, 60, 60, 3.0, 0.0, 16, 16, 1.0, RED, ORANGE, 1);
    synth_add(&s, 1, 260, 70, -3.0, 0.0, 16, 16, 1.0, RED, ORANGE, 2);
    vt_tracker *t = make_tracker("mast");
    uint8_t *rgb = malloc(320 * 140 * 3), *gt = malloc(320 * 140), *m1 = malloc(320 * 140);
    double worst = 1.0, mean = 0.0;
    int n = 0;
    for (int f = 0; f < 70; f++) {
        const vt_object_result *o = step_object1(t, &s, f, rgb, gt, m1);
        if (f < 25)
            continue;
        const double truth[4] = {60 + 3.0 * f - 16, 44, 32, 32};
        const double j = box_iou(o->bbox, truth);
        if (getenv("VT_TEST_VERBOSE"))
            printf("passer frame %d: box %d %d %d %d IoU %.2f state %d\n", f, o->bbox[0],
                   o->bbox[1], o->bbox[2], o->bbox[3], j, o->state);
        worst = j < worst ? j : worst;
        mean += j;
        n++;
    }
    mean /= n;
    printf("passes an untracked look-alike: box IoU from frame 25, worst %.2f mean %.2f\n", worst,
           mean);
    ck_assert_msg(worst >= 0.5 && mean >= 0.7, "worst %.2f mean %.2f", worst, mean);
    free(rgb), free(gt), free(m1);
    vt_tracker_free(&t);
    synth_free(&s);
}
END_TEST

/*
 * A person a couple of feature cells wide beside someone nobody registered who looks the same:
 * its mask, a blur of a few cells, spreads over both and says nothing of its size. Three people
 * are given by boxes whose heights lie on one ground line (height = 0.8 (bottom - 100), bottoms
 * 145, 165, 185: model/ground.h trusts it), each a fifth as wide as tall (7-14 pixels, at most
 * 2.3 of the 6-source-pixel cells `accurate` gives this 640x360 frame). The middle one walks
 * right at 2 pixels a frame with a 24-pixel-wide twin touching its right side; its mask takes
 * the twin, and its centre lies between the two (not asserted). Its reported box must keep the
 * truth's size within a fifth each way on every frame: sized by its filter once that was 3
 * cells wide, it came out 2.3 times too wide (131 % off) by frame 37.
 */
START_TEST(test_narrow_sized_by_ground) {
    synth s;
    synth_init(&s, 640, 360, 31);
    const double bottom[3] = {145, 165, 185}, xs[3] = {120, 300, 520};
    const uint8_t *base[3] = {BLUE, RED, GREEN}, *alt[3] = {CYAN, ORANGE, YELLOW};
    for (int k = 0; k < 3; k++) {
        const double h = 0.8 * (bottom[k] - 100), w = h / 5;
        synth_add(&s, 0, xs[k], bottom[k] - h / 2, k == 1 ? 2.0 : 0.0, 0.0, w / 2, h / 2, 1.0,
                  base[k], alt[k], 1);
    }
    const synth_obj *p = &s.obj[1];
    const double tw = 24; /* the twin, touching object 2's right side */
    synth_add(&s, 0, p->x0 + p->rx + tw / 2, p->y0, p->vx, 0.0, tw / 2, p->ry, 1.0, RED, ORANGE, 1);
    vt_tracker *t = make_tracker("mast");
    const int w = s.w, h = s.h;
    uint8_t *rgb = malloc((size_t)w * h * 3), *gt = malloc((size_t)w * h);
    double worst_w = 0.0, worst_h = 0.0;
    int64_t most = 0; /* its largest mask */
    for (int f = 0; f < 40; f++) {
        synth_render(&s, f, rgb, gt);
        if (f == 0) {
            for (int k = 0; k < 3; k++) {
                const vt_shape sh = synth_box(&s.obj[k], 0);
                ck_assert_int_eq(vt_tracker_add_object(t, (uint32_t)k + 1, NULL, &sh, NULL, 0), 0);
            }
        }
        vt_image img = {.w = w, .h = h, .linesize = w * 3, .rgb = rgb};
        const vt_track_result *r;
        ck_assert_int_eq(vt_tracker_step(t, &img, NULL, &r), 0);
        const vt_object_result *o = find(r, 2);
        ck_assert_ptr_nonnull(o);
        const double rw = o->bbox[2] / (2 * p->rx), rh = o->bbox[3] / (2 * p->ry);
        if (getenv("VT_TEST_VERBOSE"))
            printf(
                "narrow frame %d: box %d %d %d %d (width x%.2f, height x%.2f) state %d area %lld\n",
                f, o->bbox[0], o->bbox[1], o->bbox[2], o->bbox[3], rw, rh, o->state,
                (long long)o->area);
        worst_w = fmax(worst_w, fabs(rw - 1.0));
        worst_h = fmax(worst_h, fabs(rh - 1.0));
        most = o->area > most ? o->area : most;
    }
    const double own = 4 * p->rx * p->ry;
    printf("narrow beside its twin: mask up to %.1f times its area; worst width error %.0f %%, "
           "height error %.0f %%\n",
           most / own, 100 * worst_w, 100 * worst_h);
    /* the scene does what it is for: the mask takes the twin */
    ck_assert_msg(most >= 2 * own, "mask at most %lld pixels", (long long)most);
    ck_assert_msg(worst_w <= 0.2 && worst_h <= 0.2, "width off by %.2f, height by %.2f", worst_w,
                  worst_h);
    free(rgb), free(gt);
    vt_tracker_free(&t);
    synth_free(&s);
}
END_TEST

START_TEST(test_shapes_exact) {
    vt_tracker *t = make_tracker_refine("mast", 0); /* boxes taken as rectangles */
    uint8_t *rgb = calloc(64 * 48 * 3, 1);
    for (int i = 0; i < 64 * 48 * 3; i++)
        rgb[i] = (uint8_t)(i * 7);
    /* box: pixels whose centres lie inside: x 10..14, y 21..23 */
    vt_shape box = {.kind = VT_SHAPE_BOX, .box = {10.2f, 20.7f, 5.0f, 3.0f}};
    /* triangle (0,0) (8,0) (0,8) shifted to (40,30): centres strictly inside: x + y < 7 */
    float tri[6] = {40, 30, 48, 30, 40, 38};
    vt_shape poly = {.kind = VT_SHAPE_POLYGON, .points = tri, .npoints = 3};
    ck_assert_int_eq(vt_tracker_add_object(t, 1, "box", &box, NULL, 0), 0);
    ck_assert_int_eq(vt_tracker_add_object(t, 2, "tri", &poly, NULL, 0), 0);
    vt_image img = {.w = 64, .h = 48, .linesize = 64 * 3, .rgb = rgb};
    const vt_track_result *r;
    ck_assert_int_eq(vt_tracker_step(t, &img, NULL, &r), 0);
    const vt_object_result *b = find(r, 1), *p = find(r, 2);
    ck_assert_int_eq(b->area, 15);
    ck_assert_int_eq(b->bbox[0], 10);
    ck_assert_int_eq(b->bbox[1], 21);
    ck_assert_int_eq(b->bbox[2], 5);
    ck_assert_int_eq(b->bbox[3], 3);
    ck_assert_str_eq(b->label, "box");
    ck_assert_int_eq(p->area, 28);
    ck_assert_int_eq(p->bbox[0], 40);
    ck_assert_int_eq(p->bbox[1], 30);
    ck_assert_int_eq(p->bbox[2], 7);
    ck_assert_int_eq(p->bbox[3], 7);
    for (int y = 0; y < 48; y++)
        for (int x = 0; x < 64; x++) {
            int in = x >= 40 && y >= 30 && (x - 40) + (y - 30) < 7;
            ck_assert_int_eq(p->mask[y * 64 + x], in);
        }
    free(rgb);
    vt_tracker_free(&t);
}
END_TEST

/* A loose box around an ellipse is refined into (about) the ellipse. */
START_TEST(test_box_refined) {
    synth s;
    synth_init(&s, 320, 240, 21);
    synth_add(&s, 1, 150, 120, 0, 0, 40, 28, 1.0, RED, ORANGE, 1);
    uint8_t *rgb = malloc(320 * 240 * 3), *gt = malloc(320 * 240), *box = calloc(320 * 240, 1);
    synth_render(&s, 0, rgb, gt);
    /* the ellipse's bounding box grown by 30% on each side */
    const float bx = 150 - 52, by = 120 - 36.4f, bw = 104, bh = 72.8f;
    for (int y = 0; y < 240; y++)
        for (int x = 0; x < 320; x++)
            box[y * 320 + x] =
                x + 0.5 >= bx && x + 0.5 < bx + bw && y + 0.5 >= by && y + 0.5 < by + bh;
    vt_tracker *t = make_tracker("mast");
    vt_shape sh = {.kind = VT_SHAPE_BOX, .box = {bx, by, bw, bh}};
    ck_assert_int_eq(vt_tracker_add_object(t, 1, NULL, &sh, NULL, 0), 0);
    vt_image img = {.w = 320, .h = 240, .linesize = 320 * 3, .rgb = rgb};
    const vt_track_result *r;
    ck_assert_int_eq(vt_tracker_step(t, &img, NULL, &r), 0);
    for (int i = 0; i < 320 * 240; i++)
        gt[i] = gt[i] == 1;
    double j_box = iou(box, gt, 320 * 240), j_ref = iou(r->objects[0].mask, gt, 320 * 240);
    printf("box refinement: IoU of the box %.3f, of the refined mask %.3f\n", j_box, j_ref);
    ck_assert_msg(j_ref >= 0.8 && j_ref > j_box + 0.1, "refined IoU %.3f (box %.3f)", j_ref, j_box);
    free(rgb), free(gt), free(box);
    vt_tracker_free(&t);
    synth_free(&s);
}
END_TEST

/*
 * A box that is half background: an ellipse of radii 16 x 24 (1206 pixels) in a box 1.25 times
 * its bounding box each way (2412 pixels), walking right at 3 px/frame over a static textured
 * background. The mask keeps the object and not the background: on the first frame at most a
 * tenth of the box's background pixels, on every later frame at most a tenth of the mask off
 * the object, and nothing left in the first frame's box once the object has walked out of it
 * (its left edge passes the box's right edge, 60 + 3f - 16 > 80, from frame 13 on).
 */
START_TEST(test_box_half_background) {
    synth s;
    synth_init(&s, 320, 160, 29);
    synth_add(&s, 1, 60, 80, 3.0, 0.0, 16, 24, 1.0, GREEN, YELLOW, 1);
    const int w = 320, h = 160;
    const float bw = 32 * 1.2533f, bh = 48 * 1.2533f, bx = 60 - bw / 2, by = 80 - bh / 2;
    vt_tracker *t = make_tracker("mast");
    uint8_t *rgb = malloc((size_t)w * h * 3), *gt = malloc((size_t)w * h);
    uint8_t *inbox = malloc((size_t)w * h);
    int nbox = 0, nbg = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            inbox[y * w + x] =
                x + 0.5 >= bx && x + 0.5 < bx + bw && y + 0.5 >= by && y + 0.5 < by + bh;
            nbox += inbox[y * w + x];
        }
    double worst_off = 0;
    int worst_left = 0;
    for (int f = 0; f < 40; f++) {
        synth_render(&s, f, rgb, gt);
        if (f == 0) {
            vt_shape sh = {.kind = VT_SHAPE_BOX, .box = {bx, by, bw, bh}};
            ck_assert_int_eq(vt_tracker_add_object(t, 1, NULL, &sh, NULL, 0), 0);
        }
        vt_image img = {.w = w, .h = h, .linesize = w * 3, .rgb = rgb};
        const vt_track_result *r;
        ck_assert_int_eq(vt_tracker_step(t, &img, NULL, &r), 0);
        const vt_object_result *o = find(r, 1);
        ck_assert_ptr_nonnull(o);
        int on = 0, off = 0, left = 0, obj = 0;
        for (int i = 0; i < w * h; i++) {
            on += o->mask[i] && gt[i] == 1;
            off += o->mask[i] && gt[i] != 1;
            left += o->mask[i] && inbox[i] && f >= 13;
            obj += gt[i] == 1;
            if (f == 0)
                nbg += inbox[i] && gt[i] != 1;
        }
        if (f == 0) {
            ck_assert_msg(nbg > nbox * 45 / 100, "the box holds %d of %d background", nbg, nbox);
            ck_assert_msg(10 * off <= nbg, "frame 0: %d of the box's %d background pixels kept",
                          off, nbg);
        }
        ck_assert_msg(2 * on >= obj, "frame %d: %d of the object's %d pixels", f, on, obj);
        const double share = on + off ? (double)off / (on + off) : 0;
        worst_off = share > worst_off ? share : worst_off;
        worst_left = left > worst_left ? left : worst_left;
    }
    printf("box half background: %d of %d box pixels background; worst share of the mask off the "
           "object %.3f; most pixels left in the first box %d\n",
           nbg, nbox, worst_off, worst_left);
    ck_assert_msg(worst_off <= 0.1, "up to %.3f of the mask off the object", worst_off);
    ck_assert_msg(worst_left == 0, "%d pixels left behind in the first box", worst_left);
    free(rgb), free(gt), free(inbox);
    vt_tracker_free(&t);
    synth_free(&s);
}
END_TEST

/*
 * A static background with a moving object: a textured disc of radius 18 crosses the frame at
 * 5 px/frame from its exact first mask. No trail: nothing of its mask lies more than 4 pixels
 * behind the disc's back edge; nor anywhere more than 4 pixels outside the disc (the mask is
 * upsampled from cells of 8 pixels: its outline may be off by half a cell).
 */
START_TEST(test_no_trail) {
    synth s;
    synth_init(&s, 320, 120, 31);
    synth_add(&s, 1, 40, 60, 5.0, 0.0, 18, 18, 1.0, BLUE, CYAN, 1);
    vt_tracker *t = make_tracker("mast");
    uint8_t *rgb = malloc(320 * 120 * 3), *gt = malloc(320 * 120), *m1 = malloc(320 * 120);
    int worst_trail = 0, worst_off = 0;
    for (int f = 0; f < 48; f++) {
        const vt_object_result *o = step_object1(t, &s, f, rgb, gt, m1);
        const double back = 40 + 5.0 * f - 18 - 4;
        const double cx = 40 + 5.0 * f;
        int trail = 0, on = 0, off = 0;
        for (int y = 0; y < 120; y++)
            for (int x = 0; x < 320; x++) {
                const int i = y * 320 + x;
                trail += o->mask[i] && x + 0.5 < back;
                on += o->mask[i] && gt[i] == 1;
                const double dx = x + 0.5 - cx, dy = y + 0.5 - 60;
                off += o->mask[i] && dx * dx + dy * dy > 22.0 * 22.0;
            }
        ck_assert_msg(on > 500, "frame %d: %d pixels on the disc", f, on);
        worst_trail = trail > worst_trail ? trail : worst_trail;
        worst_off = off > worst_off ? off : worst_off;
    }
    printf("no trail: at most %d pixels behind the disc, %d more than 4 pixels outside it\n",
           worst_trail, worst_off);
    ck_assert_msg(worst_trail == 0, "%d pixels of trail", worst_trail);
    ck_assert_msg(worst_off == 0, "%d pixels more than 4 pixels outside the disc", worst_off);
    free(rgb), free(gt), free(m1);
    vt_tracker_free(&t);
    synth_free(&s);
}
END_TEST

START_TEST(test_api_errors) {
    vt_tracker *t = make_tracker("mast");
    vt_shape box = {.kind = VT_SHAPE_BOX, .box = {1, 1, 4, 4}};
    char err[128];
    ck_assert_int_eq(vt_tracker_add_object(t, 0, NULL, &box, err, sizeof err), -EINVAL);
    ck_assert_int_eq(vt_tracker_add_object(t, 5, NULL, &box, err, sizeof err), 0);
    ck_assert_int_eq(vt_tracker_add_object(t, 5, NULL, &box, err, sizeof err), -EEXIST);
    vt_shape bad = {.kind = VT_SHAPE_BOX, .box = {1, 1, -4, 4}};
    ck_assert_int_eq(vt_tracker_add_object(t, 6, NULL, &bad, err, sizeof err), -EINVAL);
    float pts[4] = {0, 0, 1, 1};
    vt_shape poly = {.kind = VT_SHAPE_POLYGON, .points = pts, .npoints = 2};
    ck_assert_int_eq(vt_tracker_add_object(t, 6, NULL, &poly, err, sizeof err), -EINVAL);
    vt_shape nomask = {.kind = VT_SHAPE_MASK, .w = 4, .h = 4, .data = NULL};
    ck_assert_int_eq(vt_tracker_add_object(t, 6, NULL, &nomask, err, sizeof err), -EINVAL);
    ck_assert_int_eq(vt_tracker_remove_object(t, 77), -ENOENT);
    /* pixels covered (centres inside): a 4x4 box, a sliver between pixel centres, a line */
    ck_assert_int_eq(vt_shape_pixels(&box, 16, 16), 16);
    vt_shape sliver = {.kind = VT_SHAPE_BOX, .box = {15.6f, 15.6f, 0.3f, 0.3f}};
    ck_assert_int_eq(vt_shape_pixels(&sliver, 16, 16), 0);
    float line[6] = {0, 0, 5, 5, 10, 10};
    vt_shape flat = {.kind = VT_SHAPE_POLYGON, .points = line, .npoints = 3};
    ck_assert_int_eq(vt_shape_pixels(&flat, 16, 16), 0);
    ck_assert_int_eq(vt_shape_pixels(&box, 0, 16), -EINVAL);
    /* labels: 64 bytes (32 two-byte characters) kept whole, 65 refused */
    char lab[80] = "";
    for (int i = 0; i < 32; i++)
        strcat(lab, "\xc3\xa9");
    ck_assert_int_eq(vt_tracker_add_object(t, 7, lab, &box, err, sizeof err), 0);
    strcat(lab, "x");
    ck_assert_int_eq(vt_tracker_add_object(t, 8, lab, &box, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "label"));
    uint8_t rgb[16 * 16 * 3] = {0};
    vt_image img = {.w = 16, .h = 16, .linesize = 48, .rgb = rgb};
    const vt_track_result *r;
    ck_assert_int_eq(vt_tracker_step(t, &img, NULL, &r), 0);
    int seen = 0;
    for (int i = 0; i < r->n_objects; i++)
        if (r->objects[i].id == 7) {
            lab[64] = 0;
            ck_assert_str_eq(r->objects[i].label, lab);
            seen = 1;
        }
    ck_assert(seen);
    /* The frames' size is now known: a shape wholly outside them, or a mask of another size,
     * is refused; a box reaching in by one pixel centre is taken. */
    const vt_shape outside[] = {
        {.kind = VT_SHAPE_BOX, .box = {-500, -500, 40, 40}},
        {.kind = VT_SHAPE_BOX, .box = {16, 2, 30, 5}},
        {.kind = VT_SHAPE_BOX, .box = {-30, 2, 30.4f, 5}},
        {.kind = VT_SHAPE_MASK, .w = 8, .h = 8, .data = rgb},
        {.kind = VT_SHAPE_MASK, .w = 16, .h = 16, .data = rgb}, /* all zero */
    };
    for (size_t i = 0; i < sizeof outside / sizeof *outside; i++) {
        ck_assert_int_eq(vt_tracker_add_object(t, 9, NULL, &outside[i], err, sizeof err), -EINVAL);
        ck_assert_msg(strstr(err, "16x16 frames"), "%s", err);
    }
    vt_shape edge = {.kind = VT_SHAPE_BOX, .box = {-30, 2, 30.6f, 5}};
    ck_assert_int_eq(vt_tracker_add_object(t, 9, NULL, &edge, err, sizeof err), 0);
    ck_assert_int_eq(vt_tracker_remove_object(t, 9), 0);
    /* its removal is reported with the label */
    ck_assert_int_eq(vt_tracker_remove_object(t, 7), 0);
    ck_assert_int_eq(vt_tracker_step(t, &img, NULL, &r), 0);
    ck_assert_int_eq(r->n_removed, 1);
    ck_assert_uint_eq(r->removed[0], 7);
    ck_assert_str_eq(r->removed_labels[0], lab);
    for (uint32_t id = 100; vt_tracker_object_count(t) < 32; id++)
        ck_assert_int_eq(vt_tracker_add_object(t, id, NULL, &box, err, sizeof err), 0);
    ck_assert_int_eq(vt_tracker_add_object(t, 999, NULL, &box, err, sizeof err), -ENOSPC);
    ck_assert_int_eq(vt_tracker_step(t, NULL, NULL, NULL), -EINVAL);
    vt_tracker_params p;
    ck_assert_int_eq(vt_tracker_params_preset(&p, "nope", "accurate", model), -EINVAL);
    ck_assert_int_eq(vt_tracker_params_preset(&p, "mast", "nope", model), -EINVAL);
    ck_assert_int_eq(vt_tracker_params_preset(&p, "mast", "realtime", model), 0);
    p.temperature = 0;
    vt_tracker *t2 = NULL;
    ck_assert_int_eq(vt_tracker_new(model, &p, &t2, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "temperature"));
    vt_tracker_free(&t);
}
END_TEST

START_TEST(test_no_alloc_after_warmup) {
    synth s;
    synth_init(&s, 200, 120, 9);
    synth_add(&s, 1, 50, 60, 2.0, 0.5, 20, 16, 1.0, RED, ORANGE, 1);
    synth_add(&s, 0, 150, 60, -2.0, 0.5, 16, 20, 1.0, BLUE, CYAN, 2);
    vt_tracker *t = make_tracker(_i ? "colorize" : "mast");
    uint8_t *rgb = malloc(200 * 120 * 3), *gt = malloc(200 * 120);
    long before = 0;
    int failures = 0;
    for (int f = 0; f < 30; f++) {
        synth_render(&s, f, rgb, gt);
        if (f == 0) {
            vt_shape sh = {.kind = VT_SHAPE_LABELS, .w = 200, .h = 120, .data = gt, .index = 1};
            ck_assert_int_eq(vt_tracker_add_object(t, 1, NULL, &sh, NULL, 0), 0);
            sh.index = 2;
            ck_assert_int_eq(vt_tracker_add_object(t, 2, NULL, &sh, NULL, 0), 0);
        }
        if (f == 10)
            before = n_alloc;
        vt_image img = {.w = 200, .h = 120, .linesize = 200 * 3, .rgb = rgb};
        const vt_track_result *r;
        /* no ck_assert inside the counted window: Check's bookkeeping allocates */
        if (vt_tracker_step(t, &img, NULL, &r) != 0)
            failures++;
    }
    long after = n_alloc;
    ck_assert_int_eq(failures, 0);
    ck_assert_msg(after == before, "%ld allocations in 20 steps after warm-up", after - before);
    free(rgb), free(gt);
    vt_tracker_free(&t);
    synth_free(&s);
}
END_TEST

int main(void) {
    Suite *s = suite_create("track");
    TCase *tc = tm_add_case(
        s, "synthetic", 120, test_three_objects_occluding, test_added_mid_sequence_and_removed,
        test_lost_when_leaving, test_lost_at_edge_no_box, test_box_holds_mask_at_edge,
        test_gone_not_back_inside, test_occluded_then_recovered, test_hidden_behind_another,
        test_lost_keeps_predicted_box, test_identical_objects_crossing, test_lookalike_gated,
        test_shapes_exact, test_box_refined, test_box_half_background, test_no_trail,
        test_overtaken_behind, test_passes_untracked_lookalike, test_narrow_sized_by_ground,
        test_api_errors, NULL);
    tcase_add_loop_test(tc, test_one_object, 0, 2);
    tcase_add_loop_test(tc, test_no_alloc_after_warmup, 0, 2);
    tcase_add_checked_fixture(tc, setup, teardown);
    return tm_run(s);
}
