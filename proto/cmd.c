/*
 * cmd.c - the command parser: one line of client JSON -> one validated vt_proto_cmd.
 *
 * cJSON does the parsing. A small raw scan of the same line (scan_*) adds the two things cJSON
 * cannot give: the exact text of the request `id` (cJSON keeps numbers only as doubles, which
 * lose integers above 2^53), and the rejection of "\u0000" escapes (cJSON would silently cut the
 * string there, so "id\u0000x" would pass as the key "id").
 *
 * Every failure names its field as a path ("streams[2]", "mask.size[1]", "options.fflags") and
 * the value it got, in a message fit to send to the client as is.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_int.h"

typedef struct ctx {
    vt_proto_cmd *cmd;
    vt_proto_err *err;
} ctx;

/* ---------------------------------------------------------------------------------------------
 * Raw scan of the top-level object
 * ------------------------------------------------------------------------------------------- */

typedef struct scan {
    const char *s;
    size_t n, i;
    bool nul; /* a string holds a \u0000 escape */
} scan;

static void scan_ws(scan *sc) {
    while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' || sc->s[sc->i] == '\n' ||
                             sc->s[sc->i] == '\r'))
        sc->i++;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Skip the string at s[i] == '"'. When `key` is given, decode up to keycap bytes of it there
 * (escapes resolved; a non-ASCII \u escape becomes 0xFF, which matches no key we look for) and
 * set *keylen to the decoded length, or to keycap + 1 if it did not fit.
 */
static int scan_string(scan *sc, char *key, size_t keycap, size_t *keylen) {
    size_t o = 0;
    sc->i++; /* opening quote */
    while (sc->i < sc->n) {
        char c = sc->s[sc->i++];
        if ((unsigned char)c < 0x20)
            return -EINVAL; /* raw control characters are not JSON; cJSON lets them through */
        if (c == '"') {
            if (keylen)
                *keylen = o;
            return 0;
        }
        if (c == '\\') {
            if (sc->i >= sc->n)
                return -EINVAL;
            c = sc->s[sc->i++];
            if (c == 'u') {
                if (sc->n - sc->i < 4)
                    return -EINVAL;
                int v = 0;
                for (int k = 0; k < 4; k++) {
                    int h = hexval(sc->s[sc->i + k]);
                    if (h < 0)
                        return -EINVAL;
                    v = v * 16 + h;
                }
                sc->i += 4;
                if (v == 0)
                    sc->nul = true;
                c = v < 0x80 ? (char)v : (char)0xFF;
            } else {
                static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
                const char *p = strchr(from, c);
                c = p && c ? to[p - from] : (char)0xFF;
            }
        }
        if (key) {
            if (o < keycap)
                key[o] = c;
            o = o < keycap ? o + 1 : keycap + 1;
        }
    }
    return -EINVAL;
}

/* Skip one JSON value of any depth, iteratively (no recursion on hostile nesting). */
static int scan_value(scan *sc) {
    size_t depth = 0;
    do {
        scan_ws(sc);
        if (sc->i >= sc->n)
            return -EINVAL;
        char c = sc->s[sc->i];
        if (c == '"') {
            if (scan_string(sc, NULL, 0, NULL) < 0)
                return -EINVAL;
        } else if (c == '{' || c == '[') {
            depth++;
            sc->i++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return -EINVAL;
            depth--;
            sc->i++;
        } else if (c == ',' || c == ':') {
            sc->i++;
        } else {
            size_t start = sc->i;
            while (sc->i < sc->n && !strchr(",:]} \t\r\n\"{[", sc->s[sc->i]))
                sc->i++;
            if (sc->i == start)
                return -EINVAL;
        }
    } while (depth > 0);
    return 0;
}

