/* adapt_worker.c - see adapt_worker.h. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "vt_base.h"
#include "vt_train.h"

/* ---------------------------------------------------------------------------------------------
 * One run (the worker thread, or a test)
 * ------------------------------------------------------------------------------------------- */

static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* held[i] = 1 for `hold` of the n samples, chosen by the seed (a partial Fisher-Yates): among
 * the samples with objects when there are `hold` of them, so that the check can follow the
 * objects (*kind = VTD_CHECK_FOLLOW), else among all (*kind = VTD_CHECK_RECON). */
static int choose_held(const vtd_sample *s, int n, int hold, uint64_t seed, uint8_t *held,
                       int *kind) {
    int *idx = malloc((size_t)n * sizeof *idx), m = 0;
    if (!idx)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        held[i] = 0;
        if (s[i].nboxes[0] > 0)
            idx[m++] = i;
    }
    *kind = m >= hold ? VTD_CHECK_FOLLOW : VTD_CHECK_RECON;
    if (*kind == VTD_CHECK_RECON)
        for (int i = m = 0; i < n; i++)
            idx[m++] = i;
    for (int i = 0; i < hold && i < m; i++) {
        const int j = i + (int)(mix(&seed) % (uint64_t)(m - i));
        const int t = idx[i];
        idx[i] = idx[j], idx[j] = t;
        held[idx[i]] = 1;
    }
    free(idx);
    return 0;
}

static double box_iou(const int *a, const int *b) {
    const double da[4] = {a[0], a[1], a[2], a[3]}, db[4] = {b[0], b[1], b[2], b[3]};
    return vt_box_iou(da, db);
}

/* The follow check of model m on one sample (k frames im[]): a fresh tracker is given the
 * objects the live tracker had on the first frame (their boxes), and on each later frame that
 * lists some of them its boxes are compared with the live tracker's: the mean IoU over those
 * objects (an object the fresh tracker lost counts 0) is one score, appended to per[]. */
static int follow_sample(const vtd_adapt_run *run, const vt_model *m, const vtd_sample *s,
                         const vt_image *im, int k, double *per, int *np, char *err,
                         size_t errlen) {
    vt_tracker *t = NULL;
    int rc = vt_tracker_new(m, &run->params, &t, err, errlen);
    for (int j = 0; rc >= 0 && j < s->nboxes[0]; j++) {
        const int *b = s->boxes[0][j].box;
        const vt_shape shape = {.kind = VT_SHAPE_BOX,
                                .box = {(float)b[0], (float)b[1], (float)b[2], (float)b[3]}};
        rc = vt_tracker_add_object(t, s->boxes[0][j].id, NULL, &shape, err, errlen);
    }
    for (int f = 0; rc >= 0 && f < k; f++) {
        const vt_track_result *res;
        if ((rc = vt_tracker_step(t, &im[f], NULL, &res)) < 0) {
            vt_fmt(err, errlen, "the follow check could not track: %s", strerror(-rc));
            break;
        }
        double sum = 0;
        int cnt = 0;
        for (int j = 0; f > 0 && j < s->nboxes[f]; j++) {
            const vtd_obj_box *live = &s->boxes[f][j];
            int given = 0;
            for (int q = 0; q < s->nboxes[0]; q++)
                given |= s->boxes[0][q].id == live->id;
            if (!given)
                continue;
            cnt++;
            for (int q = 0; q < res->n_objects; q++)
                if (res->objects[q].id == live->id)
                    sum += box_iou(res->objects[q].bbox, live->box);
        }
        if (cnt)
            per[(*np)++] = sum / cnt;
    }
    vt_tracker_free(&t);
    return rc < 0 ? rc : 0;
}

/* The check of model m on the held-back samples: the follow scores (follow_sample) or the
 * recon check's per-pair scores (vt_check_score) appended to per[]. */
