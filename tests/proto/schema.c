/*
 * schema.c - PROTOCOL.md's field tables as data, and a checker for server lines. Both the
 * writers' output (test_event.c) and the documentation's examples (test_doc.c) must pass it, so
 * code and documentation meet in one place.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto_test.h"
#include "vt_proto.h"

/* kinds: i integer, n number, s string, b boolean, T true, z null, a array, o object */
typedef struct field {
    const char *name, *kinds;
    int required;
} field;

static const field hello_f[] = {
    {"protocol", "i", 1}, {"server", "s", 1}, {"auth", "b", 1}, {"max_line", "i", 1}, {0}};
static const field reply_f[] = {{"id", "is", 0},     {"op", "s", 1},     {"ok", "T", 1},
                                {"stream", "s", 0},  {"object", "i", 0}, {"frame", "iz", 0},
                                {"streams", "a", 0}, {"stats", "o", 0},  {0}};
static const field error_f[] = {{"id", "is", 0},   {"op", "s", 0},      {"code", "s", 1},
                                {"field", "s", 0}, {"message", "s", 1}, {0}};
static const field frame_f[] = {{"stream", "s", 1},    {"frame", "i", 1},
                                {"pts", "iz", 1},      {"time_base", "a", 1},
                                {"wallclock", "s", 1}, {"capture", "s", 0},
                                {"width", "i", 1},     {"height", "i", 1},
                                {"objects", "a", 1},   {0}};
static const field fobj_f[] = {
    {"id", "i", 1},   {"label", "s", 0}, {"state", "s", 1}, {"score", "n", 1},
    {"area", "i", 1}, {"bbox", "a", 1},  {"mask", "o", 0},  {0}};
static const field object_f[] = {{"stream", "s", 1},
                                 {"object", "i", 1},
                                 {"label", "s", 0},
                                 {"event", "s", 1},
                                 {"frame", "iz", 1},
                                 {"reason", "s", 0},
                                 {0}};
static const field stream_f[] = {{"stream", "s", 1}, {"state", "s", 1},  {"width", "i", 0},
                                 {"height", "i", 0}, {"reason", "s", 0}, {0}};
static const field dropped_f[] = {{"count", "i", 1}, {0}};
static const field info_f[] = {{"stream", "s", 1},
                               {"url", "s", 1},
                               {"state", "s", 1},
                               {"pacing", "s", 0},
                               {"tracker", "s", 0},
                               {"profile", "s", 0},
                               {"width", "iz", 1},
                               {"height", "iz", 1},
                               {"frame", "iz", 1},
                               {"objects", "a", 1},
                               {0}};
static const field info_obj_f[] = {{"id", "i", 1}, {"label", "s", 0}, {"state", "s", 1}, {0}};
static const field stats_f[] = {
    {"uptime_s", "n", 1},     {"clients", "i", 1},     {"dropped", "i", 1},
    {"queued_bytes", "i", 1}, {"subscribers", "a", 1}, {"streams", "a", 1},
    {"state", "o", 0},        {"mqtt", "o", 0},        {0}};
static const field state_f[] = {{"dir", "s", 1},
                                {"ok", "b", 1},
                                {"error", "s", 0},
                                {"saves", "i", 1},
                                {"failures", "i", 1},
                                {"last_save_s", "nz", 1},
                                {0}};
static const field mqtt_f[] = {
    {"connected", "b", 1}, {"connections", "i", 1}, {"failures", "i", 1}, {"published", "i", 1},
    {"dropped", "i", 1},   {"queued", "i", 1},      {"error", "s", 0},    {0}};
static const field subs_f[] = {
    {"peer", "s", 1}, {"masks", "b", 1}, {"queued_bytes", "i", 1}, {"dropped", "i", 1}, {0}};
static const field sstats_f[] = {
    {"stream", "s", 1}, {"frames", "i", 1},     {"skipped", "i", 1}, {"reconnects", "i", 1},
    {"fps", "n", 1},    {"latency_ms", "n", 1}, {"adapt", "o", 0},   {0}};
static const field adapt_f[] = {{"model", "s", 1},     {"provenance", "s", 0},
                                {"reservoir", "o", 1}, {"runs", "i", 1},
                                {"accepted", "i", 1},  {"rejected", "i", 1},
                                {"failed", "i", 1},    {"running", "b", 1},
                                {"last", "o", 0},      {0}};
static const field reservoir_f[] = {{"samples", "i", 1},
                                    {"capacity", "i", 1},
                                    {"bytes", "i", 1},
                                    {"budget_bytes", "i", 1},
                                    {"offered", "i", 1},
                                    {"skipped", "i", 1},
                                    {0}};
static const field adapt_last_f[] = {
    {"outcome", "s", 1}, {"before", "n", 0}, {"after", "n", 0}, {0}};
