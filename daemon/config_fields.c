/*
 * config_fields.c - see config_int.h: field paths and error messages, the typed values, and the
 * walker that reads a section of the file (or a command-line flag) through its table of rows.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "vt_base.h"

int vtd_cfg_fail(vtd_pctx *c, const char *fmt, ...) {
    if (c->err && c->errlen) {
        /* the path and the value quoted in the message come from the file: cut by whole UTF-8
         * characters, never inside one */
        size_t n = vt_fmt(c->err, c->errlen, "%s%s", c->path, c->path[0] ? ": " : "");
        va_list ap;
        va_start(ap, fmt);
        vt_vfmt(c->err + n, c->errlen - n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

int vtd_cfg_want(vtd_pctx *c, const cJSON *it, const char *what) {
    char d[64];
    return vtd_cfg_fail(c, "must be %s, got %s", what, vt_proto_describe(it, d, sizeof d));
}

size_t vtd_cfg_push_key(vtd_pctx *c, const char *key) {
    size_t n = strlen(c->path);
    vt_fmt(c->path + n, sizeof c->path - n, "%s%s", n ? "." : "", key);
    return n;
}

size_t vtd_cfg_push_index(vtd_pctx *c, int i) {
    size_t n = strlen(c->path);
    snprintf(c->path + n, sizeof c->path - n, "[%d]", i);
    return n;
}

void vtd_cfg_pop(vtd_pctx *c, size_t n) {
    c->path[n] = 0;
}

int vtd_cfg_text_ok(const char *s) {
    return vt_proto_text_check(s, strlen(s)) == 0;
}

char *vtd_cfg_dup(const char *s, int *oom) {
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

void vtd_cfg_free_strings(void *base, const size_t *offs, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(*(char **)((char *)base + offs[i]));
}

void vtd_cfg_dup_strings(void *base, const size_t *offs, size_t n, int *oom) {
    for (size_t i = 0; i < n; i++) {
        char **s = (char **)((char *)base + offs[i]);
        *s = vtd_cfg_dup(*s, oom);
    }
}

int vtd_cfg_read_file(const char *path, size_t max, char **out, size_t *len, char *err,
                      size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        vt_fmt(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = buf && ferror(f);
    fclose(f);
    if (!buf)
        return -ENOMEM;
    if (bad || n > max) {
        free(buf);
        vt_fmt(err, errlen, "%s: %s", path, bad ? "read error" : "file too large");
        return -EINVAL;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------------------------- */

int vtd_cfg_string(vtd_pctx *c, const cJSON *it, size_t maxlen, char **out) {
    if (!cJSON_IsString(it) || !it->valuestring[0] || strlen(it->valuestring) > maxlen ||
        !vtd_cfg_text_ok(it->valuestring)) {
        char what[80];
        snprintf(what, sizeof what, "a string of 1..%zu bytes without control characters", maxlen);
        return vtd_cfg_want(c, it, what);
    }
    char *s = strdup(it->valuestring);
    if (!s)
        return -ENOMEM;
    free(*out);
    *out = s;
    return 1;
}

int vtd_cfg_number(vtd_pctx *c, const cJSON *it, double lo, double hi, int integer, double *out) {
    double v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!cJSON_IsNumber(it) || !isfinite(v) || v < lo || v > hi || (integer && v != floor(v))) {
        char what[96];
        snprintf(what, sizeof what, "%s in [%.15g, %.15g]", integer ? "an integer" : "a number", lo,
                 hi);
        return vtd_cfg_want(c, it, what);
    }
    *out = v;
    return 1;
}

/* One of names(lo..hi). */
static int read_enum(vtd_pctx *c, const vtd_cfg_field *f, const cJSON *it, long long *out) {
    int lo = (int)f->lo, hi = (int)f->hi;
    if (cJSON_IsString(it))
        for (int v = lo; v <= hi; v++)
            if (strcmp(it->valuestring, f->names(v)) == 0) {
                *out = v;
                return 1;
            }
    char what[128] = "one of";
    for (int v = lo; v <= hi; v++)
        snprintf(what + strlen(what), sizeof what - strlen(what), "%s \"%s\"", v > lo ? "," : "",
                 f->names(v));
    return vtd_cfg_want(c, it, what);
}

const char *vtd_cfg_pacing_name(int v) {
    return vt_proto_pacing_name((vt_proto_pacing)v);
}

const char *vtd_cfg_tracker_name(int v) {
    return vt_proto_tracker_name((vt_proto_tracker)v);
}

const char *vtd_cfg_profile_name(int v) {
    return vt_proto_profile_name((vt_proto_profile)v);
}

/* Members are stored by their width: int, enums, uint32_t, int64_t, size_t. */
static void store_int(void *p, size_t size, long long v) {
    if (size == sizeof(int32_t)) {
        int32_t x = (int32_t)v;
        memcpy(p, &x, sizeof x);
    } else if (size == sizeof(int64_t)) {
        int64_t x = (int64_t)v;
        memcpy(p, &x, sizeof x);
    } else {
        abort(); /* a row for a member width the table does not know */
    }
}

static void store_number(void *p, size_t size, double v) {
    if (size == sizeof(double)) {
        memcpy(p, &v, sizeof v);
    } else if (size == sizeof(float)) {
        float x = (float)v;
        memcpy(p, &x, sizeof x);
    } else {
        abort();
    }
}

int vtd_cfg_backoff_order(vtd_pctx *c, int64_t min_ms, int64_t max_ms) {
    if (max_ms < min_ms)
        return vtd_cfg_fail(c, "backoff_max_s (%.3f) is below backoff_min_s (%.3f)", max_ms / 1e3,
                            min_ms / 1e3);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------------------------------- */

static void *member(void *base, const vtd_cfg_field *f) {
    return (char *)base + f->offset;
}

int vtd_cfg_read(vtd_pctx *c, const cJSON *obj, const vtd_cfg_field *f, const cJSON *it,
                 void *base) {
    void *p = member(base, f);
    double d;
    long long e = 0;
    int rc;
    switch (f->type) {
    case VTD_CFG_BOOL:
        if (!cJSON_IsBool(it))
            return vtd_cfg_want(c, it, "true or false");
        store_int(p, f->size, cJSON_IsTrue(it));
        rc = 1;
        break;
    case VTD_CFG_INT:
        if ((rc = vtd_cfg_number(c, it, f->lo, f->hi, 1, &d)) > 0)
            store_int(p, f->size, (long long)d);
        break;
    case VTD_CFG_NUMBER:
        if ((rc = vtd_cfg_number(c, it, f->lo, f->hi, 0, &d)) > 0)
            store_number(p, f->size, d);
        break;
    case VTD_CFG_SECONDS:
        if ((rc = vtd_cfg_number(c, it, f->lo, f->hi, 0, &d)) > 0)
            store_int(p, f->size, llround(d * 1000.0));
        break;
    case VTD_CFG_STRING:
        rc = vtd_cfg_string(c, it, (size_t)f->hi, (char **)p);
        break;
    case VTD_CFG_ENUM:
        if ((rc = read_enum(c, f, it, &e)) > 0)
            store_int(p, f->size, e);
        break;
    case VTD_CFG_OBJECT:
        if ((rc = vtd_cfg_object(c, it, f->what, f->sub)) >= 0)
            rc = vtd_cfg_walk(c, it, f->sub, p);
        break;
    case VTD_CFG_CUSTOM:
        rc = f->parse(c, obj, it, base);
        break;
    default:
        abort();
    }
    if (rc >= 0 && f->check)
        rc = f->check(c, obj, it, base);
    return rc;
}

int vtd_cfg_defaults(vtd_pctx *c, const vtd_cfg_field *table, void *base) {
    int rc = 0;
    for (const vtd_cfg_field *f = table; f->type != VTD_CFG_END && rc >= 0; f++) {
        void *p = member(base, f);
        switch (f->type) {
        case VTD_CFG_BOOL:
        case VTD_CFG_INT:
        case VTD_CFG_ENUM:
            store_int(p, f->size, (long long)f->def);
            break;
        case VTD_CFG_NUMBER:
            store_number(p, f->size, f->def);
            break;
        case VTD_CFG_SECONDS:
            store_int(p, f->size, llround(f->def * 1000.0));
            break;
        case VTD_CFG_OBJECT:
            rc = vtd_cfg_defaults(c, f->sub, p);
            break;
        case VTD_CFG_STRING:
        case VTD_CFG_CUSTOM:
            if (f->type == VTD_CFG_CUSTOM && f->size) { /* a parser's integer member */
                store_int(p, f->size, (long long)f->def);
            } else if (f->sdef) {
                cJSON *it = cJSON_CreateString(f->sdef);
                rc = it ? vtd_cfg_read(c, NULL, f, it, base) : -ENOMEM;
                cJSON_Delete(it);
            }
            break;
        default:
            break;
        }
    }
    return rc;
}

static int known(const vtd_cfg_field *table, const char *key) {
    for (const vtd_cfg_field *f = table; f->type != VTD_CFG_END; f++)
        if (f->name && strcmp(f->name, key) == 0)
            return 1;
    return 0;
}

int vtd_cfg_object(vtd_pctx *c, const cJSON *it, const char *what, const vtd_cfg_field *table) {
    if (!cJSON_IsObject(it))
        return vtd_cfg_want(c, it, what);
    return vtd_cfg_check_keys(c, it, table);
}

int vtd_cfg_check_keys(vtd_pctx *c, const cJSON *obj, const vtd_cfg_field *table) {
    for (const cJSON *e = obj->child; e; e = e->next) {
        if (e->string[0] == '#')
            continue;
        size_t n = vtd_cfg_push_key(c, e->string);
        int rc = 0;
        if (!known(table, e->string))
            rc = vtd_cfg_fail(c, "unknown field");
        for (const cJSON *f = obj->child; rc == 0 && f != e; f = f->next)
            if (strcmp(f->string, e->string) == 0)
                rc = vtd_cfg_fail(c, "field given twice");
        vtd_cfg_pop(c, n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int vtd_cfg_walk(vtd_pctx *c, const cJSON *obj, const vtd_cfg_field *table, void *base) {
    for (const vtd_cfg_field *f = table; f->type != VTD_CFG_END; f++) {
        int rc = 0;
        if (f->type == VTD_CFG_CHECK) {
            rc = f->parse(c, obj, NULL, base);
        } else if (f->type != VTD_CFG_OTHER) {
            const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, f->name);
            if (it || f->missing) {
                size_t n = vtd_cfg_push_key(c, f->name);
                rc = it ? vtd_cfg_read(c, obj, f, it, base) : vtd_cfg_fail(c, "%s", f->missing);
                vtd_cfg_pop(c, n);
            }
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}
