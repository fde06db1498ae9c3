/*
 * config.h - vtrackd's configuration: the JSON file (systemd/vtrackd.json documents every field),
 * command-line overrides, validation with errors that name the field, and the built-in defaults.
 *
 * Loading is plain blocking code (it reads the file and any mask PNGs it names) with no event
 * loop and no global state, so the daemon runs it before its loop starts and, for SIGHUP, on a
 * worker thread.
 */
#ifndef VTD_CONFIG_H
#define VTD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "vt_stream.h"

#define VTD_LISTEN_MAX      8   /* listen addresses */
#define VTD_STREAMS_MAX     256 /* hard cap of limits.streams */
#define VTD_CLI_STREAMS_MAX 64
#define VTD_DEFAULT_LISTEN  "127.0.0.1:7878"
#define VTD_DEFAULT_HTTP    "127.0.0.1:7879"
#define VTD_EX_CONFIG       78 /* sysexits' EX_CONFIG: systemd's RestartPreventExitStatus */

/* Where a stream came from: reload manages only CONFIG ones. */
typedef enum vtd_origin {
    VTD_ORIGIN_CONFIG,
    VTD_ORIGIN_CLI,
    VTD_ORIGIN_CLIENT,
} vtd_origin;

/* An object registered when its stream starts. */
typedef struct vtd_object_conf {
    uint32_t id;    /* 0: the stream assigns one */
    char *label;    /* NULL: none */
    int64_t frame;  /* -1: the first frame tracked */
    vt_shape shape; /* points/data below are owned here */
    uint8_t *mask;  /* MASK: w*h bytes, 1 = object */
    float *points;  /* POLYGON: 2*npoints */
} vtd_object_conf;

/* Per-camera adaptation (adapt_worker.h, reservoir.h): present only when the stream's object has
 * an "adapt" object; off (enabled 0) otherwise, and then nothing of it runs. */
typedef struct vtd_adapt_conf {
    int enabled;
    double reservoir_mb; /* the frames kept on disk, at most (MiB) */
    int64_t every_ms;    /* a sample is offered every this long */
    int clip;            /* consecutive tracked frames per sample (the training pairs) */
    int short_side;      /* samples are scaled to this short side */
    int min_samples;     /* samples in the reservoir before a first run */
    int hold;            /* samples held back from the fine-tuning for the check */
    int64_t interval_ms; /* between two runs of the stream */
    int steps, batch;    /* the fine-tuning */
    double lr;           /* its peak learning rate */
    double max_load;     /* runs start when the 1-minute load per CPU is below this */
    int hours_from;      /* ... or the local hour is in [hours_from, hours_to) (-1: no hours) */
    int hours_to;        /* (wrapping past midnight when hours_to < hours_from) */
    double margin;       /* the tuned copy must beat the model in use by more than this */
    int seed;
} vtd_adapt_conf;

typedef struct vtd_stream_conf {
    char name[VT_PROTO_NAME_MAX + 1];
    char *url;
    vtd_origin origin;
    int allow_local;          /* 1 for the config and the command line, per config for clients */
    char *whitelist;          /* protocol whitelist for client URLs, NULL: the codec's default */
    char *av_options;         /* "key='value';..." for vt_source_opts.av_options, or NULL */
    char *format;             /* forced demuxer or NULL */
    vt_proto_pacing pacing;   /* resolved: never DEFAULT */
    vt_proto_tracker tracker; /* resolved */
    vt_proto_profile profile; /* resolved */
    vt_source_transport transport;
    int reconnect; /* -1: the codec's default for the kind of source */
    int decoder_threads;
    int64_t connect_timeout_ms, read_timeout_ms, stall_ms, backoff_min_ms, backoff_max_ms;
    int max_objects;   /* tracker overrides; < 0 or 0: the preset's */
    int topk, radius;  /* -1 / -2: preset */
    float temperature; /* <= 0: preset */
    vtd_object_conf *objects;
    int nobjects;
    char *overlay_path; /* NULL: no overlay video */
    double overlay_seconds;
    vtd_adapt_conf adapt;
    char *fingerprint; /* canonical text of everything above, to detect changes on reload */
} vtd_stream_conf;