static const field model_f[] = {{"stream", "s", 1},
                                {"model", "s", 1},
                                {"reason", "s", 0},
                                {"provenance", "s", 0},
                                {"before", "n", 0},
                                {"after", "n", 0},
                                {0}};
static const char *const model_kinds[] = {"shipped", "adapted", NULL};
static const field mask_f[] = {{"size", "a", 1}, {"counts", "s", 1}, {0}};

static const char *const obj_states[] = {"tracking", "occluded", "recovered", "lost", NULL};
/* `list` also shows objects whose frame has not come yet */
static const char *const list_obj_states[] = {"tracking", "occluded", "recovered",
                                              "lost",     "pending",  NULL};
static const char *const stream_states[] = {"connecting",   "up",    "stalled",
                                            "reconnecting", "ended", NULL};
static const char *const lifecycle[] = {"added", "occluded", "lost", "recovered", "removed", NULL};
static const char *const codes[] = {"bad_json",  "bad_utf8",    "line_too_long", "bad_request",
                                    "bad_mask",  "bad_version", "unauthorized",  "forbidden",
                                    "not_found", "conflict",    "limit",         "internal",
                                    NULL};
static const char *const ops[] = {"hello",      "subscribe",     "unsubscribe", "list",
                                  "add_stream", "remove_stream", "track",       "untrack",
                                  "stats",      "forget",        "reset_model", NULL};
static const char *const pacings[] = {"live", "camera", "lossless", NULL};
static const char *const trackers[] = {"mast", "colorize", NULL};
static const char *const profiles[] = {"accurate", "realtime", NULL};

typedef struct chk {
    char *why;
    size_t cap;
    int failed;
} chk;

static int sfail(chk *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int sfail(chk *c, const char *fmt, ...) {
    if (!c->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, c->cap, fmt, ap);
        va_end(ap);
    }
    c->failed = 1;
    return -1;
}

static int is_int(const cJSON *it) {
    return cJSON_IsNumber(it) && isfinite(it->valuedouble) &&
           trunc(it->valuedouble) == it->valuedouble;
}

static int kind_ok(const cJSON *it, const char *kinds) {
    for (const char *k = kinds; *k; k++) {
        if ((*k == 'i' && is_int(it)) || (*k == 'n' && cJSON_IsNumber(it)) ||
            (*k == 's' && cJSON_IsString(it)) || (*k == 'b' && cJSON_IsBool(it)) ||
            (*k == 'T' && cJSON_IsTrue(it)) || (*k == 'z' && cJSON_IsNull(it)) ||
            (*k == 'a' && cJSON_IsArray(it)) || (*k == 'o' && cJSON_IsObject(it)))
            return 1;
    }
    return 0;
}

/* Every member documented, documented kinds, required present. `skip` members are the
 * envelope's (seq, type), checked by the caller. */
static int fields(chk *c, const cJSON *o, const field *spec, const char *what, int skip) {
    if (!cJSON_IsObject(o))
        return sfail(c, "%s: not an object", what);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, o) {
        if (i++ < skip)
            continue;
        const field *f = spec;
        while (f->name && strcmp(f->name, e->string) != 0)
            f++;
        if (!f->name)
            return sfail(c, "%s: undocumented field %s", what, e->string);
        if (!kind_ok(e, f->kinds))
            return sfail(c, "%s: field %s has the wrong type", what, e->string);
    }
    for (const field *f = spec; f->name; f++)
        if (f->required && !cJSON_GetObjectItemCaseSensitive(o, f->name))
            return sfail(c, "%s: missing field %s", what, f->name);
    return 0;
}

static int one_of(chk *c, const cJSON *o, const char *name, const char *const *set) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it)
        return 0;
    for (; *set; set++)
        if (strcmp(it->valuestring, *set) == 0)
            return 0;
    return sfail(c, "%s: undocumented value %s", name, it->valuestring);
}

static int int_array(chk *c, const cJSON *a, int n, const char *what, double *out) {
    if (cJSON_GetArraySize(a) != n)
        return sfail(c, "%s: want %d numbers", what, n);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        if (!is_int(e))
            return sfail(c, "%s[%d] is not an integer", what, i);
        out[i] = e->valuedouble;
    }
    return 0;
}

/* 2024-05-01T12:00:00.123Z */
static int rfc3339(chk *c, const cJSON *o, const char *name) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it)
        return 0;
    const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ", *s = it->valuestring;
    if (strlen(s) != strlen(pat))
        return sfail(c, "%s: not RFC 3339 with ms: %s", name, s);
    for (size_t i = 0; pat[i]; i++)
        if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
            return sfail(c, "%s: not RFC 3339 with ms: %s", name, s);
    return 0;
}

