/* mqtt.c - see mqtt.h. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mqtt.h"
#include "vt_base.h"
#include "vt_config.h"

#if VT_HAVE_MQTT

#include <arpa/inet.h>
#include <cJSON.h>
#include <mosquitto.h>
#include <openssl/ssl.h>

#define TICK_MS            1000
#define CONNECT_TIMEOUT_MS 10000 /* TCP, TLS and CONNACK */
#define TOPIC_MAX          512
#define SWEEP_MS           2000 /* after connecting, retained object topics are collected this long */
#define SWEEP_MAX          1024 /* and at most this many */

enum { MQ_IDLE, MQ_RESOLVING, MQ_CONNECTING, MQ_CONNECTED };

/* An object as the sink last published it. */
typedef struct mq_object {
    uint32_t id;
    char label[VT_PROTO_LABEL_MAX + 1]; /* "" = none */
    const char *state;                  /* tracking, occluded, lost; removed at the end */
    const char *event;                  /* the lifecycle event that set it */
    int64_t frame, start_frame;         /* -1: none */
    double start_time, time;            /* Unix seconds */
} mq_object;

/* A retained object topic found on the broker after connecting (the sweep). */
typedef struct mq_found {
    char stream[VT_PROTO_NAME_MAX + 1];
    uint32_t id;
} mq_found;

typedef struct mq_stream {
    struct mq_stream *next;
    char name[VT_PROTO_NAME_MAX + 1];
    char *state; /* the last stream event, as published; NULL before the first */
    mq_object *objs;
    int nobjs, cap;
} mq_stream;

struct vtd_mqtt {
    uv_loop_t *loop;
    vtd_mqtt_conf conf;
    char base[TOPIC_MAX / 2]; /* topic_prefix[/node] */
    struct mosquitto *mosq;   /* the current attempt's client, or NULL */
    uv_poll_t *poll;          /* its socket; freed by its close callback */
    int poll_events;
    uv_timer_t tick, retry;
    uv_getaddrinfo_t gai;
    int state, stopping, handles; /* handles: open handles and requests still to come back */
    int generation, resolving_generation; /* a reconfiguration makes a resolution stale */
    int fails_in_row;
    int acked, refused; /* from the callbacks, acted on after the library returns */
    char refusal[128];
    int64_t deadline_ms, backoff_ms;
    int queued;
    uint64_t connections, failures, published, dropped;
    char error[160];
    mq_stream *streams;
    vt_proto_buf scratch;
    /* the sweep: subscribed to <base>/+/objects/+ until sweep_end_ms, collecting the retained
     * ones (up to SWEEP_MAX; `found` is allocated for its duration only) */
    int sweeping, sweep_full, nfound;
    int64_t sweep_end_ms;
    mq_found *found;
};

static int g_lib_users; /* mosquitto_lib_init / _cleanup */

static double unix_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void topic(const vtd_mqtt *m, char *out, const char *stream, const char *leaf) {
    if (stream)
        snprintf(out, TOPIC_MAX, "%s/%s/%s", m->base, stream, leaf);
    else
        snprintf(out, TOPIC_MAX, "%s/%s", m->base, leaf);
}

/* ---------------------------------------------------------------------------------------------
 * Publishing
 * ------------------------------------------------------------------------------------------- */

static void update_poll(vtd_mqtt *m);

/* Hand one message to libmosquitto, or count it as dropped. Frame events only take the first
 * half of the queue, so that state and lifecycle messages still fit when frames pile up. */
static void publish(vtd_mqtt *m, const char *t, const void *p, size_t len, int qos, int retain,
                    int frame) {
    int room = frame ? m->conf.queue_max / 2 : m->conf.queue_max;
    if (m->state != MQ_CONNECTED || m->queued >= room) {
        m->dropped++;
        return;
    }
    m->queued++; /* first: a QoS 0 message written at once is reported sent from inside */
    int rc = mosquitto_publish(m->mosq, NULL, t, (int)len, p, qos, retain);
    if (rc != MOSQ_ERR_SUCCESS) {
        m->queued--;
        m->dropped++;
        vtd_debug("mqtt: publish %s: %s", t, mosquitto_strerror(rc));
        return;
    }
    update_poll(m);
}

static void publish_str(vtd_mqtt *m, const char *t, const char *s, int retain) {
    publish(m, t, s, strlen(s), m->conf.qos, retain, 0);
}

/* A cJSON payload, printed and published (object events are rare: cJSON's allocations are
 * fine here; frames never come this way). */
