/*
 * config.c - see config.h. The whole file: its checks as text (UTF-8, NUL bytes, one JSON
 * object), the tables of the root, its sections and the streams, the command-line overrides,
 * and what the daemon asks of a loaded configuration; the table machinery is config_fields.c's
 * (config_int.h). Every value is checked against its documented range, and every failure names
 * the field as a path ("streams[1].objects[0].box[2]") and the value it got.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_int.h"
#include "vt_config.h"

#define FILE_MAX (4 << 20) /* a config file larger than 4 MiB is a mistake */

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

/* A file of one secret line (token_file, mqtt.password_file): at most `max` bytes without the
 * line end, none a control character. 0 with *out set, or -EINVAL / -ENOMEM (error written). */
static int read_secret(vtd_pctx *c, const char *path, size_t max, const char *what, char **out) {
    char *text = NULL, err[300];
    size_t len = 0;
    int rc = vtd_cfg_read_file(path, max + 2, &text, &len, err, sizeof err);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0)
        return vtd_cfg_fail(c, "%s", err);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = 0;
    if (len < 1 || len > max || !vtd_cfg_text_ok(text)) {
        free(text);
        return vtd_cfg_fail(c, "%s: the %s must be 1..%zu bytes without control characters", path,
                            what, max);
    }
    *out = text;
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * The root's own fields
 * ------------------------------------------------------------------------------------------- */

/* "HOST:PORT" or an array of 1..8 of them; replaces what listen held (the default, or the file's
 * when --listen overrides it). */
static int parse_listen(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj;
    vtd_config *cfg = base;
    const cJSON *one = cJSON_IsString(it) ? it : NULL;
    int count = one ? 1 : cJSON_IsArray(it) ? cJSON_GetArraySize(it) : 0;
    if (count < 1 || count > VTD_LISTEN_MAX)
        return vtd_cfg_want(c, it, "\"HOST:PORT\" or an array of 1..8 of them");
    for (int i = 0; i < cfg->nlisten; i++)
        free(cfg->listen[i]);
    cfg->nlisten = 0;
    int i = 0, rc = 0;
    for (const cJSON *e = one ? one : it->child; e && rc == 0 && i < count; e = e->next, i++) {
        size_t n = one ? strlen(c->path) : vtd_cfg_push_index(c, i);
        char host[256];
        int port;
        if (!cJSON_IsString(e) || vtd_parse_hostport(e->valuestring, host, sizeof host, &port) < 0)
            rc = vtd_cfg_want(c, e, "\"HOST:PORT\" (IPv6 as \"[ADDR]:PORT\", port 1..65535)");
        else if (!(cfg->listen[cfg->nlisten++] = strdup(e->valuestring)))
            rc = -ENOMEM;
        vtd_cfg_pop(c, n);
    }
    return rc;
}

static int parse_token_file(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj;
    vtd_config *cfg = base;
    char *tf = NULL;
    int rc = vtd_cfg_string(c, it, 4096, &tf);
    if (rc > 0)
        rc = cfg->token ? vtd_cfg_fail(c, "give token or token_file, not both")
                        : read_secret(c, tf, VT_PROTO_TOKEN_MAX, "token", &cfg->token);
    free(tf);
    return rc;
}

static const char *level_names[] = {
    [VTD_LOG_ERROR] = "error", [VTD_LOG_WARNING] = "warning", [VTD_LOG_NOTICE] = "notice",
    [VTD_LOG_INFO] = "info",   [VTD_LOG_DEBUG] = "debug",
};
_Static_assert(sizeof level_names / sizeof level_names[0] == VTD_LOG_DEBUG + 1,
               "a log level lacks a name");
