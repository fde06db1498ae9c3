/*
 * config.c - see config.h. Every value is checked against its documented range, and every failure
 * names the field as a path ("streams[1].objects[0].box[2]") and the value it got.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>
#include <libavutil/error.h>

#include "config.h"
#include "vt_config.h"

#define FILE_MAX      (4 << 20) /* a config file larger than 4 MiB is a mistake */
#define TIMEOUT_MAX_S 86400.0   /* one day */

typedef struct pctx {
    char *err;
    size_t errlen;
    char path[256]; /* the field being parsed */
    const char *dir;
} pctx;

static int fail(pctx *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int fail(pctx *c, const char *fmt, ...) {
    if (c->err && c->errlen) {
        int n = snprintf(c->err, c->errlen, "%s%s", c->path, c->path[0] ? ": " : "");
        if (n < 0 || (size_t)n >= c->errlen)
            return -EINVAL;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

/* Append ".key" or "[i]" to the path; returns the old length for pop(). */
static size_t push_key(pctx *c, const char *key) {
    size_t n = strlen(c->path);
    snprintf(c->path + n, sizeof c->path - n, "%s%s", n ? "." : "", key);
    return n;
}

static size_t push_index(pctx *c, int i) {
    size_t n = strlen(c->path);
    snprintf(c->path + n, sizeof c->path - n, "[%d]", i);
    return n;
}

static void pop(pctx *c, size_t n) {
    c->path[n] = 0;
}

static int want(pctx *c, const cJSON *it, const char *what) {
    char d[64];
    return fail(c, "must be %s, got %s", what, vt_proto_describe(it, d, sizeof d));
}

/* Keys starting with '#' are comments (JSON has none); any other key must be known, once. */
static int check_keys(pctx *c, const cJSON *obj, const char *const *known) {
    for (const cJSON *e = obj->child; e; e = e->next) {
        if (e->string[0] == '#')
            continue;
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(e->string, known[i]) == 0;
        size_t n = push_key(c, e->string);
        if (!ok) {
            fail(c, "unknown field");
            pop(c, n);
            return -EINVAL;
        }
        for (const cJSON *f = obj->child; f != e; f = f->next)
            if (strcmp(f->string, e->string) == 0) {
                fail(c, "field given twice");
                pop(c, n);
                return -EINVAL;
            }
        pop(c, n);
    }
    return 0;
}

/* 1-based line of byte `at` of text. */
static size_t line_of(const char *text, size_t at) {
    size_t line = 1;
    for (size_t i = 0; i < at; i++)
        line += text[i] == '\n';
    return line;
}

/* Offset of the first \u0000 escape inside a JSON string of text, or len. */
static size_t nul_escape(const char *text, size_t len) {
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        if (!in_str) {
            in_str = text[i] == '"';
        } else if (text[i] == '"') {
            in_str = 0;
        } else if (text[i] == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0)
                return i;
            i++; /* the escaped character */
        }
    }
    return len;
}

static int has_ctl(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* The helpers below take the member `key` of `obj`; absent members leave *out untouched. Each
 * returns 1 when the member was present and valid, 0 when absent, -EINVAL with err set. */

static int get_string(pctx *c, const cJSON *obj, const char *key, size_t maxlen, char **out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it)
        return 0;
    size_t n = push_key(c, key);
    char what[80];
    snprintf(what, sizeof what, "a string of 1..%zu bytes without control characters", maxlen);
    int rc;
    if (!cJSON_IsString(it) || !it->valuestring[0] || strlen(it->valuestring) > maxlen ||
        has_ctl(it->valuestring)) {
        rc = want(c, it, what);
    } else {
        char *s = strdup(it->valuestring);
        if (!s) {
            rc = -ENOMEM;
        } else {
            free(*out);
            *out = s;
            rc = 1;
        }
    }
    pop(c, n);
    return rc;
}

static int get_number(pctx *c, const cJSON *obj, const char *key, double lo, double hi, int integer,
                      double *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it)
        return 0;
    size_t n = push_key(c, key);
    int rc = 1;
    double v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!cJSON_IsNumber(it) || !isfinite(v) || v < lo || v > hi || (integer && v != floor(v))) {
        char what[96];
        snprintf(what, sizeof what, "%s in [%.15g, %.15g]", integer ? "an integer" : "a number", lo,
                 hi);
        rc = want(c, it, what);
    } else {
        *out = v;
    }
    pop(c, n);
    return rc;
}

static int get_int(pctx *c, const cJSON *obj, const char *key, long long lo, long long hi,
                   long long *out) {
    double v;
    int rc = get_number(c, obj, key, (double)lo, (double)hi, 1, &v);
    if (rc > 0)
        *out = (long long)v;
    return rc;
}

/* Seconds as a number, stored in milliseconds. */
static int get_seconds(pctx *c, const cJSON *obj, const char *key, double lo, int64_t *ms) {
    double v;
    int rc = get_number(c, obj, key, lo, TIMEOUT_MAX_S, 0, &v);
    if (rc > 0)
        *ms = (int64_t)llround(v * 1000.0);
    return rc;
}

static int get_bool(pctx *c, const cJSON *obj, const char *key, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it)
        return 0;
    size_t n = push_key(c, key);
    int rc = 1;
    if (!cJSON_IsBool(it))
        rc = want(c, it, "true or false");
    else
        *out = cJSON_IsTrue(it);
    pop(c, n);
    return rc;
}

/* One of names[1..] (names[0] is the DEFAULT value's empty name). */
static int get_enum(pctx *c, const cJSON *obj, const char *key, const char *(*name)(int), int lo,
                    int hi, int *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it)
        return 0;
    size_t n = push_key(c, key);
    int rc = -EINVAL;
    if (cJSON_IsString(it))
        for (int v = lo; v <= hi; v++)
            if (strcmp(it->valuestring, name(v)) == 0) {
                *out = v;
                rc = 1;
            }
    if (rc < 0) {
        char what[128] = "one of";
        for (int v = lo; v <= hi; v++)
            snprintf(what + strlen(what), sizeof what - strlen(what), "%s \"%s\"",
                     v > lo ? "," : "", name(v));
        rc = want(c, it, what);
    }
    pop(c, n);
    return rc;
}

static const char *pacing_name(int v) {
    return vt_proto_pacing_name((vt_proto_pacing)v);
}
static const char *tracker_name(int v) {
    return vt_proto_tracker_name((vt_proto_tracker)v);
}
static const char *profile_name(int v) {
    return vt_proto_profile_name((vt_proto_profile)v);
}
static const char *level_names[] = {"", "", "", "error", "warning", "notice", "info", "debug"};
static const char *level_name(int v) {
    return level_names[v];
}
static const char *transport_name(int v) {
    return v == VT_SOURCE_TRANSPORT_TCP ? "tcp" : "udp";
}

/* Stream names follow the protocol: 1..64 of [A-Za-z0-9_.-], the first alphanumeric. */
static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > VT_PROTO_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-')))
            return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Small public helpers
 * ------------------------------------------------------------------------------------------- */

int vtd_parse_hostport(const char *s, char *host, size_t hostlen, int *port) {
    const char *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        hl = (size_t)(close - s - 1);
        s++;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon) /* a bare IPv6 address needs brackets */
            return -EINVAL;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return -EINVAL;
    memcpy(host, s, hl);
    host[hl] = 0;
    char *end;
    errno = 0;
    if (colon[1] < '0' || colon[1] > '9') /* strtol would take a sign or spaces */
        return -EINVAL;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
        return -EINVAL;
    *port = (int)p;
    return 0;
}

int vtd_av_options(const vt_proto_kv *kv, int n, char **out) {
    *out = NULL;
    if (n <= 0)
        return 0;
    /* Worst case: every byte of a value is a quote, which becomes '\'' (4 bytes). */
    size_t cap = 1;
    for (int i = 0; i < n; i++)
        cap += strlen(kv[i].key) + 4 * strlen(kv[i].value) + 4;
    char *s = malloc(cap), *p = s;
    if (!s)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        for (const char *k = kv[i].key; *k; k++)
            if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
                  (*k >= '0' && *k <= '9') || *k == '_' || *k == '-')) {
                free(s);
                return -EINVAL;
            }
        if (i)
            *p++ = ';';
        p += sprintf(p, "%s='", kv[i].key);
        /* FFmpeg's av_get_token: inside '...' everything is literal except the closing quote;
         * a quote is written as '\'' (close, escaped quote, reopen). */
        for (const char *v = kv[i].value; *v; v++) {
            if (*v == '\'') {
                memcpy(p, "'\\''", 4);
                p += 4;
            } else {
                *p++ = *v;
            }
        }
        *p++ = '\'';
    }
    *p = 0;
    *out = s;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Stream configurations
 * ------------------------------------------------------------------------------------------- */