static void publish_json(vtd_mqtt *m, const char *t, cJSON *o, int retain) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    if (s)
        publish_str(m, t, s, retain);
    else
        m->dropped++;
    free(s);
    cJSON_Delete(o);
}

/* ---------------------------------------------------------------------------------------------
 * State kept for retained topics
 * ------------------------------------------------------------------------------------------- */

static mq_stream *find_stream(vtd_mqtt *m, const char *name, int create) {
    mq_stream **pp = &m->streams;
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0)
            return *pp;
    if (!create)
        return NULL;
    mq_stream *s = calloc(1, sizeof *s);
    if (s)
        snprintf(s->name, sizeof s->name, "%s", name);
    *pp = s;
    return s;
}

static void free_stream(mq_stream *s) {
    free(s->state);
    free(s->objs);
    free(s);
}

static mq_object *find_object(mq_stream *s, uint32_t id) {
    for (int i = 0; i < s->nobjs; i++)
        if (s->objs[i].id == id)
            return &s->objs[i];
    return NULL;
}

static mq_object *add_object(mq_stream *s, uint32_t id) {
    if (s->nobjs == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        mq_object *o = realloc(s->objs, sizeof *o * (size_t)cap);
        if (!o)
            return NULL;
        s->objs = o;
        s->cap = cap;
    }
    mq_object *o = &s->objs[s->nobjs++];
    memset(o, 0, sizeof *o);
    o->id = id;
    o->frame = o->start_frame = -1;
    return o;
}

static void object_json_add_frame(cJSON *o, const char *k, int64_t frame) {
    if (frame >= 0)
        cJSON_AddNumberToObject(o, k, (double)frame);
    else
        cJSON_AddNullToObject(o, k);
}

/* {"id","stream","node"?,"label"?,"state","event","frame","start_frame","start_time","time"} */
static cJSON *object_json(const vtd_mqtt *m, const mq_stream *s, const mq_object *ob) {
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "id", ob->id);
    cJSON_AddStringToObject(o, "stream", s->name);
    if (m->conf.node)
        cJSON_AddStringToObject(o, "node", m->conf.node);
    if (ob->label[0])
        cJSON_AddStringToObject(o, "label", ob->label);
    cJSON_AddStringToObject(o, "state", ob->state);
    cJSON_AddStringToObject(o, "event", ob->event);
    object_json_add_frame(o, "frame", ob->frame);
    object_json_add_frame(o, "start_frame", ob->start_frame);
    cJSON_AddNumberToObject(o, "start_time", ob->start_time);
    cJSON_AddNumberToObject(o, "time", ob->time);
    return o;
}

static void publish_object_state(vtd_mqtt *m, const mq_stream *s, const mq_object *ob) {
    char t[TOPIC_MAX], leaf[32];
    snprintf(leaf, sizeof leaf, "objects/%u", ob->id);
    topic(m, t, s->name, leaf);
    publish_json(m, t, object_json(m, s, ob), m->conf.retain);
}

/* An empty retained message deletes the retained state of a removed object. */
static void clear_object_state(vtd_mqtt *m, const mq_stream *s, uint32_t id) {
    char t[TOPIC_MAX], leaf[32];
    snprintf(leaf, sizeof leaf, "objects/%u", id);
    topic(m, t, s->name, leaf);
    publish(m, t, "", 0, m->conf.qos, 1, 0);
}