static int frame_object(chk *c, const cJSON *o, int width, int height) {
    if (fields(c, o, fobj_f, "frame object", 0) < 0 || one_of(c, o, "state", obj_states) < 0)
        return -1;
    double bb[4], id = cJSON_GetObjectItem(o, "id")->valuedouble;
    double score = cJSON_GetObjectItem(o, "score")->valuedouble;
    double area = cJSON_GetObjectItem(o, "area")->valuedouble;
    if (id < 1 || score < 0 || score > 1 || area < 0)
        return sfail(c, "frame object: id, score or area out of range");
    if (int_array(c, cJSON_GetObjectItem(o, "bbox"), 4, "bbox", bb) < 0)
        return -1;
    /* the tracker's estimate of the object, clipped to the frame; [0,0,0,0] for none. It is
     * not the mask's box, so only its own rules are checked. */
    int none = bb[0] == 0 && bb[1] == 0 && bb[2] == 0 && bb[3] == 0;
    if (!none && (bb[2] <= 0 || bb[3] <= 0))
        return sfail(c, "bbox: an empty box other than [0,0,0,0]");
    if (bb[0] < 0 || bb[1] < 0 || bb[0] + bb[2] > width || bb[1] + bb[3] > height)
        return sfail(c, "bbox outside the frame");
    const cJSON *m = cJSON_GetObjectItem(o, "mask");
    if (!m)
        return 0;
    double size[2];
    if (fields(c, m, mask_f, "mask", 0) < 0 ||
        int_array(c, cJSON_GetObjectItem(m, "size"), 2, "mask.size", size) < 0)
        return -1;
    if ((int)size[0] != height || (int)size[1] != width)
        return sfail(c, "mask.size is not [height, width]");
    const char *s = cJSON_GetObjectItem(m, "counts")->valuestring;
    uint64_t marea;
    char err[128];
    if (vt_rle_string_measure(s, strlen(s), height, width, &marea, NULL, NULL, err, sizeof err) < 0)
        return sfail(c, "mask.counts: %s", err);
    if ((double)marea != area)
        return sfail(c, "area %g but the mask has %llu pixels", area, (unsigned long long)marea);
    return 0;
}

static int frame_msg(chk *c, const cJSON *o) {
    if (fields(c, o, frame_f, "frame", 2) < 0 || rfc3339(c, o, "wallclock") < 0 ||
        rfc3339(c, o, "capture") < 0)
        return -1;
    double tb[2];
    if (int_array(c, cJSON_GetObjectItem(o, "time_base"), 2, "time_base", tb) < 0)
        return -1;
    if (tb[0] <= 0 || tb[1] <= 0)
        return sfail(c, "time_base must be positive");
    int w = (int)cJSON_GetObjectItem(o, "width")->valuedouble;
    int h = (int)cJSON_GetObjectItem(o, "height")->valuedouble;
    if (w < 1 || h < 1 || cJSON_GetObjectItem(o, "frame")->valuedouble < 0)
        return sfail(c, "frame: width, height or frame out of range");
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(o, "objects")) {
        if (frame_object(c, e, w, h) < 0)
            return -1;
    }
    return 0;
}

static int list_payload(chk *c, const cJSON *arr) {
    const cJSON *s, *e;
    cJSON_ArrayForEach(s, arr) {
        if (fields(c, s, info_f, "list entry", 0) < 0 || one_of(c, s, "state", stream_states) < 0 ||
            one_of(c, s, "pacing", pacings) < 0 || one_of(c, s, "tracker", trackers) < 0 ||
            one_of(c, s, "profile", profiles) < 0)
            return -1;
        /* no credentials: a URL's authority holds no '@' other than in "***@" */
        const char *url = cJSON_GetObjectItem(s, "url")->valuestring, *auth = strstr(url, "://");
        if (auth) {
            auth += 3;
            const char *at = memchr(auth, '@', strcspn(auth, "/?#"));
            if (at && !(at - auth == 3 && strncmp(auth, "***", 3) == 0))
                return sfail(c, "list: url %s has credentials", url);
        }
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(s, "objects")) {
            if (fields(c, e, info_obj_f, "list object", 0) < 0 ||
                one_of(c, e, "state", list_obj_states) < 0)
                return -1;
        }
    }
    return 0;
}

