/*
 * names.c - wire names of the protocol's enumerations, the rules for stream and option names,
 * and the error helper.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "proto_int.h"

/* A table indexed by an enum ends at its last value: a value added at the end of the enum
 * without a name here fails to compile instead of printing "?" on the wire (a hole in the
 * middle is caught by tests/proto's test_names). */
#define TABLE_COVERS(table, count)                                                                 \
    _Static_assert(sizeof(table) / sizeof(table[0]) == (count), #table " lacks a name")

#define NAME_OF(table, v)                                                                          \
    ((unsigned)(v) < sizeof(table) / sizeof(table[0]) && (table)[v] ? (table)[v] : "?")

const char *vt_proto_op_name(vt_proto_op op) {
    static const char *const names[] = {
        [VT_PROTO_OP_NONE] = "",
        [VT_PROTO_OP_HELLO] = "hello",
        [VT_PROTO_OP_SUBSCRIBE] = "subscribe",
        [VT_PROTO_OP_UNSUBSCRIBE] = "unsubscribe",
        [VT_PROTO_OP_LIST] = "list",
        [VT_PROTO_OP_ADD_STREAM] = "add_stream",
        [VT_PROTO_OP_REMOVE_STREAM] = "remove_stream",
        [VT_PROTO_OP_TRACK] = "track",
        [VT_PROTO_OP_UNTRACK] = "untrack",
        [VT_PROTO_OP_STATS] = "stats",
        [VT_PROTO_OP_FORGET] = "forget",
        [VT_PROTO_OP_RESET_MODEL] = "reset_model",
    };
    TABLE_COVERS(names, VT_PROTO_OP_COUNT);
    return NAME_OF(names, op);
}

const char *vt_proto_code_name(vt_proto_code code) {
    static const char *const names[] = {
        [VT_PROTO_CODE_OK] = "ok",
        [VT_PROTO_CODE_BAD_JSON] = "bad_json",
        [VT_PROTO_CODE_BAD_UTF8] = "bad_utf8",
        [VT_PROTO_CODE_LINE_TOO_LONG] = "line_too_long",
        [VT_PROTO_CODE_BAD_REQUEST] = "bad_request",
        [VT_PROTO_CODE_BAD_MASK] = "bad_mask",
        [VT_PROTO_CODE_BAD_VERSION] = "bad_version",
        [VT_PROTO_CODE_UNAUTHORIZED] = "unauthorized",
        [VT_PROTO_CODE_FORBIDDEN] = "forbidden",
        [VT_PROTO_CODE_NOT_FOUND] = "not_found",
        [VT_PROTO_CODE_CONFLICT] = "conflict",
        [VT_PROTO_CODE_LIMIT] = "limit",
        [VT_PROTO_CODE_INTERNAL] = "internal",
    };
    TABLE_COVERS(names, VT_PROTO_CODE_COUNT);
    return NAME_OF(names, code);
}

const char *vt_proto_pacing_name(vt_proto_pacing p) {
    static const char *const names[] = {
        [VT_PROTO_PACING_DEFAULT] = "",
        [VT_PROTO_PACING_LIVE] = "live",
        [VT_PROTO_PACING_CAMERA] = "camera",
        [VT_PROTO_PACING_LOSSLESS] = "lossless",
    };
    TABLE_COVERS(names, VT_PROTO_PACING_COUNT);
    return NAME_OF(names, p);
}

const char *vt_proto_tracker_name(vt_proto_tracker t) {
    static const char *const names[] = {
        [VT_PROTO_TRACKER_DEFAULT] = "",
        [VT_PROTO_TRACKER_MAST] = "mast",
        [VT_PROTO_TRACKER_COLORIZE] = "colorize",
    };
    TABLE_COVERS(names, VT_PROTO_TRACKER_COUNT);
    return NAME_OF(names, t);
}

const char *vt_proto_profile_name(vt_proto_profile p) {
    static const char *const names[] = {
        [VT_PROTO_PROFILE_DEFAULT] = "",
        [VT_PROTO_PROFILE_ACCURATE] = "accurate",
        [VT_PROTO_PROFILE_REALTIME] = "realtime",
    };
    TABLE_COVERS(names, VT_PROTO_PROFILE_COUNT);
    return NAME_OF(names, p);
}

const char *vt_proto_obj_state_name(vt_proto_obj_state s) {
    static const char *const names[] = {
        [VT_PROTO_OBJ_TRACKING] = "tracking",   [VT_PROTO_OBJ_LOST] = "lost",
        [VT_PROTO_OBJ_RECOVERED] = "recovered", [VT_PROTO_OBJ_OCCLUDED] = "occluded",
        [VT_PROTO_OBJ_PENDING] = "pending",
    };
    TABLE_COVERS(names, VT_PROTO_OBJ_STATE_COUNT);
    return NAME_OF(names, s);
}

const char *vt_proto_lifecycle_name(vt_proto_lifecycle l) {
    static const char *const names[] = {
        [VT_PROTO_LIFECYCLE_ADDED] = "added",         [VT_PROTO_LIFECYCLE_LOST] = "lost",
        [VT_PROTO_LIFECYCLE_RECOVERED] = "recovered", [VT_PROTO_LIFECYCLE_REMOVED] = "removed",
        [VT_PROTO_LIFECYCLE_OCCLUDED] = "occluded",
    };
    TABLE_COVERS(names, VT_PROTO_LIFECYCLE_COUNT);
    return NAME_OF(names, l);
}

const char *vt_proto_stream_state_name(vt_proto_stream_state s) {
    static const char *const names[] = {
        [VT_PROTO_STREAM_CONNECTING] = "connecting",
        [VT_PROTO_STREAM_UP] = "up",
        [VT_PROTO_STREAM_STALLED] = "stalled",
        [VT_PROTO_STREAM_RECONNECTING] = "reconnecting",
        [VT_PROTO_STREAM_ENDED] = "ended",
    };
    TABLE_COVERS(names, VT_PROTO_STREAM_STATE_COUNT);
    return NAME_OF(names, s);
}

static int is_alnum(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* Stream names end up in logs, metrics, MQTT topics and file names: a conservative charset. */
int vt_proto_stream_name_valid(const char *s, size_t n) {
    if (n < 1 || n > VT_PROTO_NAME_MAX || !is_alnum(s[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return 0;
    return 1;
}

int vt_proto_option_key_valid(const char *s, size_t n) {
    if (n < 1 || n > VT_PROTO_OPT_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

int vt_proto_err_set(vt_proto_err *e, vt_proto_code code, const char *field, const char *fmt, ...) {
    e->code = code;
    vtp_excerpt(e->field, sizeof e->field, field ? field : "", field ? strlen(field) : 0);
    va_list ap;
    va_start(ap, fmt);
    vt_vfmt(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int vt_proto_err_framing(vt_proto_err *e, int rc, const char *line, size_t line_len,
                         size_t max_line) {
    memset(e, 0, sizeof *e);
    size_t at = 0;
    switch (rc) {
    case -EMSGSIZE:
        return vt_proto_err_set(e, VT_PROTO_CODE_LINE_TOO_LONG, NULL, "line longer than %zu bytes",
                                max_line ? max_line : VT_PROTO_LINE_MAX);
    case -EILSEQ:
        if (line)
            vt_utf8_check(line, line_len, &at);
        return vt_proto_err_set(e, VT_PROTO_CODE_BAD_UTF8, NULL,
                                "invalid UTF-8 at byte %zu of the line", at);
    default:
        return vt_proto_err_set(e, VT_PROTO_CODE_INTERNAL, NULL, "cannot read the line (%s)",
                                rc == -ENOMEM ? "out of memory" : "framing error");
    }
}
