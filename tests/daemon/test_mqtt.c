/*
 * test_mqtt.c - vtrackd's MQTT sink against a real broker: Debian's `mosquitto`, started by
 * each test on 127.0.0.1 on a free port with its own configuration (never a system broker),
 * and a libmosquitto subscriber in this process. Checks topics, payloads, retained state, the
 * last will of a killed vtrackd, reconnection after a broker restart while the tracker goes
 * on, credentials, TLS with a CA made here by `openssl`, two vtrackd on one broker, and a
 * reload. Exits 77 (skipped) without the `mosquitto` broker.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mosquitto.h>

#include "testmain.h"
#include "dtest.h"

#define LAB     "\"model\":\"lab\",\"log_level\":\"debug\""
#define WAIT_MS 10000

static const char *broker_exe;

/* ---------------------------------------------------------------------------------------------
 * A broker of our own
 * ------------------------------------------------------------------------------------------- */

typedef struct broker {
    pid_t pid;
    int port;
    char conf[512], log[512];
} broker;

/* Start mosquitto with `extra` configuration lines (may be ""); same port as before when
 * b->port is set (a restart). */
static void broker_start(broker *b, const char *extra) {
    static int serial;
    if (!b->port)
        b->port = tu_free_port();
    snprintf(b->conf, sizeof b->conf, "%s/mosquitto-%d.conf", tu_dir(), ++serial);
    snprintf(b->log, sizeof b->log, "%s/mosquitto-%d.log", tu_dir(), serial);
    char text[2048];
    snprintf(text, sizeof text,
             /* as root, mosquitto would switch to the user mosquitto, who cannot read the
              * scratch folder (mode 0700) */
             "%sper_listener_settings false\npersistence false\nlog_dest stderr\n"
             "listener %d 127.0.0.1\n%s\n",
             getuid() == 0 ? "user root\n" : "", b->port,
             extra[0] ? extra : "allow_anonymous true");
    ck_assert_int_eq(tu_write_file(b->conf, text, strlen(text)), 0);
    char *argv[] = {(char *)broker_exe, "-c", b->conf, NULL};
    b->pid = dt_spawn_logged(argv, NULL, b->log, 1);
    ck_assert_int_gt(b->pid, 0);
    ck_assert_msg(tu_wait_port(b->port, WAIT_MS) == 0, "mosquitto did not listen on %d", b->port);
}

static void broker_stop(broker *b) {
    if (b->pid > 0) {
        kill(b->pid, SIGTERM);
        waitpid(b->pid, NULL, 0);
    }
    b->pid = 0;
}

/* ---------------------------------------------------------------------------------------------
 * A subscriber: libmosquitto's own thread collects every message
 * ------------------------------------------------------------------------------------------- */

typedef struct msg {
    char *topic, *payload; /* payload NUL-terminated; "" for an empty message */
    int len, retain;
} msg;

typedef struct sub {
    struct mosquitto *m;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    msg *v;
    int n, cap, subscribed;
} sub;

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *mm) {
    (void)m;
    sub *s = obj;
    pthread_mutex_lock(&s->lock);
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->v = realloc(s->v, sizeof *s->v * (size_t)s->cap);
    }
    msg *x = &s->v[s->n++];
    x->topic = strdup(mm->topic);
    x->payload = calloc(1, (size_t)mm->payloadlen + 1);
    if (mm->payloadlen)
        memcpy(x->payload, mm->payload, (size_t)mm->payloadlen);
    x->len = mm->payloadlen;
    x->retain = mm->retain;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *q) {
    (void)m, (void)mid, (void)n, (void)q;
    sub *s = obj;
    pthread_mutex_lock(&s->lock);
    s->subscribed = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

typedef struct sub_opts {
    const char *user, *password, *ca_file;
} sub_opts;

/* Connect to the broker and subscribe to `pattern`; returns once the broker confirmed. */
static void sub_open(sub *s, const broker *b, const char *pattern, const sub_opts *o) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->m = mosquitto_new(NULL, true, s);
    ck_assert_ptr_nonnull(s->m);
    mosquitto_message_callback_set(s->m, on_message);
    mosquitto_subscribe_callback_set(s->m, on_subscribe);
    if (o && o->user)
        mosquitto_username_pw_set(s->m, o->user, o->password);
    if (o && o->ca_file)
        ck_assert_int_eq(mosquitto_tls_set(s->m, o->ca_file, NULL, NULL, NULL, NULL), 0);
    ck_assert_int_eq(
        mosquitto_connect(s->m, o && o->ca_file ? "localhost" : "127.0.0.1", b->port, 30),
        MOSQ_ERR_SUCCESS);
    ck_assert_int_eq(mosquitto_subscribe(s->m, NULL, pattern, 1), MOSQ_ERR_SUCCESS);
    ck_assert_int_eq(mosquitto_loop_start(s->m), MOSQ_ERR_SUCCESS);
    int64_t end = tu_now_ms() + WAIT_MS;
    pthread_mutex_lock(&s->lock);
    while (!s->subscribed && tu_now_ms() < end) {
        pthread_mutex_unlock(&s->lock);
        tu_sleep_ms(10);
        pthread_mutex_lock(&s->lock);
    }
    int ok = s->subscribed;
    pthread_mutex_unlock(&s->lock);
    ck_assert_msg(ok, "no SUBACK for %s", pattern);
}

