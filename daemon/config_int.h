/*
 * config_int.h - what daemon/config*.c share; config.h is the daemon's interface.
 *
 * A configuration section (the root object, "limits", "mqtt", one stream, one object, ...) is
 * declared once, as a table of vtd_cfg_field rows: the key, the type, the bounds, the default and
 * where the value goes (a member at an offset of the section's struct, or a parser of its own).
 * The same rows give the known keys, the defaults (vtd_cfg_defaults), the parsing and range
 * checks of the file (vtd_cfg_walk) and, for rows with a flag, the command-line overrides
 * (config_cli.c). Rows are processed in table order, so a table is also the order in
 * which a file's mistakes are found; CHECK rows (cross-field rules) sit where they apply.
 *
 * Files: config_fields.c (paths and errors, values, the table walker), config.c (the root
 * table and its sections, the whole file), config_stream.c (streams and their objects),
 * config_cli.c (command-line overrides).
 */
#ifndef VTD_CONFIG_INT_H
#define VTD_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "config.h"

#define VTD_CFG_TIMEOUT_MAX_S 86400.0 /* one day: the longest time any field takes */

/* Parsing context: the error buffer, the path of the field being read ("streams[1].url"), and
 * the folder relative mask paths are resolved against (NULL: the working directory). */
typedef struct vtd_pctx {
    char *err;
    size_t errlen;
    char path[256];
    const char *dir;
} vtd_pctx;