typedef struct vtd_limits {
    int clients;
    size_t line_bytes;
    size_t soft_queue_bytes, hard_queue_bytes;
    int streams;
    int send_buffer_bytes;       /* SO_SNDBUF of client sockets; 0: the kernel's autotuning */
    int64_t idle_timeout_ms;     /* a connection with no subscription that sends nothing */
    int64_t line_timeout_ms;     /* an incomplete line must be finished within this */
    int64_t shutdown_timeout_ms; /* flushing subscribers at exit */
} vtd_limits;

/* The MQTT sink (mqtt.h); enabled only when the file has an "mqtt" object. */
enum {
    VTD_MQTT_EV_NEW = 1,
    VTD_MQTT_EV_UPDATE = 2,
    VTD_MQTT_EV_END = 4,
};

typedef struct vtd_mqtt_conf {
    int enabled;
    char *host; /* a name or a numeric address */
    int port;
    char *client_id; /* NULL: libmosquitto makes a random one */
    char *username;
    char *password; /* read from password_file; NULL: none */
    int tls;
    char *ca_file, *cert_file, *key_file; /* PEM; cert and key together */
    int tls_insecure;                     /* skip the broker's host name check */
    char *topic_prefix;                   /* never NULL when enabled */
    char *node;        /* NULL: topics are <prefix>/...; else <prefix>/<node>/... */
    int qos;           /* state, objects, events, availability */
    int retain;        /* stream and object state topics */
    int events;        /* VTD_MQTT_EV_* published on <base>/events */
    int frames, masks; /* per-frame events, with masks */
    int ha_discovery;
    char *ha_prefix;
    int keepalive_s;
    int64_t backoff_min_ms, backoff_max_ms;
    int queue_max;     /* messages handed to libmosquitto and not yet sent/acknowledged */
    char *fingerprint; /* canonical text, to detect changes on reload */
} vtd_mqtt_conf;

/* Free the members (not the struct) and zero it. */
void vtd_mqtt_conf_clear(vtd_mqtt_conf *mc);

/* Deep copy. Returns 0 or -ENOMEM (dst is then cleared). */
int vtd_mqtt_conf_copy(vtd_mqtt_conf *dst, const vtd_mqtt_conf *src);

/* The HTTP API and live view (http.h); enabled when the file has an "http" object. */
typedef struct vtd_http_conf {
    int enabled;
    char *listen;               /* "HOST:PORT", never NULL when enabled */
    char *static_dir;           /* the web page's files; NULL: the lookup of vtd_http_static_dir */
    int clients;                /* HTTP connections at once (WebSocket viewers included) */
    size_t header_bytes;        /* request head */
    size_t body_bytes;          /* request body */
    int64_t request_timeout_ms; /* a request must arrive whole within this; also idle keep-alive */
    double frame_rate;          /* JPEG frames per stream per second, at most */
    int jpeg_quality;           /* 1..100 */
    size_t ws_queue_bytes;      /* events queued for one WebSocket viewer before it is closed */
} vtd_http_conf;

typedef struct vtd_config {
    char *path; /* the file it came from, or NULL */
    char *listen[VTD_LISTEN_MAX];
    int nlisten;
    char *token; /* NULL: no auth */
    vtd_log_level log_level;
    char *model;     /* path or "lab"; NULL: the default lookup (vt_stream_default_model) */
    char *state_dir; /* where run-time registrations are saved (persist.h); NULL: see
                      * vtd_config_state_dir */
    int blas_threads;
    vt_proto_pacing def_pacing; /* DEFAULT: camera for local files, live otherwise */
    vt_proto_tracker def_tracker;
    vt_proto_profile def_profile;
    vtd_limits limits;
    int allow_add_streams;
    int allow_local_urls;
    char *protocols; /* comma list for client-added URLs, NULL: the codec's network default */
    vtd_stream_conf *streams;
    int nstreams;
    vtd_mqtt_conf mqtt;
    vtd_http_conf http;
} vtd_config;