static const char *level_name(int v) {
    return level_names[v];
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

static char *dup_opt(const char *s, int *oom) {
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

/* ---------------------------------------------------------------------------------------------
 * Streams
 * ------------------------------------------------------------------------------------------- */

/* Local paths and file: URLs read the host's files; everything else is a network source. */
static int is_local_url(const char *url) {
    return strstr(url, "://") == NULL || strncmp(url, "file:", 5) == 0;
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
        if (!vt_proto_option_key_valid(kv[i].key, strlen(kv[i].key))) {
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
 * Owning and copying
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

/* ---------------------------------------------------------------------------------------------
 * An initial object: {id?, label?, frame?, box | polygon | mask (+ index)}
 * ------------------------------------------------------------------------------------------- */

/* [x, y, w, h] or [[x, y], ...]: finite numbers with |v| <= 1e6. */
static int get_coord(vtd_pctx *c, const cJSON *it, int index, float *out, int positive) {
    size_t n = vtd_cfg_push_index(c, index);
    int rc = 0;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || fabs(it->valuedouble) > 1e6 ||
        (positive && !(it->valuedouble > 0)))
        rc = vtd_cfg_want(c, it, positive ? "a number in (0, 1e6]" : "a number in [-1e6, 1e6]");
    else
        *out = (float)it->valuedouble;
    vtd_cfg_pop(c, n);
    return rc;
}

static int parse_box(vtd_pctx *c, const cJSON *box, vtd_object_conf *o) {
    if (!cJSON_IsArray(box) || cJSON_GetArraySize(box) != 4)
        return vtd_cfg_want(c, box, "[x, y, w, h]");
    o->shape.kind = VT_SHAPE_BOX;
    int rc = 0;
    for (int k = 0; k < 4 && rc == 0; k++)
        rc = get_coord(c, cJSON_GetArrayItem(box, k), k, &o->shape.box[k], k >= 2);
    return rc;
}

static int parse_polygon(vtd_pctx *c, const cJSON *poly, vtd_object_conf *o) {
    int np = cJSON_IsArray(poly) ? cJSON_GetArraySize(poly) : 0;
    if (np < 3 || np > VT_PROTO_POLYGON_MAX)
        return vtd_cfg_want(c, poly, "an array of 3..1024 points [x, y]");
    if (!(o->points = malloc(sizeof(float) * 2 * (size_t)np)))
        return -ENOMEM;
    o->shape.kind = VT_SHAPE_POLYGON;
    o->shape.points = o->points;
    o->shape.npoints = np;
    int i = 0, rc = 0;
    for (const cJSON *p = poly->child; p && rc == 0; p = p->next, i++) {
        size_t n = vtd_cfg_push_index(c, i);
        if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) != 2)
            rc = vtd_cfg_want(c, p, "a point [x, y]");
        for (int k = 0; k < 2 && rc == 0; k++)
            rc = get_coord(c, cJSON_GetArrayItem(p, k), k, &o->points[2 * i + k], 0);
        vtd_cfg_pop(c, n);
    }
    return rc;
}

/* A mask PNG: grey (nonzero = object) or palette (index `index`, default: any nonzero), its
 * path relative to the configuration's folder. */
static int parse_mask(vtd_pctx *c, const cJSON *obj, vtd_object_conf *o) {
    char *path = NULL;
    size_t n = vtd_cfg_push_key(c, "mask");
    int rc = vtd_cfg_string(c, cJSON_GetObjectItemCaseSensitive(obj, "mask"), 4096, &path);
    vtd_cfg_pop(c, n);
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(obj, "index");
    double v = 0;
    if (rc >= 0 && ix) {
        n = vtd_cfg_push_key(c, "index");
        rc = vtd_cfg_number(c, ix, 1, 255, 1, &v);
        vtd_cfg_pop(c, n);
    }
    if (rc < 0) {
        free(path);
        return rc;
    }
    int index = (int)v;
    char full[4200];
    if (path[0] != '/' && c->dir)
        snprintf(full, sizeof full, "%s/%s", c->dir, path);
    else
        snprintf(full, sizeof full, "%s", path);
    free(path);
    n = vtd_cfg_push_key(c, "mask");
    int w, h;
    uint8_t *labels = NULL;
    char err[256];
    if ((rc = vt_mask_read_png(full, &w, &h, &labels, NULL, err, sizeof err)) < 0) {
        rc = vtd_cfg_fail(c, "%s", err);
    } else {
        size_t area = 0;
        for (size_t i = 0; i < (size_t)w * h; i++) {
            labels[i] = index ? labels[i] == index : labels[i] != 0;
            area += labels[i];
        }
        if (area == 0) {
            rc = vtd_cfg_fail(c, "%s: the mask is empty%s", full, index ? " at this index" : "");
            free(labels);
        } else {
            o->mask = labels;
            o->shape = (vt_shape){.kind = VT_SHAPE_MASK, .w = w, .h = h, .data = labels};
        }
    }
    vtd_cfg_pop(c, n);
    return rc;
}

/* The shape rows: exactly one of box, polygon, mask. */
static int parse_shape(vtd_pctx *c, const cJSON *obj, const cJSON *unused, void *base) {
    (void)unused;
    vtd_object_conf *o = base;
    const cJSON *box = cJSON_GetObjectItemCaseSensitive(obj, "box");
    const cJSON *poly = cJSON_GetObjectItemCaseSensitive(obj, "polygon");
    const cJSON *mask = cJSON_GetObjectItemCaseSensitive(obj, "mask");
    if (!!box + !!poly + !!mask != 1)
        return vtd_cfg_fail(c, "give exactly one of box, polygon, mask");
    if (!mask && cJSON_GetObjectItemCaseSensitive(obj, "index"))
        return vtd_cfg_fail(c, "index goes with mask");
    if (mask)
        return parse_mask(c, obj, o);
    size_t n = vtd_cfg_push_key(c, box ? "box" : "polygon");
    int rc = box ? parse_box(c, box, o) : parse_polygon(c, poly, o);
    vtd_cfg_pop(c, n);
    return rc;
}

#define O vtd_object_conf
static const vtd_cfg_field object_fields[] = {
    {CFG_INT("id", O, id, 1, VT_PROTO_OBJECT_ID_MAX, 0)}, /* 0: the stream assigns one */
    {CFG_INT("frame", O, frame, 0, VT_PROTO_FRAME_MAX, -1)},
    {CFG_STRING("label", O, label, VT_PROTO_LABEL_MAX)},
    {CFG_CHECK(parse_shape)},
    {CFG_OTHER("box")},
    {CFG_OTHER("polygon")},
    {CFG_OTHER("mask")},
    {CFG_OTHER("index")},
    {0},
};
#undef O

static int parse_object(vtd_pctx *c, const cJSON *it, vtd_object_conf *o) {
    if (!cJSON_IsObject(it))
        return vtd_cfg_want(c, it, "an object {id?, label?, frame?, box | polygon | mask}");
    int rc = vtd_cfg_check_keys(c, it, object_fields);
    if (rc >= 0)
        rc = vtd_cfg_defaults(c, object_fields, o);
    return rc < 0 ? rc : vtd_cfg_walk(c, it, object_fields, o);
}

static int parse_objects(vtd_pctx *c, const cJSON *obj, const cJSON *objs, void *base) {
    (void)obj;
    vtd_stream_conf *sc = base;
    int no = cJSON_IsArray(objs) ? cJSON_GetArraySize(objs) : -1;
    if (no < 0 || no > VT_PROTO_OBJECTS_MAX)
        return vtd_cfg_want(c, objs, "an array of at most 64 objects");
    if (no > 0 && !(sc->objects = calloc((size_t)no, sizeof *sc->objects)))
        return -ENOMEM;
    int i = 0, rc = 0;
    for (const cJSON *o = objs->child; o && rc >= 0; o = o->next, i++) {
        size_t n = vtd_cfg_push_index(c, i);
        sc->nobjects = i + 1;
        rc = parse_object(c, o, &sc->objects[i]);
        for (int j = 0; rc >= 0 && j < i; j++)
            if (sc->objects[i].id && sc->objects[j].id == sc->objects[i].id)
                rc = vtd_cfg_fail(c, "object id %u is given twice", sc->objects[i].id);
        vtd_cfg_pop(c, n);
    }
    if (rc >= 0 && sc->max_objects && no > sc->max_objects)
        rc = vtd_cfg_fail(c, "%d objects but max_objects is %d", no, sc->max_objects);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * One stream
 * ------------------------------------------------------------------------------------------- */

static int parse_name(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj;
    vtd_stream_conf *sc = base;
    char *name = NULL;
    int rc = vtd_cfg_string(c, it, VT_PROTO_NAME_MAX, &name);
    if (rc < 0)
        return rc;
    int ok = vt_proto_stream_name_valid(name, strlen(name));
    snprintf(sc->name, sizeof sc->name, "%s", name);
    free(name);
    if (!ok)
        return vtd_cfg_fail(c,
                            "\"%s\" is not a stream name (1..64 of A-Z a-z 0-9 _ . -, first a "
                            "letter or digit)",
                            sc->name);
    return 1;
}

/* FFmpeg AVOptions: names by the protocol's rule, string or number values. */
static int parse_options(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj;
    vtd_stream_conf *sc = base;
    int rc = 0, n = 0;
    vt_proto_kv kv[VT_PROTO_OPTIONS_MAX];
    char num[VT_PROTO_OPTIONS_MAX][32];
    if (!cJSON_IsObject(it) || cJSON_GetArraySize(it) > VT_PROTO_OPTIONS_MAX)
        return vtd_cfg_want(c, it, "an object of at most 32 FFmpeg options");
    for (const cJSON *e = it->child; e && rc >= 0; e = e->next) {
        size_t n1 = vtd_cfg_push_key(c, e->string);
        const char *k = e->string;
        if (!vt_proto_option_key_valid(k, strlen(k))) {
            rc = vtd_cfg_fail(c, "option names are 1..64 of A-Z a-z 0-9 _ -");
        } else if (cJSON_IsString(e) && e->valuestring[0] &&
                   strlen(e->valuestring) <= VT_PROTO_OPT_VALUE_MAX &&
                   vtd_cfg_text_ok(e->valuestring)) {
            kv[n++] = (vt_proto_kv){k, e->valuestring};
        } else if (cJSON_IsNumber(e) && isfinite(e->valuedouble)) {
            snprintf(num[n], sizeof num[n], "%.17g", e->valuedouble);
            kv[n] = (vt_proto_kv){k, num[n]};
            n++;
        } else {
            rc = vtd_cfg_want(c, e, "a string of 1..1024 bytes or a number");
        }
        vtd_cfg_pop(c, n1);
    }
    return rc < 0 ? rc : vtd_av_options(kv, n, &sc->av_options);
}

static int backoff_order(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj, (void)it;
    const vtd_stream_conf *sc = base;
    return vtd_cfg_backoff_order(c, sc->backoff_min_ms, sc->backoff_max_ms);
}

static int overlay_path_given(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj, (void)it;
    return ((vtd_stream_conf *)base)->overlay_path ? 0 : vtd_cfg_fail(c, "path is missing");
}

static const char *transport_name(int v) {
    return v == VT_SOURCE_TRANSPORT_TCP ? "tcp" : "udp";
}

#define S vtd_stream_conf
static const vtd_cfg_field overlay_fields[] = {
    {CFG_STRING("path", S, overlay_path, 4096)}, /* relative to the working directory */
    {CFG_CHECK(overlay_path_given)},
    {CFG_NUMBER("seconds", S, overlay_seconds, 0.1, VTD_CFG_TIMEOUT_MAX_S, 20)},
    {0},
};

/* The pacing, tracker and profile defaults are the configuration's (vtd_cfg_stream_defaults),
 * resolved by vtd_cfg_stream_resolve; negative tracker overrides mean "the preset's". */
static const vtd_cfg_field stream_fields[] = {
    {CFG_CUSTOM("name", parse_name), .missing = "missing (every stream needs a name)"},
    {CFG_STRING("url", S, url, VT_PROTO_URL_MAX), .missing = "missing"},
    {CFG_CUSTOM("options", parse_options)},
    {CFG_STRING("format", S, format, 64)},
    {CFG_ENUM("pacing", S, pacing, pacing_name, 1, VT_PROTO_PACING_COUNT - 1, 0)},
    {CFG_ENUM("tracker", S, tracker, tracker_name, 1, VT_PROTO_TRACKER_COUNT - 1, 0)},
    {CFG_ENUM("profile", S, profile, profile_name, 1, VT_PROTO_PROFILE_COUNT - 1, 0)},
    {CFG_ENUM("rtsp_transport", S, transport, transport_name, 0, 1, VT_SOURCE_TRANSPORT_TCP)},
    {CFG_BOOL("reconnect", S, reconnect, -1)}, /* -1: the codec's default for the source */
    {CFG_INT("decoder_threads", S, decoder_threads, 0, 16, 1)},
    {CFG_SECONDS("connect_timeout_s", S, connect_timeout_ms, 0.1, 5)},
    {CFG_SECONDS("read_timeout_s", S, read_timeout_ms, 0.1, 5)},
    {CFG_SECONDS("stall_timeout_s", S, stall_ms, 0.1, 10)},
    {CFG_SECONDS("backoff_min_s", S, backoff_min_ms, 0.01, 0.25)},
    {CFG_SECONDS("backoff_max_s", S, backoff_max_ms, 0.01, 30)},
    {CFG_CHECK(backoff_order)},
    {CFG_INT("max_objects", S, max_objects, 1, VT_PROTO_OBJECTS_MAX, 0)},
    {CFG_INT("topk", S, topk, 0, 4096, -1)},
    {CFG_INT("radius", S, radius, -1, 256, -2)},
    {CFG_NUMBER("temperature", S, temperature, 1e-6, 1e6, -1)},
    {CFG_SECTION("overlay", overlay_fields, "an object {path, seconds}")},
    {CFG_CUSTOM("objects", parse_objects)},
    {0},
};
#undef S

void vtd_cfg_stream_defaults(const vtd_config *cfg, vtd_stream_conf *sc) {
    /* No row of a stream has a default to parse (sdef): storing the others cannot fail. */
    vtd_pctx c = {0};
    vtd_cfg_defaults(&c, stream_fields, sc);
    sc->pacing = cfg->def_pacing;
    sc->tracker = cfg->def_tracker;
    sc->profile = cfg->def_profile;
}

void vtd_cfg_stream_resolve(vtd_stream_conf *sc) {
    if (sc->pacing == VT_PROTO_PACING_DEFAULT)
        sc->pacing = is_local_url(sc->url) ? VT_PROTO_PACING_CAMERA : VT_PROTO_PACING_LIVE;
    if (sc->tracker == VT_PROTO_TRACKER_DEFAULT)
        sc->tracker = VT_PROTO_TRACKER_MAST;
    if (sc->profile == VT_PROTO_PROFILE_DEFAULT)
        sc->profile = VT_PROTO_PROFILE_REALTIME;
}

int vtd_cfg_stream_fingerprint(vtd_stream_conf *sc, const cJSON *item, const cJSON *defaults) {
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

static int parse_stream(vtd_pctx *c, const cJSON *it, const vtd_config *cfg, const cJSON *defaults,
                        vtd_stream_conf *sc) {
    if (!cJSON_IsObject(it))
        return vtd_cfg_want(c, it, "an object {name, url, ...}");
    int rc = vtd_cfg_check_keys(c, it, stream_fields);
    if (rc < 0)
        return rc;
    vtd_cfg_stream_defaults(cfg, sc);
    sc->origin = VTD_ORIGIN_CONFIG;
    sc->allow_local = 1;
    if ((rc = vtd_cfg_walk(c, it, stream_fields, sc)) < 0)
        return rc;
    vtd_cfg_stream_resolve(sc);
    return vtd_cfg_stream_fingerprint(sc, it, defaults);
}

int vtd_cfg_parse_streams(vtd_pctx *c, const cJSON *root, const cJSON *st, void *base) {
    vtd_config *cfg = base;
    int ns = cJSON_IsArray(st) ? cJSON_GetArraySize(st) : -1;
    if (ns < 0)
        return vtd_cfg_want(c, st, "an array of streams");
    if (ns > cfg->limits.streams)
        return vtd_cfg_fail(c, "%d streams but limits.streams is %d", ns, cfg->limits.streams);
    if (ns && !(cfg->streams = calloc((size_t)ns, sizeof *cfg->streams)))
        return -ENOMEM;
    /* A stream restarts on reload when its text or the defaults it was given change. */
    const cJSON *defaults = cJSON_GetObjectItemCaseSensitive(root, "defaults");
    int i = 0, rc = 0;
    for (const cJSON *s = st->child; s && rc >= 0; s = s->next, i++) {
        size_t n = vtd_cfg_push_index(c, i);
        cfg->nstreams = i + 1;
        rc = parse_stream(c, s, cfg, defaults, &cfg->streams[i]);
        for (int j = 0; rc >= 0 && j < i; j++)
            if (strcmp(cfg->streams[j].name, cfg->streams[i].name) == 0)
                rc = vtd_cfg_fail(c, "stream name \"%s\" is used twice", cfg->streams[i].name);
        vtd_cfg_pop(c, n);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Streams added by clients, and streams as the daemon runs them
 * ------------------------------------------------------------------------------------------- */

int vtd_stream_conf_from_cmd(const vtd_config *cfg, const vt_proto_cmd *cmd, vtd_stream_conf *sc,
                             char *field, size_t fieldlen, char *err, size_t errlen) {
    memset(sc, 0, sizeof *sc);
    vtd_cfg_stream_defaults(cfg, sc);
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
    vtd_cfg_stream_resolve(sc);
    if (vtd_cfg_stream_fingerprint(sc, NULL, NULL) < 0)
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

/* ---------------------------------------------------------------------------------------------
 * defaults, limits, clients
 * ------------------------------------------------------------------------------------------- */

static int queue_order(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj, (void)it;
    const vtd_limits *lim = base;
    if (lim->hard_queue_bytes < lim->soft_queue_bytes)
        return vtd_cfg_fail(c, "hard_queue_bytes (%zu) is below soft_queue_bytes (%zu)",
                            lim->hard_queue_bytes, lim->soft_queue_bytes);
    return 0;
}

/* FFmpeg protocols a client's URL may use, stored as a comma list. */
static int parse_protocols(vtd_pctx *c, const cJSON *obj, const cJSON *p, void *base) {
    (void)obj;
    vtd_config *cfg = base;
    int np = cJSON_IsArray(p) ? cJSON_GetArraySize(p) : 0;
    if (np < 1 || np > 32)
        return vtd_cfg_want(c, p, "an array of 1..32 FFmpeg protocol names");
    if (!(cfg->protocols = calloc(1, (size_t)np * 33)))
        return -ENOMEM;
    int i = 0, rc = 0;
    for (const cJSON *item = p->child; item && rc >= 0; item = item->next, i++) {
        size_t n = vtd_cfg_push_index(c, i);
        int ok = cJSON_IsString(item) && item->valuestring[0] && strlen(item->valuestring) <= 32;
        for (const char *q = ok ? item->valuestring : ""; *q; q++)
            ok &= (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_' || *q == '+' ||
                  *q == '-';
        if (!ok)
            rc = vtd_cfg_want(c, item, "a protocol name (\"rtsp\", \"tcp\", ...)");
        else if ((strcmp(item->valuestring, "file") == 0 ||
                  strcmp(item->valuestring, "pipe") == 0) &&
                 !cfg->allow_local_urls)
            rc = vtd_cfg_fail(c, "\"%s\" reads local files: set allow_local_urls too",
                              item->valuestring);
        else
            sprintf(cfg->protocols + strlen(cfg->protocols), "%s%s", i ? "," : "",
                    item->valuestring);
        vtd_cfg_pop(c, n);
    }
    return rc;
}

#define C vtd_config
static const vtd_cfg_field defaults_fields[] = {
    /* DEFAULT: camera for local files, live otherwise; then mast, realtime */
    {CFG_ENUM("pacing", C, def_pacing, pacing_name, 1, VT_PROTO_PACING_COUNT - 1, 0)},
    {CFG_ENUM("tracker", C, def_tracker, tracker_name, 1, VT_PROTO_TRACKER_COUNT - 1, 0)},
    {CFG_ENUM("profile", C, def_profile, profile_name, 1, VT_PROTO_PROFILE_COUNT - 1, 0)},
    {0},
};

static const vtd_cfg_field clients_fields[] = {
    {CFG_BOOL("allow_add_streams", C, allow_add_streams, 0)},
    {CFG_BOOL("allow_local_urls", C, allow_local_urls, 0)},
    {CFG_CUSTOM("protocols", parse_protocols)}, /* NULL: the codec's network default */
    {0},
};
#undef C

#define L vtd_limits
static const vtd_cfg_field limits_fields[] = {
    {CFG_INT("clients", L, clients, 1, 65536, 256)},
    {CFG_INT("line_bytes", L, line_bytes, 1024, 64 << 20, VT_PROTO_LINE_MAX)},
    {CFG_INT("soft_queue_bytes", L, soft_queue_bytes, 4096, 1LL << 30, 1 << 20)},
    {CFG_INT("hard_queue_bytes", L, hard_queue_bytes, 4096, 1LL << 32, 16 << 20)},
    {CFG_INT("streams", L, streams, 1, VTD_STREAMS_MAX, 16)},
    {CFG_INT("send_buffer_bytes", L, send_buffer_bytes, 0, 64 << 20, 0)}, /* 0: the kernel's */
    {CFG_SECONDS("idle_timeout_s", L, idle_timeout_ms, 0.1, 60)},
    {CFG_SECONDS("line_timeout_s", L, line_timeout_ms, 0.1, 10)},
    {CFG_SECONDS("shutdown_timeout_s", L, shutdown_timeout_ms, 0, 2)},
    {CFG_CHECK(queue_order)},
    {0},
};
#undef L

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

/* A file that must be readable now (a path as written, relative to the working directory). */
static int readable(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj, (void)base;
    if (access(it->valuestring, R_OK) != 0)
        return vtd_cfg_fail(c, "%s: %s", it->valuestring, strerror(errno));
    return 0;
}

/* After the tls object: the key goes with its certificate, and TLS is on. */
static int tls_done(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj, (void)it;
    vtd_mqtt_conf *mc = base;
    mc->tls = 1;
    return !mc->cert_file != !mc->key_file ? vtd_cfg_fail(c, "give cert_file and key_file together")
                                           : 0;
}

/* The port's default depends on tls, read before it. */
static int port_default(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)c, (void)obj, (void)it;
    vtd_mqtt_conf *mc = base;
    mc->port = mc->tls ? 8883 : 1883;
    return 0;
}

/* password_file: a path, or a bare name looked up in $CREDENTIALS_DIRECTORY (systemd's
 * LoadCredential=) when that is set. The secret is the file's first line. */
static int parse_password(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj;
    vtd_mqtt_conf *mc = base;
    char *name = NULL, path[4200];
    int rc = vtd_cfg_string(c, it, 4096, &name);
    if (rc <= 0)
        return rc;
    const char *creds = getenv("CREDENTIALS_DIRECTORY");
    if (!strchr(name, '/') && creds && creds[0])
        snprintf(path, sizeof path, "%s/%s", creds, name);
    else
        snprintf(path, sizeof path, "%s", name);
    free(name);
    return read_secret(c, path, 1024, "password", &mc->password);
}

static int password_user(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj, (void)it;
    const vtd_mqtt_conf *mc = base;
    return mc->password && !mc->username ? vtd_cfg_fail(c, "password_file needs a username") : 0;
}

static int parse_mqtt_events(vtd_pctx *c, const cJSON *obj, const cJSON *e, void *base) {
    (void)obj;
    static const char *const names[] = {"new", "update", "end"};
    vtd_mqtt_conf *mc = base;
    if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) > 3)
        return vtd_cfg_want(c, e, "an array of \"new\", \"update\", \"end\"");
    mc->events = 0;
    int i = 0, rc = 0;
    for (const cJSON *it = e->child; it && rc >= 0; it = it->next, i++) {
        int bit = 0;
        for (int k = 0; k < 3; k++)
            if (cJSON_IsString(it) && strcmp(it->valuestring, names[k]) == 0)
                bit = 1 << k;
        size_t n = vtd_cfg_push_index(c, i);
        if (!bit)
            rc = vtd_cfg_want(c, it, "one of \"new\", \"update\", \"end\"");
        else if (mc->events & bit)
            rc = vtd_cfg_fail(c, "\"%s\" is given twice", it->valuestring);
        mc->events |= bit;
        vtd_cfg_pop(c, n);
    }
    return rc;
}

/* The names that go into topics: a prefix without wildcards or empty levels, a node id with
 * the rules of stream names (stream names themselves can hold no '/', '+' or '#'). */
static int valid_topic_prefix(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 128 || s[0] == '/' || s[0] == '$' || s[n - 1] == '/' || strstr(s, "//") ||
        !vtd_cfg_text_ok(s))
        return 0;
    return strpbrk(s, "+#") == NULL;
}

static int topic_prefix_ok(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj, (void)base;
    if (valid_topic_prefix(it->valuestring))
        return 0;
    return vtd_cfg_fail(c,
                        "\"%s\" is not a topic prefix (1..128 bytes of levels separated by /, "
                        "none empty, no + or #, not starting with $)",
                        it->valuestring);
}

static int ha_prefix_ok(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj, (void)base;
    if (valid_topic_prefix(it->valuestring))
        return 0;
    return vtd_cfg_fail(c, "\"%s\" is not a topic prefix", it->valuestring);
}

static int node_ok(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj, (void)base;
    if (vt_proto_stream_name_valid(it->valuestring, strlen(it->valuestring)))
        return 0;
    return vtd_cfg_fail(c,
                        "\"%s\" is not a node id (1..64 of A-Z a-z 0-9 _ . -, first a letter or "
                        "digit)",
                        it->valuestring);
}

static int mqtt_backoff(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj, (void)it;
    const vtd_mqtt_conf *mc = base;
    return vtd_cfg_backoff_order(c, mc->backoff_min_ms, mc->backoff_max_ms);
}

#define M vtd_mqtt_conf
static const vtd_cfg_field mqtt_tls_fields[] = {
    {CFG_STRING("ca_file", M, ca_file, 4096), .check = readable}, /* PEM files */
    {CFG_STRING("cert_file", M, cert_file, 4096), .check = readable},
    {CFG_STRING("key_file", M, key_file, 4096), .check = readable},
    {CFG_BOOL("insecure", M, tls_insecure, 0)}, /* skip the broker's host name check */
    {CFG_CHECK(tls_done)},
    {0},
};

static const vtd_cfg_field mqtt_fields[] = {
    {CFG_STRING("host", M, host, 253), .missing = "missing (the broker's address or name)"},
    {CFG_SECTION("tls", mqtt_tls_fields, "an object {ca_file?, cert_file?, key_file?, insecure?}")},
    {CFG_CHECK(port_default)}, /* 1883, or 8883 with TLS */
    {CFG_INT("port", M, port, 1, 65535, 0)},
    {CFG_STRING("client_id", M, client_id, 64)}, /* NULL: libmosquitto makes one up */
    {CFG_STRING("username", M, username, 256)},
    {CFG_CUSTOM("password_file", parse_password)},
    {CFG_STRING("topic_prefix", M, topic_prefix, 128), .sdef = "vtrack", .check = topic_prefix_ok},
    {CFG_STRING("node", M, node, VT_PROTO_NAME_MAX), .check = node_ok},
    {CFG_STRING("ha_prefix", M, ha_prefix, 128), .sdef = "homeassistant", .check = ha_prefix_ok},
    {CFG_CUSTOM("events", parse_mqtt_events), VTD_CFG_MEMBER_(M, events),
     .def = VTD_MQTT_EV_NEW | VTD_MQTT_EV_UPDATE | VTD_MQTT_EV_END},
    {CFG_CHECK(password_user)},
    {CFG_INT("qos", M, qos, 0, 2, 1)},
    {CFG_BOOL("retain", M, retain, 1)},
    {CFG_BOOL("masks", M, masks, 0)},
    {CFG_BOOL("frames", M, frames, 0)},
    {CFG_BOOL("ha_discovery", M, ha_discovery, 0)},
    {CFG_INT("keepalive_s", M, keepalive_s, 5, 3600, 30)},
    {CFG_INT("queue_messages", M, queue_max, 16, 1000000, 1000)},
    {CFG_SECONDS("backoff_min_s", M, backoff_min_ms, 0.01, 0.5)},
    {CFG_SECONDS("backoff_max_s", M, backoff_max_ms, 0.01, 30)},
    {CFG_CHECK(mqtt_backoff)},
    {0},
};
#undef M

/* The sink is on when the file has an "mqtt" object: its defaults apply only then. */
static int parse_mqtt(vtd_pctx *c, const cJSON *root, const cJSON *m, void *base) {
    (void)root;
    vtd_mqtt_conf *mc = &((vtd_config *)base)->mqtt;
    int rc = vtd_cfg_defaults(c, mqtt_fields, mc);
    if (rc < 0)
        return rc;
    if (!VT_HAVE_MQTT)
        return vtd_cfg_fail(c, "this vtrackd was built without MQTT support (libmosquitto-dev)");
    if (!cJSON_IsObject(m))
        return vtd_cfg_want(c, m, "an object {host, port?, ...}");
    if ((rc = vtd_cfg_check_keys(c, m, mqtt_fields)) < 0 ||
        (rc = vtd_cfg_walk(c, m, mqtt_fields, mc)) < 0)
        return rc;
    /* The canonical text, and the secret (a changed password file also reconnects). */
    char *a = cJSON_PrintUnformatted(m);
    size_t len = (a ? strlen(a) : 0) + (mc->password ? strlen(mc->password) : 0) + 2;
    if (a && (mc->fingerprint = malloc(len)))
        snprintf(mc->fingerprint, len, "%s|%s", a, mc->password ? mc->password : "");
    free(a);
    if (!mc->fingerprint)
        return -ENOMEM;
    mc->enabled = 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The HTTP API and live view
 * ------------------------------------------------------------------------------------------- */

static int http_listen_ok(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj, (void)base;
    char host[256];
    int port;
    if (vtd_parse_hostport(it->valuestring, host, sizeof host, &port) == 0)
        return 0;
    return vtd_cfg_fail(c,
                        "must be \"HOST:PORT\" (IPv6 as \"[ADDR]:PORT\", port 1..65535), got "
                        "\"%s\"",
                        it->valuestring);
}

#define H vtd_http_conf
static const vtd_cfg_field http_fields[] = {
    {CFG_BOOL("enabled", H, enabled, 1)},
    {CFG_STRING("listen", H, listen, 271), .sdef = VTD_DEFAULT_HTTP, .check = http_listen_ok},
    {CFG_STRING("static_dir", H, static_dir, 4096)}, /* NULL: vtd_http_static_dir's lookup */
    {CFG_INT("clients", H, clients, 1, 4096, 64)},
    {CFG_INT("header_bytes", H, header_bytes, 1024, 65536, 8192)},
    {CFG_INT("body_bytes", H, body_bytes, 1024, 16 << 20, 1 << 20)},
    {CFG_SECONDS("request_timeout_s", H, request_timeout_ms, 0.1, 10)},
    {CFG_NUMBER("frame_rate", H, frame_rate, 0.1, 60, 10)},
    {CFG_INT("jpeg_quality", H, jpeg_quality, 1, 100, 80)},
    {CFG_INT("ws_queue_bytes", H, ws_queue_bytes, 4096, 256 << 20, 1 << 20)},
    {0},
};
#undef H

/* On when the file has an "http" object (unless it says "enabled": false). */
static int parse_http(vtd_pctx *c, const cJSON *root, const cJSON *o, void *base) {
    (void)root;
    vtd_http_conf *hc = &((vtd_config *)base)->http;
    int rc = vtd_cfg_defaults(c, http_fields, hc);
    if (rc >= 0 && !cJSON_IsObject(o))
        rc = vtd_cfg_want(c, o, "an object {listen?, static_dir?, ...}");
    if (rc >= 0)
        rc = vtd_cfg_check_keys(c, o, http_fields);
    return rc < 0 ? rc : vtd_cfg_walk(c, o, http_fields, hc);
}

/* ---------------------------------------------------------------------------------------------
 * The root object
 * ------------------------------------------------------------------------------------------- */

#define C vtd_config
const vtd_cfg_field vtd_cfg_root[] = {
    {CFG_CUSTOM("listen", parse_listen), .sdef = VTD_DEFAULT_LISTEN, CFG_FLAG("--listen", listen)},
    {CFG_STRING("token", C, token, VT_PROTO_TOKEN_MAX)}, /* NULL: no auth */
    {CFG_CUSTOM("token_file", parse_token_file)},
    {CFG_ENUM("log_level", C, log_level, level_name, VTD_LOG_ERROR, VTD_LOG_DEBUG, VTD_LOG_INFO),
     CFG_FLAG("--log-level", log_level)},
    {CFG_STRING("model", C, model, 4096), CFG_FLAG("--model", model)},
    {CFG_STRING("state_dir", C, state_dir, 4096), CFG_FLAG("--state-dir", state_dir)},
    {CFG_INT("blas_threads", C, blas_threads, 1, 64, 1)},
    {CFG_SECTION("defaults", defaults_fields, "an object {pacing, tracker, profile}")},
    {CFG_OBJECT("limits", C, limits, limits_fields, "an object")},
    {CFG_SECTION("clients", clients_fields, "an object")},
    {CFG_CUSTOM("mqtt", parse_mqtt)},
    {CFG_CUSTOM("http", parse_http)},
    {CFG_CUSTOM("streams", vtd_cfg_parse_streams)}, /* last: they take the defaults and limits */
    {0},
};
#undef C

static int parse_root(vtd_pctx *c, const cJSON *root, vtd_config *cfg) {
    if (!cJSON_IsObject(root))
        return vtd_cfg_want(c, root, "a JSON object");
    int rc = vtd_cfg_check_keys(c, root, vtd_cfg_root);
    return rc < 0 ? rc : vtd_cfg_walk(c, root, vtd_cfg_root, cfg);
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

/* The text before it is JSON: valid UTF-8, no NUL byte or \u0000 (cJSON would end a string
 * there: a token "ab\u0000cd" would be "ab"), one JSON value and nothing after it. */
static int parse_text(vtd_pctx *c, const char *text, size_t len, vtd_config *cfg) {
    size_t bad = 0;
    const char *nul;
    if (vt_utf8_check(text, len, &bad) < 0)
        return vtd_cfg_fail(c, "not valid UTF-8 (line %zu, byte %zu)", line_of(text, bad), bad);
    if ((nul = memchr(text, 0, len)) != NULL) {
        /* Not JSON text, and cJSON takes it for whitespace, or ends a string there */
        bad = (size_t)(nul - text);
        return vtd_cfg_fail(c, "a NUL byte (line %zu, byte %zu)", line_of(text, bad), bad);
    }
    if ((bad = nul_escape(text, len)) < len)
        return vtd_cfg_fail(c, "a string contains \\u0000 (line %zu, byte %zu)", line_of(text, bad),
                            bad);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - text) : 0;
        return vtd_cfg_fail(c, "not valid JSON (line %zu, byte %zu)",
                            line_of(text, at < len ? at : len), at);
    }
    /* Trailing bytes after the object are a mistake too (a second object, garbage). */
    while (end && (size_t)(end - text) < len && strchr(" \t\r\n", *end))
        end++;
    int rc;
    if (end && (size_t)(end - text) < len)
        rc = vtd_cfg_fail(c, "unexpected bytes after the JSON object (byte %zu)",
                          (size_t)(end - text));
    else
        rc = parse_root(c, root, cfg);
    cJSON_Delete(root);
    return rc;
}

int vtd_config_parse(const char *text, size_t len, const char *dir, vtd_config **out, char *err,
                     size_t errlen) {
    *out = NULL;
    vtd_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return -ENOMEM;
    vtd_pctx c = {.err = err, .errlen = errlen, .dir = dir};
    int rc = vtd_cfg_defaults(&c, vtd_cfg_root, cfg);
    if (rc >= 0 && text)
        rc = parse_text(&c, text, len, cfg);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc < 0) {
        vtd_config_free(&cfg);
        return rc;
    }
    *out = cfg;
    return 0;
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

/* ---------------------------------------------------------------------------------------------
 * Command-line overrides
 * ------------------------------------------------------------------------------------------- */

/* Each row with a flag: the option's text, as a JSON string, through the row's reader; errors
 * are named by the flag ("--log-level: must be one of ..."). */
static int apply_flags(vtd_pctx *c, const vtd_cfg_field *table, const vtd_cli *cli,
                       vtd_config *cfg) {
    for (const vtd_cfg_field *f = table; f->type != VTD_CFG_END; f++) {
        if (!f->flag)
            continue;
        const char *text;
        memcpy(&text, (const char *)cli + f->flag_offset, sizeof text);
        if (!text)
            continue;
        snprintf(c->path, sizeof c->path, "%s", f->flag);
        cJSON *it = cJSON_CreateString(text);
        int rc = it ? vtd_cfg_read(c, NULL, f, it, cfg) : -ENOMEM;
        cJSON_Delete(it);
        if (rc < 0)
            return rc;
    }
    c->path[0] = 0;
    return 0;
}

/* --stream NAME=URL */
static int apply_stream(vtd_pctx *c, vtd_config *cfg, const vtd_cli *cli, int i) {
    snprintf(c->path, sizeof c->path, "--stream");
    const char *arg = cli->streams[i], *eq = strchr(arg, '=');
    char name[VT_PROTO_NAME_MAX + 1];
    size_t nl = eq ? (size_t)(eq - arg) : 0;
    if (!eq || nl == 0 || nl > VT_PROTO_NAME_MAX || !eq[1] || strlen(eq + 1) > VT_PROTO_URL_MAX ||
        !vtd_cfg_text_ok(eq + 1))
        return vtd_cfg_fail(c, "\"%s\" is not NAME=URL", arg);
    memcpy(name, arg, nl);
    name[nl] = 0;
    if (!vt_proto_stream_name_valid(name, nl))
        return vtd_cfg_fail(c, "\"%s\" is not a stream name (1..64 of A-Z a-z 0-9 _ . -)", name);
    for (int j = 0; j < i; j++)
        if (strncmp(cli->streams[j], arg, nl + 1) == 0)
            return vtd_cfg_fail(c, "stream %s is given twice", name);
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
            return vtd_cfg_fail(c, "more streams than limits.streams (%d)", cfg->limits.streams);
        vtd_stream_conf *ns = realloc(cfg->streams, sizeof *ns * (size_t)(cfg->nstreams + 1));
        if (!ns)
            return -ENOMEM;
        cfg->streams = ns;
        sc = &cfg->streams[cfg->nstreams++];
        memset(sc, 0, sizeof *sc);
        vtd_cfg_stream_defaults(cfg, sc);
        snprintf(sc->name, sizeof sc->name, "%s", name);
        if (!(sc->url = strdup(eq + 1)))
            return -ENOMEM;
    }
    sc->origin = VTD_ORIGIN_CLI;
    sc->allow_local = 1;
    vtd_cfg_stream_resolve(sc);
    free(sc->fingerprint);
    sc->fingerprint = NULL;
    return vtd_cfg_stream_fingerprint(sc, NULL, NULL);
}

int vtd_config_apply_cli(vtd_config *cfg, const vtd_cli *cli, char *err, size_t errlen) {
    vtd_pctx c = {.err = err, .errlen = errlen};
    int rc = apply_flags(&c, vtd_cfg_root, cli, cfg);
    for (int i = 0; rc >= 0 && i < cli->nstreams; i++)
        rc = apply_stream(&c, cfg, cli, i);
    return rc < 0 ? rc : 0;
}

int vtd_config_load(const vtd_cli *cli, vtd_config **out, char *err, size_t errlen) {
    char *text = NULL, dir[4096] = "";
    size_t len = 0;
    *out = NULL;
    int rc;
    if (cli->config_path) {
        if ((rc = vtd_cfg_read_file(cli->config_path, FILE_MAX, &text, &len, err, errlen)) < 0) {
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