void vtd_stream_conf_clear(vtd_stream_conf *sc) {
    free(sc->url);
    free(sc->av_options);
    free(sc->format);
    for (int i = 0; i < sc->nobjects; i++) {
        free(sc->objects[i].label);
        free(sc->objects[i].mask);
        free(sc->objects[i].points);
    }
    free(sc->objects);
    free(sc->overlay_path);
    free(sc->fingerprint);
    free(sc->whitelist);
    memset(sc, 0, sizeof *sc);
}

static char *dup_opt(const char *s, int *oom) {
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

int vtd_stream_conf_copy(vtd_stream_conf *dst, const vtd_stream_conf *src) {
    int oom = 0;
    *dst = *src;
    dst->url = dup_opt(src->url, &oom);
    dst->av_options = dup_opt(src->av_options, &oom);
    dst->format = dup_opt(src->format, &oom);
    dst->overlay_path = dup_opt(src->overlay_path, &oom);
    dst->fingerprint = dup_opt(src->fingerprint, &oom);
    dst->whitelist = dup_opt(src->whitelist, &oom);
    dst->objects = NULL;
    dst->nobjects = 0;
    if (src->nobjects) {
        dst->objects = calloc((size_t)src->nobjects, sizeof *dst->objects);
        if (!dst->objects)
            oom = 1;
        for (int i = 0; !oom && i < src->nobjects; i++) {
            const vtd_object_conf *o = &src->objects[i];
            vtd_object_conf *d = &dst->objects[i];
            *d = *o;
            d->label = dup_opt(o->label, &oom);
            d->mask = NULL;
            d->points = NULL;
            dst->nobjects = i + 1;
            if (o->mask) {
                size_t n = (size_t)o->shape.w * (size_t)o->shape.h;
                if ((d->mask = malloc(n)))
                    memcpy(d->mask, o->mask, n);
                else
                    oom = 1;
                d->shape.data = d->mask;
            }
            if (o->points) {
                size_t n = sizeof(float) * 2 * (size_t)o->shape.npoints;
                if ((d->points = malloc(n)))
                    memcpy(d->points, o->points, n);
                else
                    oom = 1;
                d->shape.points = d->points;
            }
        }
    }
    if (oom) {
        vtd_stream_conf_clear(dst);
        return -ENOMEM;
    }
    return 0;
}

/* Local paths and file: URLs read the host's files; everything else is a network source. */
static int is_local_url(const char *url) {
    return strstr(url, "://") == NULL || strncmp(url, "file:", 5) == 0;
}

static void stream_defaults(const vtd_config *cfg, vtd_stream_conf *sc) {
    sc->pacing = cfg->def_pacing;
    sc->tracker = cfg->def_tracker;
    sc->profile = cfg->def_profile;
    sc->transport = VT_SOURCE_TRANSPORT_TCP;
    sc->reconnect = -1;
    sc->decoder_threads = 1;
    sc->connect_timeout_ms = 5000;
    sc->read_timeout_ms = 5000;
    sc->stall_ms = 10000;
    sc->backoff_min_ms = 250;
    sc->backoff_max_ms = 30000;
    sc->max_objects = 0;
    sc->topk = -1;
    sc->radius = -2;
    sc->temperature = -1;
}

/* Resolve what the defaults left open once the URL is known. */
static void stream_resolve(vtd_stream_conf *sc) {
    if (sc->pacing == VT_PROTO_PACING_DEFAULT)
        sc->pacing = is_local_url(sc->url) ? VT_PROTO_PACING_CAMERA : VT_PROTO_PACING_LIVE;
    if (sc->tracker == VT_PROTO_TRACKER_DEFAULT)
        sc->tracker = VT_PROTO_TRACKER_MAST;
    if (sc->profile == VT_PROTO_PROFILE_DEFAULT)
        sc->profile = VT_PROTO_PROFILE_REALTIME;
}

static int fingerprint(vtd_stream_conf *sc, const cJSON *item, const cJSON *defaults) {
    char *a = item ? cJSON_PrintUnformatted(item) : NULL;
    char *b = defaults ? cJSON_PrintUnformatted(defaults) : NULL;
    size_t n = strlen(sc->url) + (a ? strlen(a) : 0) + (b ? strlen(b) : 0) + 8;
    sc->fingerprint = malloc(n);
    if (sc->fingerprint)
        snprintf(sc->fingerprint, n, "%s|%s|%s", sc->url, a ? a : "", b ? b : "");
    free(a);
    free(b);
    return sc->fingerprint ? 0 : -ENOMEM;
}

static int parse_options(pctx *c, const cJSON *obj, vtd_stream_conf *sc) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "options");
    if (!it)
        return 0;
    size_t n0 = push_key(c, "options");
    int rc = 0, n = 0;
    vt_proto_kv kv[VT_PROTO_OPTIONS_MAX];
    char num[VT_PROTO_OPTIONS_MAX][32];
    if (!cJSON_IsObject(it) || cJSON_GetArraySize(it) > VT_PROTO_OPTIONS_MAX) {
        rc = want(c, it, "an object of at most 32 FFmpeg options");
        goto done;
    }
    for (const cJSON *e = it->child; e; e = e->next) {
        size_t n1 = push_key(c, e->string);
        const char *k = e->string;
        int ok = k[0] && strlen(k) <= VT_PROTO_OPT_KEY_MAX;
        for (const char *p = k; *p; p++)
            ok &= (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == '-';
        if (!ok) {
            rc = fail(c, "option names are 1..64 of A-Z a-z 0-9 _ -");
        } else if (cJSON_IsString(e) && e->valuestring[0] &&
                   strlen(e->valuestring) <= VT_PROTO_OPT_VALUE_MAX && !has_ctl(e->valuestring)) {
            kv[n++] = (vt_proto_kv){k, e->valuestring};
        } else if (cJSON_IsNumber(e) && isfinite(e->valuedouble)) {
            snprintf(num[n], sizeof num[n], "%.17g", e->valuedouble);
            kv[n] = (vt_proto_kv){k, num[n]};
            n++;
        } else {
            rc = want(c, e, "a string of 1..1024 bytes or a number");
        }
        pop(c, n1);
        if (rc < 0)
            goto done;
    }
    rc = vtd_av_options(kv, n, &sc->av_options);
done:
    pop(c, n0);
    return rc;
}

/* [x, y, w, h] or [[x, y], ...]: finite numbers with |v| <= 1e6. */
static int get_coord(pctx *c, const cJSON *it, int index, float *out, int positive) {
    size_t n = push_index(c, index);
    int rc = 0;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || fabs(it->valuedouble) > 1e6 ||
        (positive && !(it->valuedouble > 0)))
        rc = want(c, it, positive ? "a number in (0, 1e6]" : "a number in [-1e6, 1e6]");
    else
        *out = (float)it->valuedouble;
    pop(c, n);
    return rc;
}