static void sub_close(sub *s) {
    mosquitto_disconnect(s->m);
    mosquitto_loop_stop(s->m, true);
    mosquitto_destroy(s->m);
    for (int i = 0; i < s->n; i++)
        free(s->v[i].topic), free(s->v[i].payload);
    free(s->v);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
}

/* The first message from index *from on with this topic whose payload contains `needle`
 * (NULL: any; "" only an empty payload), within timeout_ms. Returns a copy (the caller frees
 * topic and payload) with *from moved past it, or a message with a NULL topic. */
static msg sub_wait(sub *s, int *from, const char *topic, const char *needle, int timeout_ms) {
    int64_t end = tu_now_ms() + timeout_ms;
    msg r = {0};
    pthread_mutex_lock(&s->lock);
    for (;;) {
        for (int i = *from; i < s->n; i++) {
            msg *x = &s->v[i];
            int match = strcmp(x->topic, topic) == 0 &&
                        (!needle || (needle[0] ? strstr(x->payload, needle) != NULL : !x->len));
            if (match) {
                r = *x;
                r.topic = strdup(x->topic);
                r.payload = strdup(x->payload);
                *from = i + 1;
                pthread_mutex_unlock(&s->lock);
                return r;
            }
        }
        if (tu_now_ms() >= end)
            break;
        pthread_mutex_unlock(&s->lock);
        tu_sleep_ms(10);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* Wait for a message and check it arrived (retained when `retained` is 0 or 1; -1: either). */
static cJSON *expect_msg(sub *s, int *from, const char *topic, const char *needle, int retained) {
    msg x = sub_wait(s, from, topic, needle, WAIT_MS);
    ck_assert_msg(x.topic != NULL, "no message on %s with %s", topic, needle ? needle : "(any)");
    if (retained >= 0)
        ck_assert_msg(x.retain == retained, "%s: retain is %d", topic, x.retain);
    cJSON *j = x.len ? cJSON_Parse(x.payload) : NULL;
    if (x.len && strcmp(x.payload, "online") != 0 && strcmp(x.payload, "offline") != 0)
        ck_assert_msg(j != NULL, "%s: not JSON: %s", topic, x.payload);
    free(x.topic);
    free(x.payload);
    return j;
}

static void expect(sub *s, int *from, const char *topic, const char *needle, int retained) {
    cJSON_Delete(expect_msg(s, from, topic, needle, retained));
}

/* ---------------------------------------------------------------------------------------------
 * vtrackd
 * ------------------------------------------------------------------------------------------- */

static const char *video(void) {
    const char *v = dt_video("v160.mp4", 160, 120, 100, 25);
    ck_assert_msg(v != NULL, "ffmpeg could not make the test video");
    return v;
}

/* One camera-paced stream "cam" with object 1 "box"; `mqtt` is the body of the "mqtt" object
 * after host and port. */
static char *mqtt_config_host(const broker *b, const char *host, const char *mqtt) {
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "{\"listen\":\"127.0.0.1:@PORT@\"," LAB ",\"mqtt\":{\"host\":\"%s\","
             "\"port\":%d,\"backoff_min_s\":0.1,\"backoff_max_s\":0.5%s%s},\"streams\":[{\"name\":"
             "\"cam\",\"url\":\"%s\",\"pacing\":\"camera\",\"objects\":[{\"id\":1,\"label\":"
             "\"box\",\"box\":[40,30,40,40],\"frame\":0}]}]}",
             host, b->port, mqtt[0] ? "," : "", mqtt, video());
    return buf;
}

static char *mqtt_config(const broker *b, const char *mqtt) {
    return mqtt_config_host(b, "127.0.0.1", mqtt);
}

static void stop_ok(dt_daemon *d) {
    int code = dt_stop(d, SIGTERM, 5000, NULL);
    ck_assert_msg(code == 0, "vtrackd exited with %d after SIGTERM", code);
}

static cJSON *command(dt_conn *c, const char *line) {
    cJSON *r = dt_command(c, line, WAIT_MS);
    ck_assert_msg(r && strcmp(dt_str(r, "type"), "reply") == 0, "%s: no reply", line);
    return r;
}

/* The reply's stats.mqtt (the caller frees *reply). */
static const cJSON *mqtt_stats(dt_conn *c, cJSON **reply) {
    *reply = command(c, "{\"op\":\"stats\"}\n");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(*reply, "stats");
    const cJSON *mq = cJSON_GetObjectItemCaseSensitive(st, "mqtt");
    ck_assert_msg(cJSON_IsObject(mq), "stats has no mqtt");
    return mq;
}

static const cJSON *item(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------------- */

/* Availability, stream state, object lifecycle and per-object state, retained where they
 * should be, and a clean `offline` at SIGTERM. */
START_TEST(test_topics) {
    broker b = {0};
    broker_start(&b, "");
    sub s, late;
    sub_open(&s, &b, "vtrack/#", NULL);
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, mqtt_config(&b, "\"node\":\"n1\",\"ha_discovery\":true"), NULL),
                     0);
    int at = 0;
    expect(&s, &at, "vtrack/n1/available", "online", 0);
    at = 0;
    cJSON *up = expect_msg(&s, &at, "vtrack/n1/cam/state", "\"state\":\"up\"", 0);
    ck_assert_str_eq(dt_str(up, "type"), "stream");
    ck_assert_int_eq((int)dt_num(up, "width", 0), 160);
    cJSON_Delete(up);
    at = 0;
    cJSON *ev = expect_msg(&s, &at, "vtrack/n1/events", "\"type\":\"new\"", 0);
    const cJSON *after = item(ev, "after");
    ck_assert_int_eq((int)dt_num(after, "id", 0), 1);
    ck_assert_str_eq(dt_str(after, "label"), "box");
    ck_assert_str_eq(dt_str(after, "stream"), "cam");
    ck_assert_str_eq(dt_str(after, "node"), "n1");
    ck_assert_str_eq(dt_str(after, "state"), "tracking");
    ck_assert(cJSON_IsObject(item(ev, "before")));
    cJSON_Delete(ev);
    /* The object's retained state is published just after the event: wait until the broker
     * has it, else the late subscriber below can get it live (retain 0) instead. */
    at = 0;
    expect(&s, &at, "vtrack/n1/cam/objects/1", NULL, 0);

    /* A subscriber arriving now gets the retained state. */
    sub_open(&late, &b, "vtrack/#", NULL);
    int lt = 0;
    expect(&late, &lt, "vtrack/n1/available", "online", 1);
    lt = 0;
    expect(&late, &lt, "vtrack/n1/cam/state", "\"state\":\"up\"", 1);
    lt = 0;
    cJSON *o1 = expect_msg(&late, &lt, "vtrack/n1/cam/objects/1", NULL, 1);
    ck_assert_int_eq((int)dt_num(o1, "id", 0), 1);
    ck_assert_int_ge((int)dt_num(o1, "start_frame", -1), 0);
    cJSON_Delete(o1);
    sub_close(&late);
    /* Home Assistant discovery: a sensor for the stream's state, retained */
    sub_open(&late, &b, "homeassistant/#", NULL);
    lt = 0;
    cJSON *ha = expect_msg(&late, &lt, "homeassistant/sensor/vtrack_n1_cam_state/config", NULL, 1);
    ck_assert_str_eq(dt_str(ha, "state_topic"), "vtrack/n1/cam/state");
    ck_assert_str_eq(dt_str(ha, "availability_topic"), "vtrack/n1/available");
    ck_assert_str_eq(dt_str(ha, "unique_id"), "vtrack_n1_cam_state");
    cJSON_Delete(ha);
    sub_close(&late);

    /* An object added and removed over the protocol: new, its state, end, its state cleared. */
    dt_conn c;
    ck_assert_int_eq(dt_connect(&c, d.port, 0), 0);
    cJSON_Delete(command(&c, "{\"op\":\"track\",\"stream\":\"cam\",\"object\":7,\"label\":"
                             "\"b7\",\"box\":[100,60,30,30]}\n"));
    at = 0;
    ev = expect_msg(&s, &at, "vtrack/n1/events", "\"id\":7", 0);
    ck_assert_str_eq(dt_str(ev, "type"), "new");
    ck_assert_str_eq(dt_str(item(ev, "after"), "label"), "b7");
    cJSON_Delete(ev);
    at = 0;
    expect(&s, &at, "vtrack/n1/cam/objects/7", "\"label\":\"b7\"", 0);
    cJSON_Delete(command(&c, "{\"op\":\"untrack\",\"stream\":\"cam\",\"object\":7}\n"));
    ev = expect_msg(&s, &at, "vtrack/n1/events", "\"type\":\"end\"", 0);
    ck_assert_int_eq((int)dt_num(item(ev, "before"), "id", 0), 7);
    ck_assert_str_eq(dt_str(item(ev, "before"), "state"), "tracking");
    ck_assert_str_eq(dt_str(item(ev, "after"), "state"), "removed");
    ck_assert_str_eq(dt_str(item(ev, "after"), "reason"), "untrack");
    cJSON_Delete(ev);
    expect(&s, &at, "vtrack/n1/cam/objects/7", "", 0); /* the empty message deletes it */
    sub_open(&late, &b, "vtrack/n1/cam/objects/+", NULL);
    lt = 0;
    expect(&late, &lt, "vtrack/n1/cam/objects/1", NULL, 1);
    msg gone = sub_wait(&late, &(int){0}, "vtrack/n1/cam/objects/7", NULL, 300);
    ck_assert_msg(gone.topic == NULL, "object 7 is still retained");
    sub_close(&late);

    cJSON *st;
    const cJSON *mq = mqtt_stats(&c, &st);
    ck_assert(cJSON_IsTrue(item(mq, "connected")));
    ck_assert_int_eq((int)dt_num(mq, "connections", 0), 1);
    ck_assert_int_ge((int)dt_num(mq, "published", 0), 8);
    /* dropped: events from before the first connection (racy: 0 or more), then none */
    ck_assert_int_ge((int)dt_num(mq, "dropped", -1), 0);
    ck_assert_int_ge((int)dt_num(mq, "queued", -1), 0);
    cJSON_Delete(st);
    dt_close(&c);

    stop_ok(&d);
    at = 0;
    expect(&s, &at, "vtrack/n1/cam/state", "\"state\":\"ended\"", 0);
    expect(&s, &at, "vtrack/n1/available", "offline", 0);
    sub_close(&s);
    broker_stop(&b);
}
END_TEST