static int score_held(const vtd_adapt_run *run, const vt_model *m, const vtd_sample *s, int n,
                      const uint8_t *held, double *per, int *np, char *err, size_t errlen) {
    *np = 0;
    for (int i = 0; i < n; i++) {
        if (!held[i])
            continue;
        vt_image im[VTD_CLIP_MAX];
        const size_t fb = (size_t)3 * s[i].w * s[i].h;
        const int k = s[i].n < VTD_CLIP_MAX ? s[i].n : VTD_CLIP_MAX;
        for (int j = 0; j < k; j++)
            im[j] = (vt_image){
                .w = s[i].w, .h = s[i].h, .linesize = 3 * s[i].w, .rgb = s[i].rgb + j * fb};
        int rc;
        if (run->check == VTD_CHECK_FOLLOW) {
            rc = follow_sample(run, m, &s[i], im, k, per, np, err, errlen);
        } else {
            double score;
            rc = vt_check_score(m, &run->params, VT_CHECK_RECON, im, k, NULL, 0, &score, per + *np,
                                err, errlen);
            *np += k - 1;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

const char *vtd_check_name(int check) {
    return check == VTD_CHECK_FOLLOW ? "follow" : "recon";
}

/* What one score of the check is about. */
static const char *check_unit(int check) {
    return check == VTD_CHECK_FOLLOW ? "frames" : "pairs";
}

static double mean_of(const double *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return n ? s / n : 0;
}

/* Fine-tune the copy on the samples not held back. */
static int tune(vtd_adapt_run *run, vt_model *m, const vtd_sample *s, int n, const uint8_t *held) {
    vt_train_cfg cfg;
    int rc = vt_train_cfg_from_model(m, &cfg, run->err, sizeof run->err);
    if (rc < 0)
        return rc;
    cfg.steps = run->conf.steps;
    cfg.batch = run->conf.batch;
    cfg.lr = (float)run->conf.lr;
    cfg.warmup = run->conf.steps / 10;
    cfg.seed = run->run_seed;
    int short_side = 1 << 30;
    for (int i = 0; i < n; i++) {
        const int ss = s[i].w < s[i].h ? s[i].w : s[i].h;
        short_side = ss < short_side ? ss : short_side;
    }
    const int crop = short_side - short_side % 8;
    cfg.crop = crop < cfg.crop ? crop : cfg.crop;
    vt_train_data *d = NULL;
    if ((rc = vt_train_data_new((size_t)1 << 40, &d)) < 0) {
        vt_fmt(run->err, sizeof run->err, "out of memory");
        return rc;
    }
    int frames = 0;
    for (int i = 0; i < n && rc >= 0; i++) {
        if (held[i])
            continue;
        char name[32];
        snprintf(name, sizeof name, "s%05d", s[i].slot);
        if ((rc = vt_train_data_add_video(d, name, s[i].w, s[i].h)) < 0)
            break;
        const size_t fb = (size_t)3 * s[i].w * s[i].h;
        for (int j = 0; j < s[i].n && rc >= 0; j++)
            if ((rc = vt_train_data_add_frame(d, s[i].rgb + j * fb, 3 * s[i].w, j)) == 0)
                frames++;
    }
    if (rc >= 0 && vt_train_data_finish(d) < 2)
        rc = -EINVAL;
    if (rc < 0) {
        vt_fmt(run->err, sizeof run->err, "the samples could not be used for training (%s)",
               strerror(-rc));
        vt_train_data_free(&d);
        return rc;
    }
    time_t now = time(NULL);
    struct tm tmv;
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
    vt_fmt(run->provenance, sizeof run->provenance,
           "%d steps of %s on %d frames (%d samples of %d) of stream %s, %d samples held back "
           "(lr %g, batch %d, seed %llu), %s",
           cfg.steps, vt_train_objective_name(cfg.objective), frames, run->samples - run->held,
           run->conf.clip, run->stream, run->held, (double)cfg.lr, cfg.batch,
           (unsigned long long)cfg.seed, when);
    rc = vt_train_adapt(m, d, &cfg, run->provenance, NULL, run->loss, run->err, sizeof run->err);
    vt_train_data_free(&d);
    return rc;
}

/* Record the check with the weights, as the provenance of a saved copy. */
static int stamp(vtd_adapt_run *run, vt_model *m) {
    char v[128];
    int rc = 0;
    vt_fmt(v, sizeof v, "%s %.6f -> %.6f on %d %s of %d held-back samples, worst %+.6f (margin %g)",
           vtd_check_name(run->check), run->before, run->after, run->pairs, check_unit(run->check),
           run->held, run->worst, run->conf.margin);
    if (rc == 0)
        rc = vt_model_set_meta(m, "vtrack.adapt.check", v);
    vt_fmt(v, sizeof v, "%d", run->conf.steps);
    if (rc == 0)
        rc = vt_model_set_meta(m, "vtrack.adapt.steps", v);
    vt_fmt(v, sizeof v, "%d", (run->samples - run->held) * run->conf.clip);
    if (rc == 0)
        rc = vt_model_set_meta(m, "vtrack.adapt.frames", v);
    if (rc == 0)
        rc = vt_model_set_meta(m, "vtrack.adapt.stream", run->stream);
    if (rc == 0 && run->base[0])
        rc = vt_model_set_meta(m, "vtrack.adapt.base", run->base);
    return rc;
}

void vtd_adapt_run_once(vtd_adapt_run *run) {
    const double t0 = vt_mono_s();
    run->rc = 0;
    run->err[0] = 0;
    run->accepted = run->checked = 0;
    run->tuned = NULL;
    vtd_sample *s = NULL;
    int n = 0, pairs_max = 0, np0 = 0, np1 = 0;
    uint8_t *held = NULL;
    double *per = NULL;
    vt_model *m = NULL;
    int rc = vtd_samples_read(run->dir, &s, &n);
    if (rc < 0) {
        vt_fmt(run->err, sizeof run->err, "%s/frames: %s", run->dir, strerror(-rc));
        goto done;
    }
    run->samples = n;
    run->held = run->conf.hold;
    if (n < run->conf.min_samples || n <= run->held) {
        vt_fmt(run->err, sizeof run->err, "%d samples, the run needs %d", n, run->conf.min_samples);
        rc = -EAGAIN;
        goto done;
    }
    for (int i = 0; i < n; i++)
        pairs_max += (s[i].n < VTD_CLIP_MAX ? s[i].n : VTD_CLIP_MAX) - 1;
    held = malloc((size_t)n);
    per = malloc(2 * (size_t)pairs_max * sizeof *per);
    if (!held || !per ||
        (rc = choose_held(s, n, run->held, run->run_seed, held, &run->check)) < 0) {
        rc = -ENOMEM;
        vt_fmt(run->err, sizeof run->err, "out of memory");
        goto done;
    }
    if ((rc = vt_model_load(run->model_path, &m, run->err, sizeof run->err)) < 0 ||
        (rc = tune(run, m, s, n, held)) < 0)
        goto done;
    if (run->after_tune)
        run->after_tune(m, run->opaque);
    if ((rc = score_held(run, run->in_use, s, n, held, per, &np0, run->err, sizeof run->err)) < 0 ||
        (rc = score_held(run, m, s, n, held, per + pairs_max, &np1, run->err, sizeof run->err)) < 0)
        goto done;
    if (np0 == 0 || np1 != np0) { /* follow: the live tracker listed none of the objects */
        rc = -EINVAL;
        vt_fmt(run->err, sizeof run->err,
               "the held-back samples left the check nothing to compare (no later frame lists "
               "the objects of their first)");
        goto done;
    }
    run->pairs = np0;
    run->before = mean_of(per, np0);
    run->after = mean_of(per + pairs_max, np1);
    run->worst = per[pairs_max] - per[0];
    for (int i = 1; i < np0; i++) {
        const double gain = per[pairs_max + i] - per[i];
        run->worst = gain < run->worst ? gain : run->worst;
    }
    run->checked = 1;
    /* vtrack track --adapt's rule: the mean gain must outweigh the largest loss on one pair */
    run->accepted = isfinite(run->after) && isfinite(run->worst) &&
                    (run->after - run->before) + run->worst > run->conf.margin;
    if (run->accepted &&
        ((rc = stamp(run, m)) < 0 ||
         (run->save && (rc = vt_model_save(m, run->save, run->err, sizeof run->err)) < 0))) {
        run->accepted = 0;
        if (!run->err[0])
            vt_fmt(run->err, sizeof run->err, "%s", strerror(-rc));
    }
done:
    run->rc = rc < 0 ? rc : 0;
    if (run->accepted)
        run->tuned = m;
    else
        vt_model_free(&m);
    vtd_samples_free(&s, n);
    free(held);
    free(per);
    run->seconds = vt_mono_s() - t0;
}

/* ---------------------------------------------------------------------------------------------
 * The worker thread
 * ------------------------------------------------------------------------------------------- */

typedef struct job {
    vtd_srec *r; /* a reference */
    unsigned gen;
    vtd_model *in_use; /* a reference */
    vtd_adapt_run run;
} job;

struct vtd_adapter {
    vtd *d;
    pthread_t th;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;
    job *todo, *done; /* one run at a time */
    int busy;         /* todo taken, not done yet */
    uv_async_t async;
};

/* The lowest priority Linux has for a thread (SCHED_IDLE), else nice 19: the trackers always
 * come first. */
static void lower_priority(void) {
    struct sched_param sp = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
        vtd_debug("adapt: SCHED_IDLE refused: %s", strerror(errno));
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) < 0)
        vtd_debug("adapt: nice 19 refused: %s", strerror(errno));
}

static void *worker_main(void *arg) {
    vtd_adapter *a = arg;
    lower_priority();
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->todo && !a->stop)
            pthread_cond_wait(&a->cond, &a->lock);
        if (a->stop)
            break;
        job *j = a->todo;
        a->todo = NULL;
        a->busy = 1;
        pthread_mutex_unlock(&a->lock);
        vtd_adapt_run_once(&j->run);
        pthread_mutex_lock(&a->lock);
        a->busy = 0;
        if (a->stop) { /* the loop is gone: the result is dropped */
            vt_model_free(&j->run.tuned);
            free(j);
            break;
        }
        a->done = j;
        uv_async_send(&a->async);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static void on_done(uv_async_t *h);

static vtd_adapter *adapter_get(vtd *d) {
    if (d->adapter)
        return d->adapter;
    vtd_adapter *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->d = d;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    if (uv_async_init(d->loop, &a->async, on_done) < 0) {
        free(a);
        return NULL;
    }
    a->async.data = a;
    if (pthread_create(&a->th, NULL, worker_main, a) != 0) {
        uv_close((uv_handle_t *)&a->async, (uv_close_cb)free);
        return NULL;
    }
    d->adapter = a;
    return a;
}

static void adapter_closed(uv_handle_t *h) {
    vtd_adapter *a = h->data;
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a);
}