static int parse_object(pctx *c, const cJSON *it, vtd_object_conf *o) {
    static const char *const known[] = {"id",      "label", "frame", "box",
                                        "polygon", "mask",  "index", NULL};
    if (!cJSON_IsObject(it))
        return want(c, it, "an object {id?, label?, frame?, box | polygon | mask}");
    int rc = check_keys(c, it, known);
    if (rc < 0)
        return rc;
    long long v;
    o->frame = -1;
    if ((rc = get_int(c, it, "id", 1, VT_PROTO_OBJECT_ID_MAX, &v)) < 0)
        return rc;
    if (rc > 0)
        o->id = (uint32_t)v;
    if ((rc = get_int(c, it, "frame", 0, VT_PROTO_FRAME_MAX, &v)) < 0)
        return rc;
    if (rc > 0)
        o->frame = v;
    if ((rc = get_string(c, it, "label", VT_PROTO_LABEL_MAX, &o->label)) < 0)
        return rc;
    rc = 0;
    const cJSON *box = cJSON_GetObjectItemCaseSensitive(it, "box");
    const cJSON *poly = cJSON_GetObjectItemCaseSensitive(it, "polygon");
    const cJSON *mask = cJSON_GetObjectItemCaseSensitive(it, "mask");
    if (!!box + !!poly + !!mask != 1)
        return fail(c, "give exactly one of box, polygon, mask");
    if (!mask && cJSON_GetObjectItemCaseSensitive(it, "index"))
        return fail(c, "index goes with mask");
    if (box) {
        size_t n = push_key(c, "box");
        if (!cJSON_IsArray(box) || cJSON_GetArraySize(box) != 4) {
            rc = want(c, box, "[x, y, w, h]");
        } else {
            o->shape.kind = VT_SHAPE_BOX;
            for (int k = 0; k < 4 && rc == 0; k++)
                rc = get_coord(c, cJSON_GetArrayItem(box, k), k, &o->shape.box[k], k >= 2);
        }
        pop(c, n);
        return rc;
    }
    if (poly) {
        size_t n = push_key(c, "polygon");
        int np = cJSON_IsArray(poly) ? cJSON_GetArraySize(poly) : 0;
        if (np < 3 || np > VT_PROTO_POLYGON_MAX) {
            rc = want(c, poly, "an array of 3..1024 points [x, y]");
        } else if (!(o->points = malloc(sizeof(float) * 2 * (size_t)np))) {
            rc = -ENOMEM;
        } else {
            o->shape.kind = VT_SHAPE_POLYGON;
            o->shape.points = o->points;
            o->shape.npoints = np;
            int i = 0;
            for (const cJSON *p = poly->child; p && rc == 0; p = p->next, i++) {
                size_t n1 = push_index(c, i);
                if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2)
                    rc = want(c, p, "a point [x, y]");
                for (int k = 0; k < 2 && rc == 0; k++)
                    rc = get_coord(c, cJSON_GetArrayItem(p, k), k, &o->points[2 * i + k], 0);
                pop(c, n1);
            }
        }
        pop(c, n);
        return rc;
    }
    /* A mask PNG: grey (nonzero = object) or palette (index `index`, default: any nonzero). */
    char *path = NULL;
    if ((rc = get_string(c, it, "mask", 4096, &path)) < 0)
        return rc;
    if ((rc = get_int(c, it, "index", 1, 255, &v)) < 0) {
        free(path);
        return rc;
    }
    int index = rc > 0 ? (int)v : 0;
    char full[4200];
    if (path[0] != '/' && c->dir)
        snprintf(full, sizeof full, "%s/%s", c->dir, path);
    else
        snprintf(full, sizeof full, "%s", path);
    free(path);
    size_t n = push_key(c, "mask");
    int w, h;
    uint8_t *labels = NULL;
    char err[256];
    if ((rc = vt_mask_read_png(full, &w, &h, &labels, NULL, err, sizeof err)) < 0) {
        rc = fail(c, "%s", err);
    } else {
        size_t area = 0;
        for (size_t i = 0; i < (size_t)w * h; i++) {
            labels[i] = index ? labels[i] == index : labels[i] != 0;
            area += labels[i];
        }
        if (area == 0) {
            rc = fail(c, "%s: the mask is empty%s", full, index ? " at this index" : "");
            free(labels);
        } else {
            o->mask = labels;
            o->shape = (vt_shape){.kind = VT_SHAPE_MASK, .w = w, .h = h, .data = labels};
        }
    }
    pop(c, n);
    return rc;
}

static int parse_stream(pctx *c, const cJSON *it, const vtd_config *cfg, const cJSON *defaults,
                        vtd_stream_conf *sc) {
    static const char *const known[] = {"name",
                                        "url",
                                        "options",
                                        "format",
                                        "pacing",
                                        "tracker",
                                        "profile",
                                        "rtsp_transport",
                                        "reconnect",
                                        "decoder_threads",
                                        "connect_timeout_s",
                                        "read_timeout_s",
                                        "stall_timeout_s",
                                        "backoff_min_s",
                                        "backoff_max_s",
                                        "max_objects",
                                        "topk",
                                        "temperature",
                                        "radius",
                                        "objects",
                                        "overlay",
                                        NULL};
    if (!cJSON_IsObject(it))
        return want(c, it, "an object {name, url, ...}");
    int rc = check_keys(c, it, known);
    if (rc < 0)
        return rc;
    stream_defaults(cfg, sc);
    sc->origin = VTD_ORIGIN_CONFIG;
    sc->allow_local = 1;
    char *name = NULL;
    if ((rc = get_string(c, it, "name", VT_PROTO_NAME_MAX, &name)) <= 0) {
        if (rc == 0) {
            size_t n = push_key(c, "name");
            rc = fail(c, "missing (every stream needs a name)");
            pop(c, n);
        }
        return rc;
    }
    int ok = valid_name(name);
    snprintf(sc->name, sizeof sc->name, "%s", name);
    free(name);
    if (!ok) {
        size_t n = push_key(c, "name");
        rc = fail(c,
                  "\"%s\" is not a stream name (1..64 of A-Z a-z 0-9 _ . -, first a letter "
                  "or digit)",
                  sc->name);
        pop(c, n);
        return rc;
    }
    if ((rc = get_string(c, it, "url", VT_PROTO_URL_MAX, &sc->url)) <= 0) {
        if (rc == 0) {
            size_t n = push_key(c, "url");
            rc = fail(c, "missing");
            pop(c, n);
        }
        return rc;
    }
    if ((rc = parse_options(c, it, sc)) < 0 ||
        (rc = get_string(c, it, "format", 64, &sc->format)) < 0)
        return rc;
    int e;
    if ((rc = get_enum(c, it, "pacing", pacing_name, 1, VT_PROTO_PACING_COUNT - 1, &e)) < 0)
        return rc;
    if (rc > 0)
        sc->pacing = (vt_proto_pacing)e;
    if ((rc = get_enum(c, it, "tracker", tracker_name, 1, VT_PROTO_TRACKER_COUNT - 1, &e)) < 0)
        return rc;
    if (rc > 0)
        sc->tracker = (vt_proto_tracker)e;
    if ((rc = get_enum(c, it, "profile", profile_name, 1, VT_PROTO_PROFILE_COUNT - 1, &e)) < 0)
        return rc;
    if (rc > 0)
        sc->profile = (vt_proto_profile)e;
    if ((rc = get_enum(c, it, "rtsp_transport", transport_name, 0, 1, &e)) < 0)
        return rc;
    if (rc > 0)
        sc->transport = (vt_source_transport)e;
    int b;
    if ((rc = get_bool(c, it, "reconnect", &b)) < 0)
        return rc;
    if (rc > 0)
        sc->reconnect = b;
    long long v;
    if ((rc = get_int(c, it, "decoder_threads", 0, 16, &v)) < 0)
        return rc;
    if (rc > 0)
        sc->decoder_threads = (int)v;
    if ((rc = get_seconds(c, it, "connect_timeout_s", 0.1, &sc->connect_timeout_ms)) < 0 ||
        (rc = get_seconds(c, it, "read_timeout_s", 0.1, &sc->read_timeout_ms)) < 0 ||
        (rc = get_seconds(c, it, "stall_timeout_s", 0.1, &sc->stall_ms)) < 0 ||
        (rc = get_seconds(c, it, "backoff_min_s", 0.01, &sc->backoff_min_ms)) < 0 ||
        (rc = get_seconds(c, it, "backoff_max_s", 0.01, &sc->backoff_max_ms)) < 0)
        return rc;
    if (sc->backoff_max_ms < sc->backoff_min_ms)
        return fail(c, "backoff_max_s (%.3f) is below backoff_min_s (%.3f)",
                    sc->backoff_max_ms / 1e3, sc->backoff_min_ms / 1e3);
    if ((rc = get_int(c, it, "max_objects", 1, VT_PROTO_OBJECTS_MAX, &v)) < 0)
        return rc;
    if (rc > 0)
        sc->max_objects = (int)v;
    if ((rc = get_int(c, it, "topk", 0, 4096, &v)) < 0)
        return rc;
    if (rc > 0)
        sc->topk = (int)v;
    if ((rc = get_int(c, it, "radius", -1, 256, &v)) < 0)
        return rc;
    if (rc > 0)
        sc->radius = (int)v;
    double d;
    if ((rc = get_number(c, it, "temperature", 1e-6, 1e6, 0, &d)) < 0)
        return rc;
    if (rc > 0)
        sc->temperature = (float)d;

    const cJSON *ov = cJSON_GetObjectItemCaseSensitive(it, "overlay");
    if (ov) {
        static const char *const ok_ov[] = {"path", "seconds", NULL};
        size_t n = push_key(c, "overlay");
        sc->overlay_seconds = 20;
        if (!cJSON_IsObject(ov))
            rc = want(c, ov, "an object {path, seconds}");
        else if ((rc = check_keys(c, ov, ok_ov)) == 0 &&
                 (rc = get_string(c, ov, "path", 4096, &sc->overlay_path)) == 0)
            rc = fail(c, "path is missing");
        if (rc >= 0)
            rc = get_number(c, ov, "seconds", 0.1, TIMEOUT_MAX_S, 0, &sc->overlay_seconds);
        pop(c, n);
        if (rc < 0)
            return rc;
    }

    const cJSON *objs = cJSON_GetObjectItemCaseSensitive(it, "objects");
    if (objs) {
        size_t n = push_key(c, "objects");
        int no = cJSON_IsArray(objs) ? cJSON_GetArraySize(objs) : -1;
        if (no < 0 || no > VT_PROTO_OBJECTS_MAX) {
            rc = want(c, objs, "an array of at most 64 objects");
        } else if (no > 0 && !(sc->objects = calloc((size_t)no, sizeof *sc->objects))) {
            rc = -ENOMEM;
        } else {
            int i = 0;
            for (const cJSON *o = objs->child; o && rc >= 0; o = o->next, i++) {
                size_t n1 = push_index(c, i);
                sc->nobjects = i + 1;
                rc = parse_object(c, o, &sc->objects[i]);
                for (int j = 0; rc >= 0 && j < i; j++)
                    if (sc->objects[i].id && sc->objects[j].id == sc->objects[i].id)
                        rc = fail(c, "object id %u is given twice", sc->objects[i].id);
                pop(c, n1);
            }
            if (rc >= 0 && sc->max_objects && no > sc->max_objects)
                rc = fail(c, "%d objects but max_objects is %d", no, sc->max_objects);
        }
        pop(c, n);
        if (rc < 0)
            return rc;
    }
    stream_resolve(sc);
    return fingerprint(sc, it, defaults);
}

