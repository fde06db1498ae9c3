/* persist.c - see persist.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "daemon.h"
#include "log.h"
#include "vt_base.h"

#define STATE_FILE     "state.json"
#define STATE_TMP      "state.json.tmp"
#define JOURNAL_PREFIX "journal."
#define FORMAT_VERSION 1
#define FILE_MAX       (256 << 20) /* a state file larger than this is not ours */

/* ---------------------------------------------------------------------------------------------
 * The document: {"vtrackd_state":1,"journal":N,"streams":[{"stream":NAME,"add_stream":{...},
 * "objects":[{"track":{...},"frame":F|null,"time":"..."|null,"bbox":[x,y,w,h]?}]}]}: an
 * object's track command carries its last good mask once it has been seen, with that frame's
 * index, wall time and box.
 * ------------------------------------------------------------------------------------------- */

static cJSON *doc_new(void) {
    cJSON *d = cJSON_CreateObject();
    if (d && (!cJSON_AddNumberToObject(d, "vtrackd_state", FORMAT_VERSION) ||
              !cJSON_AddNumberToObject(d, "journal", 0) || !cJSON_AddArrayToObject(d, "streams"))) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

static cJSON *doc_streams(const cJSON *doc) {
    return cJSON_GetObjectItemCaseSensitive(doc, "streams");
}

static const char *str_of(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static cJSON *find_stream(const cJSON *doc, const char *name) {
    cJSON *s;
    cJSON_ArrayForEach(s, doc_streams(doc)) {
        const char *n = str_of(s, "stream");
        if (n && strcmp(n, name) == 0)
            return s;
    }
    return NULL;
}

static cJSON *stream_entry(cJSON *doc, const char *name) {
    cJSON *s = find_stream(doc, name);
    if (s)
        return s;
    s = cJSON_CreateObject();
    if (!s || !cJSON_AddStringToObject(s, "stream", name) ||
        !cJSON_AddArrayToObject(s, "objects")) {
        cJSON_Delete(s);
        return NULL;
    }
    cJSON_AddItemToArray(doc_streams(doc), s);
    return s;
}

/* The object id of a track or untrack command, 0 when it has none. */
static uint32_t id_of(const cJSON *cmd) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(cmd, "object");
    return cJSON_IsNumber(id) && id->valuedouble >= 1 && id->valuedouble <= 2147483647.0
               ? (uint32_t)id->valuedouble
               : 0;
}

static uint32_t object_id(const cJSON *o) {
    return id_of(cJSON_GetObjectItemCaseSensitive(o, "track"));
}

static int find_object(const cJSON *stream, uint32_t id) {
    int i = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(stream, "objects")) {
        if (object_id(o) == id)
            return i;
        i++;
    }
    return -1;
}

/* Apply one journal record (a command object) to the document; takes `rec`. 0, or -EINVAL for
 * a record that is not one (the caller reports it), -ENOMEM. */
static int doc_apply(cJSON *doc, cJSON *rec) {
    const char *op = str_of(rec, "op"), *name = str_of(rec, "stream");
    int rc = -EINVAL;
    if (op && strcmp(op, "forget") == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(doc, "streams");
        rc = cJSON_AddArrayToObject(doc, "streams") ? 0 : -ENOMEM;
    } else if (!op || !name) {
        rc = -EINVAL;
    } else if (strcmp(op, "add_stream") == 0) {
        cJSON *s = stream_entry(doc, name);
        if (!s) {
            rc = -ENOMEM;
        } else {
            cJSON_DeleteItemFromObjectCaseSensitive(s, "add_stream");
            cJSON_AddItemToObject(s, "add_stream", rec);
            return 0;
        }
    } else if (strcmp(op, "remove_stream") == 0) {
        cJSON *s = find_stream(doc, name);
        if (s)
            cJSON_Delete(cJSON_DetachItemViaPointer(doc_streams(doc), s));
        rc = 0;
    } else if (strcmp(op, "track") == 0 || strcmp(op, "untrack") == 0) {
        int track = op[0] == 't';
        uint32_t id = id_of(rec);
        cJSON *s = id ? (track ? stream_entry(doc, name) : find_stream(doc, name)) : NULL;
        int k = s ? find_object(s, id) : -1;
        if (k >= 0)
            cJSON_DeleteItemFromArray(cJSON_GetObjectItemCaseSensitive(s, "objects"), k);
        if (!id) {
            rc = -EINVAL;
        } else if (!track) {
            rc = 0;
        } else if (!s) {
            rc = -ENOMEM;
        } else {
            cJSON *o = cJSON_CreateObject();
            if (o && cJSON_AddNullToObject(o, "frame") && cJSON_AddNullToObject(o, "time")) {
                cJSON_AddItemToObject(o, "track", rec);
                cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(s, "objects"), o);
                return 0;
            }
            cJSON_Delete(o);
            rc = -ENOMEM;
        }
    }
    cJSON_Delete(rec);
    return rc;
}