/* Walk the top-level object: the span of the first "id" value, and the \u0000 flag. */
static int scan_top(scan *sc, size_t *id_start, size_t *id_end) {
    *id_start = *id_end = 0;
    bool have_id = false;
    scan_ws(sc);
    if (sc->i >= sc->n || sc->s[sc->i] != '{')
        return -EINVAL;
    sc->i++;
    for (;;) {
        scan_ws(sc);
        if (sc->i < sc->n && sc->s[sc->i] == '}')
            return 0;
        if (sc->i >= sc->n || sc->s[sc->i] != '"')
            return -EINVAL;
        char key[3];
        size_t keylen;
        if (scan_string(sc, key, sizeof key, &keylen) < 0)
            return -EINVAL;
        scan_ws(sc);
        if (sc->i >= sc->n || sc->s[sc->i] != ':')
            return -EINVAL;
        sc->i++;
        scan_ws(sc);
        size_t vs = sc->i;
        if (scan_value(sc) < 0)
            return -EINVAL;
        if (!have_id && keylen == 2 && key[0] == 'i' && key[1] == 'd') {
            have_id = true;
            *id_start = vs;
            *id_end = sc->i;
        }
        scan_ws(sc);
        if (sc->i < sc->n && sc->s[sc->i] == ',')
            sc->i++;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Value checks. Each returns 0 or -EINVAL with err filled (code bad_request unless stated).
 * ------------------------------------------------------------------------------------------- */

const char *vt_proto_describe(const cJSON *it, char *buf, size_t cap) {
    if (cJSON_IsString(it)) {
        char ex[48];
        vtp_excerpt(ex, sizeof ex, it->valuestring, strlen(it->valuestring));
        snprintf(buf, cap, "\"%s\"", ex);
    } else if (cJSON_IsNumber(it)) {
        snprintf(buf, cap, "%.17g", it->valuedouble);
    } else if (cJSON_IsBool(it)) {
        snprintf(buf, cap, "%s", cJSON_IsTrue(it) ? "true" : "false");
    } else if (cJSON_IsNull(it)) {
        snprintf(buf, cap, "null");
    } else if (cJSON_IsArray(it)) {
        snprintf(buf, cap, "an array");
    } else {
        snprintf(buf, cap, "an object");
    }
    return buf;
}

static int bad(ctx *c, const char *field, const cJSON *it, const char *want) {
    char d[64];
    return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_REQUEST, field, "%s must be %s, got %s",
                            field, want, vt_proto_describe(it, d, sizeof d));
}

static int missing(ctx *c, const char *field) {
    return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_REQUEST, field, "missing field %s", field);
}

/* Integrality of a parsed double is an exact question (both sides are the same double), not a
 * tolerance one, hence the == here. */
static bool is_integral(double d) {
    return isfinite(d) && trunc(d) == d;
}

static int want_int(ctx *c, const char *field, const cJSON *it, int64_t lo, int64_t hi,
                    int64_t *out) {
    char want[80];
    snprintf(want, sizeof want, "an integer in %lld..%lld", (long long)lo, (long long)hi);
    if (!cJSON_IsNumber(it) || !is_integral(it->valuedouble) || it->valuedouble < (double)lo ||
        it->valuedouble > (double)hi)
        return bad(c, field, it, want);
    *out = (int64_t)it->valuedouble;
    return 0;
}

static int want_coord(ctx *c, const char *field, const cJSON *it, bool positive, double *out) {
    const char *want = positive ? "a number in (0, 1e6]" : "a number in [-1e6, 1e6]";
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
        fabs(it->valuedouble) > VT_PROTO_COORD_MAX || (positive && !(it->valuedouble > 0)))
        return bad(c, field, it, want);
    *out = it->valuedouble;
    return 0;
}

static int want_bool(ctx *c, const char *field, const cJSON *it, int *out) {
    if (!cJSON_IsBool(it))
        return bad(c, field, it, "true or false");
    *out = cJSON_IsTrue(it);
    return 0;
}

/* Free text (labels, urls, tokens, option values): 1..max bytes, UTF-8, no control chars. */
static int want_text(ctx *c, const char *field, const cJSON *it, size_t max, const char **out) {
    char want[64];
    snprintf(want, sizeof want, "a string of 1..%zu bytes", max);
    if (!cJSON_IsString(it))
        return bad(c, field, it, want);
    const char *s = it->valuestring;
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return bad(c, field, it, want);
    int rc = vt_proto_text_check(s, n);
    if (rc == -EINVAL)
        return bad(c, field, it, "a string without control characters");
    if (rc < 0)
        return bad(c, field, it, "valid UTF-8");
    *out = s;
    return 0;
}