/* ---------------------------------------------------------------------------------------------
 * The whole file
 * ------------------------------------------------------------------------------------------- */

static void config_defaults(vtd_config *cfg) {
    cfg->log_level = VTD_LOG_INFO;
    cfg->blas_threads = 1;
    cfg->limits = (vtd_limits){
        .clients = 256,
        .line_bytes = VT_PROTO_LINE_MAX,
        .soft_queue_bytes = 1 << 20,
        .hard_queue_bytes = 16 << 20,
        .streams = 16,
        .idle_timeout_ms = 60000,
        .line_timeout_ms = 10000,
        .shutdown_timeout_ms = 2000,
    };
}

void vtd_config_free(vtd_config **pc) {
    vtd_config *cfg = *pc;
    if (!cfg)
        return;
    free(cfg->path);
    for (int i = 0; i < cfg->nlisten; i++)
        free(cfg->listen[i]);
    free(cfg->token);
    free(cfg->model);
    free(cfg->state_dir);
    free(cfg->protocols);
    vtd_mqtt_conf_clear(&cfg->mqtt);
    free(cfg->http.listen);
    free(cfg->http.static_dir);
    for (int i = 0; i < cfg->nstreams; i++)
        vtd_stream_conf_clear(&cfg->streams[i]);
    free(cfg->streams);
    free(cfg);
    *pc = NULL;
}

static int parse_listen(pctx *c, const cJSON *root, vtd_config *cfg) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "listen");
    if (!it)
        return 0;
    size_t n = push_key(c, "listen");
    int rc = 0;
    const cJSON *one = cJSON_IsString(it) ? it : NULL;
    int count = one ? 1 : cJSON_IsArray(it) ? cJSON_GetArraySize(it) : 0;
    if (count < 1 || count > VTD_LISTEN_MAX) {
        rc = want(c, it, "\"HOST:PORT\" or an array of 1..8 of them");
    } else {
        int i = 0;
        for (const cJSON *e = one ? one : it->child; e && rc == 0 && i < count; e = e->next, i++) {
            size_t n1 = one ? strlen(c->path) : push_index(c, i);
            char host[256];
            int port;
            if (!cJSON_IsString(e) ||
                vtd_parse_hostport(e->valuestring, host, sizeof host, &port) < 0)
                rc = want(c, e, "\"HOST:PORT\" (IPv6 as \"[ADDR]:PORT\", port 1..65535)");
            else if (!(cfg->listen[cfg->nlisten++] = strdup(e->valuestring)))
                rc = -ENOMEM;
            pop(c, n1);
        }
    }
    pop(c, n);
    return rc;
}

static int read_file(const char *path, size_t max, char **out, size_t *len, char *err,
                     size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -errno;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = buf && ferror(f);
    fclose(f);
    if (!buf)
        return -ENOMEM;
    if (bad || n > max) {
        free(buf);
        snprintf(err, errlen, "%s: %s", path, bad ? "read error" : "file too large");
        return -EINVAL;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The MQTT sink
 * ------------------------------------------------------------------------------------------- */

void vtd_mqtt_conf_clear(vtd_mqtt_conf *mc) {
    free(mc->host);
    free(mc->client_id);
    free(mc->username);
    free(mc->password);
    free(mc->ca_file);
    free(mc->cert_file);
    free(mc->key_file);
    free(mc->topic_prefix);
    free(mc->node);
    free(mc->ha_prefix);
    free(mc->fingerprint);
    memset(mc, 0, sizeof *mc);
}

int vtd_mqtt_conf_copy(vtd_mqtt_conf *dst, const vtd_mqtt_conf *src) {
    int oom = 0;
    *dst = *src;
    dst->host = dup_opt(src->host, &oom);
    dst->client_id = dup_opt(src->client_id, &oom);
    dst->username = dup_opt(src->username, &oom);
    dst->password = dup_opt(src->password, &oom);
    dst->ca_file = dup_opt(src->ca_file, &oom);
    dst->cert_file = dup_opt(src->cert_file, &oom);
    dst->key_file = dup_opt(src->key_file, &oom);
    dst->topic_prefix = dup_opt(src->topic_prefix, &oom);
    dst->node = dup_opt(src->node, &oom);
    dst->ha_prefix = dup_opt(src->ha_prefix, &oom);
    dst->fingerprint = dup_opt(src->fingerprint, &oom);
    if (oom) {
        vtd_mqtt_conf_clear(dst);
        return -ENOMEM;
    }
    return 0;
}

/* A topic prefix: levels separated by '/', none empty, no wildcard, not a $SYS-like topic. */
static int valid_topic_prefix(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 128 || s[0] == '/' || s[0] == '$' || s[n - 1] == '/' || strstr(s, "//") ||
        has_ctl(s))
        return 0;
    return strpbrk(s, "+#") == NULL;
}

/* A file that must be readable now (a path as written, relative to the working directory). */
static int get_file(pctx *c, const cJSON *obj, const char *key, char **out) {
    int rc = get_string(c, obj, key, 4096, out);
    if (rc > 0 && access(*out, R_OK) != 0) {
        size_t n = push_key(c, key);
        rc = fail(c, "%s: %s", *out, strerror(errno));
        pop(c, n);
    }
    return rc;
}

/* password_file: a path, or a bare name looked up in $CREDENTIALS_DIRECTORY (systemd's
 * LoadCredential=) when that is set. The secret is the file's first line. */
static int get_password(pctx *c, const cJSON *obj, vtd_mqtt_conf *mc) {
    char *name = NULL;
    int rc = get_string(c, obj, "password_file", 4096, &name);
    if (rc <= 0)
        return rc;
    size_t n = push_key(c, "password_file");
    char path[4200], err[300], *text = NULL;
    const char *creds = getenv("CREDENTIALS_DIRECTORY");
    if (!strchr(name, '/') && creds && creds[0])
        snprintf(path, sizeof path, "%s/%s", creds, name);
    else
        snprintf(path, sizeof path, "%s", name);
    size_t len = 0;
    if (read_file(path, 1026, &text, &len, err, sizeof err) < 0) {
        rc = fail(c, "%s", err);
    } else {
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            text[--len] = 0;
        if (len < 1 || len > 1024 || has_ctl(text))
            rc = fail(c, "%s: the password must be 1..1024 bytes without control characters", path);
        else
            mc->password = text, text = NULL;
    }
    free(text);
    free(name);
    pop(c, n);
    return rc;
}

static int parse_mqtt_tls(pctx *c, const cJSON *obj, vtd_mqtt_conf *mc) {
    static const char *const ok[] = {"ca_file", "cert_file", "key_file", "insecure", NULL};
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "tls");
    if (!t)
        return 0;
    size_t n = push_key(c, "tls");
    int rc = 0;
    if (!cJSON_IsObject(t))
        rc = want(c, t, "an object {ca_file?, cert_file?, key_file?, insecure?}");
    if (rc >= 0)
        rc = check_keys(c, t, ok);
    if (rc >= 0)
        rc = get_file(c, t, "ca_file", &mc->ca_file);
    if (rc >= 0)
        rc = get_file(c, t, "cert_file", &mc->cert_file);
    if (rc >= 0)
        rc = get_file(c, t, "key_file", &mc->key_file);
    if (rc >= 0)
        rc = get_bool(c, t, "insecure", &mc->tls_insecure);
    if (rc >= 0 && !mc->cert_file != !mc->key_file)
        rc = fail(c, "give cert_file and key_file together");
    pop(c, n);
    mc->tls = 1;
    return rc;
}