/* A vtrackd killed outright: the broker publishes its last will. */
START_TEST(test_last_will) {
    broker b = {0};
    broker_start(&b, "");
    sub s;
    sub_open(&s, &b, "vtrack/available", NULL);
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, mqtt_config(&b, "\"keepalive_s\":5"), NULL), 0);
    int at = 0;
    expect(&s, &at, "vtrack/available", "online", 0);
    ck_assert_int_eq(dt_stop(&d, SIGKILL, 5000, NULL), 128 + SIGKILL);
    expect(&s, &at, "vtrack/available", "offline", 0);
    sub_close(&s);
    /* and it stays retained */
    sub_open(&s, &b, "vtrack/available", NULL);
    at = 0;
    expect(&s, &at, "vtrack/available", "offline", 1);
    sub_close(&s);
    broker_stop(&b);
}
END_TEST

static int64_t next_frame(dt_conn *c) {
    cJSON *f = dt_wait_type(c, "frame", NULL, NULL, WAIT_MS);
    ck_assert_msg(f != NULL, "no frame event");
    int64_t n = (int64_t)dt_num(f, "frame", -1);
    cJSON_Delete(f);
    return n;
}

/* The broker goes away and comes back (without its retained messages: no persistence): the
 * tracker keeps going meanwhile, what could not be sent is counted, and on reconnection the
 * sink sends its retained state again. */
