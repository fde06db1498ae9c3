/* overlay_writer.c - see overlay_writer.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "overlay_writer.h"
#include "vt_base.h"

#define NSLOT          3
#define GAP_REPEAT_MAX 8 /* frames repeated to cover a gap of skipped frames */

typedef struct slot {
    int full;
    int w, h;
    uint8_t *rgb;    /* 3*w*h */
    uint8_t *labels; /* w*h, 0 or 1 + index into objs */
    size_t cap_rgb, cap_labels;
    int64_t index, pts;
    int tb_num, tb_den;
    int nobj;
    vt_overlay_object objs[VT_PROTO_OBJECTS_MAX]; /* labels point into labs */
    char labs[VT_PROTO_OBJECTS_MAX][VT_PROTO_LABEL_MAX + 1];
} slot;

struct vtd_overlay {
    char *name, *path;
    double seconds;
    pthread_t th;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    slot slots[NSLOT];
    int next_write; /* slot the feeder fills next (round robin) */
    int next_read;
    int stop;
    _Atomic int done; /* the file is complete: frames are no longer wanted */
    _Atomic uint64_t skipped;
    int w, h; /* size of the video: a source that changes size ends it */
};

void vtd_overlay_feed(vtd_overlay *ov, const vt_frame *f, const vt_track_result *r) {
    if (atomic_load(&ov->done) || !f || !r)
        return;
    pthread_mutex_lock(&ov->lock);
    slot *s = &ov->slots[ov->next_write];
    int busy = s->full;
    pthread_mutex_unlock(&ov->lock);
    if (busy) {
        atomic_fetch_add(&ov->skipped, 1); /* the encoder is behind: not in the video */
        return;
    }
    /* The slot is not full, so the writer does not touch it: copy without the lock. */
    size_t nrgb = (size_t)f->width * f->height * 3, nlab = (size_t)f->width * f->height;
    if (vt_reserve(&s->rgb, &s->cap_rgb, nrgb) < 0 ||
        vt_reserve(&s->labels, &s->cap_labels, nlab) < 0 || vt_frame_copy_rgb(f, 0, s->rgb) < 0)
        return;
    memcpy(s->labels, r->labels, nlab);
    s->w = f->width;
    s->h = f->height;
    s->index = f->index;
    s->pts = f->pts;
    s->tb_num = f->tb_num;
    s->tb_den = f->tb_den;
    s->nobj = r->n_objects < VT_PROTO_OBJECTS_MAX ? r->n_objects : VT_PROTO_OBJECTS_MAX;
    for (int i = 0; i < s->nobj; i++) {
        s->objs[i] = vt_stream_overlay_object(&r->objects[i], i + 1);
        snprintf(s->labs[i], sizeof s->labs[i], "%s", r->objects[i].label);
        s->objs[i].label = s->labs[i];
    }
    pthread_mutex_lock(&ov->lock);
    s->full = 1;
    ov->next_write = (ov->next_write + 1) % NSLOT;
    pthread_cond_signal(&ov->cond);
    pthread_mutex_unlock(&ov->lock);
}

/* Frame rate from two frames' timestamps (pts in time-base units, index in frames). */
static void rate_of(const slot *a, const slot *b, int *num, int *den) {
    *num = 25, *den = 1;
    if (a->pts == INT64_MIN || b->pts == INT64_MIN || a->tb_den <= 0 || b->index <= a->index)
        return;
    double dt = (double)(b->pts - a->pts) * a->tb_num / a->tb_den / (double)(b->index - a->index);
    if (dt > 1.0 / 240 && dt < 10)
        *num = (int)(1000.0 / dt + 0.5), *den = 1000;
}

static void release(vtd_overlay *ov, slot *s) {
    pthread_mutex_lock(&ov->lock);
    s->full = 0;
    pthread_mutex_unlock(&ov->lock);
}

/* Encode one slot (repeated to cover frames a live stream skipped). 1 when the video is done. */
static int encode(vtd_overlay *ov, vt_overlay *w, const slot *s, int64_t *last, int64_t limit) {
    char err[256];
    int64_t gap = *last >= 0 ? s->index - *last : 1;
    gap = gap < 1 ? 1 : gap > GAP_REPEAT_MAX ? GAP_REPEAT_MAX : gap;
    *last = s->index;
    for (int64_t k = 0; k < gap; k++) {
        if (vt_overlay_write(w, s->rgb, s->w, s->h, 3 * s->w, s->labels, s->objs, s->nobj, err,
                             sizeof err) < 0) {
            vtd_err("stream %s: overlay: %s", ov->name, err);
            return 1;
        }
        if (vt_overlay_frames(w) >= limit)
            return 1;
    }
    return 0;
}