void vtd_adapt_shutdown(vtd *d) {
    vtd_adapter *a = d->adapter;
    if (!a)
        return;
    d->adapter = NULL;
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    const int busy = a->busy;
    job *todo = a->todo, *done = a->done;
    a->todo = a->done = NULL;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    for (job *j = todo; j; j = NULL) {
        vtd_model_unref(&j->in_use);
        vtd_srec_unref(j->r);
        free(j);
    }
    for (job *j = done; j; j = NULL) {
        vt_model_free(&j->run.tuned);
        vtd_model_unref(&j->in_use);
        vtd_srec_unref(j->r);
        free(j);
    }
    if (busy) {
        /* A run cannot be interrupted: the process exits without waiting for it. */
        vtd_notice("adapt: a run is under way; it is abandoned");
        pthread_detach(a->th);
        uv_close((uv_handle_t *)&a->async, NULL); /* `a` is the worker's until the exit */
        return;
    }
    pthread_join(a->th, NULL);
    uv_close((uv_handle_t *)&a->async, adapter_closed);
}

/* ---------------------------------------------------------------------------------------------
 * The loop: a stream's life
 * ------------------------------------------------------------------------------------------- */

static void publish_model(vtd_srec *r, const char *reason) {
    vtd *d = r->d;
    vtd_srec_adapt *ad = r->ad;
    const int adapted = r->model != ad->shipped;
    vt_proto_model_event ev = {
        .stream = r->conf.name,
        .model = adapted ? "adapted" : "shipped",
        .reason = reason,
        .provenance = adapted ? vt_model_meta(r->model->m, "vtrack.adapt") : NULL,
        .checked = adapted && ad->checked && strcmp(reason, "accepted") == 0,
        .before = ad->before,
        .after = ad->after,
    };
    vtd_msg *m = vtd_msg_new(&d->hub, 512);
    if (!m)
        return;
    if (vt_proto_write_model_event(&m->buf, &ev) < 0) {
        vtd_msg_unref(&d->hub, m);
        return;
    }
    vtd_hub_publish(&d->hub, r->conf.name, m);
}