START_TEST(test_reconnect) {
    broker b = {0};
    broker_start(&b, "");
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, mqtt_config(&b, "\"frames\":true"), NULL), 0);
    sub s;
    sub_open(&s, &b, "vtrack/#", NULL);
    int at = 0;
    expect(&s, &at, "vtrack/cam/frame", "\"type\":\"frame\"", 0);
    sub_close(&s);
    dt_conn c;
    ck_assert_int_eq(dt_connect(&c, d.port, 0), 0);
    cJSON_Delete(command(&c, "{\"op\":\"subscribe\",\"streams\":[\"cam\"]}\n"));

    broker_stop(&b);
    /* Frame events keep coming on the protocol while the broker is away. */
    int64_t first = next_frame(&c), last = first;
    for (int i = 0; i < 10; i++) {
        int64_t n = next_frame(&c);
        ck_assert_msg(n > last, "frame %lld after %lld", (long long)n, (long long)last);
        last = n;
    }
    cJSON *st;
    const cJSON *mq = mqtt_stats(&c, &st);
    ck_assert(cJSON_IsFalse(item(mq, "connected")));
    ck_assert_int_ge((int)dt_num(mq, "failures", 0), 1);
    ck_assert_int_gt((int)dt_num(mq, "dropped", 0), 0); /* frames while disconnected */
    ck_assert_ptr_nonnull(dt_str(mq, "error"));
    cJSON_Delete(st);

    broker_start(&b, "");
    sub_open(&s, &b, "vtrack/#", NULL);
    at = 0;
    expect(&s, &at, "vtrack/available", "online", -1);
    at = 0;
    expect(&s, &at, "vtrack/cam/state", "\"state\":\"up\"", -1);
    at = 0;
    expect(&s, &at, "vtrack/cam/objects/1", "\"id\":1", -1);
    at = 0;
    expect(&s, &at, "vtrack/cam/frame", "\"type\":\"frame\"", 0);
    sub_close(&s);
    /* retained again on the new broker */
    sub_open(&s, &b, "vtrack/cam/state", NULL);
    at = 0;
    expect(&s, &at, "vtrack/cam/state", "\"state\":\"up\"", 1);
    sub_close(&s);
    mq = mqtt_stats(&c, &st);
    ck_assert(cJSON_IsTrue(item(mq, "connected")));
    ck_assert_int_eq((int)dt_num(mq, "connections", 0), 2);
    cJSON_Delete(st);
    ck_assert_int_gt(next_frame(&c), last);
    dt_close(&c);
    stop_ok(&d);
    broker_stop(&b);
}
END_TEST

