/*
 * test_stream.c - stream/ on a clip made with ffmpeg: what `list` (vt_stream_get_snapshot) shows
 * of the objects while a frame is being tracked, what becomes of queued objects when the
 * source ends, and that a live stream tracks the frame an object was given on.
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/error.h>

#include "testmain.h"
#include "codec_test_util.h"
#include "vt_base.h"
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

/* A stream "s" on url: the lab model, the mast preset's `profile`, no reconnection. */
static vt_stream *open_stream(const char *url, vt_stream_event_cb cb, void *opaque,
                              vt_stream_mode mode, const char *profile) {
    vt_stream_config cfg = {
        .name = "s", .url = url, .model = model, .on_event = cb, .opaque = opaque, .mode = mode};
    vt_source_opts_default(&cfg.source);
    cfg.source.allow_local = 1;
    cfg.source.reconnect = 0;
    ck_assert_int_eq(vt_tracker_params_preset(&cfg.params, "mast", profile, model), 0);
    char err[256];
    vt_stream *s;
    ck_assert_msg(vt_stream_new(&cfg, &s, err, sizeof err) == 0, "%s", err);
    return s;
}

/* The testsrc clip `spec` ("s=WxH:r=FPS:d=SECONDS") as `name` in the scratch folder. */
static const char *testsrc_clip(const char *name, const char *spec) {
    const char *clip = tu_path(name);
    ck_assert_int_eq(tu_ffmpeg("-f lavfi -i testsrc=%s -pix_fmt yuv420p %s", spec, clip), 0);
    return clip;
}

/* An object is listed from its `track` until its frame's result, with no gap in between (a
 * stream removed in that gap reports its objects from this list). */
