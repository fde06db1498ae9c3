/*
 * event.c - server messages: the seq prefix, the frame event written directly into a reusable
 * buffer (the per-frame path), and every other message built as a cJSON tree and printed with
 * cJSON's printer (vt_ndjson_write). All writers produce the tail form described in vt_proto.h.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proto_int.h"

size_t vt_proto_seq_prefix(char *out, uint64_t seq) {
    memcpy(out, "{\"seq\":", 7);
    size_t n = 7 + vtp_fmt_u64(out + 7, seq);
    out[n++] = ',';
    out[n] = '\0';
    return n;
}

/* RFC 3339 UTC with milliseconds: 2024-05-01T12:00:00.123Z. Returns the length or -EINVAL. */
static int fmt_time(char *out, size_t cap, int64_t us) {
    int64_t s = us / 1000000, rem = us % 1000000;
    if (rem < 0) { /* floor division: times before 1970 still print correctly */
        s--;
        rem += 1000000;
    }
    time_t t = (time_t)s;
    struct tm tm;
    if ((int64_t)t != s || !gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
        return -EINVAL;
    return snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(rem / 1000));
}

/* ---------------------------------------------------------------------------------------------
 * Frame events: direct writing, validated first so a failure never leaves half a message
 * ------------------------------------------------------------------------------------------- */

static bool rle_chars_ok(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > 'o')
            return false;
    return true;
}

static int frame_check(const vt_proto_frame *f, int with_masks, size_t *estimate) {
    if (!f->stream || f->tb_num <= 0 || f->tb_den <= 0 || f->width < 1 || f->height < 1 ||
        f->width > VT_RLE_MAX_DIM || f->height > VT_RLE_MAX_DIM || f->nobjects < 0 ||
        f->nobjects > VT_PROTO_OBJECTS_MAX || (f->nobjects && !f->objects))
        return -EINVAL;
    size_t est = 320 + 6 * strlen(f->stream);
    for (int i = 0; i < f->nobjects; i++) {
        const vt_proto_object *o = &f->objects[i];
        /* `pending` is a `list` state: an object in a frame event has been applied */
        if (o->id < 1 || o->id > VT_PROTO_OBJECT_ID_MAX ||
            (unsigned)o->state >= VT_PROTO_OBJ_STATE_COUNT || o->state == VT_PROTO_OBJ_PENDING)
            return -EINVAL;
        if (with_masks && o->rle && !rle_chars_ok(o->rle, o->rle_len))
            return -EINVAL;
        est += 200 + (o->label ? 6 * strlen(o->label) : 0) + (with_masks ? 2 * o->rle_len : 0);
    }
    *estimate = est;
    return 0;
}

/* Score in [0, 1] with 3 decimals, formatted by hand: printf's %f follows LC_NUMERIC. */
static int put_score(vt_proto_buf *b, float score) {
    if (!(score > 0.0f)) /* also NaN */
        score = 0.0f;
    if (score > 1.0f)
        score = 1.0f;
    long m = lroundf(score * 1000.0f);
    char tmp[8] = {(char)('0' + m / 1000), '.', (char)('0' + m / 100 % 10),
                   (char)('0' + m / 10 % 10), (char)('0' + m % 10)};
    return vtp_buf_append(b, tmp, 5);
}

#define LIT(b, s) vtp_buf_append((b), (s), sizeof(s) - 1)