/* Track with `mm` (a reference, taken over) from the next frame on. */
static void swap_model(vtd_srec *r, vtd_model *mm) {
    vtd_srec_adapt *ad = r->ad;
    int k = 0;
    while (k < VTD_ADAPT_RETIRED && ad->retired[k])
        k++;
    if (k == VTD_ADAPT_RETIRED) { /* cannot happen with the tick releasing them: keep it */
        vtd_warn("stream %s: too many models waiting to be released", r->conf.name);
        vtd_model_unref(&mm);
        return;
    }
    ad->retired[k] = r->model;
    r->model = mm;
    vt_stream_set_model(r->s, mm->m);
}

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
    vt_fmt(ad->model_path, sizeof ad->model_path, "%s/model.safetensors", ad->dir);
    char err[512];
    if (vtd_reservoir_open(ad->dir, &r->conf.adapt, &ad->res, err, sizeof err) < 0) {
        vtd_warn("stream %s: adapt: %s: adaptation is off", r->conf.name, err);
        free(ad);
        return 0;
    }
    ad->shipped = vtd_model_ref(*model);
    r->ad = ad;
    struct stat st;
    if (stat(ad->model_path, &st) == 0) {
        vtd_model *mm = NULL;
        if (vtd_model_load(ad->model_path, &mm, err, sizeof err) < 0) {
            vtd_warn("stream %s: adapt: the saved model cannot be loaded (%s): the shipped one "
                     "is used",
                     r->conf.name, err);
        } else if (!vt_model_meta(mm->m, "vtrack.adapt.base") ||
                   strcmp(vt_model_meta(mm->m, "vtrack.adapt.base"), (*model)->name) != 0) {
            /* adapted from other weights than the server's: those are what the operator chose */
            vtd_warn("stream %s: adapt: the saved model was adapted from %s, the server's model "
                     "is %s: the server's is used (reset_model deletes the saved one)",
                     r->conf.name,
                     vt_model_meta(mm->m, "vtrack.adapt.base")
                         ? vt_model_meta(mm->m, "vtrack.adapt.base")
                         : "unknown weights",
                     (*model)->name);
            vtd_model_unref(&mm);
        } else {
            vtd_notice("stream %s: adapt: tracking with its saved model (%s)", r->conf.name,
                       vt_model_meta(mm->m, "vtrack.adapt.check")
                           ? vt_model_meta(mm->m, "vtrack.adapt.check")
                           : "no check recorded");
            vtd_model_unref(model);
            *model = mm;
        }
    }
    return 0;
}