/* Is `doc` a state document this version can read? (Its commands are checked at restore.) */
static const char *doc_check(const cJSON *doc) {
    if (!doc)
        return "not JSON (truncated or damaged)";
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "vtrackd_state");
    if (!cJSON_IsObject(doc) || !cJSON_IsNumber(v))
        return "not a vtrackd state file";
    if (v->valuedouble != FORMAT_VERSION)
        return "a state file of another vtrackd version";
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(doc, "journal");
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > 9e15)
        return "no valid `journal`";
    const cJSON *s;
    if (!cJSON_IsArray(doc_streams(doc)))
        return "no `streams` array";
    cJSON_ArrayForEach(s, doc_streams(doc)) {
        const cJSON *o, *objs = cJSON_GetObjectItemCaseSensitive(s, "objects");
        const cJSON *add = cJSON_GetObjectItemCaseSensitive(s, "add_stream");
        if (!str_of(s, "stream") || !cJSON_IsArray(objs) || (add && !cJSON_IsObject(add)))
            return "a `streams` entry is malformed";
        cJSON_ArrayForEach(o, objs) if (!object_id(o)) return "an `objects` entry is malformed";
    }
    return NULL;
}

const char *vtd_persist_parse(const char *text, size_t len, cJSON **out) {
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    while (doc && end < text + len && strchr(" \t\r\n", *end) && *end)
        end++;
    const char *why = doc && end != text + len ? "data after the state (damaged)" : doc_check(doc);
    if (why) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    *out = doc;
    return why;
}

int vtd_persist_apply(cJSON *doc, const char *line, size_t len) {
    cJSON *rec = cJSON_ParseWithLength(line, len);
    return rec ? doc_apply(doc, rec) : -EINVAL;
}

/* ---------------------------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------------------------- */

