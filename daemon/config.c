/*
 * config.c - see config.h. The whole file: its checks as text (UTF-8, NUL bytes, one JSON
 * object), the root table with its sections (defaults, limits, clients, mqtt, http), and what the
 * daemon asks of a loaded configuration. Streams are config_stream.c's, the command line is
 * config_cli.c's, and the table machinery is config_fields.c's (config_int.h). Every value is
 * checked against its documented range, and every failure names the field as a path
 * ("streams[1].objects[0].box[2]") and the value it got.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_int.h"
#include "vt_base.h"
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

/* log.c owns the level names */
static const char *level_name(int v) {
    return vtd_log_level_name((vtd_log_level)v);
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
    {CFG_ENUM("pacing", C, def_pacing, vtd_cfg_pacing_name, 1, VT_PROTO_PACING_COUNT - 1, 0)},
    {CFG_ENUM("tracker", C, def_tracker, vtd_cfg_tracker_name, 1, VT_PROTO_TRACKER_COUNT - 1, 0)},
    {CFG_ENUM("profile", C, def_profile, vtd_cfg_profile_name, 1, VT_PROTO_PROFILE_COUNT - 1, 0)},
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

/* The strings a vtd_mqtt_conf owns, one list for clearing and copying. */
static const size_t mqtt_strings[] = {
    offsetof(vtd_mqtt_conf, host),       offsetof(vtd_mqtt_conf, client_id),
    offsetof(vtd_mqtt_conf, username),   offsetof(vtd_mqtt_conf, password),
    offsetof(vtd_mqtt_conf, ca_file),    offsetof(vtd_mqtt_conf, cert_file),
    offsetof(vtd_mqtt_conf, key_file),   offsetof(vtd_mqtt_conf, topic_prefix),
    offsetof(vtd_mqtt_conf, node),       offsetof(vtd_mqtt_conf, ha_prefix),
    offsetof(vtd_mqtt_conf, fingerprint)};
#define N_MQTT_STRINGS (sizeof mqtt_strings / sizeof mqtt_strings[0])

void vtd_mqtt_conf_clear(vtd_mqtt_conf *mc) {
    vtd_cfg_free_strings(mc, mqtt_strings, N_MQTT_STRINGS);
    memset(mc, 0, sizeof *mc);
}

int vtd_mqtt_conf_copy(vtd_mqtt_conf *dst, const vtd_mqtt_conf *src) {
    int oom = 0;
    *dst = *src;
    vtd_cfg_dup_strings(dst, mqtt_strings, N_MQTT_STRINGS, &oom); /* src's until copied */
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
    if ((rc = vtd_cfg_object(c, m, "an object {host, port?, ...}", mqtt_fields)) < 0 ||
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
    if (rc >= 0)
        rc = vtd_cfg_object(c, o, "an object {listen?, static_dir?, ...}", http_fields);
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
    int rc = vtd_cfg_object(c, root, "a JSON object", vtd_cfg_root);
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
        vt_fmt(err, errlen, "out of memory");
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

int vtd_config_load(const vtd_cli *cli, vtd_config **out, char *err, size_t errlen) {
    char *text = NULL, dir[4096] = "";
    size_t len = 0;
    *out = NULL;
    int rc;
    if (cli->config_path) {
        if ((rc = vtd_cfg_read_file(cli->config_path, FILE_MAX, &text, &len, err, errlen)) < 0) {
            if (rc == -ENOMEM)
                vt_fmt(err, errlen, "out of memory");
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
        vt_fmt(err, errlen, "%s: %s", cli->config_path ? cli->config_path : "config", perr);
        return rc;
    }
    if (cli->config_path && !((*out)->path = strdup(cli->config_path))) {
        vtd_config_free(out);
        return -ENOMEM;
    }
    if ((rc = vtd_config_apply_cli(*out, cli, err, errlen)) < 0) {
        if (rc == -ENOMEM)
            vt_fmt(err, errlen, "out of memory");
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