static int want_name(ctx *c, const char *field, const cJSON *it, const char **out) {
    static const char want[] = "a stream name (1..64 of A-Z a-z 0-9 _ . -, starting with a "
                               "letter or digit)";
    if (!cJSON_IsString(it) ||
        !vt_proto_stream_name_valid(it->valuestring, strlen(it->valuestring)))
        return bad(c, field, it, want);
    *out = it->valuestring;
    return 0;
}

static int want_enum(ctx *c, const char *field, const cJSON *it, const char *(*name)(int), int lo,
                     int hi, int *out) {
    char want[96] = "one of";
    for (int v = lo; v <= hi; v++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s %s", v > lo ? "," : "",
                 name(v));
    if (cJSON_IsString(it))
        for (int v = lo; v <= hi; v++)
            if (strcmp(it->valuestring, name(v)) == 0) {
                *out = v;
                return 0;
            }
    return bad(c, field, it, want);
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

static int nomem(ctx *c) {
    vt_proto_err_set(c->err, VT_PROTO_CODE_INTERNAL, NULL, "out of memory");
    return -ENOMEM;
}

/* ---------------------------------------------------------------------------------------------
 * Per-op field sets and parsers
 * ------------------------------------------------------------------------------------------- */

static int parse_hello(ctx *c, const cJSON *root) {
    const cJSON *it;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "token")) &&
        want_text(c, "token", it, VT_PROTO_TOKEN_MAX, &c->cmd->hello.token) < 0)
        return -EINVAL;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "protocol"))) {
        int64_t v;
        if (want_int(c, "protocol", it, 1, 1000, &v) < 0)
            return -EINVAL;
        c->cmd->hello.protocol = (int)v;
    }
    return 0;
}

/* subscribe and unsubscribe: an optional list of stream names (absent = all). */
static int parse_filter(ctx *c, const cJSON *root) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "streams");
    if (!it)
        return 0;
    int n = cJSON_GetArraySize(it);
    if (!cJSON_IsArray(it) || n < 1 || n > VT_PROTO_FILTER_MAX)
        return bad(c, "streams", it, "an array of 1..64 stream names (omit it for all streams)");
    const char **names = calloc((size_t)n, sizeof *names);
    if (!names)
        return nomem(c);
    c->cmd->mem_ = names;
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, it) {
        char field[32];
        snprintf(field, sizeof field, "streams[%d]", i);
        if (want_name(c, field, e, &names[i]) < 0)
            return -EINVAL;
        i++;
    }
    c->cmd->subscribe.streams = names;
    c->cmd->subscribe.nstreams = n;
    return 0;
}

static int parse_subscribe(ctx *c, const cJSON *root) {
    if (parse_filter(c, root) < 0)
        return -EINVAL;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "masks");
    return it ? want_bool(c, "masks", it, &c->cmd->subscribe.masks) : 0;
}

static int parse_none(ctx *c, const cJSON *root) {
    (void)c, (void)root;
    return 0;
}

static int want_stream(ctx *c, const cJSON *root, const char **out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "stream");
    return it ? want_name(c, "stream", it, out) : missing(c, "stream");
}

static int parse_options(ctx *c, const cJSON *it) {
    int n = cJSON_GetArraySize(it);
    if (!cJSON_IsObject(it) || n > VT_PROTO_OPTIONS_MAX)
        return bad(c, "options", it, "an object of at most 32 string values");
    vt_proto_kv *kv = calloc(n ? (size_t)n : 1, sizeof *kv);
    if (!kv)
        return nomem(c);
    c->cmd->mem_ = kv;
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, it) {
        char field[96], ex[72];
        const char *k = e->string;
        size_t kl = strlen(k);
        snprintf(field, sizeof field, "options.%s", vtp_excerpt(ex, sizeof ex, k, kl));
        if (!vt_proto_option_key_valid(k, kl))
            return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_REQUEST, field,
                                    "%s: option names are 1..64 of A-Z a-z 0-9 _ -", field);
        for (int j = 0; j < i; j++)
            if (strcmp(kv[j].key, k) == 0)
                return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_REQUEST, field,
                                        "%s is given twice", field);
        kv[i].key = k;
        if (want_text(c, field, e, VT_PROTO_OPT_VALUE_MAX, &kv[i].value) < 0)
            return -EINVAL;
        i++;
    }
    c->cmd->add_stream.options = kv;
    c->cmd->add_stream.noptions = n;
    return 0;
}