static int reply_msg(chk *c, const cJSON *o) {
    if (fields(c, o, reply_f, "reply", 2) < 0 || one_of(c, o, "op", ops) < 0)
        return -1;
    const char *op = cJSON_GetObjectItem(o, "op")->valuestring;
    /* the payload each op must carry, and nothing else */
    static const struct {
        const char *op, *fields;
    } payload[] = {
        {"add_stream", "stream"},     {"remove_stream", "stream"}, {"track", "stream object frame"},
        {"untrack", "stream object"}, {"list", "streams"},         {"stats", "stats"},
        {"reset_model", "stream"}};
    const char *want = "";
    for (size_t i = 0; i < sizeof payload / sizeof payload[0]; i++)
        if (strcmp(op, payload[i].op) == 0)
            want = payload[i].fields;
    static const char *const optional[] = {"stream", "object", "frame", "streams", "stats"};
    for (size_t i = 0; i < 5; i++) {
        int present = cJSON_GetObjectItemCaseSensitive(o, optional[i]) != NULL;
        char word[16];
        snprintf(word, sizeof word, "%s", optional[i]);
        const char *p = strstr(want, word);
        int wanted =
            p && (p[strlen(word)] == ' ' || p[strlen(word)] == '\0') && (p == want || p[-1] == ' ');
        if (present != wanted)
            return sfail(c, "reply to %s: %s %s", op, optional[i],
                         wanted ? "missing" : "not documented for this op");
    }
    const cJSON *st = cJSON_GetObjectItem(o, "stats");
    if (st) {
        const cJSON *e;
        if (fields(c, st, stats_f, "stats", 0) < 0)
            return -1;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(st, "streams")) {
            if (fields(c, e, sstats_f, "stream stats", 0) < 0)
                return -1;
            const cJSON *ad = cJSON_GetObjectItem(e, "adapt");
            if (ad &&
                (fields(c, ad, adapt_f, "adapt stats", 0) < 0 ||
                 one_of(c, ad, "model", model_kinds) < 0 ||
                 fields(c, cJSON_GetObjectItem(ad, "reservoir"), reservoir_f, "reservoir", 0) < 0))
                return -1;
            const cJSON *last = ad ? cJSON_GetObjectItem(ad, "last") : NULL;
            if (last && fields(c, last, adapt_last_f, "adapt last", 0) < 0)
                return -1;
        }
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(st, "subscribers")) {
            if (fields(c, e, subs_f, "subscriber stats", 0) < 0)
                return -1;
        }
        const cJSON *ps = cJSON_GetObjectItem(st, "state");
        if (ps && fields(c, ps, state_f, "state stats", 0) < 0)
            return -1;
        const cJSON *mq = cJSON_GetObjectItem(st, "mqtt");
        if (mq && fields(c, mq, mqtt_f, "mqtt stats", 0) < 0)
            return -1;
    }
    const cJSON *streams = cJSON_GetObjectItem(o, "streams");
    return streams ? list_payload(c, streams) : 0;
}

int check_server_line(const char *line, size_t len, char *why, size_t cap) {
    chk c = {.why = why, .cap = cap};
    why[0] = '\0';
    cJSON *o = cJSON_ParseWithLength(line, len);
    if (!o)
        return sfail(&c, "not JSON");
    const cJSON *seq = o->child, *type = seq ? seq->next : NULL;
    if (!cJSON_IsObject(o) || !seq || strcmp(seq->string, "seq") != 0 || !is_int(seq) ||
        seq->valuedouble < 0)
        sfail(&c, "seq is not the first field, or not a non-negative integer");
    else if (!type || strcmp(type->string, "type") != 0 || !cJSON_IsString(type))
        sfail(&c, "type is not the second field");
    else if (vt_utf8_check(line, len, NULL) < 0 || memchr(line, '\n', len))
        sfail(&c, "not one line of UTF-8");
    if (c.failed) {
        cJSON_Delete(o);
        return -1;
    }
    const char *t = type->valuestring;
    if (strcmp(t, "hello") == 0) {
        if (fields(&c, o, hello_f, t, 2) == 0 &&
            cJSON_GetObjectItem(o, "protocol")->valuedouble != VT_PROTO_VERSION)
            sfail(&c, "hello: protocol is not %d", VT_PROTO_VERSION);
    } else if (strcmp(t, "reply") == 0) {
        reply_msg(&c, o);
    } else if (strcmp(t, "error") == 0) {
        if (fields(&c, o, error_f, t, 2) == 0 && one_of(&c, o, "code", codes) == 0)
            one_of(&c, o, "op", ops);
    } else if (strcmp(t, "frame") == 0) {
        frame_msg(&c, o);
    } else if (strcmp(t, "object") == 0) {
        if (fields(&c, o, object_f, t, 2) == 0)
            one_of(&c, o, "event", lifecycle);
    } else if (strcmp(t, "stream") == 0) {
        if (fields(&c, o, stream_f, t, 2) == 0)
            one_of(&c, o, "state", stream_states);
    } else if (strcmp(t, "model") == 0) {
        if (fields(&c, o, model_f, t, 2) == 0)
            one_of(&c, o, "model", model_kinds);
    } else if (strcmp(t, "dropped") == 0) {
        fields(&c, o, dropped_f, t, 2);
    } else {
        sfail(&c, "undocumented type %s", t);
    }
    cJSON_Delete(o);
    return c.failed ? -1 : 0;
}