static void set_error(vtd_persist *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(vtd_persist *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vt_vfmt(p->error, sizeof p->error, fmt, ap);
    va_end(ap);
    p->ok = 0;
    p->failures++;
    vtd_err("state: %s", p->error);
}

static void path_of(const vtd_persist *p, char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", p->dir, name);
}

static void journal_path(const vtd_persist *p, char *buf, size_t len, uint64_t gen) {
    snprintf(buf, len, "%s/" JOURNAL_PREFIX "%" PRIu64, p->dir, gen);
}

/* Rename a file that could not be read out of the way, keeping it for a look. */
static void move_aside(vtd_persist *p, const char *path, const char *why) {
    char aside[4200];
    snprintf(aside, sizeof aside, "%s.bad-%lld", path, (long long)time(NULL));
    if (rename(path, aside) == 0)
        vtd_err("state: %s: %s; moved to %s, not restored", path, why, aside);
    else
        vtd_err("state: %s: %s; cannot move it aside (%s), not restored", path, why,
                strerror(errno));
    p->ok = 0;
    snprintf(p->error, sizeof p->error, "%s: %s", path, why);
}

/* Read a whole file (NUL-terminated). 0, -ENOENT, or another negative errno (+ why). */
static int slurp(const char *path, char **out, size_t *len) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 65536;
            if (cap > FILE_MAX) {
                rc = -EFBIG;
                break;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                rc = -ENOMEM;
                break;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) {
            if (ferror(f))
                rc = -EIO;
            break;
        }
    }
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static int open_journal(vtd_persist *p) {
    char path[4200];
    journal_path(p, path, sizeof path, p->jgen);
    p->jfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (p->jfd < 0) {
        set_error(p, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Append one record to the journal and apply it to the document (takes rec). */
static void record(vtd *d, cJSON *rec) {
    vtd_persist *p = &d->persist;
    if (!rec) {
        set_error(p, "out of memory: a change was not saved");
        return;
    }
    char *line = cJSON_PrintUnformatted(rec);
    if (!line) {
        cJSON_Delete(rec);
        set_error(p, "out of memory: a change was not saved");
        return;
    }
    size_t n = strlen(line);
    line[n] = '\n'; /* cJSON's buffer holds the terminator: room for the newline */
    if (p->jfd < 0 && open_journal(p) < 0) {
        /* reported; the document keeps the change for the next state file */
    } else {
        int rc = vt_write_all(p->jfd, line, n + 1);
        if (rc < 0) {
            char path[4200];
            journal_path(p, path, sizeof path, p->jgen);
            set_error(p, "cannot write %s: %s", path, strerror(-rc));
            /* A partial line would hide the next ones: start a new journal for them. */
            close(p->jfd);
            p->jfd = -1;
            p->jgen++;
        }
    }
    cJSON_free(line);
    if (doc_apply(p->doc, rec) == -ENOMEM)
        set_error(p, "out of memory: a change was not saved");
    p->dirty = 1;
}

/* A command line as received, without its id and with `op` first, as a record. */
static cJSON *record_of_line(const char *line, size_t len) {
    cJSON *rec = cJSON_ParseWithLength(line, len);
    if (!rec)
        return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "id");
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "frame");
    return rec;
}

/* ---------------------------------------------------------------------------------------------
 * Start-up: read the state file, replay the journals
 * ------------------------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The journals in the directory, sorted. */
static int list_journals(const vtd_persist *p, uint64_t **out, int *n) {
    *out = NULL;
    *n = 0;
    DIR *dir = opendir(p->dir);
    if (!dir)
        return -errno;
    struct dirent *de;
    int cap = 0;
    while ((de = readdir(dir))) {
        const char *s = de->d_name;
        if (strncmp(s, JOURNAL_PREFIX, strlen(JOURNAL_PREFIX)) != 0)
            continue;
        s += strlen(JOURNAL_PREFIX);
        char *end;
        errno = 0;
        unsigned long long g = strtoull(s, &end, 10);
        if (!*s || *end || errno || *s < '0' || *s > '9')
            continue; /* e.g. a journal moved aside */
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            uint64_t *nb = realloc(*out, sizeof *nb * (size_t)cap);
            if (!nb) {
                closedir(dir);
                return -ENOMEM;
            }
            *out = nb;
        }
        (*out)[(*n)++] = g;
    }
    closedir(dir);
    if (*n)
        qsort(*out, (size_t)*n, sizeof **out, cmp_u64);
    return 0;
}

static void replay_journal(vtd_persist *p, uint64_t gen) {
    char path[4200];
    journal_path(p, path, sizeof path, gen);
    char *text;
    size_t len;
    int rc = slurp(path, &text, &len);
    if (rc < 0) {
        move_aside(p, path, strerror(-rc));
        return;
    }
    int line = 0, bad = 0, applied = 0;
    char why[160] = "";
    for (char *s = text, *nl; s < text + len; s = nl + 1) {
        line++;
        nl = memchr(s, '\n', (size_t)(text + len - s));
        if (!nl) {
            snprintf(why, sizeof why, "line %d is cut short (a write that did not finish)", line);
            bad++;
            break;
        }
        if ((rc = vtd_persist_apply(p->doc, s, (size_t)(nl - s))) < 0) {
            if (!bad)
                snprintf(why, sizeof why, "line %d is not a state change", line);
            bad++;
        } else {
            applied++;
        }
    }
    free(text);
    if (bad)
        move_aside(p, path, why); /* what could be read is applied */
    vtd_info("state: %s: %d change%s replayed", path, applied, applied == 1 ? "" : "s");
}