static int parse_add_stream(ctx *c, const cJSON *root) {
    vt_proto_cmd *cmd = c->cmd;
    const cJSON *it;
    int v;
    if (want_stream(c, root, &cmd->add_stream.stream) < 0)
        return -EINVAL;
    if (!(it = cJSON_GetObjectItemCaseSensitive(root, "url")))
        return missing(c, "url");
    if (want_text(c, "url", it, VT_PROTO_URL_MAX, &cmd->add_stream.url) < 0)
        return -EINVAL;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "options")) && parse_options(c, it) < 0)
        return -EINVAL;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "pacing"))) {
        if (want_enum(c, "pacing", it, pacing_name, 1, VT_PROTO_PACING_COUNT - 1, &v) < 0)
            return -EINVAL;
        cmd->add_stream.pacing = (vt_proto_pacing)v;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "tracker"))) {
        if (want_enum(c, "tracker", it, tracker_name, 1, VT_PROTO_TRACKER_COUNT - 1, &v) < 0)
            return -EINVAL;
        cmd->add_stream.tracker = (vt_proto_tracker)v;
    }
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "profile"))) {
        if (want_enum(c, "profile", it, profile_name, 1, VT_PROTO_PROFILE_COUNT - 1, &v) < 0)
            return -EINVAL;
        cmd->add_stream.profile = (vt_proto_profile)v;
    }
    return 0;
}

static int parse_remove_stream(ctx *c, const cJSON *root) {
    return want_stream(c, root, &c->cmd->remove_stream.stream);
}

static int parse_reset_model(ctx *c, const cJSON *root) {
    return want_stream(c, root, &c->cmd->reset_model.stream);
}

static int want_object_id(ctx *c, const cJSON *it, uint32_t *out) {
    int64_t v;
    if (want_int(c, "object", it, 1, VT_PROTO_OBJECT_ID_MAX, &v) < 0)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int bad_mask(ctx *c, const char *field, const char *why) {
    return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_MASK, field, "%s: %s", field, why);
}

static int parse_counts_array(ctx *c, const cJSON *it, int h, int w) {
    vt_proto_cmd *cmd = c->cmd;
    size_t n = (size_t)cJSON_GetArraySize(it), max = vt_rle_counts_max(h, w);
    if (n > max)
        return bad_mask(c, "mask.counts", "more counts than pixels");
    uint32_t *counts = malloc((n ? n : 1) * sizeof *counts);
    if (!counts)
        return nomem(c);
    cmd->mem_ = counts;
    const cJSON *e;
    size_t i = 0;
    cJSON_ArrayForEach(e, it) {
        char field[40];
        int64_t v;
        snprintf(field, sizeof field, "mask.counts[%zu]", i);
        if (want_int(c, field, e, 0, (int64_t)max - 1, &v) < 0) {
            c->err->code = VT_PROTO_CODE_BAD_MASK;
            return -EINVAL;
        }
        counts[i++] = (uint32_t)v;
    }
    char why[160];
    if (vt_rle_check(counts, n, h, w, why, sizeof why) < 0)
        return bad_mask(c, "mask.counts", why);
    cmd->track.mask.counts = counts;
    cmd->track.mask.ncounts = n;
    return 0;
}

static int parse_counts_string(ctx *c, const cJSON *it, int h, int w) {
    vt_proto_cmd *cmd = c->cmd;
    const char *s = it->valuestring;
    size_t len = strlen(s), n;
    uint32_t *counts = malloc((len + 1) * sizeof *counts); /* each count takes >= 1 char */
    if (!counts)
        return nomem(c);
    cmd->mem_ = counts;
    char why[160];
    if (vt_rle_counts_from_string(s, len, h, w, counts, len + 1, &n, why, sizeof why) < 0)
        return bad_mask(c, "mask.counts", why);
    cmd->track.mask.counts = counts;
    cmd->track.mask.ncounts = n;
    return 0;
}