static int parse_mqtt_events(pctx *c, const cJSON *obj, vtd_mqtt_conf *mc) {
    static const char *const names[] = {"new", "update", "end"};
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(obj, "events");
    if (!e)
        return 0;
    size_t n = push_key(c, "events");
    int rc = 0;
    if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) > 3)
        rc = want(c, e, "an array of \"new\", \"update\", \"end\"");
    mc->events = 0;
    int i = 0;
    for (const cJSON *it = rc < 0 ? NULL : e->child; it && rc >= 0; it = it->next, i++) {
        int bit = 0;
        for (int k = 0; k < 3; k++)
            if (cJSON_IsString(it) && strcmp(it->valuestring, names[k]) == 0)
                bit = 1 << k;
        size_t n1 = push_index(c, i);
        if (!bit)
            rc = want(c, it, "one of \"new\", \"update\", \"end\"");
        else if (mc->events & bit)
            rc = fail(c, "\"%s\" is given twice", it->valuestring);
        mc->events |= bit;
        pop(c, n1);
    }
    pop(c, n);
    return rc;
}

/* The names that go into topics: a prefix without wildcards or empty levels, a node id with
 * the rules of stream names (stream names themselves can hold no '/', '+' or '#'). */
static int parse_mqtt_topics(pctx *c, const cJSON *m, vtd_mqtt_conf *mc) {
    int rc;
    if ((rc = get_string(c, m, "topic_prefix", 128, &mc->topic_prefix)) > 0 &&
        !valid_topic_prefix(mc->topic_prefix)) {
        size_t n = push_key(c, "topic_prefix");
        rc = fail(c,
                  "\"%s\" is not a topic prefix (1..128 bytes of levels separated by /, none "
                  "empty, no + or #, not starting with $)",
                  mc->topic_prefix);
        pop(c, n);
    }
    if (rc >= 0 && (rc = get_string(c, m, "node", VT_PROTO_NAME_MAX, &mc->node)) > 0 &&
        !valid_name(mc->node)) {
        size_t n = push_key(c, "node");
        rc = fail(c,
                  "\"%s\" is not a node id (1..64 of A-Z a-z 0-9 _ . -, first a letter or "
                  "digit)",
                  mc->node);
        pop(c, n);
    }
    if (rc >= 0 && (rc = get_string(c, m, "ha_prefix", 128, &mc->ha_prefix)) > 0 &&
        !valid_topic_prefix(mc->ha_prefix)) {
        size_t n = push_key(c, "ha_prefix");
        rc = fail(c, "\"%s\" is not a topic prefix", mc->ha_prefix);
        pop(c, n);
    }
    if (rc < 0)
        return rc;
    if (!mc->topic_prefix && !(mc->topic_prefix = strdup("vtrack")))
        return -ENOMEM;
    if (!mc->ha_prefix && !(mc->ha_prefix = strdup("homeassistant")))
        return -ENOMEM;
    return 0;
}

static int parse_mqtt_fields(pctx *c, const cJSON *m, vtd_mqtt_conf *mc) {
    static const char *const ok[] = {
        "host",          "port",          "client_id",      "username",
        "password_file", "tls",           "topic_prefix",   "node",
        "qos",           "retain",        "events",         "masks",
        "frames",        "ha_discovery",  "ha_prefix",      "keepalive_s",
        "backoff_min_s", "backoff_max_s", "queue_messages", NULL};
    int rc = check_keys(c, m, ok);
    if (rc < 0 || (rc = get_string(c, m, "host", 253, &mc->host)) < 0)
        return rc;
    if (rc == 0) {
        size_t n = push_key(c, "host");
        rc = fail(c, "missing (the broker's address or name)");
        pop(c, n);
        return rc;
    }
    long long v;
    if ((rc = parse_mqtt_tls(c, m, mc)) < 0)
        return rc;
    mc->port = mc->tls ? 8883 : 1883;
    if ((rc = get_int(c, m, "port", 1, 65535, &v)) < 0)
        return rc;
    if (rc > 0)
        mc->port = (int)v;
    if ((rc = get_string(c, m, "client_id", 64, &mc->client_id)) < 0 ||
        (rc = get_string(c, m, "username", 256, &mc->username)) < 0 ||
        (rc = get_password(c, m, mc)) < 0 || (rc = parse_mqtt_topics(c, m, mc)) < 0 ||
        (rc = parse_mqtt_events(c, m, mc)) < 0)
        return rc;
    if (mc->password && !mc->username)
        return fail(c, "password_file needs a username");
    if ((rc = get_int(c, m, "qos", 0, 2, &v)) < 0)
        return rc;
    if (rc > 0)
        mc->qos = (int)v;
    if ((rc = get_bool(c, m, "retain", &mc->retain)) < 0 ||
        (rc = get_bool(c, m, "masks", &mc->masks)) < 0 ||
        (rc = get_bool(c, m, "frames", &mc->frames)) < 0 ||
        (rc = get_bool(c, m, "ha_discovery", &mc->ha_discovery)) < 0)
        return rc;
    if ((rc = get_int(c, m, "keepalive_s", 5, 3600, &v)) < 0)
        return rc;
    if (rc > 0)
        mc->keepalive_s = (int)v;
    if ((rc = get_int(c, m, "queue_messages", 16, 1000000, &v)) < 0)
        return rc;
    if (rc > 0)
        mc->queue_max = (int)v;
    if ((rc = get_seconds(c, m, "backoff_min_s", 0.01, &mc->backoff_min_ms)) < 0 ||
        (rc = get_seconds(c, m, "backoff_max_s", 0.01, &mc->backoff_max_ms)) < 0)
        return rc;
    if (mc->backoff_max_ms < mc->backoff_min_ms)
        return fail(c, "backoff_max_s (%.3f) is below backoff_min_s (%.3f)",
                    mc->backoff_max_ms / 1e3, mc->backoff_min_ms / 1e3);
    return 0;
}

static int parse_mqtt(pctx *c, const cJSON *root, vtd_mqtt_conf *mc) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "mqtt");
    if (!m)
        return 0;
    size_t n = push_key(c, "mqtt");
    int rc = 0;
    *mc = (vtd_mqtt_conf){.qos = 1,
                          .retain = 1,
                          .events = VTD_MQTT_EV_NEW | VTD_MQTT_EV_UPDATE | VTD_MQTT_EV_END,
                          .keepalive_s = 30,
                          .backoff_min_ms = 500,
                          .backoff_max_ms = 30000,
                          .queue_max = 1000};
    if (!VT_HAVE_MQTT)
        rc = fail(c, "this vtrackd was built without MQTT support (libmosquitto-dev)");
    else if (!cJSON_IsObject(m))
        rc = want(c, m, "an object {host, port?, ...}");
    else
        rc = parse_mqtt_fields(c, m, mc);
    if (rc >= 0) {
        /* The canonical text, and the secret (a changed password file also reconnects). */
        char *a = cJSON_PrintUnformatted(m);
        size_t len = (a ? strlen(a) : 0) + (mc->password ? strlen(mc->password) : 0) + 2;
        if (a && (mc->fingerprint = malloc(len)))
            snprintf(mc->fingerprint, len, "%s|%s", a, mc->password ? mc->password : "");
        free(a);
        rc = mc->fingerprint ? 0 : -ENOMEM;
        mc->enabled = rc == 0;
    }
    pop(c, n);
    return rc;
}