int vtd_persist_open(vtd *d, const char *dir) {
    vtd_persist *p = &d->persist;
    memset(p, 0, sizeof *p);
    p->jfd = -1;
    p->last_save_ms = -1;
    p->ok = 1;
    if (!dir)
        return 0;
    if (!(p->dir = strdup(dir)) || !(p->doc = doc_new()))
        return -ENOMEM;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        set_error(p, "cannot create the state directory %s: %s", dir, strerror(errno));
    char path[4200];
    path_of(p, path, sizeof path, STATE_FILE);
    char *text;
    size_t len;
    int rc = slurp(path, &text, &len);
    uint64_t covered = 0;
    if (rc == -ENOMEM) {
        return rc;
    } else if (rc == -ENOENT) {
        vtd_info("state: no saved state in %s", dir);
    } else if (rc < 0) {
        move_aside(p, path, strerror(-rc));
    } else {
        cJSON *doc;
        const char *why = vtd_persist_parse(text, len, &doc);
        if (why) {
            move_aside(p, path, why);
        } else {
            cJSON_Delete(p->doc);
            p->doc = doc;
            covered = (uint64_t)cJSON_GetObjectItemCaseSensitive(doc, "journal")->valuedouble;
        }
        free(text);
    }
    uint64_t *gens;
    int n;
    if ((rc = list_journals(p, &gens, &n)) == -ENOMEM)
        return rc;
    p->jgen = covered + 1;
    for (int i = 0; i < n; i++) {
        if (gens[i] > covered)
            replay_journal(p, gens[i]);
        else { /* a snapshot was written but its journals not yet deleted */
            journal_path(p, path, sizeof path, gens[i]);
            unlink(path);
        }
        if (gens[i] >= p->jgen)
            p->jgen = gens[i] + 1;
    }
    free(gens);
    p->dirty = 1; /* the first snapshot folds the replayed journals in */
    open_journal(p);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Restore
 * ------------------------------------------------------------------------------------------- */

vt_proto_cmd *vtd_persist_stored_cmd(const cJSON *rec, vt_proto_op op, vt_proto_err *e) {
    memset(e, 0, sizeof *e);
    char *line = cJSON_PrintUnformatted(rec);
    vt_proto_cmd *cmd = NULL;
    if (!line) {
        vt_proto_err_set(e, VT_PROTO_CODE_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    if (vt_proto_cmd_parse(line, strlen(line), &cmd, e) == 0 && cmd->op != op) {
        vt_proto_err_set(e, VT_PROTO_CODE_BAD_REQUEST, "op", "not a %s command",
                         vt_proto_op_name(op));
        vt_proto_cmd_free(&cmd);
    }
    cJSON_free(line);
    return cmd;
}

static int restore_stream(vtd *d, cJSON *entry, const char *name) {
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(entry, "add_stream");
    vt_proto_err e;
    vt_proto_cmd *cmd = vtd_persist_stored_cmd(add, VT_PROTO_OP_ADD_STREAM, &e);
    char err[VT_PROTO_MESSAGE_MAX] = "", field[VT_PROTO_FIELD_MAX] = "";
    int rc = -EINVAL;
    if (!cmd) {
        snprintf(err, sizeof err, "%.60s%s%.180s", e.field, e.field[0] ? ": " : "", e.message);
    } else if (!d->cfg->allow_add_streams) {
        snprintf(err, sizeof err, "clients may not add streams any more (allow_add_streams)");
    } else if (d->nstreams >= d->cfg->limits.streams) {
        snprintf(err, sizeof err, "at most %d streams (limits.streams)", d->cfg->limits.streams);
    } else {
        vtd_stream_conf sc;
        vtd_srec *r;
        if ((rc = vtd_stream_conf_from_cmd(d->cfg, cmd, &sc, field, sizeof field, err,
                                           sizeof err)) == 0) {
            rc = vtd_streams_add(d, &sc, &r, err, sizeof err);
            vtd_stream_conf_clear(&sc);
        }
    }
    vt_proto_cmd_free(&cmd);
    if (rc < 0)
        vtd_err("state: stream %s cannot be restored: %s%s%s", name, field, field[0] ? ": " : "",
                err);
    else
        vtd_notice("state: stream %s restored", name);
    return rc;
}

static int config_names_object(const vtd_srec *r, uint32_t id) {
    for (int i = 0; i < r->conf.nobjects; i++)
        if (r->conf.objects[i].id == id)
            return 1;
    return 0;
}

static int restore_object(vtd_srec *r, const cJSON *o, uint32_t id) {
    vt_proto_err e;
    vt_proto_cmd *cmd =
        vtd_persist_stored_cmd(cJSON_GetObjectItemCaseSensitive(o, "track"), VT_PROTO_OP_TRACK, &e);
    uint8_t *mask = NULL;
    float *pts = NULL;
    char err[VT_PROTO_MESSAGE_MAX] = "";
    int rc = -EINVAL;
    vt_shape shape;
    if (!cmd || vtd_shape_from_track(cmd, &shape, &mask, &pts, &e) < 0)
        snprintf(err, sizeof err, "%.60s%s%.180s", e.field, e.field[0] ? ": " : "", e.message);
    else
        rc = vt_stream_restore(r->s, id, cmd->track.label, &shape, err, sizeof err);
    vt_proto_cmd_free(&cmd);
    free(mask);
    free(pts);
    if (rc < 0)
        vtd_err("state: stream %s: object %u cannot be restored: %s", r->conf.name, id, err);
    return rc;
}

void vtd_persist_restore(vtd *d) {
    vtd_persist *p = &d->persist;
    if (!p->dir)
        return;
    int nstreams = 0, nobjects = 0;
    cJSON *next;
    for (cJSON *s = doc_streams(p->doc)->child; s; s = next) {
        next = s->next;
        const char *name = str_of(s, "stream");
        vtd_srec *r = vtd_streams_find(d, name);
        int has_add = cJSON_GetObjectItemCaseSensitive(s, "add_stream") != NULL;
        if (r && has_add) {
            vtd_notice("state: stream %s is in the configuration now: the configuration's is used",
                       name);
            cJSON_DeleteItemFromObjectCaseSensitive(s, "add_stream");
        } else if (!r && has_add && restore_stream(d, s, name) == 0) {
            r = vtd_streams_find(d, name);
            nstreams++;
        }
        if (!r) {
            if (!has_add)
                vtd_notice("state: stream %s is no longer configured: its objects are dropped",
                           name);
            cJSON_Delete(cJSON_DetachItemViaPointer(doc_streams(p->doc), s));
            continue;
        }
        cJSON *objs = cJSON_GetObjectItemCaseSensitive(s, "objects"), *onext;
        for (cJSON *o = objs->child; o; o = onext) {
            onext = o->next;
            uint32_t id = object_id(o);
            if (config_names_object(r, id)) {
                vtd_notice("state: stream %s: object %u is in the configuration: its saved state "
                           "is dropped",
                           name, id);
            } else if (restore_object(r, o, id) == 0) {
                nobjects++;
                continue;
            }
            cJSON_Delete(cJSON_DetachItemViaPointer(objs, o));
        }
    }
    vtd_notice("state: restored %d stream%s and %d object%s from %s", nstreams,
               nstreams == 1 ? "" : "s", nobjects, nobjects == 1 ? "" : "s", p->dir);
    p->dirty = 1;
}

/* ---------------------------------------------------------------------------------------------
 * Changes
 * ------------------------------------------------------------------------------------------- */

void vtd_persist_add_stream(vtd *d, const char *line, size_t len) {
    if (d->persist.dir)
        record(d, record_of_line(line, len));
}

static cJSON *simple_record(const char *op, const char *stream, uint32_t id) {
    cJSON *rec = cJSON_CreateObject();
    if (rec && (!cJSON_AddStringToObject(rec, "op", op) ||
                (stream && !cJSON_AddStringToObject(rec, "stream", stream)) ||
                (id && !cJSON_AddNumberToObject(rec, "object", id)))) {
        cJSON_Delete(rec);
        return NULL;
    }
    return rec;
}

void vtd_persist_remove_stream(vtd *d, const char *stream) {
    if (d->persist.dir && find_stream(d->persist.doc, stream))
        record(d, simple_record("remove_stream", stream, 0));
}

void vtd_persist_track(vtd *d, uint32_t id, const char *line, size_t len) {
    if (!d->persist.dir)
        return;
    cJSON *rec = record_of_line(line, len);
    if (rec) { /* the id the server assigned */
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "object");
        if (!cJSON_AddNumberToObject(rec, "object", id)) {
            cJSON_Delete(rec);
            rec = NULL;
        }
    }
    record(d, rec);
}

void vtd_persist_untrack(vtd *d, const char *stream, uint32_t id) {
    vtd_persist *p = &d->persist;
    const cJSON *s = p->dir ? find_stream(p->doc, stream) : NULL;
    if (s && find_object(s, id) >= 0)
        record(d, simple_record("untrack", stream, id));
}

void vtd_persist_forget(vtd *d) {
    if (d->persist.dir) {
        record(d, simple_record("forget", NULL, 0));
        vtd_notice("state: forgotten (nothing registered so far will be restored)");
    }
}

void vtd_persist_frame(vtd *d, vtd_srec *r, vtd_msg *masks) {
    if (!d->persist.dir || !masks)
        return;
    masks->refs++;
    vtd_msg_unref(&d->hub, r->persist_msg);
    r->persist_msg = masks;
}

/* The objects of r's newest frame seen `tracking` become their last good masks. */
static void sample(vtd *d, vtd_srec *r) {
    vtd_msg *m = r->persist_msg;
    r->persist_msg = NULL;
    cJSON *s = find_stream(d->persist.doc, r->conf.name);
    if (!m || !s || !cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s, "objects"))) {
        vtd_msg_unref(&d->hub, m);
        return;
    }
    vt_proto_buf text = VT_PROTO_BUF_INIT;
    cJSON *fr = vtd_tail_object(&text, m->buf.data, m->buf.len) == 0
                    ? cJSON_ParseWithLength(text.data, text.len)
                    : NULL;
    vt_proto_buf_free(&text);
    vtd_msg_unref(&d->hub, m);
    const cJSON *o, *frame = cJSON_GetObjectItemCaseSensitive(fr, "frame");
    const char *wall = str_of(fr, "wallclock");
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(fr, "objects")) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        const char *state = str_of(o, "state");
        cJSON *mask = cJSON_GetObjectItemCaseSensitive(o, "mask");
        if (!cJSON_IsNumber(id) || !state || strcmp(state, "tracking") != 0 || !mask)
            continue;
        int k = find_object(s, (uint32_t)id->valuedouble);
        if (k < 0)
            continue;
        cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "objects"), k);
        cJSON *track = cJSON_GetObjectItemCaseSensitive(e, "track");
        cJSON_DeleteItemFromObjectCaseSensitive(track, "box");
        cJSON_DeleteItemFromObjectCaseSensitive(track, "polygon");
        cJSON_DeleteItemFromObjectCaseSensitive(track, "mask");
        cJSON_AddItemToObject(track, "mask", cJSON_DetachItemViaPointer((cJSON *)o, mask));
        cJSON *bbox = cJSON_GetObjectItemCaseSensitive(o, "bbox");
        cJSON_DeleteItemFromObjectCaseSensitive(e, "bbox");
        if (bbox)
            cJSON_AddItemToObject(e, "bbox", cJSON_DetachItemViaPointer((cJSON *)o, bbox));
        cJSON_ReplaceItemInObjectCaseSensitive(e, "frame", cJSON_Duplicate(frame, 1));
        cJSON_ReplaceItemInObjectCaseSensitive(
            e, "time", wall ? cJSON_CreateString(wall) : cJSON_CreateNull());
        d->persist.dirty = 1;
    }
    cJSON_Delete(fr);
}