/* <base>/events: {"type","before","after"} like Frigate's; `reason` with end. */
static void publish_lifecycle(vtd_mqtt *m, const mq_stream *s, const char *type, int bit,
                              const mq_object *before, const mq_object *after, const char *reason) {
    if (!(m->conf.events & bit))
        return;
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "type", type);
        cJSON_AddItemToObject(o, "before", object_json(m, s, before));
        cJSON *a = object_json(m, s, after);
        if (a && reason)
            cJSON_AddStringToObject(a, "reason", reason);
        cJSON_AddItemToObject(o, "after", a);
    }
    char t[TOPIC_MAX];
    topic(m, t, NULL, "events");
    publish_json(m, t, o, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Home Assistant discovery: one sensor per stream (its state), on the node's device
 * ------------------------------------------------------------------------------------------- */

static void publish_discovery(vtd_mqtt *m, const mq_stream *s) {
    if (!m->conf.ha_discovery)
        return;
    char node[TOPIC_MAX / 2], t[2 * TOPIC_MAX], st[TOPIC_MAX], av[TOPIC_MAX], uid[TOPIC_MAX];
    snprintf(node, sizeof node, "%s", m->base);
    for (char *p = node; *p; p++)
        if (*p == '/')
            *p = '_';
    snprintf(uid, sizeof uid, "%s_%s_state", node, s->name);
    for (char *p = uid; *p; p++)
        if (*p == '.')
            *p = '_';
    snprintf(t, sizeof t, "%s/sensor/%s/config", m->conf.ha_prefix, uid);
    topic(m, st, s->name, "state");
    topic(m, av, NULL, "available");
    cJSON *o = cJSON_CreateObject(), *dev = cJSON_CreateObject(), *ids = cJSON_CreateArray();
    if (!o || !dev || !ids) {
        cJSON_Delete(o), cJSON_Delete(dev), cJSON_Delete(ids);
        m->dropped++;
        return;
    }
    char name[TOPIC_MAX];
    snprintf(name, sizeof name, "%s state", s->name);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "unique_id", uid);
    cJSON_AddStringToObject(o, "state_topic", st);
    cJSON_AddStringToObject(o, "value_template", "{{ value_json.state }}");
    cJSON_AddStringToObject(o, "json_attributes_topic", st);
    cJSON_AddStringToObject(o, "availability_topic", av);
    cJSON_AddStringToObject(o, "icon", "mdi:cctv");
    cJSON_AddItemToArray(ids, cJSON_CreateString(node));
    cJSON_AddItemToObject(dev, "identifiers", ids);
    snprintf(name, sizeof name, "vtrack %s", m->base);
    cJSON_AddStringToObject(dev, "name", name);
    cJSON_AddStringToObject(dev, "manufacturer", "vtrack");
    cJSON_AddStringToObject(dev, "sw_version", VT_VERSION);
    cJSON_AddItemToObject(o, "device", dev);
    publish_json(m, t, o, 1);
}

/* ---------------------------------------------------------------------------------------------
 * Events
 * ------------------------------------------------------------------------------------------- */

static void on_stream_state(vtd_mqtt *m, mq_stream *s, const char *json, size_t len) {
    int first = s->state == NULL;
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, json, len);
        copy[len] = 0;
        free(s->state);
        s->state = copy;
    }
    if (first)
        publish_discovery(m, s);
    char t[TOPIC_MAX];
    topic(m, t, s->name, "state");
    publish(m, t, json, len, m->conf.qos, m->conf.retain, 0);
}

static const char *object_state_after(const char *event) {
    if (strcmp(event, "occluded") == 0)
        return "occluded";
    if (strcmp(event, "lost") == 0)
        return "lost";
    return "tracking"; /* added, recovered (which lasts one frame) */
}

static void on_object_event(vtd_mqtt *m, mq_stream *s, const cJSON *ev) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(ev, "object");
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ev, "frame");
    const cJSON *lb = cJSON_GetObjectItemCaseSensitive(ev, "label");
    const cJSON *what = cJSON_GetObjectItemCaseSensitive(ev, "event");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(ev, "reason");
    if (!cJSON_IsNumber(id) || !cJSON_IsString(what))
        return;
    uint32_t oid = (uint32_t)id->valuedouble;
    int64_t frame = cJSON_IsNumber(fr) ? (int64_t)fr->valuedouble : -1;
    const char *e = what->valuestring;
    mq_object *ob = find_object(s, oid);
    double now = unix_time();
    if (strcmp(e, "removed") == 0) {
        if (!ob)
            return; /* a track that never took effect */
        mq_object after = *ob;
        after.state = after.event = "removed";
        after.frame = frame;
        after.time = now;
        publish_lifecycle(m, s, "end", VTD_MQTT_EV_END, ob, &after,
                          cJSON_IsString(reason) ? reason->valuestring : NULL);
        clear_object_state(m, s, oid);
        *ob = s->objs[--s->nobjs];
        return;
    }
    int is_new = strcmp(e, "added") == 0 || !ob;
    if (!ob && !(ob = add_object(s, oid))) {
        m->dropped++;
        return;
    }
    mq_object before = *ob;
    static const char *const events[] = {"added", "occluded", "lost", "recovered"};
    ob->event = "added";
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        if (strcmp(e, events[i]) == 0)
            ob->event = events[i];
    ob->state = object_state_after(e);
    ob->frame = frame;
    ob->time = now;
    if (cJSON_IsString(lb))
        snprintf(ob->label, sizeof ob->label, "%s", lb->valuestring);
    if (is_new) {
        ob->start_frame = frame;
        ob->start_time = now;
        publish_lifecycle(m, s, "new", VTD_MQTT_EV_NEW, ob, ob, NULL);
    } else {
        publish_lifecycle(m, s, "update", VTD_MQTT_EV_UPDATE, &before, ob, NULL);
    }
    publish_object_state(m, s, ob);
}