/* The RLE alphabet '0'..'o' needs escaping only for '\\'. */
static int put_rle(vt_proto_buf *b, const char *s, size_t n) {
    int rc = vt_proto_buf_reserve(b, 2 * n + 2);
    if (rc < 0)
        return rc;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            *o++ = '\\';
        *o++ = s[i];
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

static int put_object(vt_proto_buf *b, const vt_proto_object *o, int h, int w, int with_masks) {
    int rc = 0;
    rc |= LIT(b, "{\"id\":");
    rc |= vtp_buf_put_u64(b, o->id);
    if (o->label) {
        rc |= LIT(b, ",\"label\":");
        rc |= vtp_buf_put_json_string(b, o->label, strlen(o->label));
    }
    rc |= LIT(b, ",\"state\":\"");
    rc |= vtp_buf_append(b, vt_proto_obj_state_name(o->state),
                         strlen(vt_proto_obj_state_name(o->state)));
    rc |= LIT(b, "\",\"score\":");
    rc |= put_score(b, o->score);
    rc |= LIT(b, ",\"area\":");
    rc |= vtp_buf_put_u64(b, o->area);
    rc |= LIT(b, ",\"bbox\":[");
    for (int k = 0; k < 4; k++) {
        if (k)
            rc |= vtp_buf_putc(b, ',');
        rc |= vtp_buf_put_i64(b, o->bbox[k]);
    }
    rc |= vtp_buf_putc(b, ']');
    if (with_masks && o->rle) {
        rc |= LIT(b, ",\"mask\":{\"size\":[");
        rc |= vtp_buf_put_i64(b, h);
        rc |= vtp_buf_putc(b, ',');
        rc |= vtp_buf_put_i64(b, w);
        rc |= LIT(b, "],\"counts\":");
        rc |= put_rle(b, o->rle, o->rle_len);
        rc |= vtp_buf_putc(b, '}');
    }
    rc |= vtp_buf_putc(b, '}');
    return rc ? -ENOMEM : 0; /* every helper fails only with -ENOMEM */
}

int vt_proto_write_frame(vt_proto_buf *b, const vt_proto_frame *f, int with_masks) {
    size_t est, start = b->len;
    char wall[40], cap[40];
    if (frame_check(f, with_masks, &est) < 0 || fmt_time(wall, sizeof wall, f->wallclock_us) < 0 ||
        (f->capture_us != VT_PROTO_NO_CLOCK && fmt_time(cap, sizeof cap, f->capture_us) < 0))
        return -EINVAL;
    /* One reservation for the likely size: the appends below then do not reallocate. */
    int rc = vt_proto_buf_reserve(b, est);
    rc |= LIT(b, "\"type\":\"frame\",\"stream\":");
    rc |= vtp_buf_put_json_string(b, f->stream, strlen(f->stream));
    rc |= LIT(b, ",\"frame\":");
    rc |= vtp_buf_put_i64(b, f->frame);
    rc |= LIT(b, ",\"pts\":");
    rc |= f->pts == VT_PROTO_NO_PTS ? LIT(b, "null") : vtp_buf_put_i64(b, f->pts);
    rc |= LIT(b, ",\"time_base\":[");
    rc |= vtp_buf_put_i64(b, f->tb_num);
    rc |= vtp_buf_putc(b, ',');
    rc |= vtp_buf_put_i64(b, f->tb_den);
    rc |= LIT(b, "],\"wallclock\":\"");
    rc |= vtp_buf_append(b, wall, strlen(wall));
    rc |= vtp_buf_putc(b, '"');
    if (f->capture_us != VT_PROTO_NO_CLOCK) {
        rc |= LIT(b, ",\"capture\":\"");
        rc |= vtp_buf_append(b, cap, strlen(cap));
        rc |= vtp_buf_putc(b, '"');
    }
    rc |= LIT(b, ",\"width\":");
    rc |= vtp_buf_put_i64(b, f->width);
    rc |= LIT(b, ",\"height\":");
    rc |= vtp_buf_put_i64(b, f->height);
    rc |= LIT(b, ",\"objects\":[");
    for (int i = 0; i < f->nobjects && !rc; i++) {
        if (i)
            rc |= vtp_buf_putc(b, ',');
        rc |= put_object(b, &f->objects[i], f->height, f->width, with_masks);
    }
    rc |= LIT(b, "]}\n");
    if (rc) {
        b->len = start;
        if (b->data)
            b->data[start] = '\0';
        return -ENOMEM;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Other messages: cJSON trees. A builder records allocation failures so the code can add fields
 * unconditionally and check once at the end.
 * ------------------------------------------------------------------------------------------- */

typedef struct jb {
    bool oom;
} jb;

static cJSON *chk(jb *j, cJSON *it) {
    if (!it)
        j->oom = true;
    return it;
}

/* A new object at the end of array arr; NULL when out of memory. */
static cJSON *add_element(jb *j, cJSON *arr) {
    cJSON *e = chk(j, cJSON_CreateObject());
    if (e)
        cJSON_AddItemToArray(arr, e);
    return e;
}

static void add_str(jb *j, cJSON *o, const char *k, const char *v) {
    chk(j, cJSON_AddStringToObject(o, k, v));
}

/* Integers go in as raw text so that values beyond 2^53 stay exact. */
static void add_int(jb *j, cJSON *o, const char *k, int64_t v) {
    char tmp[24];
    vtp_fmt_i64(tmp, v);
    chk(j, cJSON_AddRawToObject(o, k, tmp));
}

static void add_uint(jb *j, cJSON *o, const char *k, uint64_t v) {
    char tmp[24];
    vtp_fmt_u64(tmp, v);
    chk(j, cJSON_AddRawToObject(o, k, tmp));
}

/* Rates and durations, rounded to `scale` (100 = 2 decimals) so they print short. */
static void add_real(jb *j, cJSON *o, const char *k, double v, double scale) {
    chk(j, cJSON_AddNumberToObject(o, k, isfinite(v) ? round(v * scale) / scale : 0.0));
}

static void add_bool(jb *j, cJSON *o, const char *k, bool v) {
    chk(j, cJSON_AddBoolToObject(o, k, v));
}

static void add_name(jb *j, cJSON *o, const char *k, const char *name) {
    if (name[0] && name[0] != '?')
        add_str(j, o, k, name);
}

static cJSON *msg_new(jb *j, const char *type) {
    cJSON *o = chk(j, cJSON_CreateObject());
    if (o)
        add_str(j, o, "type", type);
    return o;
}

/* Print the tree as one line, then drop its '{' to leave the tail. Consumes `o`. */
static int msg_emit(vt_proto_buf *b, jb *j, cJSON *o) {
    int rc = -ENOMEM;
    size_t start = b->len;
    if (o && !j->oom)
        rc = vt_ndjson_write(b, o);
    cJSON_Delete(o);
    if (rc < 0)
        return rc;
    memmove(b->data + start, b->data + start + 1, b->len - start); /* includes the NUL */
    b->len--;
    return 0;
}

int vt_proto_write_hello(vt_proto_buf *b, const vt_proto_hello *h) {
    if (!h->server)
        return -EINVAL;
    jb j = {0};
    cJSON *o = msg_new(&j, "hello");
    if (o) {
        add_int(&j, o, "protocol", VT_PROTO_VERSION);
        add_str(&j, o, "server", h->server);
        add_bool(&j, o, "auth", h->auth != 0);
        add_uint(&j, o, "max_line", h->max_line ? h->max_line : VT_PROTO_LINE_MAX);
    }
    return msg_emit(b, &j, o);
}

static void add_id(jb *j, cJSON *o, const vt_proto_id *id) {
    if (id && id->json[0])
        chk(j, cJSON_AddRawToObject(o, "id", id->json));
}

/*
 * Copy a URL for display without its credentials: in "rtsp://user:pw@host/x", "user:pw" becomes
 * "***".
 * The userinfo ends at the last '@' before the path, query or fragment.
 */
static void redact_url(char *out, size_t cap, const char *url) {
    snprintf(out, cap, "%s", url);
    char *auth = strstr(out, "://");
    if (!auth)
        return;
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    char *at = NULL;
    for (char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return;
    memmove(auth + 3, at, strlen(at) + 1);
    memcpy(auth, "***", 3);
}

static int add_stream_info(jb *j, cJSON *arr, const vt_proto_stream_info *s) {
    if (!s->name || !s->url || strlen(s->url) > VT_PROTO_URL_MAX || s->nobjects < 0 ||
        (s->nobjects && !s->objects))
        return -EINVAL;
    for (int i = 0; i < s->nobjects; i++)
        if ((unsigned)s->objects[i].state >= VT_PROTO_OBJ_STATE_COUNT)
            return -EINVAL;
    cJSON *o = add_element(j, arr);
    if (!o)
        return -ENOMEM;
    char url[VT_PROTO_URL_MAX + 8];
    redact_url(url, sizeof url, s->url);
    add_str(j, o, "stream", s->name);
    add_str(j, o, "url", url);
    add_str(j, o, "state", vt_proto_stream_state_name(s->state));
    add_name(j, o, "pacing", vt_proto_pacing_name(s->pacing));
    add_name(j, o, "tracker", vt_proto_tracker_name(s->tracker));
    add_name(j, o, "profile", vt_proto_profile_name(s->profile));
    if (s->width > 0 && s->height > 0) {
        add_int(j, o, "width", s->width);
        add_int(j, o, "height", s->height);
    } else {
        chk(j, cJSON_AddNullToObject(o, "width"));
        chk(j, cJSON_AddNullToObject(o, "height"));
    }
    if (s->frame >= 0)
        add_int(j, o, "frame", s->frame);
    else
        chk(j, cJSON_AddNullToObject(o, "frame"));
    cJSON *objs = chk(j, cJSON_AddArrayToObject(o, "objects"));
    for (int i = 0; objs && i < s->nobjects; i++) {
        cJSON *e = add_element(j, objs);
        if (!e)
            return -ENOMEM;
        add_uint(j, e, "id", s->objects[i].id);
        if (s->objects[i].label)
            add_str(j, e, "label", s->objects[i].label);
        add_str(j, e, "state", vt_proto_obj_state_name(s->objects[i].state));
    }
    return 0;
}

static void add_mqtt_stats(jb *j, cJSON *s, const vt_proto_mqtt_stats *mq) {
    cJSON *e = chk(j, cJSON_AddObjectToObject(s, "mqtt"));
    if (!e)
        return;
    add_bool(j, e, "connected", mq->connected != 0);
    add_uint(j, e, "connections", mq->connections);
    add_uint(j, e, "failures", mq->failures);
    add_uint(j, e, "published", mq->published);
    add_uint(j, e, "dropped", mq->dropped);
    add_uint(j, e, "queued", mq->queued);
    if (mq->error)
        add_str(j, e, "error", mq->error);
}

static void add_adapt_stats(jb *j, cJSON *o, const vt_proto_adapt_stats *a) {
    cJSON *e = chk(j, cJSON_AddObjectToObject(o, "adapt"));
    if (!e)
        return;
    add_str(j, e, "model", a->model ? a->model : "shipped");
    if (a->provenance)
        add_str(j, e, "provenance", a->provenance);
    cJSON *r = chk(j, cJSON_AddObjectToObject(e, "reservoir"));
    if (!r)
        return;
    add_int(j, r, "samples", a->samples);
    add_int(j, r, "capacity", a->capacity);
    add_uint(j, r, "bytes", a->bytes);
    add_uint(j, r, "budget_bytes", a->budget_bytes);
    add_uint(j, r, "offered", a->offered);
    add_uint(j, r, "skipped", a->skipped);
    add_uint(j, e, "runs", a->runs);
    add_uint(j, e, "accepted", a->accepted);
    add_uint(j, e, "rejected", a->rejected);
    add_uint(j, e, "failed", a->failed);
    add_bool(j, e, "running", a->running != 0);
    if (a->last) {
        cJSON *l = chk(j, cJSON_AddObjectToObject(e, "last"));
        if (!l)
            return;
        add_str(j, l, "outcome", a->last);
        if (a->checked) {
            add_real(j, l, "before", a->before, 1e6);
            add_real(j, l, "after", a->after, 1e6);
        }
    }
}

static void add_stats(jb *j, cJSON *o, const vt_proto_stats *st) {
    cJSON *s = chk(j, cJSON_AddObjectToObject(o, "stats"));
    if (!s)
        return;
    add_real(j, s, "uptime_s", st->uptime_s, 1000);
    add_int(j, s, "clients", st->clients);
    add_uint(j, s, "dropped", st->dropped);
    add_uint(j, s, "queued_bytes", st->queued_bytes);
    if (st->state) {
        const vt_proto_state_stats *ps = st->state;
        cJSON *e = chk(j, cJSON_AddObjectToObject(s, "state"));
        if (!e)
            return;
        add_str(j, e, "dir", ps->dir ? ps->dir : "");
        add_bool(j, e, "ok", ps->ok != 0);
        if (ps->error)
            add_str(j, e, "error", ps->error);
        add_uint(j, e, "saves", ps->saves);
        add_uint(j, e, "failures", ps->failures);
        if (ps->last_save_s >= 0)
            add_real(j, e, "last_save_s", ps->last_save_s, 1000);
        else
            chk(j, cJSON_AddNullToObject(e, "last_save_s"));
    }
    cJSON *subs = chk(j, cJSON_AddArrayToObject(s, "subscribers"));
    for (int i = 0; subs && i < st->nsubscribers; i++) {
        const vt_proto_subscriber_stats *su = &st->subscribers[i];
        cJSON *e = add_element(j, subs);
        if (!e)
            return;
        add_str(j, e, "peer", su->peer ? su->peer : "");
        chk(j, cJSON_AddBoolToObject(e, "masks", su->masks != 0));
        add_uint(j, e, "queued_bytes", su->queued_bytes);
        add_uint(j, e, "dropped", su->dropped);
    }
    cJSON *arr = chk(j, cJSON_AddArrayToObject(s, "streams"));
    for (int i = 0; arr && i < st->nstreams; i++) {
        const vt_proto_stream_stats *ss = &st->streams[i];
        cJSON *e = add_element(j, arr);
        if (!e)
            return;
        add_str(j, e, "stream", ss->name ? ss->name : "");
        add_uint(j, e, "frames", ss->frames);
        add_uint(j, e, "skipped", ss->skipped);
        add_uint(j, e, "reconnects", ss->reconnects);
        add_real(j, e, "fps", ss->fps, 100);
        add_real(j, e, "latency_ms", ss->latency_ms, 10);
        if (ss->adapt)
            add_adapt_stats(j, e, ss->adapt);
    }
    if (st->mqtt)
        add_mqtt_stats(j, s, st->mqtt);
}

static int reply_check(const vt_proto_reply *r) {
    switch (r->op) {
    case VT_PROTO_OP_ADD_STREAM:
    case VT_PROTO_OP_REMOVE_STREAM:
    case VT_PROTO_OP_RESET_MODEL:
        return r->stream ? 0 : -EINVAL;
    case VT_PROTO_OP_TRACK:
    case VT_PROTO_OP_UNTRACK:
        return r->stream && r->object >= 1 ? 0 : -EINVAL;
    case VT_PROTO_OP_LIST:
        return r->nstreams >= 0 && (r->streams || !r->nstreams) ? 0 : -EINVAL;
    case VT_PROTO_OP_STATS:
        return r->stats && r->stats->nstreams >= 0 && (r->stats->streams || !r->stats->nstreams)
                   ? 0
                   : -EINVAL;
    case VT_PROTO_OP_HELLO:
    case VT_PROTO_OP_SUBSCRIBE:
    case VT_PROTO_OP_UNSUBSCRIBE:
    case VT_PROTO_OP_FORGET:
        return 0;
    case VT_PROTO_OP_NONE:
    case VT_PROTO_OP_COUNT:
        break;
    }
    return -EINVAL;
}

int vt_proto_write_reply(vt_proto_buf *b, const vt_proto_reply *r) {
    if (reply_check(r) < 0)
        return -EINVAL;
    jb j = {0};
    cJSON *o = msg_new(&j, "reply");
    if (!o)
        return -ENOMEM;
    add_id(&j, o, r->id);
    add_str(&j, o, "op", vt_proto_op_name(r->op));
    add_bool(&j, o, "ok", true);
    switch (r->op) {
    case VT_PROTO_OP_ADD_STREAM:
    case VT_PROTO_OP_REMOVE_STREAM:
    case VT_PROTO_OP_RESET_MODEL:
        add_str(&j, o, "stream", r->stream);
        break;
    case VT_PROTO_OP_TRACK:
    case VT_PROTO_OP_UNTRACK:
        add_str(&j, o, "stream", r->stream);
        add_uint(&j, o, "object", r->object);
        if (r->op == VT_PROTO_OP_TRACK) {
            if (r->frame >= 0)
                add_int(&j, o, "frame", r->frame);
            else
                chk(&j, cJSON_AddNullToObject(o, "frame"));
        }
        break;
    case VT_PROTO_OP_LIST: {
        cJSON *arr = chk(&j, cJSON_AddArrayToObject(o, "streams"));
        for (int i = 0; arr && i < r->nstreams; i++) {
            int rc = add_stream_info(&j, arr, &r->streams[i]);
            if (rc < 0) { /* never emit a partial list */
                cJSON_Delete(o);
                return rc;
            }
        }
        break;
    }
    case VT_PROTO_OP_STATS:
        add_stats(&j, o, r->stats);
        break;
    default:
        break;
    }
    return msg_emit(b, &j, o);
}

int vt_proto_write_error(vt_proto_buf *b, const vt_proto_err *e) {
    if (e->code <= VT_PROTO_CODE_OK || e->code > VT_PROTO_CODE_INTERNAL)
        return -EINVAL;
    jb j = {0};
    cJSON *o = msg_new(&j, "error");
    if (!o)
        return -ENOMEM;
    add_id(&j, o, &e->id);
    if (e->op != VT_PROTO_OP_NONE)
        add_str(&j, o, "op", vt_proto_op_name(e->op));
    add_str(&j, o, "code", vt_proto_code_name(e->code));
    if (e->field[0])
        add_str(&j, o, "field", e->field);
    add_str(&j, o, "message", e->message);
    return msg_emit(b, &j, o);
}

int vt_proto_write_object_event(vt_proto_buf *b, const vt_proto_object_event *ev) {
    if (!ev->stream || ev->id < 1 || ev->id > VT_PROTO_OBJECT_ID_MAX ||
        (unsigned)ev->event >= VT_PROTO_LIFECYCLE_COUNT)
        return -EINVAL;
    jb j = {0};
    cJSON *o = msg_new(&j, "object");
    if (!o)
        return -ENOMEM;
    add_str(&j, o, "stream", ev->stream);
    add_uint(&j, o, "object", ev->id);
    if (ev->label)
        add_str(&j, o, "label", ev->label);
    add_str(&j, o, "event", vt_proto_lifecycle_name(ev->event));
    if (ev->frame >= 0)
        add_int(&j, o, "frame", ev->frame);
    else
        chk(&j, cJSON_AddNullToObject(o, "frame"));
    if (ev->reason)
        add_str(&j, o, "reason", ev->reason);
    return msg_emit(b, &j, o);
}

int vt_proto_write_stream_event(vt_proto_buf *b, const vt_proto_stream_event *ev) {
    if (!ev->stream || (unsigned)ev->state > 4)
        return -EINVAL;
    jb j = {0};
    cJSON *o = msg_new(&j, "stream");
    if (!o)
        return -ENOMEM;
    add_str(&j, o, "stream", ev->stream);
    add_str(&j, o, "state", vt_proto_stream_state_name(ev->state));
    if (ev->width > 0 && ev->height > 0) {
        add_int(&j, o, "width", ev->width);
        add_int(&j, o, "height", ev->height);
    }
    if (ev->reason)
        add_str(&j, o, "reason", ev->reason);
    return msg_emit(b, &j, o);
}

int vt_proto_write_model_event(vt_proto_buf *b, const vt_proto_model_event *ev) {
    if (!ev->stream || !ev->model)
        return -EINVAL;
    jb j = {0};
    cJSON *o = msg_new(&j, "model");
    if (!o)
        return -ENOMEM;
    add_str(&j, o, "stream", ev->stream);
    add_str(&j, o, "model", ev->model);
    if (ev->reason)
        add_str(&j, o, "reason", ev->reason);
    if (ev->provenance)
        add_str(&j, o, "provenance", ev->provenance);
    if (ev->checked) {
        add_real(&j, o, "before", ev->before, 1e6);
        add_real(&j, o, "after", ev->after, 1e6);
    }
    return msg_emit(b, &j, o);
}

int vt_proto_write_dropped(vt_proto_buf *b, uint64_t count) {
    jb j = {0};
    cJSON *o = msg_new(&j, "dropped");
    if (o)
        add_uint(&j, o, "count", count);
    return msg_emit(b, &j, o);
}