static int parse_http_fields(pctx *c, const cJSON *o, vtd_http_conf *hc) {
    static const char *const ok[] = {"enabled",
                                     "listen",
                                     "static_dir",
                                     "clients",
                                     "header_bytes",
                                     "body_bytes",
                                     "request_timeout_s",
                                     "frame_rate",
                                     "jpeg_quality",
                                     "ws_queue_bytes",
                                     NULL};
    int rc = check_keys(c, o, ok);
    long long v;
    char *listen = NULL;
    if (rc < 0 || (rc = get_bool(c, o, "enabled", &hc->enabled)) < 0 ||
        (rc = get_string(c, o, "listen", 271, &listen)) < 0)
        return rc;
    if (listen) {
        char host[256];
        int port;
        free(hc->listen);
        hc->listen = listen;
        if (vtd_parse_hostport(listen, host, sizeof host, &port) < 0) {
            size_t n = push_key(c, "listen");
            rc = fail(c,
                      "must be \"HOST:PORT\" (IPv6 as \"[ADDR]:PORT\", port 1..65535), got "
                      "\"%s\"",
                      listen);
            pop(c, n);
            return rc;
        }
    }
    if ((rc = get_string(c, o, "static_dir", 4096, &hc->static_dir)) < 0)
        return rc;
    if ((rc = get_int(c, o, "clients", 1, 4096, &v)) < 0)
        return rc;
    if (rc > 0)
        hc->clients = (int)v;
    if ((rc = get_int(c, o, "header_bytes", 1024, 65536, &v)) < 0)
        return rc;
    if (rc > 0)
        hc->header_bytes = (size_t)v;
    if ((rc = get_int(c, o, "body_bytes", 1024, 16 << 20, &v)) < 0)
        return rc;
    if (rc > 0)
        hc->body_bytes = (size_t)v;
    if ((rc = get_seconds(c, o, "request_timeout_s", 0.1, &hc->request_timeout_ms)) < 0 ||
        (rc = get_number(c, o, "frame_rate", 0.1, 60, 0, &hc->frame_rate)) < 0)
        return rc;
    if ((rc = get_int(c, o, "jpeg_quality", 1, 100, &v)) < 0)
        return rc;
    if (rc > 0)
        hc->jpeg_quality = (int)v;
    if ((rc = get_int(c, o, "ws_queue_bytes", 4096, 256 << 20, &v)) < 0)
        return rc;
    if (rc > 0)
        hc->ws_queue_bytes = (size_t)v;
    return 0;
}

static int parse_http(pctx *c, const cJSON *root, vtd_http_conf *hc) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "http");
    if (!o)
        return 0;
    size_t n = push_key(c, "http");
    *hc = (vtd_http_conf){.enabled = 1,
                          .clients = 64,
                          .header_bytes = 8192,
                          .body_bytes = 1 << 20,
                          .request_timeout_ms = 10000,
                          .frame_rate = 10,
                          .jpeg_quality = 80,
                          .ws_queue_bytes = 1 << 20};
    int rc = cJSON_IsObject(o) ? parse_http_fields(c, o, hc)
                               : want(c, o, "an object {listen?, static_dir?, ...}");
    if (rc >= 0 && !hc->listen && !(hc->listen = strdup(VTD_DEFAULT_HTTP)))
        rc = -ENOMEM;
    pop(c, n);
    return rc;
}

