/*
 * persist.h - what vtrackd was told at run time, kept across restarts in its state directory.
 *
 * Saved: the streams clients added (their add_stream command) and every object clients
 * registered (its track command, whose shape becomes the object's last good mask once the
 * object has been seen `tracking`, with that frame's index and wall time). Objects and streams
 * of the configuration file are not saved: the file says what they are.
 *
 * Two files make it crash-safe without waiting on the disk in the loop:
 *
 *   - journal.N: one JSON line per registration change (add_stream, remove_stream, track,
 *     untrack, forget), appended with write(2) before the command's reply is sent. A process
 *     killed after the reply leaves the line in the kernel's page cache, so SIGKILL loses
 *     nothing; only a power failure can lose what came after the last state file.
 *   - state.json: the whole state, rewritten at most once a second when something changed (and
 *     at shutdown) on libuv's thread pool: written to a temporary file, fsync'd, renamed over
 *     the old one, and the directory fsync'd. It names the last journal it covers; the loop
 *     starts journal N+1 when it takes the snapshot, and the worker deletes the covered ones.
 *
 * Start-up reads state.json and replays the newer journals. A file that does not parse, or is
 * not vtrackd's, is reported and renamed aside (NAME.bad-UNIXTIME) and the daemon starts
 * without it. A write that fails (full disk, read-only directory) is logged and counted in
 * `stats`; tracking goes on and the next change tries again.
 *
 * Loop thread only, except the write itself (thread pool).
 */
#ifndef VTD_PERSIST_H
#define VTD_PERSIST_H

#include <stdint.h>

#include <uv.h>

#include "vt_proto.h"

typedef struct vtd vtd;
typedef struct vtd_srec vtd_srec;
typedef struct cJSON cJSON;

#define VTD_PERSIST_INTERVAL_MS 1000 /* at most one state file a second */

typedef struct vtd_persist {
    char *dir;  /* NULL: nothing is saved */
    cJSON *doc; /* the state: {"vtrackd_state":1,"journal":N,"streams":[...]} */
    int jfd;    /* journal being appended, -1 when it could not be opened */
    uint64_t jgen;
    int dirty;        /* the document changed since the last snapshot was taken */
    int busy;         /* a write is on the thread pool */
    int final_wanted; /* shutdown: write once more when the pending write is done */
    uv_timer_t timer;
    int timer_open;
    uv_work_t work;
    char *text;        /* the snapshot being written */
    uint64_t text_gen; /* the journal it covers */
    int work_rc;
    char work_err[256];
    /* for stats */
    uint64_t saves, failures;
    int ok;
    char error[256];
    int64_t last_save_ms;
} vtd_persist;

/* Read the saved state of `dir` (NULL: persistence off) into d->persist; never fails for what
 * is in the directory (bad files are moved aside), only for lack of memory (-ENOMEM). */
int vtd_persist_open(vtd *d, const char *dir);

/* Start the saved client streams and re-register the saved objects on the streams that exist
 * (with the reason `restored`); the configuration wins for streams and object ids it names.
 * Call after the configuration's streams were added, before they start. */
void vtd_persist_restore(vtd *d);

/* Start the snapshot timer (d->loop must be set). */
void vtd_persist_start(vtd *d);

/* Shutdown: write the final state and close the timer; the loop runs until it is written. */
void vtd_persist_close(vtd *d);

/* Free what is left (after the loop has stopped). */
void vtd_persist_free(vtd *d);

/* Registration changes, journaled before the command's reply is sent. `line` is the command as
 * the client sent it (validated). */
void vtd_persist_add_stream(vtd *d, const char *line, size_t len);
void vtd_persist_remove_stream(vtd *d, const char *stream);
void vtd_persist_track(vtd *d, uint32_t id, const char *line, size_t len);
void vtd_persist_untrack(vtd *d, const char *stream, uint32_t id);
void vtd_persist_forget(vtd *d);

/* A frame event of `r` was dispatched: keep its message (with masks) to sample once a second. */
void vtd_persist_frame(vtd *d, vtd_srec *r, struct vtd_msg *masks);

/* The parsers, also for the fuzz target (tests/daemon/fuzz_state.c). A state file's text: NULL
 * with *out owning the document, or why it is not one (*out NULL). One journal line applied to a
 * document: 0, -EINVAL (not a change), -ENOMEM. A stored command (the add_stream of a stream, the
 * track of an object) parsed as the network's would be: NULL with the reason in e if it is not
 * valid. */
const char *vtd_persist_parse(const char *text, size_t len, cJSON **out);
int vtd_persist_apply(cJSON *doc, const char *line, size_t len);
vt_proto_cmd *vtd_persist_stored_cmd(const cJSON *rec, vt_proto_op op, vt_proto_err *e);

/* For the stats reply; NULL when persistence is off. */
const vt_proto_state_stats *vtd_persist_stats(vtd *d, vt_proto_state_stats *out);

#endif