/* Two vtrackd with their own node ids on one broker; one subscriber sees both apart. */
START_TEST(test_two_nodes) {
    broker b = {0};
    broker_start(&b, "");
    sub s;
    sub_open(&s, &b, "vtrack/+/cam/state", NULL);
    dt_daemon d1, d2;
    ck_assert_int_eq(dt_start(&d1, mqtt_config(&b, "\"node\":\"dock-1\""), NULL), 0);
    ck_assert_int_eq(dt_start(&d2, mqtt_config(&b, "\"node\":\"dock-2\""), NULL), 0);
    int at = 0;
    expect(&s, &at, "vtrack/dock-1/cam/state", "\"state\":\"up\"", 0);
    at = 0;
    expect(&s, &at, "vtrack/dock-2/cam/state", "\"state\":\"up\"", 0);
    sub_close(&s);
    sub_open(&s, &b, "vtrack/+/available", NULL);
    at = 0;
    expect(&s, &at, "vtrack/dock-1/available", "online", 1);
    at = 0;
    expect(&s, &at, "vtrack/dock-2/available", "online", 1);
    stop_ok(&d1);
    expect(&s, &at, "vtrack/dock-1/available", "offline", 0);
    stop_ok(&d2);
    expect(&s, &at, "vtrack/dock-2/available", "offline", 0);
    sub_close(&s);
    broker_stop(&b);
}
END_TEST