static int parse_root(pctx *c, const cJSON *root, vtd_config *cfg) {
    static const char *const known[] = {
        "listen", "token",   "token_file", "log_level", "model", "blas_threads", "defaults",
        "limits", "clients", "streams",    "state_dir", "mqtt",  "http",         NULL};
    if (!cJSON_IsObject(root))
        return want(c, root, "a JSON object");
    int rc = check_keys(c, root, known);
    if (rc < 0 || (rc = parse_listen(c, root, cfg)) < 0 ||
        (rc = get_string(c, root, "token", VT_PROTO_TOKEN_MAX, &cfg->token)) < 0)
        return rc;
    char *tf = NULL;
    if ((rc = get_string(c, root, "token_file", 4096, &tf)) < 0)
        return rc;
    if (tf) {
        size_t n = push_key(c, "token_file");
        char *text = NULL, err[300];
        size_t len = 0;
        if (cfg->token) {
            rc = fail(c, "give token or token_file, not both");
        } else if (read_file(tf, VT_PROTO_TOKEN_MAX + 2, &text, &len, err, sizeof err) < 0) {
            rc = fail(c, "%s", err);
        } else {
            while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
                text[--len] = 0;
            if (len < 1 || len > VT_PROTO_TOKEN_MAX || has_ctl(text))
                rc = fail(c, "%s: the token must be 1..256 bytes without control characters", tf);
            else
                cfg->token = text, text = NULL;
        }
        free(text);
        free(tf);
        pop(c, n);
        if (rc < 0)
            return rc;
    }
    int e;
    if ((rc = get_enum(c, root, "log_level", level_name, 3, 7, &e)) < 0)
        return rc;
    if (rc > 0)
        cfg->log_level = (vtd_log_level)e;
    if ((rc = get_string(c, root, "model", 4096, &cfg->model)) < 0 ||
        (rc = get_string(c, root, "state_dir", 4096, &cfg->state_dir)) < 0)
        return rc;
    long long v;
    if ((rc = get_int(c, root, "blas_threads", 1, 64, &v)) < 0)
        return rc;
    if (rc > 0)
        cfg->blas_threads = (int)v;

    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "defaults");
    if (d) {
        static const char *const ok[] = {"pacing", "tracker", "profile", NULL};
        size_t n = push_key(c, "defaults");
        if (!cJSON_IsObject(d))
            rc = want(c, d, "an object {pacing, tracker, profile}");
        if (rc >= 0)
            rc = check_keys(c, d, ok);
        if (rc >= 0 &&
            (rc = get_enum(c, d, "pacing", pacing_name, 1, VT_PROTO_PACING_COUNT - 1, &e)) > 0)
            cfg->def_pacing = (vt_proto_pacing)e;
        if (rc >= 0 &&
            (rc = get_enum(c, d, "tracker", tracker_name, 1, VT_PROTO_TRACKER_COUNT - 1, &e)) > 0)
            cfg->def_tracker = (vt_proto_tracker)e;
        if (rc >= 0 &&
            (rc = get_enum(c, d, "profile", profile_name, 1, VT_PROTO_PROFILE_COUNT - 1, &e)) > 0)
            cfg->def_profile = (vt_proto_profile)e;
        pop(c, n);
        if (rc < 0)
            return rc;
    }

    const cJSON *l = cJSON_GetObjectItemCaseSensitive(root, "limits");
    if (l) {
        static const char *const ok[] = {"clients",
                                         "line_bytes",
                                         "soft_queue_bytes",
                                         "hard_queue_bytes",
                                         "streams",
                                         "idle_timeout_s",
                                         "send_buffer_bytes",
                                         "line_timeout_s",
                                         "shutdown_timeout_s",
                                         NULL};
        vtd_limits *lim = &cfg->limits;
        size_t n = push_key(c, "limits");
        if (!cJSON_IsObject(l))
            rc = want(c, l, "an object");
        if (rc >= 0)
            rc = check_keys(c, l, ok);
        if (rc >= 0 && (rc = get_int(c, l, "clients", 1, 65536, &v)) > 0)
            lim->clients = (int)v;
        if (rc >= 0 && (rc = get_int(c, l, "line_bytes", 1024, 64 << 20, &v)) > 0)
            lim->line_bytes = (size_t)v;
        if (rc >= 0 && (rc = get_int(c, l, "soft_queue_bytes", 4096, 1LL << 30, &v)) > 0)
            lim->soft_queue_bytes = (size_t)v;
        if (rc >= 0 && (rc = get_int(c, l, "hard_queue_bytes", 4096, 1LL << 32, &v)) > 0)
            lim->hard_queue_bytes = (size_t)v;
        if (rc >= 0 && (rc = get_int(c, l, "streams", 1, VTD_STREAMS_MAX, &v)) > 0)
            lim->streams = (int)v;
        if (rc >= 0 && (rc = get_int(c, l, "send_buffer_bytes", 0, 64 << 20, &v)) > 0)
            lim->send_buffer_bytes = (int)v;
        if (rc >= 0)
            rc = get_seconds(c, l, "idle_timeout_s", 0.1, &lim->idle_timeout_ms);
        if (rc >= 0)
            rc = get_seconds(c, l, "line_timeout_s", 0.1, &lim->line_timeout_ms);
        if (rc >= 0)
            rc = get_seconds(c, l, "shutdown_timeout_s", 0, &lim->shutdown_timeout_ms);
        if (rc >= 0 && lim->hard_queue_bytes < lim->soft_queue_bytes)
            rc = fail(c, "hard_queue_bytes (%zu) is below soft_queue_bytes (%zu)",
                      lim->hard_queue_bytes, lim->soft_queue_bytes);
        pop(c, n);
        if (rc < 0)
            return rc;
    }

    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(root, "clients");
    if (cl) {
        static const char *const ok[] = {"allow_add_streams", "allow_local_urls", "protocols",
                                         NULL};
        size_t n = push_key(c, "clients");
        if (!cJSON_IsObject(cl))
            rc = want(c, cl, "an object");
        if (rc >= 0)
            rc = check_keys(c, cl, ok);
        if (rc >= 0)
            rc = get_bool(c, cl, "allow_add_streams", &cfg->allow_add_streams);
        if (rc >= 0)
            rc = get_bool(c, cl, "allow_local_urls", &cfg->allow_local_urls);
        const cJSON *p = rc >= 0 ? cJSON_GetObjectItemCaseSensitive(cl, "protocols") : NULL;
        if (p) {
            size_t n1 = push_key(c, "protocols");
            int np = cJSON_IsArray(p) ? cJSON_GetArraySize(p) : 0;
            if (np < 1 || np > 32) {
                rc = want(c, p, "an array of 1..32 FFmpeg protocol names");
            } else if (!(cfg->protocols = calloc(1, (size_t)np * 33))) {
                rc = -ENOMEM;
            } else {
                int i = 0;
                for (const cJSON *item = p->child; item && rc >= 0; item = item->next, i++) {
                    size_t n2 = push_index(c, i);
                    int ok2 = cJSON_IsString(item) && item->valuestring[0] &&
                              strlen(item->valuestring) <= 32;
                    for (const char *q = ok2 ? item->valuestring : ""; *q; q++)
                        ok2 &= (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_' ||
                               *q == '+' || *q == '-';
                    if (!ok2)
                        rc = want(c, item, "a protocol name (\"rtsp\", \"tcp\", ...)");
                    else if ((strcmp(item->valuestring, "file") == 0 ||
                              strcmp(item->valuestring, "pipe") == 0) &&
                             !cfg->allow_local_urls)
                        rc = fail(c, "\"%s\" reads local files: set allow_local_urls too",
                                  item->valuestring);
                    else
                        sprintf(cfg->protocols + strlen(cfg->protocols), "%s%s", i ? "," : "",
                                item->valuestring);
                    pop(c, n2);
                }
            }
            pop(c, n1);
        }
        pop(c, n);
        if (rc < 0)
            return rc;
    }

    if ((rc = parse_mqtt(c, root, &cfg->mqtt)) < 0 || (rc = parse_http(c, root, &cfg->http)) < 0)
        return rc;

    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "streams");
    if (st) {
        size_t n = push_key(c, "streams");
        int ns = cJSON_IsArray(st) ? cJSON_GetArraySize(st) : -1;
        if (ns < 0) {
            rc = want(c, st, "an array of streams");
        } else if (ns > cfg->limits.streams) {
            rc = fail(c, "%d streams but limits.streams is %d", ns, cfg->limits.streams);
        } else if (ns && !(cfg->streams = calloc((size_t)ns, sizeof *cfg->streams))) {
            rc = -ENOMEM;
        } else {
            int i = 0;
            for (const cJSON *s = st->child; s && rc >= 0; s = s->next, i++) {
                size_t n1 = push_index(c, i);
                cfg->nstreams = i + 1;
                rc = parse_stream(c, s, cfg, d, &cfg->streams[i]);
                for (int j = 0; rc >= 0 && j < i; j++)
                    if (strcmp(cfg->streams[j].name, cfg->streams[i].name) == 0)
                        rc = fail(c, "stream name \"%s\" is used twice", cfg->streams[i].name);
                pop(c, n1);
            }
        }
        pop(c, n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int vtd_config_parse(const char *text, size_t len, const char *dir, vtd_config **out, char *err,
                     size_t errlen) {
    *out = NULL;
    vtd_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return -ENOMEM;
    config_defaults(cfg);
    pctx c = {.err = err, .errlen = errlen, .dir = dir};
    int rc = 0;
    size_t bad = 0;
    const char *nul;
    if (text && vt_utf8_check(text, len, &bad) < 0) {
        rc = fail(&c, "not valid UTF-8 (line %zu, byte %zu)", line_of(text, bad), bad);
    } else if (text && (nul = memchr(text, 0, len)) != NULL) {
        /* Not JSON text, and cJSON takes it for whitespace, or ends a string there */
        bad = (size_t)(nul - text);
        rc = fail(&c, "a NUL byte (line %zu, byte %zu)", line_of(text, bad), bad);
    } else if (text && (bad = nul_escape(text, len)) < len) {
        /* cJSON would end the string there: a token "ab\u0000cd" would be "ab" */
        rc = fail(&c, "a string contains \\u0000 (line %zu, byte %zu)", line_of(text, bad), bad);
    } else if (text) {
        const char *end = NULL;
        cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
        if (!root) {
            size_t at = end ? (size_t)(end - text) : 0;
            rc = fail(&c, "not valid JSON (line %zu, byte %zu)", line_of(text, at < len ? at : len),
                      at);
        } else {
            /* Trailing bytes after the object are a mistake too (a second object, garbage). */
            while (end && (size_t)(end - text) < len && strchr(" \t\r\n", *end))
                end++;
            if (end && (size_t)(end - text) < len)
                rc = fail(&c, "unexpected bytes after the JSON object (byte %zu)",
                          (size_t)(end - text));
            else
                rc = parse_root(&c, root, cfg);
            cJSON_Delete(root);
        }
    }
    if (rc == 0 && cfg->nlisten == 0 && !(cfg->listen[cfg->nlisten++] = strdup(VTD_DEFAULT_LISTEN)))
        rc = -ENOMEM;
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc < 0) {
        vtd_config_free(&cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int vtd_config_apply_cli(vtd_config *cfg, const vtd_cli *cli, char *err, size_t errlen) {
    pctx c = {.err = err, .errlen = errlen};
    char host[256];
    int port;
    if (cli->listen) {
        snprintf(c.path, sizeof c.path, "--listen");
        if (vtd_parse_hostport(cli->listen, host, sizeof host, &port) < 0)
            return fail(&c, "\"%s\" is not HOST:PORT (IPv6 as [ADDR]:PORT, port 1..65535)",
                        cli->listen);
        for (int i = 0; i < cfg->nlisten; i++)
            free(cfg->listen[i]);
        cfg->nlisten = 0;
        if (!(cfg->listen[cfg->nlisten++] = strdup(cli->listen)))
            return -ENOMEM;
    }
    if (cli->model) {
        free(cfg->model);
        if (!(cfg->model = strdup(cli->model)))
            return -ENOMEM;
    }
    if (cli->state_dir) {
        free(cfg->state_dir);
        if (!(cfg->state_dir = strdup(cli->state_dir)))
            return -ENOMEM;
    }
    if (cli->log_level) {
        snprintf(c.path, sizeof c.path, "--log-level");
        if (vtd_log_parse_level(cli->log_level, &cfg->log_level) < 0)
            return fail(&c, "\"%s\" is not one of error, warning, notice, info, debug",
                        cli->log_level);
    }
    for (int i = 0; i < cli->nstreams; i++) {
        snprintf(c.path, sizeof c.path, "--stream");
        const char *eq = strchr(cli->streams[i], '=');
        char name[VT_PROTO_NAME_MAX + 1];
        size_t nl = eq ? (size_t)(eq - cli->streams[i]) : 0;
        if (!eq || nl == 0 || nl > VT_PROTO_NAME_MAX || !eq[1] ||
            strlen(eq + 1) > VT_PROTO_URL_MAX || has_ctl(eq + 1))
            return fail(&c, "\"%s\" is not NAME=URL", cli->streams[i]);
        memcpy(name, cli->streams[i], nl);
        name[nl] = 0;
        if (!valid_name(name))
            return fail(&c, "\"%s\" is not a stream name (1..64 of A-Z a-z 0-9 _ . -)", name);
        for (int j = 0; j < i; j++)
            if (strncmp(cli->streams[j], cli->streams[i], nl + 1) == 0)
                return fail(&c, "stream %s is given twice", name);
        vtd_stream_conf *sc = NULL;
        for (int j = 0; j < cfg->nstreams; j++)
            if (strcmp(cfg->streams[j].name, name) == 0)
                sc = &cfg->streams[j];
        if (sc) {
            /* Same name as a config stream: the command line replaces its URL only. */
            free(sc->url);
            if (!(sc->url = strdup(eq + 1)))
                return -ENOMEM;
        } else {
            if (cfg->nstreams >= cfg->limits.streams)
                return fail(&c, "more streams than limits.streams (%d)", cfg->limits.streams);
            vtd_stream_conf *ns = realloc(cfg->streams, sizeof *ns * (size_t)(cfg->nstreams + 1));
            if (!ns)
                return -ENOMEM;
            cfg->streams = ns;
            sc = &cfg->streams[cfg->nstreams++];
            memset(sc, 0, sizeof *sc);
            stream_defaults(cfg, sc);
            snprintf(sc->name, sizeof sc->name, "%s", name);
            if (!(sc->url = strdup(eq + 1)))
                return -ENOMEM;
        }
        sc->origin = VTD_ORIGIN_CLI;
        sc->allow_local = 1;
        stream_resolve(sc);
        free(sc->fingerprint);
        sc->fingerprint = NULL;
        if (fingerprint(sc, NULL, NULL) < 0)
            return -ENOMEM;
    }
    return 0;
}

int vtd_config_load(const vtd_cli *cli, vtd_config **out, char *err, size_t errlen) {
    char *text = NULL, dir[4096] = "";
    size_t len = 0;
    *out = NULL;
    int rc;
    if (cli->config_path) {
        if ((rc = read_file(cli->config_path, FILE_MAX, &text, &len, err, errlen)) < 0) {
            if (rc == -ENOMEM)
                snprintf(err, errlen, "out of memory");
            return rc == -ENOMEM ? rc : -EINVAL;
        }
        snprintf(dir, sizeof dir, "%s", cli->config_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(dir, sizeof dir, ".");
    }
    char perr[512] = "";
    rc = vtd_config_parse(text ? text : NULL, len, text ? dir : NULL, out, perr, sizeof perr);
    free(text);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", cli->config_path ? cli->config_path : "config", perr);
        return rc;
    }
    if (cli->config_path && !((*out)->path = strdup(cli->config_path))) {
        vtd_config_free(out);
        return -ENOMEM;
    }
    if ((rc = vtd_config_apply_cli(*out, cli, err, errlen)) < 0) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        vtd_config_free(out);
        return rc;
    }
    return 0;
}

const char *vtd_config_state_dir(const vtd_config *cfg, char *buf, size_t len) {
    if (cfg->state_dir && cfg->state_dir[0])
        return cfg->state_dir;
    const char *env = getenv("STATE_DIRECTORY"); /* systemd: "DIR[:DIR...]" */
    if (!env || !env[0] || env[0] == ':')
        return NULL;
    size_t n = strcspn(env, ":");
    if (n >= len)
        return NULL;
    memcpy(buf, env, n);
    buf[n] = 0;
    return buf;
}

const vtd_stream_conf *vtd_config_find_stream(const vtd_config *cfg, const char *name) {
    for (int i = 0; i < cfg->nstreams; i++)
        if (strcmp(cfg->streams[i].name, name) == 0)
            return &cfg->streams[i];
    return NULL;
}

int vtd_stream_conf_from_cmd(const vtd_config *cfg, const vt_proto_cmd *cmd, vtd_stream_conf *sc,
                             char *field, size_t fieldlen, char *err, size_t errlen) {
    memset(sc, 0, sizeof *sc);
    stream_defaults(cfg, sc);
    snprintf(sc->name, sizeof sc->name, "%s", cmd->add_stream.stream);
    sc->origin = VTD_ORIGIN_CLIENT;
    sc->allow_local = cfg->allow_local_urls;
    int rc;
    if (!(sc->url = strdup(cmd->add_stream.url)))
        goto oom;
    if (cfg->protocols && !(sc->whitelist = strdup(cfg->protocols)))
        goto oom;
    if (cmd->add_stream.pacing != VT_PROTO_PACING_DEFAULT)
        sc->pacing = cmd->add_stream.pacing;
    if (cmd->add_stream.tracker != VT_PROTO_TRACKER_DEFAULT)
        sc->tracker = cmd->add_stream.tracker;
    if (cmd->add_stream.profile != VT_PROTO_PROFILE_DEFAULT)
        sc->profile = cmd->add_stream.profile;
    rc = vtd_av_options(cmd->add_stream.options, cmd->add_stream.noptions, &sc->av_options);
    if (rc == -ENOMEM)
        goto oom;
    if (rc < 0) {
        snprintf(field, fieldlen, "options");
        snprintf(err, errlen, "options: option names are 1..64 of A-Z a-z 0-9 _ -");
        vtd_stream_conf_clear(sc);
        return rc;
    }
    stream_resolve(sc);
    if (fingerprint(sc, NULL, NULL) < 0)
        goto oom;
    return 0;
oom:
    snprintf(field, fieldlen, "%s", "");
    snprintf(err, errlen, "out of memory");
    vtd_stream_conf_clear(sc);
    return -ENOMEM;
}

int vtd_stream_conf_to_stream(const vtd_stream_conf *sc, const vt_model *model,
                              vt_stream_config *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->name = sc->name;
    out->url = sc->url;
    vt_source_opts_default(&out->source);
    vt_source_opts *so = &out->source;
    so->allow_local = sc->allow_local;
    so->protocol_whitelist = sc->whitelist;
    so->av_options = sc->av_options;
    so->format = sc->format;
    so->connect_timeout_ms = sc->connect_timeout_ms;
    so->read_timeout_ms = sc->read_timeout_ms;
    so->stall_ms = sc->stall_ms;
    so->backoff_min_ms = sc->backoff_min_ms;
    so->backoff_max_ms = sc->backoff_max_ms;
    so->rtsp_transport = sc->transport;
    so->decoder_threads = sc->decoder_threads;
    so->reconnect = sc->reconnect;
    switch (sc->pacing) {
    case VT_PROTO_PACING_CAMERA:
        /* A file as a camera: native rate, looping (a real device is paced by itself). */
        so->pacing = is_local_url(sc->url) ? VT_SOURCE_PACING_NATIVE_LOOP : VT_SOURCE_PACING_FAST;
        out->mode = VT_STREAM_LIVE;
        break;
    case VT_PROTO_PACING_LOSSLESS:
        so->pacing = VT_SOURCE_PACING_FAST;
        out->mode = VT_STREAM_LOSSLESS;
        break;
    default:
        so->pacing = VT_SOURCE_PACING_FAST;
        out->mode = VT_STREAM_LIVE;
        break;
    }
    out->model = model;
    out->tracker = sc->tracker;
    out->profile = sc->profile;
    out->pacing = sc->pacing;
    int rc = vt_tracker_params_preset(&out->params, vt_proto_tracker_name(sc->tracker),
                                      vt_proto_profile_name(sc->profile), model);
    if (rc < 0) {
        snprintf(err, errlen, "stream %s: no tracker preset %s/%s", sc->name,
                 vt_proto_tracker_name(sc->tracker), vt_proto_profile_name(sc->profile));
        return rc;
    }
    vt_tracker_params *p = &out->params;
    if (sc->max_objects > 0)
        p->max_objects = sc->max_objects;
    if (p->max_objects > VT_PROTO_OBJECTS_MAX || p->max_objects < 1)
        p->max_objects = VT_PROTO_OBJECTS_MAX;
    if (sc->topk >= 0)
        p->topk = sc->topk;
    if (sc->radius >= -1)
        p->radius_first = p->radius_long = p->radius_short = sc->radius;
    if (sc->temperature > 0)
        p->temperature = sc->temperature;
    return 0;
}
