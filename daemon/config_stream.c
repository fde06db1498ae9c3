/*
 * config_stream.c - stream configurations (config.h): the "streams" array of the file, one
 * stream's fields and initial objects, the FFmpeg options, the defaults resolved once the URL is
 * known, and the conversions to and from what the daemon runs (add_stream, vt_stream_config).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "vt_base.h"

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

/* The strings a vtd_stream_conf owns besides its objects', one list for clearing and copying. */
static const size_t stream_strings[] = {
    offsetof(vtd_stream_conf, url),         offsetof(vtd_stream_conf, av_options),
    offsetof(vtd_stream_conf, format),      offsetof(vtd_stream_conf, overlay_path),
    offsetof(vtd_stream_conf, fingerprint), offsetof(vtd_stream_conf, whitelist)};
#define N_STREAM_STRINGS (sizeof stream_strings / sizeof stream_strings[0])

void vtd_stream_conf_clear(vtd_stream_conf *sc) {
    vtd_cfg_free_strings(sc, stream_strings, N_STREAM_STRINGS);
    for (int i = 0; i < sc->nobjects; i++) {
        free(sc->objects[i].label);
        free(sc->objects[i].mask);
        free(sc->objects[i].points);
    }
    free(sc->objects);
    memset(sc, 0, sizeof *sc);
}

int vtd_stream_conf_copy(vtd_stream_conf *dst, const vtd_stream_conf *src) {
    int oom = 0;
    *dst = *src;
    vtd_cfg_dup_strings(dst, stream_strings, N_STREAM_STRINGS, &oom); /* src's until copied */
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
            d->label = vtd_cfg_dup(o->label, &oom);
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
    int rc = vtd_cfg_object(c, it, "an object {id?, label?, frame?, box | polygon | mask}",
                            object_fields);
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
    vt_fmt(sc->name, sizeof sc->name, "%s", name);
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

/* "adapt": its presence turns adaptation on; "hours": "HH-HH", local hours, end excluded. */
static int adapt_on(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)c, (void)obj, (void)it;
    ((vtd_adapt_conf *)base)->enabled = 1;
    return 0;
}

static int parse_hours(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj;
    vtd_adapt_conf *a = base;
    int from, to, n = 0;
    if (!cJSON_IsString(it) || sscanf(it->valuestring, "%2d-%2d%n", &from, &to, &n) != 2 ||
        it->valuestring[n] || n != 5 || from < 0 || from > 23 || to < 0 || to > 24 || from == to)
        return vtd_cfg_want(c, it,
                            "\"HH-HH\", two different hours 00..24 (local time, the end excluded)");
    a->hours_from = from, a->hours_to = to;
    return 1;
}

static int adapt_order(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base) {
    (void)obj, (void)it;
    const vtd_adapt_conf *a = base;
    if (a->min_samples <= a->hold)
        return vtd_cfg_fail(c,
                            "min_samples (%d) must be above hold (%d): the fine-tuning needs "
                            "samples of its own",
                            a->min_samples, a->hold);
    return 0;
}

#define A vtd_adapt_conf
static const vtd_cfg_field adapt_fields[] = {
    {CFG_CHECK(adapt_on)},
    {CFG_NUMBER("reservoir_mb", A, reservoir_mb, 1, 1048576, 64)},
    {CFG_SECONDS("every_s", A, every_ms, 0.1, 60)},
    {CFG_INT("clip", A, clip, 2, 16, 3)},
    {CFG_INT("short_side", A, short_side, 64, 1024, 256)},
    {CFG_INT("min_samples", A, min_samples, 2, 100000, 40)},
    {CFG_INT("hold", A, hold, 1, 64, 8)},
    {CFG_CHECK(adapt_order)},
    {CFG_SECONDS("interval_s", A, interval_ms, 1, 3600)},
    {CFG_INT("steps", A, steps, 1, 100000, 50)},
    {CFG_INT("batch", A, batch, 1, 64, 4)},
    {CFG_NUMBER("lr", A, lr, 1e-9, 10, 1e-4)},
    {CFG_NUMBER("max_load", A, max_load, 0, 1024, 0.5)},
    {CFG_CUSTOM("hours", parse_hours), VTD_CFG_MEMBER_(A, hours_from), .def = -1},
    {CFG_NUMBER("margin", A, margin, -2, 2, 0)},
    {CFG_INT("seed", A, seed, 0, 2147483647, 1)},
    {0},
};
#undef A

/* The pacing, tracker and profile defaults are the configuration's (vtd_cfg_stream_defaults),
 * resolved by vtd_cfg_stream_resolve; negative tracker overrides mean "the preset's". */
static const vtd_cfg_field stream_fields[] = {
    {CFG_CUSTOM("name", parse_name), .missing = "missing (every stream needs a name)"},
    {CFG_STRING("url", S, url, VT_PROTO_URL_MAX), .missing = "missing"},
    {CFG_CUSTOM("options", parse_options)},
    {CFG_STRING("format", S, format, 64)},
    {CFG_ENUM("pacing", S, pacing, vtd_cfg_pacing_name, 1, VT_PROTO_PACING_COUNT - 1, 0)},
    {CFG_ENUM("tracker", S, tracker, vtd_cfg_tracker_name, 1, VT_PROTO_TRACKER_COUNT - 1, 0)},
    {CFG_ENUM("profile", S, profile, vtd_cfg_profile_name, 1, VT_PROTO_PROFILE_COUNT - 1, 0)},
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
    {CFG_OBJECT("adapt", S, adapt, adapt_fields, "an object {reservoir_mb, every_s, ...}")},
    {0},
};
#undef S

void vtd_cfg_stream_defaults(const vtd_config *cfg, vtd_stream_conf *sc) {
    /* No row of a stream has a default to parse (sdef): storing the others cannot fail. */
    vtd_pctx c = {0};
    vtd_cfg_defaults(&c, stream_fields, sc);
    sc->adapt.hours_to = -1;
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
    int rc = vtd_cfg_object(c, it, "an object {name, url, ...}", stream_fields);
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
    vt_fmt(sc->name, sizeof sc->name, "%s", cmd->add_stream.stream);
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
        vt_fmt(err, errlen, "options: option names are 1..64 of A-Z a-z 0-9 _ -");
        vtd_stream_conf_clear(sc);
        return rc;
    }
    vtd_cfg_stream_resolve(sc);
    if (vtd_cfg_stream_fingerprint(sc, NULL, NULL) < 0)
        goto oom;
    return 0;
oom:
    snprintf(field, fieldlen, "%s", "");
    vt_fmt(err, errlen, "out of memory");
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
        vt_fmt(err, errlen, "stream %s: no tracker preset %s/%s", sc->name,
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