/* SIGHUP with another node id: offline under the old topics, online and the state under the
 * new ones. */
START_TEST(test_reload) {
    broker b = {0};
    broker_start(&b, "");
    sub s;
    sub_open(&s, &b, "vtrack/#", NULL);
    dt_daemon d;
    ck_assert_int_eq(dt_start(&d, mqtt_config(&b, "\"node\":\"a\""), NULL), 0);
    int at = 0;
    expect(&s, &at, "vtrack/a/cam/objects/1", "\"id\":1", 0);
    ck_assert_int_eq(dt_rewrite_config(&d, mqtt_config(&b, "\"node\":\"b\"")), 0);
    kill(d.pid, SIGHUP);
    int old = at;
    expect(&s, &at, "vtrack/a/available", "offline", 0);
    at = old;
    expect(&s, &at, "vtrack/b/available", "online", 0);
    at = old;
    expect(&s, &at, "vtrack/b/cam/objects/1", "\"id\":1", 0);
    stop_ok(&d);
    sub_close(&s);
    broker_stop(&b);
}
END_TEST

/* A vtrackd killed with SIGKILL leaves its objects' retained topics behind; restarted, it
 * clears those of objects it no longer tracks (an object a client added, one of a stream it no
 * longer has) and keeps the one it tracks again (configured object 1). Another node's topics
 * are not touched. */
START_TEST(test_stale_objects) {
    broker b = {0};
    broker_start(&b, "");
    sub s;
    sub_open(&s, &b, "vtrack/#", NULL);
    dt_daemon d;
    const char *cfg = mqtt_config(&b, "\"node\":\"n1\"");
    ck_assert_int_eq(dt_start(&d, cfg, NULL), 0);
    int at = 0;
    expect(&s, &at, "vtrack/n1/cam/objects/1", "\"id\":1", 0);
    dt_conn c;
    ck_assert_int_eq(dt_connect(&c, d.port, 0), 0);
    cJSON_Delete(command(&c, "{\"op\":\"track\",\"stream\":\"cam\",\"object\":7,"
                             "\"box\":[100,60,30,30]}\n"));
    at = 0;
    expect(&s, &at, "vtrack/n1/cam/objects/7", "\"id\":7", 0);
    dt_close(&c);
    ck_assert_int_eq(dt_stop(&d, SIGKILL, 5000, NULL), 128 + SIGKILL);
    /* what a killed server leaves, plus an object of a stream it no longer has and one of
     * another node */
    const char *other = "{\"id\":3}";
    ck_assert_int_eq(mosquitto_publish(s.m, NULL, "vtrack/n1/gone/objects/3", (int)strlen(other),
                                       other, 1, true),
                     MOSQ_ERR_SUCCESS);
    ck_assert_int_eq(
        mosquitto_publish(s.m, NULL, "vtrack/n2/cam/objects/3", (int)strlen(other), other, 1, true),
        MOSQ_ERR_SUCCESS);
    int before = at;
    expect(&s, &at, "vtrack/n1/gone/objects/3", "\"id\":3", 0);
    at = before;
    expect(&s, &at, "vtrack/n2/cam/objects/3", "\"id\":3", 0);

    at = s.n;
    ck_assert_int_eq(dt_start(&d, cfg, NULL), 0);
    before = at;
    expect(&s, &at, "vtrack/n1/cam/objects/7", "", 0);
    at = before;
    expect(&s, &at, "vtrack/n1/gone/objects/3", "", 0);
    ck_assert_msg(dt_wait_log(&d, "mqtt: cleared", WAIT_MS), "no sweep logged");
    /* a subscriber arriving now gets object 1 and the other node's, nothing else */
    sub late;
    sub_open(&late, &b, "vtrack/+/+/objects/+", NULL);
    int lt = 0;
    expect(&late, &lt, "vtrack/n1/cam/objects/1", "\"id\":1", 1);
    lt = 0;
    expect(&late, &lt, "vtrack/n2/cam/objects/3", "\"id\":3", 1);
    tu_sleep_ms(300);
    pthread_mutex_lock(&late.lock);
    for (int i = 0; i < late.n; i++)
        ck_assert_msg(strcmp(late.v[i].topic, "vtrack/n1/cam/objects/1") == 0 ||
                          strcmp(late.v[i].topic, "vtrack/n2/cam/objects/3") == 0,
                      "%s is still retained", late.v[i].topic);
    pthread_mutex_unlock(&late.lock);
    sub_close(&late);
    stop_ok(&d);
    sub_close(&s);
    broker_stop(&b);
}
END_TEST

