/* adapt_worker.c - see adapt_worker.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "vt_base.h"

int vtd_adapt_stream_init(vtd *d, vtd_srec *r, vtd_model **model) {
    if (!r->conf.adapt.enabled)
        return 0;
    char sbuf[4096];
    const char *state = vtd_config_state_dir(d->cfg, sbuf, sizeof sbuf);
    if (!state) {
        vtd_warn("stream %s: adapt needs a state directory (state_dir): adaptation is off",
                 r->conf.name);
        return 0;
    }
    if (strcmp((*model)->name, "lab") == 0) {
        vtd_warn("stream %s: the lab model has no weights to adapt: adaptation is off",
                 r->conf.name);
        return 0;
    }
    vtd_srec_adapt *ad = calloc(1, sizeof *ad);
    if (!ad)
        return -ENOMEM;
    vt_fmt(ad->dir, sizeof ad->dir, "%s/adapt/%s", state, r->conf.name);
    char err[512];
    if (vtd_reservoir_open(ad->dir, &r->conf.adapt, &ad->res, err, sizeof err) < 0) {
        vtd_warn("stream %s: adapt: %s: adaptation is off", r->conf.name, err);
        free(ad);
        return 0;
    }
    r->ad = ad;
    return 0;
}

void vtd_adapt_stream_free(vtd_srec *r) {
    vtd_srec_adapt *ad = r->ad;
    if (!ad)
        return;
    vtd_reservoir_free(&ad->res);
    free(ad);
    r->ad = NULL;
}

void vtd_adapt_frame(vtd_srec *r, const vt_frame *f) {
    vtd_reservoir_frame(r->ad->res, f->rgb, f->width, f->height, f->linesize,
                        f->arrival_mono_us);
}

static void write_work(uv_work_t *w) {
    vtd_srec *r = w->data;
    char err[512];
    if (vtd_reservoir_write(r->ad->res, err, sizeof err) < 0)
        vtd_warn("stream %s: adapt: a sample was not kept: %s", r->conf.name, err);
}

static void after_write(uv_work_t *w, int status) {
    (void)status;
    vtd_srec *r = w->data;
    r->ad->writing = 0;
    vtd_srec_unref(r);
}

void vtd_adapt_tick(vtd *d) {
    VTD_ASSERT_LOOP(d);
    if (d->stopping)
        return;
    for (vtd_srec *r = d->streams; r; r = r->next) {
        vtd_srec_adapt *ad = r->ad;
        if (!ad || ad->writing || !vtd_reservoir_due(ad->res))
            continue;
        ad->writing = 1;
        ad->write_work.data = r;
        atomic_fetch_add(&r->refs, 1);
        if (uv_queue_work(d->loop, &ad->write_work, write_work, after_write) < 0) {
            ad->writing = 0;
            vtd_srec_unref(r);
        }
    }
}

void vtd_adapt_get_stats(vtd_srec *r, vt_proto_adapt_stats *st) {
    vtd_reservoir_stats rs;
    vtd_reservoir_get_stats(r->ad->res, &rs);
    *st = (vt_proto_adapt_stats){
        .model = "shipped",
        .samples = rs.samples,
        .capacity = rs.capacity,
        .bytes = rs.bytes,
        .budget_bytes = rs.budget,
        .offered = rs.offered,
        .skipped = rs.skipped,
    };
}