static int parse_mask(ctx *c, const cJSON *it) {
    vt_proto_cmd *cmd = c->cmd;
    if (!cJSON_IsObject(it))
        return bad(c, "mask", it, "an object {\"size\":[h,w],\"counts\":...}");
    const cJSON *e, *size = NULL, *counts = NULL;
    cJSON_ArrayForEach(e, it) {
        if (strcmp(e->string, "size") == 0 && !size) {
            size = e;
        } else if (strcmp(e->string, "counts") == 0 && !counts) {
            counts = e;
        } else {
            char field[96], ex[72];
            snprintf(field, sizeof field, "mask.%s",
                     vtp_excerpt(ex, sizeof ex, e->string, strlen(e->string)));
            return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_REQUEST, field,
                                    "unknown or repeated field %s", field);
        }
    }
    if (!size)
        return missing(c, "mask.size");
    if (!counts)
        return missing(c, "mask.counts");
    if (!cJSON_IsArray(size) || cJSON_GetArraySize(size) != 2)
        return bad(c, "mask.size", size, "[height, width]");
    int64_t hw[2];
    for (int i = 0; i < 2; i++) {
        char field[16];
        snprintf(field, sizeof field, "mask.size[%d]", i);
        if (want_int(c, field, cJSON_GetArrayItem(size, i), 1, VT_RLE_MAX_DIM, &hw[i]) < 0)
            return -EINVAL;
    }
    cmd->track.mask.h = (int)hw[0];
    cmd->track.mask.w = (int)hw[1];
    int rc;
    if (cJSON_IsString(counts))
        rc = parse_counts_string(c, counts, (int)hw[0], (int)hw[1]);
    else if (cJSON_IsArray(counts))
        rc = parse_counts_array(c, counts, (int)hw[0], (int)hw[1]);
    else
        rc = bad(c, "mask.counts", counts, "a COCO RLE string or an array of run lengths");
    if (rc < 0)
        return rc;
    if (vt_rle_area(cmd->track.mask.counts, cmd->track.mask.ncounts) == 0)
        return bad_mask(c, "mask", "the mask is empty");
    return 0;
}

static int parse_box(ctx *c, const cJSON *it) {
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 4)
        return bad(c, "box", it, "[x, y, w, h]");
    for (int i = 0; i < 4; i++) {
        char field[16];
        snprintf(field, sizeof field, "box[%d]", i);
        if (want_coord(c, field, cJSON_GetArrayItem(it, i), i >= 2, &c->cmd->track.box[i]) < 0)
            return -EINVAL;
    }
    return 0;
}

static int parse_polygon(ctx *c, const cJSON *it) {
    int n = cJSON_GetArraySize(it);
    if (!cJSON_IsArray(it) || n < 3 || n > VT_PROTO_POLYGON_MAX)
        return bad(c, "polygon", it, "an array of 3..1024 points [x, y]");
    double(*pts)[2] = calloc((size_t)n, sizeof *pts);
    if (!pts)
        return nomem(c);
    c->cmd->mem_ = pts;
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, it) {
        char field[32];
        snprintf(field, sizeof field, "polygon[%d]", i);
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2)
            return bad(c, field, e, "a point [x, y]");
        for (int k = 0; k < 2; k++) {
            snprintf(field, sizeof field, "polygon[%d][%d]", i, k);
            if (want_coord(c, field, cJSON_GetArrayItem(e, k), false, &pts[i][k]) < 0)
                return -EINVAL;
        }
        i++;
    }
    c->cmd->track.polygon.points = (const double(*)[2])pts;
    c->cmd->track.polygon.npoints = n;
    return 0;
}