void vtd_adapt_stream_free(vtd_srec *r) {
    vtd_srec_adapt *ad = r->ad;
    if (!ad)
        return;
    vtd_reservoir_free(&ad->res);
    for (int k = 0; k < VTD_ADAPT_RETIRED; k++)
        vtd_model_unref(&ad->retired[k]);
    vtd_model_unref(&ad->shipped);
    free(ad);
    r->ad = NULL;
}

void vtd_adapt_frame(vtd_srec *r, const vt_frame *f, const vt_track_result *res) {
    if (!vtd_reservoir_wants(r->ad->res, f->arrival_mono_us))
        return; /* most frames: not part of a sample */
    vtd_obj_box boxes[VTD_SAMPLE_BOXES];
    int n = 0;
    for (int i = 0; res && i < res->n_objects && n < VTD_SAMPLE_BOXES; i++) {
        const vt_object_result *o = &res->objects[i];
        if ((o->state == VT_OBJECT_TRACKING || o->state == VT_OBJECT_RECOVERED) && o->bbox[2] > 0 &&
            o->bbox[3] > 0) {
            boxes[n].id = o->id;
            memcpy(boxes[n++].box, o->bbox, sizeof boxes[0].box);
        }
    }
    vtd_reservoir_frame(r->ad->res, f->rgb, f->width, f->height, f->linesize, f->arrival_mono_us,
                        boxes, n);
}