/* ---------------------------------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------------------------------- */

/* Thread pool: state.json.tmp, fsync, rename, fsync the directory, drop covered journals. */
static void write_work(uv_work_t *w) {
    vtd_persist *p = &((vtd *)w->data)->persist;
    char tmp[4200], path[4200];
    path_of(p, tmp, sizeof tmp, STATE_TMP);
    path_of(p, path, sizeof path, STATE_FILE);
    const char *step = "create";
    int rc = 0, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        rc = -errno;
    if (rc == 0) {
        step = "write";
        rc = vt_write_all(fd, p->text, strlen(p->text));
    }
    if (rc == 0 && fsync(fd) < 0)
        step = "fsync", rc = -errno;
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        step = "close", rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        step = "rename", rc = -errno;
    if (rc == 0) {
        int dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
            step = "fsync the directory", rc = -errno;
        if (dfd >= 0)
            close(dfd);
    }
    if (rc < 0) {
        snprintf(p->work_err, sizeof p->work_err, "cannot %s %.160s: %.60s", step,
                 strcmp(step, "rename") == 0 ? path : tmp, strerror(-rc));
        if (fd >= 0 || rc != -ENOENT)
            unlink(tmp);
    } else {
        /* Every journal up to the one this state covers is in it now. */
        uint64_t *gens;
        int n;
        if (list_journals(p, &gens, &n) == 0) {
            for (int i = 0; i < n && gens[i] <= p->text_gen; i++) {
                journal_path(p, path, sizeof path, gens[i]);
                unlink(path);
            }
            free(gens);
        }
    }
    p->work_rc = rc;
}