static void *writer_main(void *arg) {
    vtd_overlay *ov = arg;
    vt_overlay *w = NULL;
    slot *held = NULL; /* the first frame, kept until the second gives the frame rate */
    char err[256];
    int64_t last = -1, limit = 0;
    int finished = 0;
    while (!finished) {
        pthread_mutex_lock(&ov->lock);
        while (!ov->stop && !ov->slots[ov->next_read].full)
            pthread_cond_wait(&ov->cond, &ov->lock);
        int stop = ov->stop;
        slot *s = &ov->slots[ov->next_read];
        if (!stop)
            ov->next_read = (ov->next_read + 1) % NSLOT;
        pthread_mutex_unlock(&ov->lock);
        if (stop)
            break;
        if (!w && !held) {
            held = s;
            continue;
        }
        if (!w) {
            vt_overlay_opts oo;
            vt_overlay_opts_default(&oo);
            rate_of(held, s, &oo.fps_num, &oo.fps_den);
            limit = (int64_t)(ov->seconds * oo.fps_num / oo.fps_den + 0.5);
            if (limit < 1)
                limit = 1;
            if (vt_overlay_new(&w, ov->path, held->w, held->h, &oo, err, sizeof err) < 0) {
                vtd_err("stream %s: overlay: %s", ov->name, err);
                release(ov, held);
                release(ov, s);
                break;
            }
            ov->w = held->w;
            ov->h = held->h;
            vtd_notice("stream %s: writing the overlay video %s (%.1f s at %.2f fps)", ov->name,
                       ov->path, ov->seconds, (double)oo.fps_num / oo.fps_den);
            finished = encode(ov, w, held, &last, limit);
            release(ov, held);
            held = NULL;
        }
        if (!finished && (s->w != ov->w || s->h != ov->h)) {
            vtd_warn("stream %s: overlay: the source changed size; the video ends here", ov->name);
            finished = 1;
        }
        if (!finished)
            finished = encode(ov, w, s, &last, limit);
        release(ov, s);
    }
    atomic_store(&ov->done, 1);
    if (w) {
        int64_t n = vt_overlay_frames(w);
        if (vt_overlay_close(w, err, sizeof err) < 0)
            vtd_err("stream %s: overlay: %s", ov->name, err);
        else
            vtd_notice("stream %s: overlay video %s written (%lld frames, %llu skipped while the "
                       "encoder was busy)",
                       ov->name, ov->path, (long long)n,
                       (unsigned long long)atomic_load(&ov->skipped));
        vt_overlay_free(&w);
    }
    return NULL;
}

int vtd_overlay_new(const char *name, const char *path, double seconds, vtd_overlay **out) {
    *out = NULL;
    vtd_overlay *ov = calloc(1, sizeof *ov);
    if (!ov)
        return -ENOMEM;
    ov->name = strdup(name);
    ov->path = strdup(path);
    ov->seconds = seconds;
    atomic_init(&ov->done, 0);
    pthread_mutex_init(&ov->lock, NULL);
    pthread_cond_init(&ov->cond, NULL);
    if (!ov->name || !ov->path || pthread_create(&ov->th, NULL, writer_main, ov) != 0) {
        free(ov->name);
        free(ov->path);
        pthread_mutex_destroy(&ov->lock);
        pthread_cond_destroy(&ov->cond);
        free(ov);
        return -ENOMEM;
    }
    *out = ov;
    return 0;
}

void vtd_overlay_free(vtd_overlay **pov) {
    vtd_overlay *ov = *pov;
    if (!ov)
        return;
    pthread_mutex_lock(&ov->lock);
    ov->stop = 1;
    pthread_cond_signal(&ov->cond);
    pthread_mutex_unlock(&ov->lock);
    pthread_join(ov->th, NULL);
    for (int i = 0; i < NSLOT; i++) {
        free(ov->slots[i].rgb);
        free(ov->slots[i].labels);
    }
    pthread_mutex_destroy(&ov->lock);
    pthread_cond_destroy(&ov->cond);
    free(ov->name);
    free(ov->path);
    free(ov);
    *pov = NULL;
}