static int parse_track(ctx *c, const cJSON *root) {
    vt_proto_cmd *cmd = c->cmd;
    const cJSON *it;
    cmd->track.frame = -1;
    if (want_stream(c, root, &cmd->track.stream) < 0)
        return -EINVAL;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "object")) &&
        want_object_id(c, it, &cmd->track.object) < 0)
        return -EINVAL;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "label")) &&
        want_text(c, "label", it, VT_PROTO_LABEL_MAX, &cmd->track.label) < 0)
        return -EINVAL;
    if ((it = cJSON_GetObjectItemCaseSensitive(root, "frame")) &&
        want_int(c, "frame", it, 0, VT_PROTO_FRAME_MAX, &cmd->track.frame) < 0)
        return -EINVAL;
    static const char *const shapes[] = {"mask", "box", "polygon"};
    const cJSON *shape = NULL;
    for (int i = 0; i < 3; i++) {
        if (!(it = cJSON_GetObjectItemCaseSensitive(root, shapes[i])))
            continue;
        if (shape)
            return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_REQUEST, shapes[i],
                                    "give exactly one of mask, box, polygon; got %s and %s",
                                    shape->string, shapes[i]);
        shape = it;
        cmd->track.shape = (vt_proto_shape)(VT_PROTO_SHAPE_MASK + i);
    }
    switch (cmd->track.shape) {
    case VT_PROTO_SHAPE_MASK:
        return parse_mask(c, shape);
    case VT_PROTO_SHAPE_BOX:
        return parse_box(c, shape);
    case VT_PROTO_SHAPE_POLYGON:
        return parse_polygon(c, shape);
    }
    return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_REQUEST, "mask",
                            "give exactly one of mask, box, polygon");
}

static int parse_untrack(ctx *c, const cJSON *root) {
    if (want_stream(c, root, &c->cmd->untrack.stream) < 0)
        return -EINVAL;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "object");
    return it ? want_object_id(c, it, &c->cmd->untrack.object) : missing(c, "object");
}

#define MAX_FIELDS 10

static const struct op_spec {
    vt_proto_op op;
    int (*parse)(ctx *c, const cJSON *root);
    const char *fields[MAX_FIELDS]; /* besides "op" and "id" */
} op_specs[] = {
    {VT_PROTO_OP_HELLO, parse_hello, {"token", "protocol"}},
    {VT_PROTO_OP_SUBSCRIBE, parse_subscribe, {"streams", "masks"}},
    {VT_PROTO_OP_UNSUBSCRIBE, parse_filter, {"streams"}},
    {VT_PROTO_OP_LIST, parse_none, {NULL}},
    {VT_PROTO_OP_ADD_STREAM,
     parse_add_stream,
     {"stream", "url", "options", "pacing", "tracker", "profile"}},
    {VT_PROTO_OP_REMOVE_STREAM, parse_remove_stream, {"stream"}},
    {VT_PROTO_OP_TRACK,
     parse_track,
     {"stream", "object", "label", "frame", "mask", "box", "polygon"}},
    {VT_PROTO_OP_UNTRACK, parse_untrack, {"stream", "object"}},
    {VT_PROTO_OP_STATS, parse_none, {NULL}},
    {VT_PROTO_OP_FORGET, parse_none, {NULL}},
    {VT_PROTO_OP_RESET_MODEL, parse_reset_model, {"stream"}},
};

/* ---------------------------------------------------------------------------------------------
 * The entry point
 * ------------------------------------------------------------------------------------------- */

/* Take the id's exact text. Integers must be strict JSON (cJSON also takes "+1" and "007",
 * which we would otherwise echo back as invalid JSON). */
static int take_id(ctx *c, const cJSON *it, const char *text, size_t n) {
    static const char want[] = "an integer (at most 20 digits, no fraction or exponent) or a "
                               "string of at most 126 bytes";
    if (cJSON_IsNumber(it)) {
        size_t i = text[0] == '-';
        size_t digits = n - i;
        bool ok = digits >= 1 && digits <= 20 && !(text[i] == '0' && digits > 1);
        for (size_t k = i; ok && k < n; k++)
            ok = text[k] >= '0' && text[k] <= '9';
        if (!ok)
            return bad(c, "id", it, want);
    } else if (!cJSON_IsString(it) || n > VT_PROTO_ID_MAX) {
        return bad(c, "id", it, want);
    }
    memcpy(c->err->id.json, text, n);
    c->err->id.json[n] = '\0';
    return 0;
}

static const struct op_spec *find_op(ctx *c, const cJSON *root) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "op");
    if (!it) {
        missing(c, "op");
        return NULL;
    }
    if (cJSON_IsString(it))
        for (size_t i = 0; i < sizeof op_specs / sizeof op_specs[0]; i++)
            if (strcmp(it->valuestring, vt_proto_op_name(op_specs[i].op)) == 0)
                return &op_specs[i];
    bad(c, "op", it,
        "one of hello, subscribe, unsubscribe, list, add_stream, remove_stream, track, untrack, "
        "stats, forget, reset_model");
    return NULL;
}