static void start_write(vtd *d);

static void after_write(uv_work_t *w, int status) {
    vtd *owner = w->data;
    vtd_persist *p = &owner->persist;
    cJSON_free(p->text);
    p->text = NULL;
    p->busy = 0;
    if (status < 0 || p->work_rc < 0) {
        set_error(p, "%s", status < 0 ? uv_strerror(status) : p->work_err);
        p->dirty = 1; /* try again */
    } else {
        p->saves++;
        p->ok = 1;
        p->error[0] = 0;
        p->last_save_ms = vt_mono_us() / 1000;
    }
    if (p->final_wanted) {
        p->final_wanted = 0;
        if (p->dirty)
            start_write(owner);
    }
}

/* Take a snapshot of the document and write it on the thread pool; later changes go to the
 * next journal. */
static void start_write(vtd *d) {
    vtd_persist *p = &d->persist;
    if (p->busy)
        return;
    cJSON_ReplaceItemInObjectCaseSensitive(p->doc, "journal", cJSON_CreateNumber((double)p->jgen));
    if (!(p->text = cJSON_PrintUnformatted(p->doc))) {
        set_error(p, "out of memory: the state was not saved");
        return;
    }
    p->text_gen = p->jgen;
    if (p->jfd >= 0)
        close(p->jfd);
    p->jfd = -1;
    p->jgen++;
    open_journal(p);
    p->dirty = 0;
    p->busy = 1;
    p->work.data = d;
    int rc = uv_queue_work(d->loop, &p->work, write_work, after_write);
    if (rc < 0) {
        p->busy = 0;
        cJSON_free(p->text);
        p->text = NULL;
        set_error(p, "cannot queue the write: %s", uv_strerror(rc));
    }
}