int vtd_adapt_reset(vtd_srec *r) {
    vtd_srec_adapt *ad = r->ad;
    if (!ad)
        return -ENOENT;
    ad->gen++; /* a run under way is discarded */
    if (unlink(ad->model_path) < 0 && errno != ENOENT)
        vtd_warn("stream %s: adapt: %s: %s", r->conf.name, ad->model_path, strerror(errno));
    if (r->model != ad->shipped) {
        swap_model(r, vtd_model_ref(ad->shipped));
        publish_model(r, "reset");
    }
    vt_fmt(ad->last, sizeof ad->last, "reset to the shipped model");
    ad->checked = 0;
    vtd_notice("stream %s: adapt: reset to the shipped model", r->conf.name);
    return 0;
}

/* A run is back on the loop. */
static void finish(vtd *d, job *j) {
    vtd_srec *r = j->r;
    vtd_srec_adapt *ad = r->ad;
    vtd_adapt_run *run = &j->run;
    const int stale = atomic_load(&r->detached) || r->stopping || !ad || j->gen != ad->gen;
    if (ad)
        ad->running = 0;
    if (stale) {
        if (run->accepted && ad && j->gen != ad->gen)
            unlink(ad->model_path); /* saved after a reset asked for the shipped model */
        vt_model_free(&run->tuned);
        goto out;
    }
    ad->last_run_ms = vt_mono_us() / 1000;
    ad->runs++;
    ad->checked = run->checked;
    ad->before = run->before;
    ad->after = run->after;
    if (run->rc < 0) {
        ad->failed++;
        vt_fmt(ad->last, sizeof ad->last, "failed: %s", run->err);
        vtd_warn("stream %s: adapt: run failed after %.1f s: %s", r->conf.name, run->seconds,
                 run->err);
    } else {
        const char *verdict = run->accepted ? "accepted" : "rejected";
        *(run->accepted ? &ad->accepted : &ad->rejected) += 1;
        const char *kind = vtd_check_name(run->check), *unit = check_unit(run->check);
        vt_fmt(ad->last, sizeof ad->last, "%s: %s %.4f -> %.4f on %d %s, worst %+.4f", verdict,
               kind, run->before, run->after, run->pairs, unit, run->worst);
        vtd_notice("stream %s: adapt: %s (%s %.4f -> %.4f on %d held-back %s, worst %+.4f, loss "
                   "%.4f -> %.4f, %.1f s): %s%s",
                   r->conf.name, verdict, kind, run->before, run->after, run->pairs, unit,
                   run->worst, run->loss[0], run->loss[1], run->seconds,
                   run->accepted ? "saved as " : "the model is kept",
                   run->accepted ? ad->model_path : "");
    }
    if (run->rc == 0 && run->accepted) {
        vtd_model *mm = calloc(1, sizeof *mm);
        if (!mm) {
            vt_model_free(&run->tuned);
            goto out;
        }
        mm->m = run->tuned;
        run->tuned = NULL;
        atomic_init(&mm->refs, 1);
        vt_fmt(mm->name, sizeof mm->name, "%s", ad->model_path);
        swap_model(r, mm);
        publish_model(r, "accepted");
    }
out:
    (void)d;
    vtd_model_unref(&j->in_use);
    vtd_srec_unref(r);
    free(j);
}

static void on_done(uv_async_t *h) {
    vtd_adapter *a = h->data;
    pthread_mutex_lock(&a->lock);
    job *j = a->done;
    a->done = NULL;
    pthread_mutex_unlock(&a->lock);
    if (j)
        finish(a->d, j);
    vtd_adapt_tick(a->d); /* the next stream may be waiting */
}

/* ---------------------------------------------------------------------------------------------
 * The loop: when to write, release and run
 * ------------------------------------------------------------------------------------------- */

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

/* Idle enough to train: the 1-minute load per CPU below max_load, or a configured hour. */
static int idle_now(const vtd_adapt_conf *c) {
    if (c->hours_from >= 0) {
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        const int h = tmv.tm_hour;
        const int in = c->hours_from < c->hours_to ? h >= c->hours_from && h < c->hours_to
                                                   : h >= c->hours_from || h < c->hours_to;
        if (in)
            return 1;
    }
    double load;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (getloadavg(&load, 1) != 1)
        return 0;
    return load / (double)(ncpu > 0 ? ncpu : 1) < c->max_load;
}