/* Write "<path>: <message>" into the error buffer; returns -EINVAL. */
int vtd_cfg_fail(vtd_pctx *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* "<path>: must be <what>, got <the value>"; returns -EINVAL. */
int vtd_cfg_want(vtd_pctx *c, const cJSON *it, const char *what);

/* Append ".key" or "[i]" to the path; each returns the old length for vtd_cfg_pop. */
size_t vtd_cfg_push_key(vtd_pctx *c, const char *key);
size_t vtd_cfg_push_index(vtd_pctx *c, int i);
void vtd_cfg_pop(vtd_pctx *c, size_t n);

/* Free text as the protocol takes it: no control characters (the file is valid UTF-8). */
int vtd_cfg_text_ok(const char *s);

/* One JSON value at the current path. vtd_cfg_string: 1..maxlen bytes of text, a copy in *out
 * (the old one freed). vtd_cfg_number: finite, in [lo, hi], an integer if `integer`. Both
 * return 1, or -EINVAL / -ENOMEM with the error written. */
int vtd_cfg_string(vtd_pctx *c, const cJSON *it, size_t maxlen, char **out);
int vtd_cfg_number(vtd_pctx *c, const cJSON *it, double lo, double hi, int integer, double *out);

/* The rule of every backoff: "backoff_max_s (1.000) is below backoff_min_s (5.000)". */
int vtd_cfg_backoff_order(vtd_pctx *c, int64_t min_ms, int64_t max_ms);

/* strdup of s, or NULL for NULL; sets *oom when out of memory. */
char *vtd_cfg_dup(const char *s, int *oom);

/* The strings a struct owns, as the offsets of its char * members, offs[n]: freed, or each
 * replaced by a copy of itself (vtd_cfg_dup: *oom set when one could not be made). */
void vtd_cfg_free_strings(void *base, const size_t *offs, size_t n);
void vtd_cfg_dup_strings(void *base, const size_t *offs, size_t n, int *oom);

/* Read at most `max` bytes of a file, NUL-terminated. 0, -ENOMEM, or -errno / -EINVAL with
 * "<path>: <reason>" in err. */
int vtd_cfg_read_file(const char *path, size_t max, char **out, size_t *len, char *err,
                      size_t errlen);

/* ---------------------------------------------------------------------------------------------
 * Field tables
 * ------------------------------------------------------------------------------------------- */

typedef enum vtd_cfg_type {
    VTD_CFG_END = 0, /* ends a table */
    VTD_CFG_BOOL,    /* true or false, into an int */
    VTD_CFG_INT,     /* an integer in [lo, hi], into an integer or enum member of any width */
    VTD_CFG_NUMBER,  /* a number in [lo, hi], into a double or a float */
    VTD_CFG_SECONDS, /* a number of seconds in [lo, hi], into int64_t milliseconds */
    VTD_CFG_STRING,  /* 1..hi bytes of text, into a malloc'd char * */
    VTD_CFG_ENUM,    /* one of names(lo..hi), into an enum member */
    VTD_CFG_OBJECT,  /* an object read with the table `sub` into the struct at `offset` */
    VTD_CFG_CUSTOM,  /* read by `parse` */
    VTD_CFG_CHECK,   /* no key: `parse` checks the fields read so far (it is NULL) */
    VTD_CFG_OTHER,   /* a known key that another row's parser reads */
} vtd_cfg_type;

/* A parser or check: `obj` is the object holding the key, `it` its value (the path names it),
 * `base` the section's struct. Returns >= 0, or -EINVAL (error written) / -ENOMEM. */
typedef int (*vtd_cfg_fn)(vtd_pctx *c, const cJSON *obj, const cJSON *it, void *base);

typedef struct vtd_cfg_field vtd_cfg_field;
struct vtd_cfg_field {
    const char *name;
    vtd_cfg_type type;
    size_t offset, size;       /* the member in the section's struct (CUSTOM: optional) */
    double lo, hi;             /* bounds; STRING: hi is the longest, in bytes */
    double def;                /* the default of numbers (SECONDS: in s), BOOL, ENUM, and a
                                * CUSTOM row's integer member */
    const char *sdef;          /* STRING, CUSTOM: the default, read as if the file gave it */
    const char *(*names)(int); /* ENUM: the value's name */
    const vtd_cfg_field *sub;  /* OBJECT: its rows */
    const char *what;          /* OBJECT: what it must be ("an object {path, seconds}") */
    vtd_cfg_fn parse;          /* CUSTOM, CHECK */
    vtd_cfg_fn check;          /* after a valid value, at its path: rules beyond the bounds */
    const char *missing;       /* a required key: the message when it is absent */
    const char *flag;          /* the command-line option that overrides it ("--listen") */
    size_t flag_offset;        /* ... its member of vtd_cli (a const char *) */
};

/* ENUM rows' names: proto's tables (names.c), as functions of an int. */
const char *vtd_cfg_pacing_name(int v);
const char *vtd_cfg_tracker_name(int v);
const char *vtd_cfg_profile_name(int v);

#define VTD_CFG_MEMBER_(T, m) .offset = offsetof(T, m), .size = sizeof(((T *)0)->m)

/* Rows, Redis' createIntConfig way; extra members follow the macro inside the row's braces:
 * {CFG_STRING("url", vtd_stream_conf, url, VT_PROTO_URL_MAX), .missing = "missing"}. */
#define CFG_BOOL(key, T, m, d) .name = key, .type = VTD_CFG_BOOL, VTD_CFG_MEMBER_(T, m), .def = (d)
#define CFG_INT(key, T, m, l, h, d)                                                                \
    .name = key, .type = VTD_CFG_INT, VTD_CFG_MEMBER_(T, m), .lo = (double)(l), .hi = (double)(h), \
    .def = (double)(d)
#define CFG_NUMBER(key, T, m, l, h, d)                                                             \
    .name = key, .type = VTD_CFG_NUMBER, VTD_CFG_MEMBER_(T, m), .lo = (l), .hi = (h), .def = (d)
#define CFG_SECONDS(key, T, m, l, d)                                                               \
    .name = key, .type = VTD_CFG_SECONDS, VTD_CFG_MEMBER_(T, m), .lo = (l),                        \
    .hi = VTD_CFG_TIMEOUT_MAX_S, .def = (d)
#define CFG_STRING(key, T, m, maxlen)                                                              \
    .name = key, .type = VTD_CFG_STRING, VTD_CFG_MEMBER_(T, m), .hi = (double)(maxlen)
#define CFG_ENUM(key, T, m, namefn, l, h, d)                                                       \
    .name = key, .type = VTD_CFG_ENUM, VTD_CFG_MEMBER_(T, m), .names = (namefn), .lo = (l),        \
    .hi = (h), .def = (d)
#define CFG_OBJECT(key, T, m, table, w)                                                            \
    .name = key, .type = VTD_CFG_OBJECT, VTD_CFG_MEMBER_(T, m), .sub = (table), .what = (w)
#define CFG_SECTION(key, table, w) /* an object whose fields live in the parent's struct */        \
    .name = key, .type = VTD_CFG_OBJECT, .sub = (table), .what = (w)
#define CFG_CUSTOM(key, fn) .name = key, .type = VTD_CFG_CUSTOM, .parse = (fn)
#define CFG_CHECK(fn)       .type = VTD_CFG_CHECK, .parse = (fn)
#define CFG_OTHER(key)      .name = key, .type = VTD_CFG_OTHER
#define CFG_FLAG(opt, m)    .flag = (opt), .flag_offset = offsetof(vtd_cli, m)

/* Store every row's default into `base` (STRING and CUSTOM defaults go through their parser). */
int vtd_cfg_defaults(vtd_pctx *c, const vtd_cfg_field *table, void *base);

/* Refuse keys of `obj` no row names (or named twice); keys starting with '#' are comments. */
int vtd_cfg_check_keys(vtd_pctx *c, const cJSON *obj, const vtd_cfg_field *table);

/* `it` must be an object (else the error says it must be `what`) with only the table's keys. */
int vtd_cfg_object(vtd_pctx *c, const cJSON *it, const char *what, const vtd_cfg_field *table);

/* Read the members of `obj` the rows name, in table order, into `base` (absent ones keep what
 * they hold); required ones must be present. Does not check the keys. */
int vtd_cfg_walk(vtd_pctx *c, const cJSON *obj, const vtd_cfg_field *table, void *base);

/* One row's value `it` (the path already names it), then its check. */
int vtd_cfg_read(vtd_pctx *c, const cJSON *obj, const vtd_cfg_field *f, const cJSON *it,
                 void *base);

/* ---------------------------------------------------------------------------------------------
 * Between the files
 * ------------------------------------------------------------------------------------------- */

/* config.c: the root object's rows (vtd_config), which carry the command-line flags. */
extern const vtd_cfg_field vtd_cfg_root[];

/* config_stream.c: the "streams" row's parser (base: the vtd_config). */
int vtd_cfg_parse_streams(vtd_pctx *c, const cJSON *root, const cJSON *it, void *cfg);

/* config_stream.c: a stream with the configuration's defaults (sc zeroed first by the caller),
 * the defaults resolved once the URL is known, and its fingerprint from its JSON object and the
 * root's "defaults" (both may be NULL). */
void vtd_cfg_stream_defaults(const vtd_config *cfg, vtd_stream_conf *sc);
void vtd_cfg_stream_resolve(vtd_stream_conf *sc);
int vtd_cfg_stream_fingerprint(vtd_stream_conf *sc, const cJSON *item, const cJSON *defaults);

#endif