static void on_timer(uv_timer_t *t) {
    vtd *d = t->data;
    for (vtd_srec *r = d->streams; r; r = r->next)
        if (r->persist_msg)
            sample(d, r);
    if (d->persist.dirty)
        start_write(d);
}

void vtd_persist_start(vtd *d) {
    vtd_persist *p = &d->persist;
    if (!p->dir)
        return;
    uv_timer_init(d->loop, &p->timer);
    p->timer.data = d;
    p->timer_open = 1;
    uv_timer_start(&p->timer, on_timer, 0, VTD_PERSIST_INTERVAL_MS);
}

static void timer_closed(uv_handle_t *h) {
    (void)h;
}

void vtd_persist_close(vtd *d) {
    vtd_persist *p = &d->persist;
    if (!p->dir || !p->timer_open)
        return;
    p->timer_open = 0;
    uv_close((uv_handle_t *)&p->timer, timer_closed);
    for (vtd_srec *r = d->streams; r; r = r->next)
        if (r->persist_msg)
            sample(d, r);
    if (p->busy)
        p->final_wanted = 1;
    else if (p->dirty)
        start_write(d);
}

void vtd_persist_free(vtd *d) {
    vtd_persist *p = &d->persist;
    if (p->dir && p->jfd >= 0)
        close(p->jfd);
    p->jfd = -1;
    cJSON_Delete(p->doc);
    p->doc = NULL;
    free(p->dir);
    p->dir = NULL;
}

const vt_proto_state_stats *vtd_persist_stats(vtd *d, vt_proto_state_stats *out) {
    const vtd_persist *p = &d->persist;
    if (!p->dir)
        return NULL;
    *out = (vt_proto_state_stats){
        .dir = p->dir,
        .ok = p->ok,
        .error = p->error[0] ? p->error : NULL,
        .saves = p->saves,
        .failures = p->failures,
        .last_save_s = p->last_save_ms < 0 ? -1 : (vt_mono_us() / 1000 - p->last_save_ms) / 1000.0,
    };
    return out;
}