/* Command-line options (borrowed from argv). */
typedef struct vtd_cli {
    const char *config_path;
    const char *listen;
    const char *model;
    const char *log_level;
    const char *state_dir;
    const char *streams[VTD_CLI_STREAMS_MAX]; /* "NAME=URL" */
    int nstreams;
} vtd_cli;

/*
 * Build the configuration: the file cli->config_path (if any), then the command-line overrides
 * (--listen replaces listen, --model the model, --log-level the level, --stream NAME=URL replaces
 * the URL of the config's stream NAME or adds a stream with the defaults). Reads mask PNGs of
 * initial objects (relative paths are relative to the config file's folder). On success *out owns
 * the result (vtd_config_free). On failure returns -EINVAL (or -ENOMEM) and writes one line naming
 * the field and the value into err: the caller exits with VTD_EX_CONFIG.
 */
int vtd_config_load(const vtd_cli *cli, vtd_config **out, char *err, size_t errlen);

/* Parse a configuration from JSON text (what vtd_config_load does after reading the file);
 * `dir` is the folder relative mask paths are resolved against (NULL: the working directory). */
int vtd_config_parse(const char *text, size_t len, const char *dir, vtd_config **out, char *err,
                     size_t errlen);

/* Apply command-line overrides to a parsed configuration (see vtd_config_load). */
int vtd_config_apply_cli(vtd_config *cfg, const vtd_cli *cli, char *err, size_t errlen);

/* Free and set *cfg to NULL; accepts NULL. */
void vtd_config_free(vtd_config **cfg);

/* The state directory in force: the configuration's (or --state-dir), else systemd's
 * $STATE_DIRECTORY (its first entry, in buf), else NULL (nothing is saved). */
const char *vtd_config_state_dir(const vtd_config *cfg, char *buf, size_t len);

/* Find a stream by name, or NULL. */
const vtd_stream_conf *vtd_config_find_stream(const vtd_config *cfg, const char *name);

/* Free the members of a stream configuration (not the struct itself). */
void vtd_stream_conf_clear(vtd_stream_conf *sc);

/* Deep copy. Returns 0 or -ENOMEM (dst is then cleared). */
int vtd_stream_conf_copy(vtd_stream_conf *dst, const vtd_stream_conf *src);

/*
 * A stream configuration for an add_stream command: the config's defaults, the client's pacing,
 * tracker, profile and FFmpeg options, allow_local and the protocol whitelist from `clients`.
 * Returns 0, or -EINVAL with a message (field named as in PROTOCOL.md) in err.
 */
int vtd_stream_conf_from_cmd(const vtd_config *cfg, const vt_proto_cmd *cmd, vtd_stream_conf *sc,
                             char *field, size_t fieldlen, char *err, size_t errlen);

/* Fill vt_stream_config for `sc` (borrowing its strings), with the model and callback. */
int vtd_stream_conf_to_stream(const vtd_stream_conf *sc, const vt_model *model,
                              vt_stream_config *out, char *err, size_t errlen);

/* Split "HOST:PORT" / "[V6]:PORT" into host (without brackets) and port. 0 or -EINVAL. */
int vtd_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

/*
 * The default model: $VT_MODEL, else the shipped weights of a build tree
 * (<exe dir>/../../weights/default.safetensors), else the installed <datadir>/vtrack/default.
 * safetensors, else "lab". Returns buf or a static string.
 */

/* FFmpeg AVOption string from key/value pairs, quoting every value. 0 or -ENOMEM/-EINVAL. */
int vtd_av_options(const vt_proto_kv *kv, int n, char **out);

#endif