/* Poll `stats` until the sink has failed at least once; returns its last error (static). */
static const char *wait_failure(dt_daemon *d) {
    static char error[256];
    dt_conn c;
    ck_assert_int_eq(dt_connect(&c, d->port, 0), 0);
    int64_t end = tu_now_ms() + WAIT_MS;
    int failures = 0;
    error[0] = 0;
    while (!failures && tu_now_ms() < end) {
        cJSON *st;
        const cJSON *mq = mqtt_stats(&c, &st); /* it answers: the daemon keeps running */
        failures = (int)dt_num(mq, "failures", 0);
        ck_assert(cJSON_IsFalse(item(mq, "connected")));
        snprintf(error, sizeof error, "%s", dt_str(mq, "error") ? dt_str(mq, "error") : "");
        cJSON_Delete(st);
        if (!failures)
            tu_sleep_ms(100);
    }
    dt_close(&c);
    ck_assert_msg(failures > 0, "no failure counted");
    return error;
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* A broker that wants a password (made by mosquitto_passwd): the right one, given as a file
 * and as a systemd credential, connects; a wrong one is refused, counted, and vtrackd keeps
 * running. */
START_TEST(test_credentials) {
    /* the broker's package (mosquitto, which main found) installs it */
    ck_assert_msg(access("/usr/bin/mosquitto_passwd", X_OK) == 0, "no mosquitto_passwd");
    char cmd[1024], extra[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/mosquitto_passwd -c -b %s vtrack s3cret",
             tu_path("passwd"));
    ck_assert_int_eq(run(cmd), 0);
    snprintf(extra, sizeof extra, "allow_anonymous false\npassword_file %s", tu_path("passwd"));
    broker b = {0};
    broker_start(&b, extra);
    ck_assert_int_eq(tu_write_file(tu_path("mqtt-password"), "s3cret\n", 7), 0);
    ck_assert_int_eq(tu_write_file(tu_path("wrong-password"), "guess\n", 6), 0);
    sub s;
    sub_open(&s, &b, "vtrack/#", &(sub_opts){.user = "vtrack", .password = "s3cret"});

    char body[1024], env0[600];
    snprintf(body, sizeof body,
             "\"node\":\"good\",\"username\":\"vtrack\",\"password_file\":\"mqtt-password\"");
    snprintf(env0, sizeof env0, "CREDENTIALS_DIRECTORY=%s", tu_dir());
    char *env[] = {env0, NULL};
    dt_daemon good, bad;
    ck_assert_int_eq(dt_start(&good, mqtt_config(&b, body), env), 0);
    int at = 0;
    expect(&s, &at, "vtrack/good/available", "online", 0);
    snprintf(body, sizeof body, "\"node\":\"bad\",\"username\":\"vtrack\",\"password_file\":\"%s\"",
             tu_path("wrong-password"));
    ck_assert_int_eq(dt_start(&bad, mqtt_config(&b, body), NULL), 0);
    const char *error = wait_failure(&bad);
    ck_assert_msg(strstr(error, "not authorised") != NULL, "error: %s", error);
    ck_assert(dt_wait_log(&bad, "refused", WAIT_MS));
    at = 0;
    msg none = sub_wait(&s, &at, "vtrack/bad/available", NULL, 300);
    ck_assert_ptr_null(none.topic);
    stop_ok(&bad);
    stop_ok(&good);
    sub_close(&s);
    broker_stop(&b);
}
END_TEST

/* A CA, and a broker certificate for the name localhost only, made here. */
static int make_certs(void) {
    char cmd[4096];
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    snprintf(
        cmd, sizeof cmd,
        "cd %s && printf 'subjectAltName=DNS:localhost\\n' >ext.cnf && "
        "openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj /CN=vtrack-test-ca && "
        "openssl req -x509 %s -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=other && "
        "openssl req %s -keyout srv.key -out srv.csr -subj /CN=localhost && "
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
        "-days 2 -extfile ext.cnf",
        tu_dir(), ec, ec, ec);
    strcat(cmd, " 2>certs.log >&2");
    return run(cmd);
}

/* TLS with a CA made here: the broker's name is checked against its certificate (a name that
 * is not in it, or another CA, fails and is counted); `insecure` skips the name check only. */
START_TEST(test_tls) {
    ck_assert_msg(access("/usr/bin/openssl", X_OK) == 0, "no openssl (./dev setup installs it)");
    ck_assert_int_eq(make_certs(), 0);
    char extra[2048];
    snprintf(extra, sizeof extra,
             "allow_anonymous true\ncafile %s/ca.pem\ncertfile %s/srv.pem\nkeyfile %s/srv.key",
             tu_dir(), tu_dir(), tu_dir());
    broker b = {0};
    broker_start(&b, extra);
    char ca[600], other[600];
    snprintf(ca, sizeof ca, "%s/ca.pem", tu_dir());
    snprintf(other, sizeof other, "%s/other-ca.pem", tu_dir());
    sub s;
    sub_open(&s, &b, "vtrack/#", &(sub_opts){.ca_file = ca});

    char body[1024];
    /* the name localhost, resolved without blocking, checked against the certificate */
    snprintf(body, sizeof body, "\"node\":\"named\",\"tls\":{\"ca_file\":\"%s\"}", ca);
    dt_daemon named, byaddr, insecure, wrongca;
    ck_assert_int_eq(dt_start(&named, mqtt_config_host(&b, "localhost", body), NULL), 0);
    int at = 0;
    expect(&s, &at, "vtrack/named/available", "online", 0);
    at = 0;
    expect(&s, &at, "vtrack/named/cam/state", "\"state\":\"up\"", -1);

    /* 127.0.0.1 is not in the certificate */
    snprintf(body, sizeof body, "\"node\":\"addr\",\"tls\":{\"ca_file\":\"%s\"}", ca);
    ck_assert_int_eq(dt_start(&byaddr, mqtt_config(&b, body), NULL), 0);
    wait_failure(&byaddr);
    /* ... which `insecure` accepts */
    snprintf(body, sizeof body,
             "\"node\":\"insecure\",\"tls\":{\"ca_file\":\"%s\",\"insecure\":true}", ca);
    ck_assert_int_eq(dt_start(&insecure, mqtt_config(&b, body), NULL), 0);
    at = 0;
    expect(&s, &at, "vtrack/insecure/available", "online", 0);
    /* another CA signed nothing here */
    snprintf(body, sizeof body, "\"node\":\"other\",\"tls\":{\"ca_file\":\"%s\",\"insecure\":true}",
             other);
    ck_assert_int_eq(dt_start(&wrongca, mqtt_config(&b, body), NULL), 0);
    wait_failure(&wrongca);
    at = 0;
    msg none = sub_wait(&s, &at, "vtrack/addr/available", NULL, 200);
    ck_assert_ptr_null(none.topic);
    none = sub_wait(&s, &at, "vtrack/other/available", NULL, 200);
    ck_assert_ptr_null(none.topic);
    stop_ok(&wrongca);
    stop_ok(&insecure);
    stop_ok(&byaddr);
    stop_ok(&named);
    sub_close(&s);
    broker_stop(&b);
}
END_TEST

static Suite *mqtt_suite(void) {
    Suite *s = suite_create("daemon-mqtt");
    tm_add_case(s, "mqtt", 60, test_topics, test_last_will, test_reconnect, test_two_nodes,
                test_reload, test_stale_objects, test_credentials, test_tls, NULL);
    return s;
}

static const char *find_broker(void) {
    static const char *const where[] = {"/usr/sbin/mosquitto", "/usr/bin/mosquitto",
                                        "/usr/local/sbin/mosquitto", NULL};
    for (int i = 0; where[i]; i++)
        if (access(where[i], X_OK) == 0)
            return where[i];
    return NULL;
}

int main(void) {
    if (!(broker_exe = find_broker())) {
        fprintf(stderr, "SKIP: no mosquitto broker (Debian package mosquitto)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    mosquitto_lib_init();
    int status = tm_run(mqtt_suite());
    mosquitto_lib_cleanup();
    tu_cleanup();
    return status;
}
