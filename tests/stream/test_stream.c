/*
 * test_stream.c - stream/ stepped offline: what `list` (vt_stream_get_snapshot) shows of the
 * objects while a frame is being tracked.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "codec_test_util.h"
#include "vt_stream.h"

static vt_model *model;

typedef struct seen {
    vt_stream *s;
    int added;      /* `added` events */
    int listed;     /* of those, objects the snapshot listed while their event went out */
    char state[16]; /* the listed state of the last one */
} seen;

/* Called on the stepping thread while the frame is tracked: the object must be listed. */
static void on_event(void *opaque, const vt_stream_event *ev) {
    seen *w = opaque;
    if (ev->kind != VT_STREAM_EVENT_OBJECT || ev->lifecycle != VT_PROTO_LIFECYCLE_ADDED)
        return;
    w->added++;
    vt_stream_snapshot snap;
    vt_stream_get_snapshot(w->s, &snap);
    for (int i = 0; i < snap.nobjects; i++)
        if (snap.objects[i].id == ev->object) {
            w->listed++;
            snprintf(w->state, sizeof w->state, "%s",
                     vt_proto_obj_state_name(snap.objects[i].state));
        }
}

/* An object is listed from its `track` until its frame's result, with no gap in between (a
 * stream removed in that gap reports its objects from this list). */
START_TEST(test_listed_while_applied) {
    const char *clip = tu_path("clip.mp4");
    ck_assert_int_eq(tu_ffmpeg("-f lavfi -i testsrc=s=160x120:r=10:d=1 -pix_fmt yuv420p %s", clip),
                     0);
    seen w = {0};
    vt_stream_config cfg = {
        .name = "s", .url = clip, .model = model, .on_event = on_event, .opaque = &w};
    vt_source_opts_default(&cfg.source);
    cfg.source.allow_local = 1;
    ck_assert_int_eq(vt_tracker_params_preset(&cfg.params, "mast", "realtime", model), 0);
    char err[256];
    ck_assert_msg(vt_stream_new(&cfg, &w.s, err, sizeof err) == 0, "%s", err);
    vt_shape box = {.kind = VT_SHAPE_BOX, .box = {20, 20, 40, 30}};
    uint32_t id;
    ck_assert_int_eq(vt_stream_track(w.s, 7, "b", &box, 3, &id, err, sizeof err), 0);
    vt_stream_snapshot snap;
    vt_stream_get_snapshot(w.s, &snap);
    ck_assert_int_eq(snap.nobjects, 1);
    ck_assert_int_eq(snap.objects[0].state, VT_PROTO_OBJ_PENDING);
    ck_assert_str_eq(snap.objects[0].label, "b");
    for (int f = 0; f < 5; f++)
        ck_assert_int_eq(vt_stream_step(w.s, NULL), 0);
    ck_assert_int_eq(w.added, 1);
    ck_assert_msg(w.listed == 1, "object 7 was not listed while its frame was tracked");
    ck_assert_str_eq(w.state, "pending");
    vt_stream_get_snapshot(w.s, &snap);
    ck_assert_int_eq(snap.nobjects, 1);
    ck_assert_int_eq(snap.objects[0].state, VT_PROTO_OBJ_TRACKING);
    vt_stream_free(&w.s);
}
END_TEST

int main(void) {
    char err[256];
    if (vt_model_load("lab", &model, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    Suite *su = suite_create("stream");
    TCase *tc = tcase_create("objects");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_listed_while_applied);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    vt_model_free(&model);
    return failed ? 1 : 0;
}