void vtd_mqtt_event(vtd_mqtt *m, const char *stream, const vtd_msg *plain, const vtd_msg *masks) {
    static const char frame_tag[] = "\"type\":\"frame\"";
    if (!m || !plain || plain->buf.len < 2)
        return;
    /* A tail is `"type":...}\n`: the payload is `{` + tail, without the line end. */
    const vtd_msg *msg = masks && m->conf.masks ? masks : plain;
    int frame = strncmp(plain->buf.data, frame_tag, sizeof frame_tag - 1) == 0;
    if (frame && !m->conf.frames)
        return;
    vt_proto_buf *b = &m->scratch;
    size_t n = msg->buf.len - (msg->buf.data[msg->buf.len - 1] == '\n');
    if (vtd_tail_object(b, msg->buf.data, n) < 0) {
        m->dropped++;
        return;
    }
    if (frame) {
        char t[TOPIC_MAX];
        topic(m, t, stream, "frame");
        publish(m, t, b->data, b->len, 0, 0, 1);
        return;
    }
    mq_stream *s = find_stream(m, stream, 1);
    cJSON *ev = cJSON_ParseWithLength(b->data, b->len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    if (!s || !cJSON_IsString(type)) {
        m->dropped++;
    } else if (strcmp(type->valuestring, "stream") == 0) {
        on_stream_state(m, s, b->data, b->len);
    } else if (strcmp(type->valuestring, "object") == 0) {
        on_object_event(m, s, ev);
    }
    cJSON_Delete(ev);
}

void vtd_mqtt_forget_stream(vtd_mqtt *m, const char *stream) {
    if (!m)
        return;
    for (mq_stream **pp = &m->streams; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, stream) == 0) {
            mq_stream *s = *pp;
            *pp = s->next;
            free_stream(s);
            return;
        }
}

/* ---------------------------------------------------------------------------------------------
 * The sweep: retained object topics left by an earlier run (a vtrackd killed before it could
 * clear them) are cleared. After connecting the sink subscribes to its own <base>/+/objects/+,
 * notes the retained messages the broker sends for it during SWEEP_MS (at most SWEEP_MAX), then
 * unsubscribes and clears those of objects it does not track by then (objects restored from the
 * saved state have that long to be registered again; one that comes later is cleared and then
 * published again).
 * ------------------------------------------------------------------------------------------- */

static void sweep_topic(const vtd_mqtt *m, char *t) {
    snprintf(t, TOPIC_MAX, "%s/+/objects/+", m->base);
}

static void sweep_reset(vtd_mqtt *m) {
    free(m->found);
    m->found = NULL;
    m->nfound = m->sweeping = m->sweep_full = 0;
}

static void sweep_start(vtd_mqtt *m) {
    char t[TOPIC_MAX];
    sweep_topic(m, t);
    sweep_reset(m);
    int rc = mosquitto_subscribe(m->mosq, NULL, t, 0);
    if (rc != MOSQ_ERR_SUCCESS) {
        vtd_info("mqtt: subscribe %s: %s: stale object topics are not cleared", t,
                 mosquitto_strerror(rc));
        return;
    }
    m->sweeping = 1;
    m->sweep_end_ms = (vt_mono_us() / 1000) + SWEEP_MS;
}

/* In libmosquitto's callback: note <base>/<stream>/objects/<id> when retained and not empty. */
static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg) {
    (void)mosq;
    vtd_mqtt *m = obj;
    if (!m->sweeping || !msg->retain || msg->payloadlen <= 0)
        return;
    size_t bl = strlen(m->base);
    const char *t = msg->topic;
    if (strncmp(t, m->base, bl) != 0 || t[bl] != '/')
        return;
    const char *st = t + bl + 1, *slash = strchr(st, '/');
    size_t sl = slash ? (size_t)(slash - st) : 0;
    if (!sl || sl > VT_PROTO_NAME_MAX || strncmp(slash, "/objects/", 9) != 0)
        return;
    const char *ids = slash + 9;
    size_t il = strlen(ids);
    if (!il || il > 10 || strspn(ids, "0123456789") != il)
        return;
    unsigned long long id = strtoull(ids, NULL, 10);
    if (id > UINT32_MAX)
        return;
    if (m->nfound == SWEEP_MAX) {
        m->sweep_full = 1;
        return;
    }
    if (!m->found && !(m->found = malloc(sizeof *m->found * SWEEP_MAX)))
        return;
    mq_found *f = &m->found[m->nfound++];
    memcpy(f->stream, st, sl);
    f->stream[sl] = 0;
    f->id = (uint32_t)id;
}