/* Every key must belong to the op, and appear once (cJSON keeps duplicates). */
static int check_fields(ctx *c, const cJSON *root, const struct op_spec *spec) {
    unsigned seen = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        int k = -1;
        if (strcmp(e->string, "op") == 0)
            k = MAX_FIELDS;
        else if (strcmp(e->string, "id") == 0)
            k = MAX_FIELDS + 1;
        for (int i = 0; k < 0 && i < MAX_FIELDS && spec->fields[i]; i++)
            if (strcmp(e->string, spec->fields[i]) == 0)
                k = i;
        char ex[72];
        vtp_excerpt(ex, sizeof ex, e->string, strlen(e->string));
        if (k < 0)
            return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_REQUEST, ex,
                                    "unknown field %s for op %s", ex, vt_proto_op_name(spec->op));
        if (seen & (1u << k))
            return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_REQUEST, ex,
                                    "field %s is given twice", ex);
        seen |= 1u << k;
    }
    return 0;
}

static int parse_root(ctx *c, const char *line, size_t len, const cJSON *root) {
    if (!cJSON_IsObject(root))
        return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_REQUEST, NULL,
                                "a command must be a JSON object");
    scan sc = {.s = line, .n = len};
    size_t id_start, id_end;
    if (scan_top(&sc, &id_start, &id_end) < 0)
        return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_JSON, NULL, "malformed JSON object");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id && take_id(c, id, line + id_start, id_end - id_start) < 0)
        return -EINVAL;
    const struct op_spec *spec = find_op(c, root);
    if (spec)
        c->err->op = spec->op;
    if (sc.nul) /* after the id and op, so that the error names them */
        return vt_proto_err_set(c->err, VT_PROTO_CODE_BAD_REQUEST, NULL,
                                "strings must not contain \\u0000");
    if (!spec)
        return -EINVAL;
    c->cmd->op = spec->op;
    if (check_fields(c, root, spec) < 0)
        return -EINVAL;
    return spec->parse(c, root);
}

int vt_proto_cmd_parse(const char *line, size_t len, vt_proto_cmd **out, vt_proto_err *err) {
    *out = NULL;
    memset(err, 0, sizeof *err);
    size_t bad_at;
    if (!line && len)
        return vt_proto_err_set(err, VT_PROTO_CODE_BAD_JSON, NULL, "no line");
    if (vt_utf8_check(line, len, &bad_at) < 0)
        return vt_proto_err_set(err, VT_PROTO_CODE_BAD_UTF8, NULL,
                                "invalid UTF-8 at byte %zu of the line", bad_at);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!root) {
        size_t at = end && end >= line && end <= line + len ? (size_t)(end - line) : 0;
        return vt_proto_err_set(err, VT_PROTO_CODE_BAD_JSON, NULL, "not valid JSON (byte %zu)", at);
    }
    while (end < line + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != line + len) {
        cJSON_Delete(root);
        return vt_proto_err_set(err, VT_PROTO_CODE_BAD_JSON, NULL,
                                "unexpected bytes after the JSON value (byte %zu)",
                                (size_t)(end - line));
    }
    vt_proto_cmd *cmd = calloc(1, sizeof *cmd);
    if (!cmd) {
        cJSON_Delete(root);
        vt_proto_err_set(err, VT_PROTO_CODE_INTERNAL, NULL, "out of memory");
        return -ENOMEM;
    }
    cmd->json_ = root;
    ctx c = {.cmd = cmd, .err = err};
    int rc = parse_root(&c, line, len, root);
    if (rc < 0) {
        vt_proto_cmd_free(&cmd);
        return rc;
    }
    cmd->id = err->id;
    *out = cmd;
    return 0;
}

void vt_proto_cmd_free(vt_proto_cmd **cmd) {
    if (!cmd || !*cmd)
        return;
    cJSON_Delete((*cmd)->json_);
    free((*cmd)->mem_);
    free(*cmd);
    *cmd = NULL;
}
