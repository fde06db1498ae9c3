/*
 * daemon.c - the services of the running daemon, on the loop thread (see daemon.h): the clocks,
 * the housekeeping timer (idle clients, STATUS=, WATCHDOG=1), signals (SIGTERM/SIGINT stop,
 * SIGHUP reloads), the orderly shutdown, the shared model and the reload. vtrackd.c starts them;
 * the other modules (hub, server, streams, control) call them, and link without vtrackd.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "log.h"
#include "notify.h"
#include "vt_config.h"

#define TICK_MS          500
#define TRACKER_STALE_US (30 * 1000000LL) /* one frame never takes this long */

/* ---------------------------------------------------------------------------------------------
 * STATUS= and the watchdog
 * ------------------------------------------------------------------------------------------- */

static int g_status_dirty = 1;

void vtd_status_dirty(vtd *d) {
    (void)d; /* without NDEBUG */
    VTD_ASSERT_LOOP(d);
    g_status_dirty = 1;
}

static void send_status(vtd *d) {
    int up = 0, subs = 0;
    for (vtd_srec *r = d->streams; r; r = r->next)
        up += r->state == VT_PROTO_STREAM_UP;
    for (vtd_conn *c = d->conns; c; c = c->next)
        subs += c->subscribed;
    char st[160];
    if (d->stopping)
        snprintf(st, sizeof st, "STATUS=stopping");
    else
        snprintf(st, sizeof st, "STATUS=%d/%d streams up, %d subscriber%s, %d client%s", up,
                 d->nstreams, subs, subs == 1 ? "" : "s", d->nconns, d->nconns == 1 ? "" : "s");
    if (strcmp(st, d->status) != 0) {
        vtd_notify(st);
        snprintf(d->status, sizeof d->status, "%s", st);
    }
    g_status_dirty = 0;
}

/* The loop is alive (this runs on it); are the stream threads? A thread blocked in a bounded
 * FFmpeg call or a reconnection backoff still counts as alive within its bounds. */
static int streams_alive(vtd *d) {
    static vt_stream_snapshot snap; /* loop thread only; large */
    int64_t now = vt_mono_us();
    for (vtd_srec *r = d->streams; r; r = r->next) {
        if (!r->started)
            continue;
        vt_stream_get_snapshot(r->s, &snap);
        if (snap.state == VT_PROTO_STREAM_ENDED)
            continue; /* its threads have finished */
        const vtd_stream_conf *c = &r->conf;
        int64_t wait =
            c->connect_timeout_ms > c->read_timeout_ms ? c->connect_timeout_ms : c->read_timeout_ms;
        if (c->stall_ms > wait)
            wait = c->stall_ms;
        int64_t ingest_us = (wait + c->backoff_max_ms + 10000) * 1000;
        int64_t age0 = now - snap.heartbeat_mono_us[0], age1 = now - snap.heartbeat_mono_us[1];
        if (age0 > ingest_us || age1 > TRACKER_STALE_US) {
            vtd_warn("stream %s: the %s thread has not checked in for %.1f s: withholding the "
                     "watchdog ping",
                     c->name, age0 > ingest_us ? "ingest" : "tracker",
                     (age0 > ingest_us ? age0 : age1) / 1e6);
            return 0;
        }
    }
    return 1;
}

static int64_t g_last_ping_us;