START_TEST(test_listed_while_applied) {
    const char *clip = testsrc_clip("clip.mp4", "s=160x120:r=10:d=1");
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

/* A stream on a test clip that plays once (no reconnect), in `mode`, with `profile`. */
/* Wait (30 s at most) until the event callback set *flag under lock. */
static void wait_flag(pthread_mutex_t *lock, const int *flag) {
    for (int t = 0; t < 3000; t++) {
        pthread_mutex_lock(lock);
        int done = *flag;
        pthread_mutex_unlock(lock);
        if (done)
            return;
        usleep(10000);
    }
}

/* What the end of a source does to what was still queued. */
typedef struct ending {
    pthread_mutex_t lock; /* threaded: events come from the stream's threads */
    char log[2048];       /* "added 8 @3; removed 7 null 'the stream ended before frame 50'; ..." */
    int ended;
} ending;

static void on_end_event(void *opaque, const vt_stream_event *ev) {
    ending *e = opaque;
    pthread_mutex_lock(&e->lock);
    size_t n = strlen(e->log);
    if (ev->kind == VT_STREAM_EVENT_OBJECT) {
        char line[512] = "{"; /* the tail lacks the '{' of its seq prefix */
        snprintf(line + 1, sizeof line - 1, "%.*s", (int)ev->tail_len, ev->tail);
        cJSON *j = cJSON_Parse(line);
        const cJSON *fr = j ? cJSON_GetObjectItem(j, "frame") : NULL;
        const cJSON *why = j ? cJSON_GetObjectItem(j, "reason") : NULL;
        char at[24] = "null";
        if (cJSON_IsNumber(fr))
            snprintf(at, sizeof at, "@%d", fr->valueint);
        snprintf(e->log + n, sizeof e->log - n, "%s %u %s%s%s%s; ",
                 vt_proto_lifecycle_name(ev->lifecycle), ev->object, at, why ? " '" : "",
                 cJSON_IsString(why) ? why->valuestring : "", why ? "'" : "");
        cJSON_Delete(j);
    } else if (ev->kind == VT_STREAM_EVENT_STATE && ev->state == VT_PROTO_STREAM_ENDED) {
        snprintf(e->log + n, sizeof e->log - n, "ended; ");
        e->ended = 1;
    }
    pthread_mutex_unlock(&e->lock);
}

/* A 10-frame clip: an object given for frame 3 is added there; one for frame 50, and an untrack
 * of the first that comes too late, are reported before `ended`, not left pending for ever; and
 * commands after the end are answered at once; stepped offline (_i = 0) and threaded (_i = 1). */
START_TEST(test_end_drops_pending) {
    const char *clip = testsrc_clip("ten.mp4", "s=160x120:r=10:d=1");
    ending e = {.lock = PTHREAD_MUTEX_INITIALIZER};
    vt_stream *s = open_stream(clip, on_end_event, &e, VT_STREAM_LOSSLESS, "realtime");
    char err[256];
    vt_shape box = {.kind = VT_SHAPE_BOX, .box = {20, 20, 40, 30}};
    ck_assert_int_eq(vt_stream_track(s, 8, NULL, &box, 3, NULL, err, sizeof err), 0);
    ck_assert_int_eq(vt_stream_track(s, 7, "late", &box, 50, NULL, err, sizeof err), 0);
    if (_i == 0) {
        for (int f = 0; f < 10; f++)
            ck_assert_int_eq(vt_stream_step(s, NULL), 0);
        ck_assert_int_eq(vt_stream_untrack(s, 8), 0); /* no frame left to apply it to */
        ck_assert_int_eq(vt_stream_step(s, NULL), AVERROR_EOF);
        ck_assert_str_eq(e.log, "added 8 @3; removed 7 null 'the stream ended before frame 50'; "
                                "removed 8 null 'untrack'; ended; ");
    } else {
        ck_assert_int_eq(vt_stream_start(s), 0);
        wait_flag(&e.lock, &e.ended);
        ck_assert_str_eq(e.log,
                         "added 8 @3; removed 7 null 'the stream ended before frame 50'; ended; ");
    }
    /* 7 is no longer listed as pending (nor 8 once untracked) */
    vt_stream_snapshot snap;
    vt_stream_get_snapshot(s, &snap);
    ck_assert_int_eq(snap.nobjects, _i);
    if (_i)
        ck_assert_int_eq(snap.objects[0].id, 8);
    /* Nothing runs commands any more: each is answered at once, and forty track/untrack rounds
     * neither queue anything nor fill the object count (tracks are refused, an untrack of the
     * object left applies before it returns). */
    for (int round = 0; round < 40; round++) {
        err[0] = 0;
        ck_assert_int_eq(vt_stream_track(s, 0, NULL, &box, -1, NULL, err, sizeof err), AVERROR_EOF);
        ck_assert_msg(strstr(err, "has ended") != NULL, "%s", err);
        ck_assert_int_eq(vt_stream_untrack(s, 9), AVERROR(ENOENT));
    }
    if (_i) {
        ck_assert_int_eq(vt_stream_untrack(s, 8), 0);
        pthread_mutex_lock(&e.lock);
        ck_assert_str_eq(e.log, "added 8 @3; removed 7 null 'the stream ended before frame 50'; "
                                "ended; removed 8 null 'untrack'; ");
        pthread_mutex_unlock(&e.lock);
        vt_stream_get_snapshot(s, &snap);
        ck_assert_int_eq(snap.nobjects, 0);
        ck_assert_int_eq(vt_stream_untrack(s, 8), AVERROR(ENOENT));
    }
    vt_stream_free(&s);
}
END_TEST

/*
 * A live stream whose source outruns its tracker skips frames, but not the frame an object was
 * given on: a box drawn on frame 13 describes frame 13, and a walker has left it a few frames
 * later. Objects given on frames 13, 29, 46 and 62 of a 640x480 clip decoded as fast as it goes
 * start exactly there (the test also checks that frames were skipped, or it proves nothing).
 */
START_TEST(test_live_keeps_given_frame) {
    const char *clip = testsrc_clip("live.mp4", "s=640x480:r=25:d=4");
    ending e = {.lock = PTHREAD_MUTEX_INITIALIZER};
    vt_stream *s = open_stream(clip, on_end_event, &e, VT_STREAM_LIVE, "accurate");
    char err[256];
    static const int64_t at[4] = {13, 29, 46, 62};
    for (int i = 0; i < 4; i++) {
        vt_shape box = {.kind = VT_SHAPE_BOX, .box = {40.0f + 100 * i, 60, 90, 120}};
        ck_assert_int_eq(
            vt_stream_track(s, (uint32_t)i + 1, NULL, &box, at[i], NULL, err, sizeof err), 0);
    }
    ck_assert_int_eq(vt_stream_start(s), 0);
    wait_flag(&e.lock, &e.ended);
    vt_stream_snapshot snap;
    vt_stream_get_snapshot(s, &snap);
    ck_assert_msg(snap.skipped > 0, "the tracker kept up with the source: nothing was tested");
    for (int i = 0; i < 4; i++) {
        char added[48];
        snprintf(added, sizeof added, "added %d @%lld;", i + 1, (long long)at[i]);
        ck_assert_msg(strstr(e.log, added), "object %d given on frame %lld: %s", i + 1,
                      (long long)at[i], e.log);
    }
    vt_stream_free(&s);
}
END_TEST

/* The state events of a stream, as a subscriber receives them. */
typedef struct states {
    pthread_mutex_t lock;
    int n, bad, ended; /* state events; of those, tails that are not valid UTF-8, and `ended`s */
    char reason[512];  /* the `reason` of the `ended` event */
} states;

static void on_state_event(void *opaque, const vt_stream_event *ev) {
    states *st = opaque;
    if (ev->kind != VT_STREAM_EVENT_STATE)
        return;
    pthread_mutex_lock(&st->lock);
    st->n++;
    if (vt_utf8_check(ev->tail, ev->tail_len, NULL) < 0) {
        st->bad++;
    } else if (ev->state == VT_PROTO_STREAM_ENDED) {
        char line[2048] = "{"; /* the tail lacks the '{' of its seq prefix */
        snprintf(line + 1, sizeof line - 1, "%.*s", (int)ev->tail_len, ev->tail);
        cJSON *j = cJSON_Parse(line);
        const cJSON *why = j ? cJSON_GetObjectItem(j, "reason") : NULL;
        snprintf(st->reason, sizeof st->reason, "%s", cJSON_IsString(why) ? why->valuestring : "");
        cJSON_Delete(j);
    }
    st->ended += ev->state == VT_PROTO_STREAM_ENDED;
    pthread_mutex_unlock(&st->lock);
}

/*
 * A threaded stream whose source fails at once (a missing file) reports `ended` once, from its
 * tracker thread, with the source's reason. The ingest thread that meets the failure may run
 * before vt_stream_start returns: it must already see a threaded stream. Ten rounds, as it is a
 * race.
 */
START_TEST(test_missing_ends_once) {
    for (int round = 0; round < 10; round++) {
        states st = {.lock = PTHREAD_MUTEX_INITIALIZER};
        vt_stream *s = open_stream(tu_path("missing.mp4"), on_state_event, &st, VT_STREAM_LOSSLESS,
                                   "realtime");
        ck_assert_int_eq(vt_stream_start(s), 0);
        wait_flag(&st.lock, &st.ended);
        vt_stream_free(&s); /* joins the threads: no event comes after this */
        ck_assert_msg(st.ended == 1, "round %d: %d `ended` events", round, st.ended);
        ck_assert_msg(strstr(st.reason, "missing.mp4") != NULL, "round %d: reason '%s'", round,
                      st.reason);
    }
}
END_TEST

/*
 * A source that cannot open, with a long non-ASCII path: the `stream` events that carry its
 * reason to every subscriber stay valid UTF-8. The path is "/nonexistent-vtrack/", p 'x'
 * (p = _i % 10), then 80 times U+00E9 U+20AC U+1D11E "/" (10 bytes): the source's 512-byte
 * messages and, threaded (_i >= 10), the stream's 256-byte copy of the reason are cut at every
 * byte phase of the repeated part as p goes from 0 to 9. Stepped (_i < 10) the reason is the
 * source's own.
 */
START_TEST(test_reason_utf8_cut) {
    const int phase = _i % 10, threaded = _i >= 10;
    char url[1024];
    size_t n = (size_t)snprintf(url, sizeof url, "/nonexistent-vtrack/%.*s", phase, "xxxxxxxxx");
    for (int k = 0; k < 80; k++, n += 10)
        memcpy(url + n, "\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E/", 10);
    url[n] = '\0';
    states st = {.lock = PTHREAD_MUTEX_INITIALIZER};
    vt_stream *s = open_stream(url, on_state_event, &st, VT_STREAM_LOSSLESS, "realtime");
    if (threaded) {
        ck_assert_int_eq(vt_stream_start(s), 0);
        wait_flag(&st.lock, &st.ended);
    } else {
        ck_assert_int_eq(vt_stream_step(s, NULL), AVERROR(ENOENT));
    }
    vt_stream_free(&s); /* joins the threads: no event comes after this */
    ck_assert_int_ge(st.n, 1);
    ck_assert_msg(st.bad == 0, "phase %d (%s): %d of %d state events are not UTF-8", phase,
                  threaded ? "threaded" : "stepped", st.bad, st.n);
    ck_assert_int_eq(st.ended, 1);
    ck_assert_msg(strncmp(st.reason, url, 20) == 0, "reason '%s'", st.reason); /* names the path */
}
END_TEST

/* Object events of a stepped stream as text: "added 1 'the model changed' @5; ...". */
typedef struct swaplog {
    char log[1024];
    int frames;
} swaplog;

static void on_swap_event(void *opaque, const vt_stream_event *ev) {
    swaplog *w = opaque;
    size_t n = strlen(w->log);
    if (ev->kind == VT_STREAM_EVENT_FRAME)
        w->frames++;
    if (ev->kind == VT_STREAM_EVENT_OBJECT)
        snprintf(w->log + n, sizeof w->log - n, "%s %u '%s' @%lld; ",
                 vt_proto_lifecycle_name(ev->lifecycle), ev->object, ev->reason ? ev->reason : "",
                 (long long)ev->object_frame);
}

/*
 * vt_stream_set_model (per-camera adaptation's swap): the stream keeps its model until the next
 * frame, then tracks on the new one with its object placed again (same id, `added` with the
 * reason "the model changed"); setting the model in use again cancels a waiting swap; NULL is
 * refused.
 */
START_TEST(test_model_swap) {
    const char *clip = testsrc_clip("swap.mp4", "s=160x120:r=10:d=1");
    swaplog w = {.frames = 0};
    vt_stream *s = open_stream(clip, on_swap_event, &w, VT_STREAM_LOSSLESS, "realtime");
    char err[256];
    vt_model *other = NULL;
    ck_assert_int_eq(vt_model_load("lab", &other, err, sizeof err), 0);
    vt_shape box = {.kind = VT_SHAPE_BOX, .box = {20, 20, 40, 30}};
    ck_assert_int_eq(vt_stream_track(s, 1, NULL, &box, -1, NULL, err, sizeof err), 0);
    ck_assert_int_eq(vt_stream_set_model(s, NULL), AVERROR(EINVAL));
    ck_assert_ptr_eq(vt_stream_model(s), model);
    for (int f = 0; f < 3; f++)
        ck_assert_int_eq(vt_stream_step(s, NULL), 0);
    /* a swap asked and cancelled: nothing happens */
    ck_assert_int_eq(vt_stream_set_model(s, other), 0);
    ck_assert_ptr_eq(vt_stream_model_pending(s), other);
    ck_assert_int_eq(vt_stream_set_model(s, model), 0);
    ck_assert_ptr_null(vt_stream_model_pending(s));
    ck_assert_int_eq(vt_stream_step(s, NULL), 0);
    ck_assert_str_eq(w.log, "added 1 '' @0; ");
    /* a swap: taken on the next frame, the object kept */
    ck_assert_int_eq(vt_stream_set_model(s, other), 0);
    ck_assert_ptr_eq(vt_stream_model(s), model); /* not before the frame */
    ck_assert_int_eq(vt_stream_step(s, NULL), 0);
    ck_assert_ptr_eq(vt_stream_model(s), other);
    ck_assert_ptr_null(vt_stream_model_pending(s));
    ck_assert_str_eq(w.log, "added 1 '' @0; added 1 'the model changed' @4; ");
    vt_stream_snapshot snap;
    vt_stream_get_snapshot(s, &snap);
    ck_assert_int_eq(snap.nobjects, 1);
    ck_assert_int_eq(snap.objects[0].id, 1);
    while (vt_stream_step(s, NULL) == 0)
        ;
    ck_assert_int_eq(w.frames, 10);
    vt_stream_free(&s);
    vt_model_free(&other);
}
END_TEST

int main(void) {
    char err[256];
    if (vt_model_load("lab", &model, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    Suite *su = suite_create("stream");
    TCase *tc =
        tm_add_case(su, "objects", 30, test_listed_while_applied, test_live_keeps_given_frame,
                    test_missing_ends_once, test_model_swap, NULL);
    tcase_add_loop_test(tc, test_end_drops_pending, 0, 2);
    tcase_add_loop_test(tc, test_reason_utf8_cut, 0, 20);
    int status = tm_run(su);
    vt_model_free(&model);
    return status;
}
