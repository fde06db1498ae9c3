/* live.c - see live.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "live.h"
#include "vt_base.h"
#include "vt_codec.h"

int vtd_live_init(vtd_live *l) {
    memset(l, 0, sizeof *l);
    atomic_init(&l->want, 0);
    atomic_init(&l->interval_us, 100000);
    return -pthread_mutex_init(&l->lock, NULL);
}

void vtd_live_clear(vtd_live *l, vtd_hub *h) {
    vtd_msg_unref(h, l->latest);
    vtd_msg_unref(h, l->out);
    free(l->rgb);
    vt_proto_buf_free(&l->json);
    vt_jpeg_free(&l->jpeg);
    pthread_mutex_destroy(&l->lock);
    memset(l, 0, sizeof *l);
}

/* Copy the frame and "{" + its event (masks, no newline) into the slot; under the lock. */
static int copy_frame(vtd_live *l, const vt_stream_event *ev) {
    const vt_frame *f = ev->frame;
    size_t row = (size_t)f->width * 3, need = row * (size_t)f->height;
    if (vt_reserve(&l->rgb, &l->rgb_cap, need) < 0)
        return -ENOMEM;
    for (int y = 0; y < f->height; y++)
        memcpy(l->rgb + row * (size_t)y, f->rgb + (size_t)f->linesize * (size_t)y, row);
    size_t n = ev->tail_masks_len;
    while (n && (ev->tail_masks[n - 1] == '\n'))
        n--;
    if (vtd_tail_object(&l->json, ev->tail_masks, n) < 0)
        return -ENOMEM;
    l->w = f->width;
    l->h = f->height;
    l->index = f->index;
    return 0;
}

int vtd_live_offer(vtd_live *l, const vt_stream_event *ev) {
    if (!atomic_load(&l->want) || !ev->frame || !ev->frame->rgb || !ev->tail_masks)
        return 0;
    int64_t now = vt_mono_us();
    if (pthread_mutex_trylock(&l->lock) != 0)
        return 0;
    int copied = 0;
    /* Due a quarter of an interval early: a camera at exactly frame_rate, whose frames arrive
     * with some jitter, has every frame copied rather than one in two or three skipped. next_us
     * advances by an interval a copy (from no earlier than now - slack), so the rate stays at
     * most frame_rate over time. */
    int64_t iv = atomic_load(&l->interval_us), slack = iv / 4;
    if (!l->busy && now >= l->next_us - slack) {
        copied = copy_frame(l, ev) == 0;
        l->fresh = copied;
        if (copied)
            l->next_us = (l->next_us > now - slack ? l->next_us : now - slack) + iv;
    }
    pthread_mutex_unlock(&l->lock);
    return copied;
}

int vtd_live_encode(vtd_live *l, vtd_hub *h) {
    /* busy is set: the tracker does not touch the slot, so no lock is needed to read it. */
    const uint8_t *jpg;
    size_t jlen;
    int rc = 0;
    l->out = NULL;
    if (!l->jpeg && (rc = vt_jpeg_new(l->quality, &l->jpeg)) < 0) {
        snprintf(l->err, sizeof l->err, "out of memory");
        return rc;
    }
    if ((rc = vt_jpeg_encode(l->jpeg, l->rgb, l->w, l->h, l->w * 3, &jpg, &jlen, l->err,
                             sizeof l->err)) < 0)
        return rc;
    size_t n = l->json.len;
    vtd_msg *m = vtd_msg_new(h, 4 + n + jlen);
    if (!m) {
        snprintf(l->err, sizeof l->err, "out of memory");
        return -ENOMEM;
    }
    unsigned char *p = (unsigned char *)m->buf.data;
    p[0] = (unsigned char)(n >> 24);
    p[1] = (unsigned char)(n >> 16);
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
    memcpy(p + 4, l->json.data, n);
    memcpy(p + 4 + n, jpg, jlen);
    m->buf.len = 4 + n + jlen;
    l->out = m;
    return 0;
}