static void sweep_end(vtd_mqtt *m) {
    char t[TOPIC_MAX], leaf[32];
    sweep_topic(m, t);
    mosquitto_unsubscribe(m->mosq, NULL, t);
    int n = 0;
    for (int i = 0; i < m->nfound; i++) {
        const mq_found *f = &m->found[i];
        mq_stream *s = find_stream(m, f->stream, 0);
        if (s && find_object(s, f->id))
            continue;
        snprintf(leaf, sizeof leaf, "objects/%u", f->id);
        topic(m, t, f->stream, leaf);
        publish(m, t, "", 0, m->conf.qos, 1, 0);
        n++;
    }
    if (n)
        vtd_notice("mqtt: cleared %d retained object topic%s of objects not tracked", n,
                   n == 1 ? "" : "s");
    if (m->sweep_full)
        vtd_warn("mqtt: more than %d retained object topics under %s: the others are left",
                 SWEEP_MAX, m->base);
    sweep_reset(m);
    update_poll(m);
}

/* On every new connection: online, then every retained topic the sink knows. */
static void publish_all(vtd_mqtt *m) {
    char t[TOPIC_MAX];
    topic(m, t, NULL, "available");
    publish_str(m, t, "online", 1);
    for (mq_stream *s = m->streams; s; s = s->next) {
        publish_discovery(m, s);
        if (s->state) {
            topic(m, t, s->name, "state");
            publish_str(m, t, s->state, m->conf.retain);
        }
        for (int i = 0; i < s->nobjs; i++)
            publish_object_state(m, s, &s->objs[i]);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The connection
 * ------------------------------------------------------------------------------------------- */

static void release(vtd_mqtt *m);
static void connect_start(vtd_mqtt *m);
static void on_poll(uv_poll_t *p, int status, int events);

static void on_poll_closed(uv_handle_t *h) {
    vtd_mqtt *m = h->data;
    free(h);
    release(m);
}

/* Drop the current client: its socket, and whatever it still held (counted as dropped). */
static void drop_client(vtd_mqtt *m) {
    if (m->poll) {
        uv_poll_stop(m->poll);
        uv_close((uv_handle_t *)m->poll, on_poll_closed);
        m->poll = NULL;
        m->poll_events = 0;
    }
    if (m->mosq) {
        mosquitto_destroy(m->mosq);
        m->mosq = NULL;
    }
    m->dropped += (uint64_t)m->queued;
    m->queued = 0;
    m->acked = m->refused = 0;
    sweep_reset(m);
    if (m->state != MQ_RESOLVING) /* a pending resolution still owns the request */
        m->state = MQ_IDLE;
}

static void on_retry(uv_timer_t *t) {
    connect_start(t->data);
}

/* The attempt failed or the connection ended: log it, then try again after the backoff. */
static void connection_failed(vtd_mqtt *m, const char *why) {
    int was = m->state == MQ_CONNECTED;
    snprintf(m->error, sizeof m->error, "%s", why);
    m->failures++;
    m->fails_in_row++;
    drop_client(m);
    if (m->stopping)
        return;
    int64_t wait = was ? m->conf.backoff_min_ms : m->backoff_ms;
    /* One warning when the broker goes away; the retries that follow are details. */
    vtd_log(m->fails_in_row == 1 ? VTD_LOG_WARNING : VTD_LOG_DEBUG,
            "mqtt: %s:%d: %s; retrying in %.1f s", m->conf.host, m->conf.port, why, wait / 1e3);
    m->backoff_ms = was ? m->conf.backoff_min_ms : m->backoff_ms * 2;
    if (m->backoff_ms > m->conf.backoff_max_ms)
        m->backoff_ms = m->conf.backoff_max_ms;
    uv_timer_start(&m->retry, on_retry, (uint64_t)wait, 0);
}

static void failed_rc(vtd_mqtt *m, int rc) {
    char why[160];
    if (m->refused)
        snprintf(why, sizeof why, "refused: %s", m->refusal);
    else if (rc == MOSQ_ERR_ERRNO)
        snprintf(why, sizeof why, "%s", strerror(errno));
    else
        snprintf(why, sizeof why, "%s", mosquitto_strerror(rc));
    connection_failed(m, why);
}

static void update_poll(vtd_mqtt *m) {
    if (!m->poll || !m->mosq)
        return;
    int ev = UV_READABLE | (mosquitto_want_write(m->mosq) ? UV_WRITABLE : 0);
    if (ev != m->poll_events) {
        m->poll_events = ev;
        uv_poll_start(m->poll, ev, on_poll);
    }
}

/* The CONNACK came (in a libmosquitto callback: act once the library has returned). */
static void after_io(vtd_mqtt *m) {
    if (m->acked && m->state == MQ_CONNECTING) {
        m->acked = 0;
        m->state = MQ_CONNECTED;
        m->connections++;
        m->fails_in_row = 0;
        m->backoff_ms = m->conf.backoff_min_ms;
        vtd_notice("mqtt: connected to %s:%d as %s", m->conf.host, m->conf.port, m->base);
        publish_all(m);
        sweep_start(m);
    }
    update_poll(m);
}

static void on_poll(uv_poll_t *p, int status, int events) {
    vtd_mqtt *m = p->data;
    if (status < 0) {
        connection_failed(m, uv_strerror(status));
        return;
    }
    /* Reading also completes a TLS handshake, whichever way the socket became ready. */
    int rc = mosquitto_loop_read(m->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS && (events & UV_WRITABLE) && m->mosq)
        rc = mosquitto_loop_write(m->mosq, 1);
    if (rc != MOSQ_ERR_SUCCESS || m->refused) {
        failed_rc(m, rc);
        return;
    }
    after_io(m);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc) {
    (void)mosq;
    vtd_mqtt *m = obj;
    if (rc == 0) {
        m->acked = 1;
    } else {
        m->refused = 1;
        snprintf(m->refusal, sizeof m->refusal, "%s", mosquitto_connack_string(rc));
    }
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid) {
    (void)mosq, (void)mid;
    vtd_mqtt *m = obj;
    if (m->queued > 0)
        m->queued--;
    m->published++;
}

static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str) {
    (void)mosq, (void)obj;
    /* Its debug level is a line per packet: not forwarded. */
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
        vtd_info("mqtt: libmosquitto: %s", str);
    else if (level & (MOSQ_LOG_NOTICE | MOSQ_LOG_INFO))
        vtd_debug("mqtt: libmosquitto: %s", str);
}

/* TLS: certificates from the configuration; a host name is checked by OpenSSL against the
 * name configured (libmosquitto would check the numeric address it was given). */
static int setup_tls(vtd_mqtt *m, int numeric) {
    const vtd_mqtt_conf *c = &m->conf;
    /* Without ca_file: the system's CA certificates (Debian's ca-certificates). */
    int rc = mosquitto_tls_set(m->mosq, c->ca_file, c->ca_file ? NULL : "/etc/ssl/certs",
                               c->cert_file, c->key_file, NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_insecure_set(m->mosq, c->tls_insecure || !numeric);
    return rc;
}

static int check_name_after_connect(vtd_mqtt *m, int numeric) {
    if (!m->conf.tls || numeric || m->conf.tls_insecure)
        return MOSQ_ERR_SUCCESS;
    /* The handshake has at most sent its first flight: the broker's certificate, which this
     * check applies to, arrives later through mosquitto_loop_read. */
    SSL *ssl = mosquitto_ssl_get(m->mosq);
    if (!ssl || SSL_set1_host(ssl, m->conf.host) != 1)
        return MOSQ_ERR_TLS;
    return MOSQ_ERR_SUCCESS;
}

static struct mosquitto *new_client(vtd_mqtt *m, int numeric, int *rc) {
    const vtd_mqtt_conf *c = &m->conf;
    struct mosquitto *mosq = mosquitto_new(c->client_id, true, m);
    if (!mosq) {
        *rc = MOSQ_ERR_NOMEM;
        return NULL;
    }
    m->mosq = mosq;
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_publish_callback_set(mosq, on_publish);
    mosquitto_message_callback_set(mosq, on_message);
    mosquitto_log_callback_set(mosq, on_log);
    char t[TOPIC_MAX];
    topic(m, t, NULL, "available");
    *rc = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    if (*rc == MOSQ_ERR_SUCCESS)
        *rc = mosquitto_will_set(mosq, t, 7, "offline", c->qos, true);
    if (*rc == MOSQ_ERR_SUCCESS && c->username)
        *rc = mosquitto_username_pw_set(mosq, c->username, c->password);
    if (*rc == MOSQ_ERR_SUCCESS && c->tls)
        *rc = setup_tls(m, numeric);
    return mosq;
}

/* Non-blocking: `addr` is numeric, so libmosquitto's getaddrinfo does not block, and its
 * socket is non-blocking before connect(). */
static void connect_to(vtd_mqtt *m, const char *addr, int numeric) {
    int rc;
    if (!new_client(m, numeric, &rc) || rc != MOSQ_ERR_SUCCESS ||
        (rc = mosquitto_connect_async(m->mosq, addr, m->conf.port, m->conf.keepalive_s)) !=
            MOSQ_ERR_SUCCESS ||
        (rc = check_name_after_connect(m, numeric)) != MOSQ_ERR_SUCCESS) {
        failed_rc(m, rc);
        return;
    }
    if (!(m->poll = malloc(sizeof *m->poll)) ||
        uv_poll_init_socket(m->loop, m->poll, mosquitto_socket(m->mosq)) < 0) {
        free(m->poll);
        m->poll = NULL;
        connection_failed(m, "cannot watch the socket");
        return;
    }
    m->handles++;
    m->poll->data = m;
    m->poll_events = 0;
    m->state = MQ_CONNECTING;
    m->deadline_ms = vt_mono_us() / 1000 + CONNECT_TIMEOUT_MS;
    update_poll(m);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    vtd_mqtt *m = req->data;
    char addr[64] = "";
    if (status == 0 && res)
        uv_ip_name(res->ai_addr, addr, sizeof addr);
    uv_freeaddrinfo(res);
    m->state = MQ_IDLE;
    if (m->stopping) {
        release(m);
        return;
    }
    m->handles--; /* not the last: the timers are open */
    if (m->resolving_generation != m->generation) {
        connect_start(m); /* the host changed meanwhile */
        return;
    }
    if (status < 0 || !addr[0]) {
        char why[160];
        snprintf(why, sizeof why, "cannot resolve %s: %s", m->conf.host,
                 status < 0 ? uv_strerror(status) : "no address");
        connection_failed(m, why);
        return;
    }
    connect_to(m, addr, 0);
}

static int is_numeric(const char *host) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void connect_start(vtd_mqtt *m) {
    if (m->stopping || m->state != MQ_IDLE)
        return;
    if (is_numeric(m->conf.host)) {
        connect_to(m, m->conf.host, 1);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    m->gai.data = m;
    int rc = uv_getaddrinfo(m->loop, &m->gai, on_resolved, m->conf.host, NULL, &hints);
    if (rc < 0) {
        connection_failed(m, uv_strerror(rc));
        return;
    }
    m->handles++;
    m->state = MQ_RESOLVING;
    m->resolving_generation = m->generation;
}

/* Keepalive (PINGREQ, and a broker that stopped answering) and the connection deadline. */
static void on_tick(uv_timer_t *t) {
    vtd_mqtt *m = t->data;
    if (m->state == MQ_CONNECTING && vt_mono_us() / 1000 > m->deadline_ms) {
        connection_failed(m, "no answer from the broker in time");
    } else if (m->state == MQ_CONNECTED) {
        int rc = mosquitto_loop_misc(m->mosq);
        if (rc != MOSQ_ERR_SUCCESS)
            failed_rc(m, rc);
        else if (mosquitto_socket(m->mosq) < 0) /* closed for want of a PINGRESP */
            connection_failed(m, "the broker stopped answering (keepalive)");
        else if (m->sweeping && (vt_mono_us() / 1000) >= m->sweep_end_ms)
            sweep_end(m);
        else
            update_poll(m);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------------------------- */

static void set_base(vtd_mqtt *m) {
    if (m->conf.node)
        snprintf(m->base, sizeof m->base, "%s/%s", m->conf.topic_prefix, m->conf.node);
    else
        snprintf(m->base, sizeof m->base, "%s", m->conf.topic_prefix);
}

int vtd_mqtt_start(uv_loop_t *loop, const vtd_mqtt_conf *conf, vtd_mqtt **out) {
    *out = NULL;
    vtd_mqtt *m = calloc(1, sizeof *m);
    if (!m || vtd_mqtt_conf_copy(&m->conf, conf) < 0) {
        free(m);
        return -ENOMEM;
    }
    if (g_lib_users++ == 0)
        mosquitto_lib_init();
    m->loop = loop;
    set_base(m);
    m->backoff_ms = m->conf.backoff_min_ms;
    uv_timer_init(loop, &m->tick);
    uv_timer_init(loop, &m->retry);
    m->tick.data = m->retry.data = m;
    m->handles = 2;
    uv_timer_start(&m->tick, on_tick, TICK_MS, TICK_MS);
    *out = m;
    connect_start(m);
    return 0;
}

/* Say `offline` and disconnect cleanly (the broker then drops the will). Both packets are
 * written at once when the socket takes them, which it does unless the broker is stuck; then
 * the will says the same. */
static void say_goodbye(vtd_mqtt *m) {
    if (m->state == MQ_CONNECTED) {
        char t[TOPIC_MAX];
        topic(m, t, NULL, "available");
        /* Past the queue limit too: this is the last word. */
        if (mosquitto_publish(m->mosq, NULL, t, 7, "offline", m->conf.qos, true) ==
            MOSQ_ERR_SUCCESS)
            m->queued++;
        mosquitto_disconnect(m->mosq);
        m->published += (uint64_t)m->queued; /* handed over for good, not dropped */
        m->queued = 0;
    }
    drop_client(m);
}

int vtd_mqtt_reconfigure(vtd_mqtt *m, const vtd_mqtt_conf *conf) {
    vtd_mqtt_conf nc;
    if (vtd_mqtt_conf_copy(&nc, conf) < 0)
        return -ENOMEM;
    say_goodbye(m);
    /* A resolution under way was for the old host: on_resolved starts again. */
    m->generation++;
    vtd_mqtt_conf_clear(&m->conf);
    m->conf = nc;
    set_base(m);
    m->backoff_ms = m->conf.backoff_min_ms;
    uv_timer_stop(&m->retry);
    vtd_notice("mqtt: new settings: reconnecting to %s:%d as %s", m->conf.host, m->conf.port,
               m->base);
    connect_start(m);
    return 0;
}

/* One handle or request came back; the last one after vtd_mqtt_stop frees the sink. */
static void release(vtd_mqtt *m) {
    if (--m->handles > 0 || !m->stopping)
        return;
    while (m->streams) {
        mq_stream *s = m->streams;
        m->streams = s->next;
        free_stream(s);
    }
    vt_proto_buf_free(&m->scratch);
    vtd_mqtt_conf_clear(&m->conf);
    free(m);
    if (--g_lib_users == 0)
        mosquitto_lib_cleanup();
}

static void on_handle_closed(uv_handle_t *h) {
    release(h->data);
}

void vtd_mqtt_stop(vtd_mqtt **pm) {
    vtd_mqtt *m = *pm;
    *pm = NULL;
    if (!m)
        return;
    say_goodbye(m);
    m->stopping = 1;
    if (m->state == MQ_RESOLVING)
        uv_cancel((uv_req_t *)&m->gai); /* on_resolved still comes, with UV_ECANCELED */
    uv_close((uv_handle_t *)&m->tick, on_handle_closed);
    uv_close((uv_handle_t *)&m->retry, on_handle_closed);
}

void vtd_mqtt_get_stats(const vtd_mqtt *m, vt_proto_mqtt_stats *st) {
    *st = (vt_proto_mqtt_stats){.connected = m->state == MQ_CONNECTED,
                                .connections = m->connections,
                                .failures = m->failures,
                                .published = m->published,
                                .dropped = m->dropped,
                                .queued = (uint64_t)m->queued,
                                .error = m->error[0] ? m->error : NULL};
}

#else /* !VT_HAVE_MQTT: the configuration never enables the sink */

int vtd_mqtt_start(uv_loop_t *loop, const vtd_mqtt_conf *conf, vtd_mqtt **out) {
    (void)loop, (void)conf;
    *out = NULL;
    return -ENOTSUP;
}

void vtd_mqtt_event(vtd_mqtt *m, const char *stream, const vtd_msg *plain, const vtd_msg *masks) {
    (void)m, (void)stream, (void)plain, (void)masks;
}

void vtd_mqtt_forget_stream(vtd_mqtt *m, const char *stream) {
    (void)m, (void)stream;
}

int vtd_mqtt_reconfigure(vtd_mqtt *m, const vtd_mqtt_conf *conf) {
    (void)m, (void)conf;
    return -ENOTSUP;
}

void vtd_mqtt_stop(vtd_mqtt **m) {
    *m = NULL;
}

void vtd_mqtt_get_stats(const vtd_mqtt *m, vt_proto_mqtt_stats *st) {
    (void)m;
    memset(st, 0, sizeof *st);
}

#endif