static void on_tick(uv_timer_t *t) {
    vtd *d = t->data;
    int64_t now = vt_mono_us() / 1000;
    vtd_server_sweep(d, now);
    vtd_adapt_tick(d);
    if (g_status_dirty)
        send_status(d);
    if (d->watchdog_usec && !d->stopping) {
        int64_t us = vt_mono_us();
        /* Ping at half the interval, only while everything checked in. */
        if (us - g_last_ping_us >= (int64_t)d->watchdog_usec / 2 - TICK_MS * 500 &&
            streams_alive(d)) {
            vtd_notify("WATCHDOG=1");
            g_last_ping_us = us;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Shutdown
 * ------------------------------------------------------------------------------------------- */

static int g_flushing, g_finished;

static void close_cb_noop(uv_handle_t *h) {
    (void)h;
}

void vtd_maybe_finish(vtd *d) {
    VTD_ASSERT_LOOP(d);
    if (!d->stopping || d->ndying > 0)
        return;
    if (!g_flushing) {
        /* Every stream has stopped: deliver what they said last, then let subscribers drain. */
        g_flushing = 1;
        vtd_hub_drain_all(&d->hub);
        vtd_server_shutdown(d);
    }
    if (d->conns || g_finished)
        return;
    g_finished = 1;
    vtd_info("all clients flushed; exiting");
    vtd_mqtt_stop(&d->mqtt); /* after the last events: `offline` is its last word */
    vtd_http_stop(&d->http);
    vtd_adapt_shutdown(d);
    vtd_hub_close(&d->hub);
    if (!uv_is_closing((uv_handle_t *)&d->tick))
        uv_close((uv_handle_t *)&d->tick, close_cb_noop);
    uv_close((uv_handle_t *)&d->sig_term, close_cb_noop);
    uv_close((uv_handle_t *)&d->sig_int, close_cb_noop);
    uv_close((uv_handle_t *)&d->sig_hup, close_cb_noop);
    /* Closing the handles restored the default actions: a late SIGTERM must not turn a clean
     * exit into a death by signal. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    vtd_server_close_listeners(d);
}

static void begin_stop(vtd *d, const char *why) {
    if (d->stopping) {
        /* A second signal: stop waiting for slow clients. */
        vtd_notice("%s again: closing every client now", why);
        vtd_conn *next;
        for (vtd_conn *c = d->conns; c; c = next) {
            next = c->next;
            vtd_conn_close(c, "server stopping");
        }
        return;
    }
    d->stopping = 1;
    vtd_notify("STOPPING=1");
    vtd_notice("%s: stopping", why);
    send_status(d);
    vtd_server_close_listeners(d);
    vtd_persist_close(d); /* samples the streams' last frames: before they go */
    while (d->streams)
        vtd_streams_remove(d->streams, "server stopping");
    vtd_maybe_finish(d);
}

static void vtd_reload(vtd *d);

static void start_mqtt(vtd *d, const vtd_mqtt_conf *mc) {
    if (vtd_mqtt_start(d->loop, mc, &d->mqtt) < 0)
        vtd_err("mqtt: cannot start the sink (out of memory)");
}

static void on_signal(uv_signal_t *s, int signum) {
    vtd *d = s->data;
    if (signum == SIGHUP) {
        vtd_reload(d);
        return;
    }
    begin_stop(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---------------------------------------------------------------------------------------------
 * Reload
 * ------------------------------------------------------------------------------------------- */

vtd_model *vtd_model_ref(vtd_model *mm) {
    atomic_fetch_add(&mm->refs, 1);
    return mm;
}

void vtd_model_unref(vtd_model **mm) {
    if (*mm && atomic_fetch_sub(&(*mm)->refs, 1) == 1) {
        vt_model_free(&(*mm)->m);
        free(*mm);
    }
    *mm = NULL;
}

/* The model a configuration names: its `model`, else the default lookup. */
const char *vtd_model_name(const vtd_config *cfg, char *buf, size_t len) {
    return cfg->model ? cfg->model : vt_stream_default_model(buf, len);
}

int vtd_model_load(const char *name, vtd_model **out, char *err, size_t errlen) {
    vtd_model *mm = calloc(1, sizeof *mm);
    if (!mm) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -ENOMEM;
    }
    snprintf(mm->name, sizeof mm->name, "%s", name);
    err[0] = 0;
    int rc = vt_model_load(name, &mm->m, err, errlen);
    if (rc < 0) {
        if (!err[0]) /* a failure always says why (the reload tells failure by it) */
            snprintf(err, errlen, "%s: %s", name, strerror(-rc));
        free(mm);
        return rc;
    }
    atomic_init(&mm->refs, 1);
    *out = mm;
    vtd_info("model: %s (%s, stride %d)", name, vt_model_arch(mm->m), vt_model_stride(mm->m));
    return 0;
}

/* Thread pool: reading the file, its mask PNGs and a new model is blocking work. d->model is
 * only replaced by after_reload, on the loop thread, and one reload runs at a time. */
static void reload_work(uv_work_t *w) {
    vtd *d = w->data;
    d->reload_err[0] = 0;
    d->reload_model_err[0] = 0;
    d->reload_model = NULL;
    if (vtd_config_load(&d->cli, &d->reload_cfg, d->reload_err, sizeof d->reload_err) < 0) {
        d->reload_cfg = NULL;
        return;
    }
    char buf[4096];
    const char *name = vtd_model_name(d->reload_cfg, buf, sizeof buf);
    if (strcmp(name, d->model->name) != 0 &&
        vtd_model_load(name, &d->reload_model, d->reload_model_err, sizeof d->reload_model_err) < 0)
        d->reload_model = NULL;
}

static int same_listen(const vtd_config *a, const vtd_config *b) {
    if (a->nlisten != b->nlisten)
        return 0;
    for (int i = 0; i < a->nlisten; i++)
        if (strcmp(a->listen[i], b->listen[i]) != 0)
            return 0;
    return 1;
}

/* A new token applies to the clients already connected: those authorised before (with the old
 * token, or when none was needed) are disconnected and must say hello with the new one; without
 * a token any more, every client is authorised. */
static void reload_token(vtd *d, const vtd_config *nc) {
    const char *was = d->cfg->token, *now = nc->token;
    if ((!was && !now) || (was && now && strcmp(was, now) == 0))
        return;
    int n = 0;
    for (vtd_conn *c = d->conns, *next; c; c = next) {
        next = c->next; /* closing unlinks c */
        if (!now) {
            c->authed = 1;
        } else if (c->authed) {
            vtd_conn_close(c, "the token changed");
            n++;
        }
    }
    if (now)
        vtd_notice("reload: token %s: %d authorised client%s disconnected", was ? "changed" : "set",
                   n, n == 1 ? "" : "s");
    else
        vtd_notice("reload: token removed: every client is authorised");
}

/* A changed "mqtt" section: the sink reconnects with the new settings (or starts, or stops). */
static void reload_mqtt(vtd *d, const vtd_config *nc) {
    const vtd_mqtt_conf *was = &d->cfg->mqtt, *now = &nc->mqtt;
    if (was->enabled == now->enabled &&
        (!now->enabled || strcmp(was->fingerprint, now->fingerprint) == 0))
        return;
    if (!now->enabled) {
        vtd_notice("reload: mqtt removed: disconnecting");
        vtd_mqtt_stop(&d->mqtt);
    } else if (!d->mqtt) {
        start_mqtt(d, now);
    } else if (vtd_mqtt_reconfigure(d->mqtt, now) < 0) {
        vtd_err("reload: mqtt: out of memory: keeping the running settings");
    }
}

static void after_reload(uv_work_t *w, int status) {
    (void)status;
    vtd *d = w->data;
    d->reloading = 0;
    vtd_config *nc = d->reload_cfg;
    d->reload_cfg = NULL;
    if (!nc) {
        vtd_err("reload: %s: keeping the running configuration", d->reload_err);
        vtd_notify("READY=1");
        return;
    }
    if (d->stopping) {
        vtd_model_unref(&d->reload_model);
        vtd_config_free(&nc);
        return;
    }
    if (!same_listen(d->cfg, nc) && !d->activated &&
        vtd_server_relisten(d, nc->listen, nc->nlisten) < 0) {
        /* The old addresses still serve: the configuration in force says so. */
        vtd_err("reload: listen: keeping the running addresses");
        char *tmp[VTD_LISTEN_MAX];
        int ntmp = nc->nlisten;
        memcpy(tmp, nc->listen, sizeof tmp);
        memcpy(nc->listen, d->cfg->listen, sizeof tmp);
        nc->nlisten = d->cfg->nlisten;
        memcpy(d->cfg->listen, tmp, sizeof tmp);
        d->cfg->nlisten = ntmp;
    }
    int model_changed = 0;
    if (d->reload_model_err[0]) {
        vtd_err("reload: model: %s: keeping %s", d->reload_model_err, d->model->name);
        char *tmp = nc->model; /* the configuration in force names the running model */
        nc->model = d->cfg->model;
        d->cfg->model = tmp;
    } else if (d->reload_model) {
        vtd_notice("reload: model %s: the configured streams restart with it",
                   d->reload_model->name);
        vtd_model_unref(&d->model); /* the running streams keep their own references */
        d->model = d->reload_model;
        d->reload_model = NULL;
        model_changed = 1;
    }
    if (d->cfg->blas_threads != nc->blas_threads)
        vtd_warn("reload: blas_threads changed: takes effect at the next restart");
    vtd_log_set_level(nc->log_level);
    reload_token(d, nc);
    reload_mqtt(d, nc);
    vtd_http_reload(d, nc);
    vtd_streams_reload(d, nc, model_changed);
    vtd_config *old = d->cfg;
    d->cfg = nc;
    vtd_config_free(&old);
    vtd_notice("reload: configuration %s applied (%d streams)", nc->path ? nc->path : "",
               d->nstreams);
    vtd_notify("READY=1");
    send_status(d);
}

static void vtd_reload(vtd *d) {
    if (d->stopping)
        return;
    if (!d->cli.config_path) {
        vtd_notice("SIGHUP: started without --config, nothing to reload");
        return;
    }
    if (d->reloading) {
        vtd_notice("SIGHUP: a reload is already running");
        return;
    }
    vtd_notice("SIGHUP: reloading %s", d->cli.config_path);
    vtd_notify("RELOADING=1");
    d->reloading = 1;
    d->reload_work.data = d;
    /* Reading the file and its mask PNGs is blocking I/O: not on the loop thread. */
    if (uv_queue_work(d->loop, &d->reload_work, reload_work, after_reload) < 0) {
        d->reloading = 0;
        vtd_err("reload: cannot queue the work");
    }
}

/* ---------------------------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------------------------- */

void vtd_start_services(vtd *d) {
    VTD_ASSERT_LOOP(d);
    uv_signal_init(d->loop, &d->sig_term);
    uv_signal_init(d->loop, &d->sig_int);
    uv_signal_init(d->loop, &d->sig_hup);
    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
    uv_signal_start(&d->sig_term, on_signal, SIGTERM);
    uv_signal_start(&d->sig_int, on_signal, SIGINT);
    uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
    d->watchdog_usec = vtd_notify_watchdog_usec();
    uv_timer_init(d->loop, &d->tick);
    d->tick.data = d;
    uint64_t period = TICK_MS;
    if (d->watchdog_usec && d->watchdog_usec / 4000 < period)
        period = d->watchdog_usec / 4000 ? d->watchdog_usec / 4000 : 1;
    uv_timer_start(&d->tick, on_tick, period, period);
    if (d->cfg->mqtt.enabled)
        start_mqtt(d, &d->cfg->mqtt);
    vtd_notice("vtrackd %s ready: %d stream%s, model %s%s", VT_VERSION, d->nstreams,
               d->nstreams == 1 ? "" : "s", vt_model_arch(d->model->m),
               d->watchdog_usec ? ", watchdog on" : "");
    vtd_notify("READY=1");
    send_status(d);
    if (d->watchdog_usec) {
        vtd_notify("WATCHDOG=1");
        g_last_ping_us = vt_mono_us();
    }
}
