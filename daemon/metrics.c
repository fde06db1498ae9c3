/* metrics.c - see metrics.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon.h"
#include "metrics.h"

static int put(vt_proto_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int put(vt_proto_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || vt_proto_buf_reserve(b, (size_t)n) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* A label value: backslash, double quote and newline escaped. */
static void esc(const char *s, char *out, size_t len) {
    size_t o = 0;
    for (; *s && o + 3 < len; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n') {
            out[o++] = '\\';
            out[o++] = *s == '\n' ? 'n' : *s;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = 0;
}

static int family(vt_proto_buf *b, const char *name, const char *type, const char *help) {
    return put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef struct sample_fn {
    const char *name, *type, *help;
    double (*get)(const vt_stream_snapshot *s);
} sample_fn;

static double g_in(const vt_stream_snapshot *s) {
    return (double)s->frames_in;
}
static double g_tracked(const vt_stream_snapshot *s) {
    return (double)s->frames_tracked;
}
static double g_skipped(const vt_stream_snapshot *s) {
    return (double)s->skipped;
}
static double g_reconn(const vt_stream_snapshot *s) {
    return (double)s->reconnects;
}
static double g_fps(const vt_stream_snapshot *s) {
    return s->fps;
}
static double g_lag(const vt_stream_snapshot *s) {
    return s->latency_ms / 1e3;
}
static double g_lag95(const vt_stream_snapshot *s) {
    return s->latency_p95_ms / 1e3;
}

static const sample_fn stream_series[] = {
    {"vtrack_stream_frames_in_total", "counter", "Frames decoded.", g_in},
    {"vtrack_stream_frames_processed_total", "counter", "Frames tracked.", g_tracked},
    {"vtrack_stream_frames_skipped_total", "counter",
     "Live frames not tracked because the tracker was busy.", g_skipped},
    {"vtrack_stream_reconnects_total", "counter",
     "Connection attempts of the source after the first, successful or not.", g_reconn},
    {"vtrack_stream_fps", "gauge", "Tracked frames per second, recent.", g_fps},
    {"vtrack_stream_lag_seconds", "gauge", "Decode to event, recent average.", g_lag},
    {"vtrack_stream_lag_p95_seconds", "gauge", "Decode to event, recent 95th percentile.", g_lag95},
};

static int write_streams(vtd *d, vt_proto_buf *b, vt_stream_snapshot *snaps, int n) {
    char name[2 * VT_PROTO_NAME_MAX + 1];
    int rc = 0;
    for (size_t k = 0; k < sizeof stream_series / sizeof stream_series[0] && !rc; k++) {
        const sample_fn *f = &stream_series[k];
        rc = family(b, f->name, f->type, f->help);
        for (int i = 0; i < n && !rc; i++) {
            esc(snaps[i].name, name, sizeof name);
            rc = put(b, "%s{stream=\"%s\"} %.17g\n", f->name, name, f->get(&snaps[i]));
        }
    }
    if (!rc)
        rc = family(b, "vtrack_stream_up", "gauge", "1 while the stream delivers frames.");
    for (int i = 0; i < n && !rc; i++) {
        esc(snaps[i].name, name, sizeof name);
        rc = put(b, "vtrack_stream_up{stream=\"%s\"} %d\n", name,
                 snaps[i].state == VT_PROTO_STREAM_UP);
    }
    if (!rc)
        rc = family(b, "vtrack_stream_objects", "gauge", "Objects by state.");
    for (int i = 0; i < n && !rc; i++) {
        int count[VT_PROTO_OBJ_STATE_COUNT] = {0};
        for (int j = 0; j < snaps[i].nobjects; j++)
            if ((int)snaps[i].objects[j].state < VT_PROTO_OBJ_STATE_COUNT)
                count[snaps[i].objects[j].state]++;
        esc(snaps[i].name, name, sizeof name);
        for (int s = 0; s < VT_PROTO_OBJ_STATE_COUNT && !rc; s++)
            rc = put(b, "vtrack_stream_objects{stream=\"%s\",state=\"%s\"} %d\n", name,
                     vt_proto_obj_state_name((vt_proto_obj_state)s), count[s]);
    }
    (void)d;
    return rc;
}

static int write_sinks(vtd *d, vt_proto_buf *b) {
    size_t tcp_q = 0;
    uint64_t tcp_drop = 0;
    int subs = 0;
    for (vtd_conn *c = d->conns; c; c = c->next) {
        tcp_q += c->qbytes + c->inflight_bytes;
        tcp_drop += c->dropped_total;
        subs += c->subscribed != 0;
    }
    vtd_http_stats hs;
    vtd_http_get_stats(d->http, &hs);
    vt_proto_mqtt_stats mq = {0};
    if (d->mqtt)
        vtd_mqtt_get_stats(d->mqtt, &mq);
    int rc = family(b, "vtrack_sink_queued", "gauge",
                    "Waiting to be sent: bytes (tcp, http), messages (mqtt).");
    if (!rc)
        rc = put(b, "vtrack_sink_queued{sink=\"tcp\"} %zu\nvtrack_sink_queued{sink=\"http\"} %zu\n",
                 tcp_q, hs.queued_bytes);
    if (!rc && d->mqtt)
        rc = put(b, "vtrack_sink_queued{sink=\"mqtt\"} %llu\n", (unsigned long long)mq.queued);
    if (!rc)
        rc = family(b, "vtrack_sink_dropped_total", "counter",
                    "Dropped: frame events (tcp, of connected clients), frames skipped for a "
                    "newer one (http), messages (mqtt); hub: frame events the loop could not "
                    "take.");
    if (!rc)
        rc = put(b,
                 "vtrack_sink_dropped_total{sink=\"tcp\"} %llu\n"
                 "vtrack_sink_dropped_total{sink=\"http\"} %llu\n"
                 "vtrack_sink_dropped_total{sink=\"hub\"} %llu\n",
                 (unsigned long long)tcp_drop, (unsigned long long)hs.frames_skipped,
                 (unsigned long long)d->hub.dropped_frames);
    if (!rc && d->mqtt)
        rc = put(b, "vtrack_sink_dropped_total{sink=\"mqtt\"} %llu\n",
                 (unsigned long long)mq.dropped);
    if (!rc)
        rc = family(b, "vtrack_sink_clients", "gauge",
                    "Connected clients: TCP subscribers, HTTP connections, WebSocket viewers.");
    if (!rc)
        rc = put(b,
                 "vtrack_sink_clients{sink=\"tcp\"} %d\nvtrack_sink_clients{sink=\"http\"} %d\n"
                 "vtrack_sink_clients{sink=\"ws\"} %d\n",
                 subs, hs.clients, hs.viewers);
    if (!rc)
        rc = family(b, "vtrack_http_frames_sent_total", "counter",
                    "JPEG frames written to WebSocket viewers.");
    if (!rc)
        rc = put(b, "vtrack_http_frames_sent_total %llu\n", (unsigned long long)hs.frames_sent);
    return rc;
}

static long rss_bytes(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

static int write_process(vtd *d, vt_proto_buf *b) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    int rc = family(b, "process_resident_memory_bytes", "gauge", "Resident memory size.");
    if (!rc)
        rc = put(b, "process_resident_memory_bytes %ld\n", rss_bytes());
    if (!rc)
        rc = family(b, "process_cpu_seconds_total", "counter", "User and system CPU time.");
    if (!rc)
        rc = put(b, "process_cpu_seconds_total %.6f\n", cpu);
    if (!rc)
        rc = family(b, "vtrack_uptime_seconds", "gauge", "Seconds since vtrackd started.");
    if (!rc)
        rc = put(b, "vtrack_uptime_seconds %.3f\n", (vt_mono_us() / 1000 - d->start_ms) / 1e3);
    return rc;
}

int vtd_metrics_write(vtd *d, vt_proto_buf *b) {
    int n = d->nstreams;
    vt_stream_snapshot *snaps = n ? malloc(sizeof *snaps * (size_t)n) : NULL;
    if (n && !snaps)
        return -ENOMEM;
    int i = 0;
    for (vtd_srec *r = d->streams; r && i < n; r = r->next, i++)
        vt_stream_get_snapshot(r->s, &snaps[i]);
    int rc = write_streams(d, b, snaps, i);
    free(snaps);
    if (!rc)
        rc = write_sinks(d, b);
    if (!rc)
        rc = write_process(d, b);
    return rc;
}