static void start_run(vtd *d, vtd_srec *r) {
    vtd_srec_adapt *ad = r->ad;
    vtd_adapter *a = adapter_get(d);
    job *j = calloc(1, sizeof *j);
    if (!a || !j) {
        free(j);
        return;
    }
    vt_stream_config scfg;
    char err[256];
    if (vtd_stream_conf_to_stream(&r->conf, r->model->m, &scfg, err, sizeof err) < 0) {
        free(j);
        return;
    }
    vtd_adapt_run *run = &j->run;
    vt_fmt(run->dir, sizeof run->dir, "%s", ad->dir);
    vt_fmt(run->model_path, sizeof run->model_path, "%s", r->model->name);
    vt_fmt(run->base, sizeof run->base, "%s", ad->shipped->name);
    run->conf = r->conf.adapt;
    run->params = scfg.params;
    vt_fmt(run->stream, sizeof run->stream, "%s", r->conf.name);
    run->run_seed = (uint64_t)r->conf.adapt.seed * 1000003ULL + ad->runs + 1;
    run->save = ad->model_path;
    j->in_use = vtd_model_ref(r->model);
    run->in_use = j->in_use->m;
    j->gen = ad->gen;
    j->r = r;
    atomic_fetch_add(&r->refs, 1);
    ad->running = 1;
    vtd_info("stream %s: adapt: a run starts (%d steps on its samples)", r->conf.name,
             run->conf.steps);
    pthread_mutex_lock(&a->lock);
    a->todo = j;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

void vtd_adapt_tick(vtd *d) {
    VTD_ASSERT_LOOP(d);
    if (d->stopping)
        return;
    const int64_t now = vt_mono_us() / 1000;
    /* one run at a time: the worker's, even for a stream removed meanwhile */
    int busy = 0;
    if (d->adapter) {
        vtd_adapter *a = d->adapter;
        pthread_mutex_lock(&a->lock);
        busy = a->busy || a->todo || a->done;
        pthread_mutex_unlock(&a->lock);
    }
    for (vtd_srec *r = d->streams; r; r = r->next) {
        vtd_srec_adapt *ad = r->ad;
        if (!ad)
            continue;
        if (!ad->writing && vtd_reservoir_due(ad->res)) {
            ad->writing = 1;
            ad->write_work.data = r;
            atomic_fetch_add(&r->refs, 1);
            if (uv_queue_work(d->loop, &ad->write_work, write_work, after_write) < 0) {
                ad->writing = 0;
                vtd_srec_unref(r);
            }
        }
        /* a swapped-out model goes once the tracker has let go of it */
        for (int k = 0; k < VTD_ADAPT_RETIRED; k++)
            if (ad->retired[k] && vt_stream_model(r->s) != ad->retired[k]->m &&
                vt_stream_model_pending(r->s) != ad->retired[k]->m)
                vtd_model_unref(&ad->retired[k]);
        if (busy || ad->running)
            continue;
        const vtd_adapt_conf *c = &r->conf.adapt;
        vtd_reservoir_stats st;
        vtd_reservoir_get_stats(ad->res, &st);
        if (st.samples < c->min_samples ||
            (ad->last_run_ms && now - ad->last_run_ms < c->interval_ms))
            continue;
        if (!idle_now(c))
            continue;
        start_run(d, r);
        busy = 1;
    }
}

void vtd_adapt_get_stats(vtd_srec *r, vt_proto_adapt_stats *st) {
    vtd_srec_adapt *ad = r->ad;
    vtd_reservoir_stats rs;
    vtd_reservoir_get_stats(ad->res, &rs);
    const int adapted = r->model != ad->shipped;
    *st = (vt_proto_adapt_stats){
        .model = adapted ? "adapted" : "shipped",
        .provenance = adapted ? vt_model_meta(r->model->m, "vtrack.adapt") : NULL,
        .samples = rs.samples,
        .capacity = rs.capacity,
        .bytes = rs.bytes,
        .budget_bytes = rs.budget,
        .offered = rs.offered,
        .skipped = rs.skipped,
        .runs = ad->runs,
        .accepted = ad->accepted,
        .rejected = ad->rejected,
        .failed = ad->failed,
        .running = ad->running,
        .checked = ad->checked,
        .before = ad->before,
        .after = ad->after,
        .last = ad->last[0] ? ad->last : NULL,
    };
}
