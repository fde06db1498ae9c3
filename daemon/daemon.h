/*
 * daemon.h - vtrackd's state, shared by its modules. Everything here belongs to the loop thread
 * except what a module documents otherwise (the hub's queue, a stream record's atomics).
 *
 * The loop-only functions of this header, hub.h and server.h assert it (VTD_ASSERT_LOOP).
 *
 * Threads: the loop thread (main: libuv - TCP, timers, signals, the hub, control); per stream an
 * ingest and a tracker thread (stream/), and an overlay writer when configured; libuv's pool for
 * stopping streams and re-reading the configuration.
 */
#ifndef VTD_DAEMON_H
#define VTD_DAEMON_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

#include "adapt_worker.h"
#include "config.h"
#include "hub.h"
#include "persist.h"
#include "http.h"
#include "mqtt.h"
#include "server.h"
#include "streams.h"
#include "vt_base.h"

/* Listening sockets: a name can stand for several addresses (localhost: 127.0.0.1 and ::1), and
 * a reload binds the new addresses before it closes the old ones. */
#define VTD_LISTENERS_MAX (4 * VTD_LISTEN_MAX)

typedef struct vtd_listener {
    uv_tcp_t tcp;   /* first: the handle's address is the listener's */
    int state;      /* VTD_LISTENER_FREE, _OPEN or _CLOSING (until libuv's close callback) */
    int round;      /* the bind round that opened it (a failed reload closes its own) */
    char spec[272]; /* the configured address it serves, as written ("" from systemd) */
} vtd_listener;

enum { VTD_LISTENER_FREE, VTD_LISTENER_OPEN, VTD_LISTENER_CLOSING };

/* A loaded model, shared by the stream records started with it (each holds a reference, as does
 * vtd.model while it is the one in force): a reload that changes the model leaves the old one to
 * the streams still running on it, and the last of them frees it. */
typedef struct vtd_model {
    vt_model *m;
    _Atomic int refs;
    char name[4096]; /* as configured, or the default lookup's result */
} vtd_model;

/* Take a reference (returns mm) / drop one and clear *mm (daemon.c). */
vtd_model *vtd_model_ref(vtd_model *mm);
void vtd_model_unref(vtd_model **mm);

typedef struct vtd {
    uv_loop_t *loop;
    pthread_t loop_thread; /* runs the loop: set first thing in main (vtrackd.c) */
    vtd_config *cfg;       /* in force */
    vtd_cli cli;           /* command-line overrides, kept for reloads */
    vtd_model *model;      /* in force: new streams start with it */
    vtd_hub hub;
    vtd_persist persist;  /* the state directory (persist.h) */
    vtd_mqtt *mqtt;       /* the MQTT sink, NULL when not configured */
    vtd_http *http;       /* the HTTP API and live view, NULL when not configured */
    vtd_adapter *adapter; /* per-camera adaptation's thread, NULL until a first run */

    vtd_listener listeners[VTD_LISTENERS_MAX];
    int nlisteners; /* open */
    int listen_round;
    int activated; /* listeners came from systemd */
    vtd_conn *conns;
    int nconns;
    uint64_t next_conn_id;

    vtd_srec *streams; /* registered */
    int nstreams;
    vtd_srec *dying; /* being stopped on the thread pool */
    int ndying;

    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t tick; /* housekeeping: sweep, STATUS, watchdog */
    uint64_t watchdog_usec;
    int reloading;
    uv_work_t reload_work;
    vtd_config *reload_cfg;
    char reload_err[512];
    vtd_model *reload_model;    /* another model the reloaded configuration names, loaded */
    char reload_model_err[512]; /* or why it did not load ("" when the model is the same) */

    int stopping;
    int64_t stop_deadline_ms;
    int exit_code;
    int64_t start_ms;
    char status[160];     /* last STATUS= sent */
    vt_proto_buf scratch; /* loop thread's buffer for building replies */
} vtd;

/* The caller must be the loop thread (`d->loop_thread`). Checked in debug and sanitizer builds;
 * release builds (NDEBUG, b_ndebug=if-release) drop it. */
#define VTD_ASSERT_LOOP(d) assert(pthread_equal(pthread_self(), (d)->loop_thread))

/* Handle one command line from a connection (control.c). */
void vtd_control_line(vtd_conn *c, const char *line, size_t len);

/* Who asks a command and where its one answer goes (control.c): a TCP connection (c set: the
 * answer is queued on it), or an HTTP request (c NULL: the answer is kept in `answer`, a
 * reference the caller drops, with its code; hello, subscribe and unsubscribe are refused). */
typedef struct vtd_ctl {
    vtd *d;
    vtd_conn *c;
    const char *who; /* for the log: "client 3 (127.0.0.1:5000)" */
    int authed;
    vtd_msg *answer;
    vt_proto_code code; /* answer's code; INTERNAL with no answer: out of memory */
} vtd_ctl;

/* Compare a secret in time independent of where it differs (control.c). 1 when equal. */
int vtd_token_equal(const char *a, const char *b);

/* Run one command line (control.c): every rule and limit of the protocol applies. */
void vtd_control_run(vtd_ctl *x, const char *line, size_t len);

/* The shape of a parsed track command (control.c): a mask is decoded into *mask, polygon
 * points copied into *pts (both the caller frees, also on failure). No check against a frame
 * size. 0, or a negative error described in e. */
int vtd_shape_from_track(const vt_proto_cmd *cmd, vt_shape *shape, uint8_t **mask, float **pts,
                         vt_proto_err *e);

/* The greeting for a new connection (control.c). */
void vtd_control_hello(vtd_conn *c);

/* A stream's state changed or a client came or went: refresh STATUS= soon (daemon.c). */
void vtd_status_dirty(vtd *d);

/* Ask the loop to finish the shutdown once nothing is pending (daemon.c). */
void vtd_maybe_finish(vtd *d);

/* The model a configuration names (its `model`, else the default lookup; buf holds it), and
 * loading one, shared by reference (daemon.c). */
const char *vtd_model_name(const vtd_config *cfg, char *buf, size_t len);
int vtd_model_load(const char *name, vtd_model **out, char *err, size_t errlen);

/* Once the streams run and the listeners are open: signals, the housekeeping timer, READY=1
 * (daemon.c). d->loop must be set. */
void vtd_start_services(vtd *d);

#endif
