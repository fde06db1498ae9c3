/* test_config.c - vtrackd's configuration: defaults, every kind of bad value named by its field,
 * command-line overrides, the shipped example (systemd/vtrackd.json), FFmpeg option quoting. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/dict.h>

#include "testmain.h"
#include "codec_test_util.h"
#include "config.h"
#include "vt_config.h"

static vtd_config *parse_ok(const char *json) {
    vtd_config *cfg = NULL;
    char err[512] = "";
    int rc = vtd_config_parse(json, strlen(json), tu_dir(), &cfg, err, sizeof err);
    ck_assert_msg(rc == 0, "%s: %s", json, err);
    return cfg;
}

START_TEST(test_defaults) {
    vtd_config *cfg = parse_ok("{}");
    ck_assert_int_eq(cfg->nlisten, 1);
    ck_assert_str_eq(cfg->listen[0], "127.0.0.1:7878");
    ck_assert_ptr_null(cfg->token);
    ck_assert_int_eq(cfg->limits.clients, 256);
    ck_assert_uint_eq(cfg->limits.line_bytes, 65536);
    ck_assert_uint_eq(cfg->limits.soft_queue_bytes, 1u << 20);
    ck_assert_uint_eq(cfg->limits.hard_queue_bytes, 16u << 20);
    ck_assert_int_eq(cfg->blas_threads, 1);
    ck_assert_int_eq(cfg->allow_add_streams, 0);
    ck_assert_int_eq(cfg->nstreams, 0);
    ck_assert_int_eq(cfg->http.enabled, 0); /* no "http" object */
    ck_assert_int_eq(cfg->mqtt.enabled, 0); /* no "mqtt" object */
    vtd_config_free(&cfg);
    ck_assert_ptr_null(cfg);
    vtd_config_free(&cfg); /* NULL is fine */
}
END_TEST

START_TEST(test_full) {
    vtd_config *cfg = parse_ok(
        "{\"listen\":[\"127.0.0.1:9000\",\"[::1]:9000\"],\"token\":\"s3cret\",\"log_level\":"
        "\"debug\",\"model\":\"lab\",\"blas_threads\":2,\"defaults\":{\"pacing\":\"lossless\","
        "\"profile\":\"accurate\"},\"limits\":{\"clients\":10,\"line_bytes\":2048,"
        "\"soft_queue_bytes\":8192,\"hard_queue_bytes\":65536,\"idle_timeout_s\":1.5},"
        "\"clients\":{\"allow_add_streams\":true,\"protocols\":[\"rtsp\",\"tcp\"]},"
        "\"streams\":[{\"name\":\"a\",\"url\":\"rtsp://h/x\",\"options\":{\"stimeout\":5000000,"
        "\"user_agent\":\"it's\"},\"rtsp_transport\":\"udp\",\"objects\":[{\"id\":4,\"label\":"
        "\"car\",\"box\":[1,2,3,4],\"frame\":7},{\"polygon\":[[0,0],[10,0],[5,5]]}]},"
        "{\"name\":\"b.2\",\"url\":\"/tmp/x.mp4\",\"pacing\":\"camera\"}]}");
    ck_assert_int_eq(cfg->nlisten, 2);
    ck_assert_str_eq(cfg->listen[1], "[::1]:9000");
    ck_assert_str_eq(cfg->token, "s3cret");
    ck_assert_int_eq(cfg->log_level, VTD_LOG_DEBUG);
    ck_assert_int_eq(cfg->blas_threads, 2);
    ck_assert_int_eq(cfg->limits.clients, 10);
    ck_assert_int_eq(cfg->limits.idle_timeout_ms, 1500);
    ck_assert_str_eq(cfg->protocols, "rtsp,tcp");
    ck_assert_int_eq(cfg->nstreams, 2);
    const vtd_stream_conf *a = &cfg->streams[0], *b = &cfg->streams[1];
    /* defaults apply where a stream says nothing */
    ck_assert_int_eq(a->pacing, VT_PROTO_PACING_LOSSLESS);
    ck_assert_int_eq(a->profile, VT_PROTO_PROFILE_ACCURATE);
    ck_assert_int_eq(a->tracker, VT_PROTO_TRACKER_MAST);
    ck_assert_int_eq(a->transport, VT_SOURCE_TRANSPORT_UDP);
    ck_assert_int_eq(b->pacing, VT_PROTO_PACING_CAMERA);
    ck_assert_int_eq(a->adapt.enabled, 0); /* off unless the stream has "adapt" */
    ck_assert_int_eq(a->nobjects, 2);
    ck_assert_int_eq(a->objects[0].id, 4);
    ck_assert_str_eq(a->objects[0].label, "car");
    ck_assert_int_eq(a->objects[0].frame, 7);
    ck_assert_int_eq(a->objects[0].shape.kind, VT_SHAPE_BOX);
    ck_assert(a->objects[0].shape.box[0] == 1.0f && a->objects[0].shape.box[3] == 4.0f);
    ck_assert_int_eq(a->objects[1].id, 0);
    ck_assert_int_eq(a->objects[1].frame, -1);
    ck_assert_int_eq(a->objects[1].shape.kind, VT_SHAPE_POLYGON);
    ck_assert_int_eq(a->objects[1].shape.npoints, 3);
    ck_assert(a->objects[1].shape.points[2] == 10.0f && a->objects[1].shape.points[5] == 5.0f);
    /* FFmpeg reads the options back exactly, quote included */
    AVDictionary *dict = NULL;
    ck_assert_int_ge(av_dict_parse_string(&dict, a->av_options, "=", ";\n", 0), 0);
    ck_assert_str_eq(av_dict_get(dict, "stimeout", NULL, 0)->value, "5000000");
    ck_assert_str_eq(av_dict_get(dict, "user_agent", NULL, 0)->value, "it's");
    av_dict_free(&dict);
    /* deep copy */
    vtd_stream_conf copy;
    ck_assert_int_eq(vtd_stream_conf_copy(&copy, a), 0);
    ck_assert_str_eq(copy.url, a->url);
    ck_assert_ptr_ne(copy.objects[1].shape.points, a->objects[1].shape.points);
    ck_assert(copy.objects[1].shape.points[2] == 10.0f);
    ck_assert_str_eq(copy.fingerprint, a->fingerprint);
    vtd_stream_conf_clear(&copy);
    vtd_config_free(&cfg);
}
END_TEST

/* A configuration the parser must refuse, and what its message says. */
typedef struct bad_case {
    const char *json, *want;
} bad_case;

/* Parse c->json: refused (-EINVAL when exact), nothing returned, and a message that contains
 * c->want (is c->want when exact). */
static void expect_refused(const bad_case *c, int exact) {
    vtd_config *cfg = NULL;
    char err[512] = "";
    int rc = vtd_config_parse(c->json, strlen(c->json), tu_dir(), &cfg, err, sizeof err);
    ck_assert_msg(exact ? rc == -EINVAL : rc < 0, "accepted: %s", c->json);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(exact ? strcmp(err, c->want) == 0 : strstr(err, c->want) != NULL,
                  "%s\n  got:  %s\n  want: %s", c->json, err, c->want);
}

/* Each bad configuration must fail naming its field. */
static const bad_case bad[] = {
    {"[]", "must be a JSON object"},
    {"{\"listen\":1}", "listen: must be"},
    {"{\"listen\":\"7878\"}", "listen: must be"},
    {"{\"listen\":\"::1:7878\"}", "listen: must be"},
    {"{\"listen\":\"127.0.0.1:70000\"}", "listen: must be"},
    {"{\"listen\":\"127.0.0.1:+7878\"}", "listen: must be"},
    {"{\"listen\":\"127.0.0.1: 7878\"}", "listen: must be"},
    {"{\"listen\":[\"a:1\",2]}", "listen[1]: must be"},
    {"{\"lisen\":\"a:1\"}", "lisen: unknown field"},
    {"{\"token\":\"\"}", "token: must be"},
    {"{\"token\":\"a\\nb\"}", "token: must be"},
    {"{\"log_level\":\"loud\"}", "log_level: must be one of"},
    {"{\"blas_threads\":0}", "blas_threads: must be an integer in [1, 64]"},
    {"{\"blas_threads\":1.5}", "blas_threads: must be an integer"},
    {"{\"defaults\":{\"pacing\":\"fast\"}}", "defaults.pacing: must be one of \"live\""},
    {"{\"limits\":{\"clients\":0}}", "limits.clients: must be an integer"},
    {"{\"limits\":{\"soft_queue_bytes\":100000,\"hard_queue_bytes\":5000}}",
     "limits: hard_queue_bytes (5000) is below soft_queue_bytes"},
    {"{\"limits\":{\"idle_timeout_s\":\"10\"}}", "limits.idle_timeout_s: must be a number"},
    {"{\"limits\":{\"stream\":1}}", "limits.stream: unknown field"},
    {"{\"clients\":{\"protocols\":[\"file\"]}}", "clients.protocols[0]: \"file\" reads local"},
    {"{\"clients\":{\"protocols\":[\"RTSP!\"]}}", "clients.protocols[0]: must be"},
    {"{\"streams\":{}}", "streams: must be an array"},
    {"{\"streams\":[{\"url\":\"x\"}]}", "streams[0].name: missing"},
    {"{\"streams\":[{\"name\":\"-a\",\"url\":\"x\"}]}", "streams[0].name: \"-a\" is not"},
    {"{\"streams\":[{\"name\":\"a\"}]}", "streams[0].url: missing"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\"},{\"name\":\"a\",\"url\":\"y\"}]}",
     "streams[1]: stream name \"a\" is used twice"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"pacing\":\"slow\"}]}",
     "streams[0].pacing: must be one of"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"options\":{\"a b\":\"1\"}}]}",
     "streams[0].options.a b: option names"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"options\":{\"k\":true}}]}",
     "streams[0].options.k: must be a string"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"backoff_min_s\":5,\"backoff_max_s\":1}]}",
     "streams[0]: backoff_max_s"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"objects\":[{\"box\":[1,2,0,4]}]}]}",
     "streams[0].objects[0].box[2]: must be a number in (0, 1e6]"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"objects\":[{\"box\":[1,2,3]}]}]}",
     "streams[0].objects[0].box: must be [x, y, w, h]"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"objects\":[{\"label\":\"x\"}]}]}",
     "streams[0].objects[0]: give exactly one of box, polygon, mask"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"objects\":[{\"box\":[1,2,3,4],"
     "\"polygon\":[[0,0],[1,1],[2,0]]}]}]}",
     "streams[0].objects[0]: give exactly one"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"objects\":[{\"polygon\":[[0,0],[1,1]]}]}]}",
     "streams[0].objects[0].polygon: must be an array of 3..1024 points"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"objects\":[{\"polygon\":[[0,0],[1,1],[2,"
     "\"z\"]]}]}]}",
     "streams[0].objects[0].polygon[2][1]: must be a number"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"objects\":[{\"mask\":\"nope.png\"}]}]}",
     "streams[0].objects[0].mask: "},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"objects\":[{\"id\":2,\"box\":[1,1,1,1]},"
     "{\"id\":2,\"box\":[1,1,1,1]}]}]}",
     "streams[0].objects[1]: object id 2 is given twice"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"overlay\":{\"seconds\":3}}]}",
     "streams[0].overlay: path is missing"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":true}]}",
     "streams[0].adapt: must be an object {reservoir_mb, every_s, ...}"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"reservoir_mb\":0}}]}",
     "streams[0].adapt.reservoir_mb: must be a number in [1, 1048576]"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"every_s\":0}}]}",
     "streams[0].adapt.every_s: must be a number"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"clip\":1}}]}",
     "streams[0].adapt.clip: must be an integer in [2, 16]"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"steps\":2.5}}]}",
     "streams[0].adapt.steps: must be an integer"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"lr\":0}}]}",
     "streams[0].adapt.lr: must be a number"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"max_load\":-1}}]}",
     "streams[0].adapt.max_load: must be a number in [0, 1024]"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"margin\":2.5}}]}",
     "streams[0].adapt.margin: must be a number in [-2, 2]"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"hours\":\"1-5\"}}]}",
     "streams[0].adapt.hours: must be \"HH-HH\""},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"hours\":\"05-05\"}}]}",
     "streams[0].adapt.hours: must be \"HH-HH\""},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"hours\":\"22-25\"}}]}",
     "streams[0].adapt.hours: must be \"HH-HH\""},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"hours\":5}}]}",
     "streams[0].adapt.hours: must be \"HH-HH\""},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"min_samples\":4,\"hold\":4}}]}",
     "streams[0].adapt: min_samples (4) must be above hold (4)"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{\"step\":4}}]}",
     "streams[0].adapt.step: unknown field"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"overlay\":{\"path\":\"o.mp4\",\"seconds\":0}}]"
     "}",
     "streams[0].overlay.seconds: must be a number"},
    {"{\"limits\":{\"streams\":1},\"streams\":[{\"name\":\"a\",\"url\":\"x\"},{\"name\":\"b\","
     "\"url\":\"y\"}]}",
     "streams: 2 streams but limits.streams is 1"},
    {"{\"a\":1,\"a\":2}", "a: unknown field"},
    {"{\"blas_threads\":1,\"blas_threads\":2}", "blas_threads: field given twice"},
    {"{\"listen\":\"a:1\"} {}", "unexpected bytes after the JSON object"},
    {"{\"listen\":\"a:1\",\n\"x\":}", "not valid JSON (line 2"},
    /* cJSON would cut the token at the NUL: "ab" would be accepted */
    {"{\"listen\":\"a:1\",\n\"token\":\"ab\\u0000cdefgh\"}", "a string contains \\u0000 (line 2"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"objects\":[{\"label\":\"bad\xff\xfe\","
     "\"box\":[1,1,1,1]}]}]}",
     "not valid UTF-8 (line 1"},
};

#if VT_HAVE_MQTT
#define MQ(body) "{\"mqtt\":{\"host\":\"127.0.0.1\"" body "}}"
static const bad_case bad_mqtt[] = {
    {"{\"mqtt\":1}", "mqtt: must be an object"},
    {"{\"mqtt\":{}}", "mqtt.host: missing"},
    {"{\"mqtt\":{\"host\":\"\"}}", "mqtt.host: must be a string"},
    {MQ(",\"port\":0"), "mqtt.port: must be an integer in [1, 65535]"},
    {MQ(",\"prot\":1"), "mqtt.prot: unknown field"},
    {MQ(",\"qos\":3"), "mqtt.qos: must be an integer in [0, 2]"},
    {MQ(",\"retain\":1"), "mqtt.retain: must be true or false"},
    {MQ(",\"topic_prefix\":\"a/+/b\""), "mqtt.topic_prefix: \"a/+/b\" is not a topic prefix"},
    {MQ(",\"topic_prefix\":\"a#\""), "mqtt.topic_prefix: \"a#\" is not"},
    {MQ(",\"topic_prefix\":\"a//b\""), "mqtt.topic_prefix: \"a//b\" is not"},
    {MQ(",\"topic_prefix\":\"/a\""), "mqtt.topic_prefix: \"/a\" is not"},
    {MQ(",\"topic_prefix\":\"$SYS\""), "mqtt.topic_prefix: \"$SYS\" is not"},
    {MQ(",\"node\":\"a/b\""), "mqtt.node: \"a/b\" is not a node id"},
    {MQ(",\"node\":\"#\""), "mqtt.node: \"#\" is not a node id"},
    {MQ(",\"events\":[\"new\",\"gone\"]"), "mqtt.events[1]: must be one of \"new\""},
    {MQ(",\"events\":[\"new\",\"new\"]"), "mqtt.events[1]: \"new\" is given twice"},
    {MQ(",\"events\":\"new\""), "mqtt.events: must be an array"},
    {MQ(",\"password_file\":\"/nonexistent/pw\",\"username\":\"u\""),
     "mqtt.password_file: /nonexistent/pw: No such file"},
    {MQ(",\"tls\":{\"ca_file\":\"/nonexistent/ca.pem\"}"),
     "mqtt.tls.ca_file: /nonexistent/ca.pem: No such file"},
    {MQ(",\"tls\":{\"verify\":true}"), "mqtt.tls.verify: unknown field"},
    {MQ(",\"tls\":true"), "mqtt.tls: must be an object"},
    {MQ(",\"keepalive_s\":1"), "mqtt.keepalive_s: must be an integer in [5, 3600]"},
    {MQ(",\"queue_messages\":1"), "mqtt.queue_messages: must be an integer in [16,"},
    {MQ(",\"backoff_min_s\":5,\"backoff_max_s\":1"), "mqtt: backoff_max_s (1.000) is below"},
    {MQ(",\"client_id\":\"a\\nb\""), "mqtt.client_id: must be a string"},
};

static const bad_case bad_http[] = {
    {"{\"http\":1}", "http: must be an object"},
    {"{\"http\":{\"port\":1}}", "http.port: unknown field"},
    {"{\"http\":{\"listen\":\"nohost\"}}", "http.listen: must be \"HOST:PORT\""},
    {"{\"http\":{\"listen\":\"127.0.0.1:0\"}}", "got \"127.0.0.1:0\""},
    {"{\"http\":{\"enabled\":1}}", "http.enabled: must be true or false"},
    {"{\"http\":{\"header_bytes\":100}}", "http.header_bytes: must be an integer in [1024,"},
    {"{\"http\":{\"body_bytes\":1e9}}", "http.body_bytes: must be an integer in [1024,"},
    {"{\"http\":{\"clients\":0}}", "http.clients: must be an integer in [1, 4096]"},
    {"{\"http\":{\"frame_rate\":0}}", "http.frame_rate: must be a number in [0.1, 60]"},
    {"{\"http\":{\"jpeg_quality\":101}}", "http.jpeg_quality: must be an integer in [1, 100]"},
    {"{\"http\":{\"request_timeout_s\":0}}", "http.request_timeout_s: must be a number"},
    {"{\"http\":{\"ws_queue_bytes\":10}}", "http.ws_queue_bytes: must be an integer in"},
    {"{\"http\":{\"static_dir\":\"\"}}", "http.static_dir: must be a string"},
};

START_TEST(test_bad_http) {
    expect_refused(&bad_http[_i], 0);
}
END_TEST

START_TEST(test_http) {
    vtd_config *cfg = parse_ok("{\"http\":{}}");
    ck_assert_int_eq(cfg->http.enabled, 1);
    ck_assert_str_eq(cfg->http.listen, "127.0.0.1:7879");
    ck_assert_ptr_null(cfg->http.static_dir);
    ck_assert_int_eq(cfg->http.jpeg_quality, 80);
    vtd_config_free(&cfg);
    cfg = parse_ok("{\"http\":{\"enabled\":false,\"listen\":\"[::1]:8080\",\"static_dir\":"
                   "\"/srv/web\",\"frame_rate\":2.5,\"request_timeout_s\":3}}");
    ck_assert_int_eq(cfg->http.enabled, 0);
    ck_assert_str_eq(cfg->http.listen, "[::1]:8080");
    ck_assert_str_eq(cfg->http.static_dir, "/srv/web");
    ck_assert(cfg->http.frame_rate == 2.5);
    ck_assert_int_eq((int)cfg->http.request_timeout_ms, 3000);
    vtd_config_free(&cfg);
}
END_TEST

START_TEST(test_bad_mqtt) {
    expect_refused(&bad_mqtt[_i], 0);
}
END_TEST

START_TEST(test_mqtt) {
    vtd_config *cfg = parse_ok(MQ(""));
    const vtd_mqtt_conf *m = &cfg->mqtt;
    ck_assert_int_eq(m->enabled, 1);
    ck_assert_int_eq(m->port, 1883);
    ck_assert_str_eq(m->topic_prefix, "vtrack");
    ck_assert_ptr_null(m->node);
    ck_assert_int_eq(m->qos, 1);
    ck_assert_int_eq(m->retain, 1);
    ck_assert_int_eq(m->events, VTD_MQTT_EV_NEW | VTD_MQTT_EV_UPDATE | VTD_MQTT_EV_END);
    ck_assert_int_eq(m->frames, 0);
    ck_assert_int_eq(m->masks, 0);
    ck_assert_int_eq(m->tls, 0);
    ck_assert_ptr_nonnull(m->fingerprint);
    vtd_config_free(&cfg);

    /* the password from a file, or from $CREDENTIALS_DIRECTORY by bare name */
    ck_assert_int_eq(tu_write_file(tu_path("pw"), "s3cret\n", 7), 0);
    ck_assert_int_eq(tu_write_file(tu_path("ca.pem"), "x", 1), 0);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"mqtt\":{\"host\":\"broker.example\",\"username\":\"u\",\"password_file\":"
             "\"%s\",\"tls\":{\"ca_file\":\"%s\"},\"topic_prefix\":\"site/a\",\"node\":"
             "\"n-1\",\"qos\":0,\"retain\":false,\"events\":[\"end\"],\"frames\":true,"
             "\"masks\":true,\"ha_discovery\":true,\"keepalive_s\":10}}",
             tu_path("pw"), tu_path("ca.pem"));
    cfg = parse_ok(json);
    m = &cfg->mqtt;
    ck_assert_str_eq(m->password, "s3cret");
    ck_assert_int_eq(m->tls, 1);
    ck_assert_int_eq(m->port, 8883); /* the TLS default */
    ck_assert_str_eq(m->topic_prefix, "site/a");
    ck_assert_str_eq(m->node, "n-1");
    ck_assert_int_eq(m->events, VTD_MQTT_EV_END);
    ck_assert_int_eq(m->retain, 0);
    ck_assert_int_eq(m->keepalive_s, 10);
    vtd_mqtt_conf copy;
    ck_assert_int_eq(vtd_mqtt_conf_copy(&copy, m), 0);
    ck_assert_str_eq(copy.password, "s3cret");
    ck_assert_str_eq(copy.fingerprint, m->fingerprint);
    vtd_mqtt_conf_clear(&copy);
    vtd_config_free(&cfg);

    setenv("CREDENTIALS_DIRECTORY", tu_dir(), 1);
    cfg = parse_ok(MQ(",\"username\":\"u\",\"password_file\":\"pw\""));
    ck_assert_str_eq(cfg->mqtt.password, "s3cret");
    vtd_config_free(&cfg);
    unsetenv("CREDENTIALS_DIRECTORY");
    char err[512];
    const char *nouser = MQ(",\"password_file\":\"/dev/null\"");
    ck_assert_int_lt(vtd_config_parse(nouser, strlen(nouser), NULL, &cfg, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "mqtt.password_file: /dev/null: the password must be"));
}
END_TEST
#else
START_TEST(test_mqtt) {
    /* Built without libmosquitto: a clear error, naming the field. */
    vtd_config *cfg = NULL;
    char err[512];
    const char *json = "{\"mqtt\":{\"host\":\"127.0.0.1\"}}";
    ck_assert_int_lt(vtd_config_parse(json, strlen(json), NULL, &cfg, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "mqtt: this vtrackd was built without MQTT support"));
}
END_TEST
#endif

START_TEST(test_bad) {
    expect_refused(&bad[_i], 0);
}
END_TEST

START_TEST(test_nul_byte) {
    /* A raw NUL byte ended the token for cJSON: "ab" was accepted (found by fuzz_config). */
    static const char token[] = "{\"listen\":\"a:1\",\n\"token\":\"ab\0cdefgh\"}";
    /* ... and after the object, cJSON took NULs for whitespace */
    static const char after[] = "{}\0\0";
    vtd_config *cfg = NULL;
    char err[512] = "";
    ck_assert_int_eq(vtd_config_parse(token, sizeof token - 1, tu_dir(), &cfg, err, sizeof err),
                     -EINVAL);
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strstr(err, "a NUL byte (line 2, byte 28)"), "%s", err);
    ck_assert_int_eq(vtd_config_parse(after, sizeof after - 1, tu_dir(), &cfg, err, sizeof err),
                     -EINVAL);
    ck_assert_msg(strstr(err, "a NUL byte (line 1, byte 2)"), "%s", err);
}
END_TEST

START_TEST(test_comments_ignored) {
    vtd_config *cfg = parse_ok("{\"#\":\"hello\",\"#listen\":{\"any\":[1]},\"listen\":\"h:1\"}");
    ck_assert_str_eq(cfg->listen[0], "h:1");
    vtd_config_free(&cfg);
}
END_TEST

START_TEST(test_mask_object) {
    /* a 6x4 palette mask with index 1 at 2 pixels and index 2 at 1 */
    uint8_t lab[4 * 6] = {0};
    lab[7] = lab[8] = 1;
    lab[20] = 2;
    char err[256];
    ck_assert_int_eq(vt_mask_write_png(tu_path("m.png"), 6, 4, lab, err, sizeof err), 0);
    vtd_config *cfg = parse_ok("{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"objects\":["
                               "{\"mask\":\"m.png\"},{\"mask\":\"m.png\",\"index\":2}]}]}");
    const vtd_object_conf *o = cfg->streams[0].objects;
    ck_assert_int_eq(o[0].shape.kind, VT_SHAPE_MASK);
    ck_assert_int_eq(o[0].shape.w, 6);
    ck_assert_int_eq(o[0].shape.h, 4);
    int n0 = 0, n1 = 0;
    for (int i = 0; i < 24; i++)
        n0 += o[0].mask[i], n1 += o[1].mask[i];
    ck_assert_int_eq(n0, 3); /* no index: every nonzero pixel */
    ck_assert_int_eq(n1, 1);
    ck_assert_int_eq(o[1].mask[20], 1);
    vtd_config_free(&cfg);
    /* an index absent from the mask is an empty object */
    char json[] = "{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"objects\":[{\"mask\":\"m.png\","
                  "\"index\":9}]}]}";
    ck_assert_int_lt(vtd_config_parse(json, strlen(json), tu_dir(), &cfg, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "streams[0].objects[0].mask: "));
    ck_assert_ptr_nonnull(strstr(err, "empty"));
}
END_TEST

START_TEST(test_cli_overrides) {
    const char *json = "{\"listen\":\"1.2.3.4:5\",\"streams\":[{\"name\":\"cam\",\"url\":"
                       "\"rtsp://a/b\",\"profile\":\"accurate\"}]}";
    ck_assert_int_eq(tu_write_file(tu_path("c.json"), json, strlen(json)), 0);
    vtd_cli cli = {.config_path = tu_path("c.json"),
                   .listen = "127.0.0.1:9",
                   .model = "lab",
                   .log_level = "debug",
                   .streams = {"cam=/tmp/v.mp4", "new=rtsp://c/d"},
                   .nstreams = 2};
    vtd_config *cfg = NULL;
    char err[512];
    ck_assert_int_eq(vtd_config_load(&cli, &cfg, err, sizeof err), 0);
    ck_assert_str_eq(cfg->listen[0], "127.0.0.1:9");
    ck_assert_str_eq(cfg->model, "lab");
    ck_assert_int_eq(cfg->log_level, VTD_LOG_DEBUG);
    ck_assert_int_eq(cfg->nstreams, 2);
    const vtd_stream_conf *cam = vtd_config_find_stream(cfg, "cam");
    ck_assert_str_eq(cam->url, "/tmp/v.mp4");                  /* URL replaced ... */
    ck_assert_int_eq(cam->profile, VT_PROTO_PROFILE_ACCURATE); /* ... the rest kept */
    ck_assert_int_eq(cam->allow_local, 1);
    const vtd_stream_conf *nw = vtd_config_find_stream(cfg, "new");
    ck_assert_str_eq(nw->url, "rtsp://c/d");
    ck_assert_int_eq(nw->pacing, VT_PROTO_PACING_LIVE);
    ck_assert_int_eq(nw->profile, VT_PROTO_PROFILE_REALTIME);
    vtd_config_free(&cfg);

    static const char *bad_streams[] = {"cam", "=x", "bad name=x", "a="};
    for (size_t i = 0; i < sizeof bad_streams / sizeof bad_streams[0]; i++) {
        vtd_cli c2 = {.streams = {bad_streams[i]}, .nstreams = 1};
        ck_assert_int_lt(vtd_config_load(&c2, &cfg, err, sizeof err), 0);
        ck_assert_ptr_nonnull(strstr(err, "--stream"));
    }
    vtd_cli c5 = {.streams = {"a=/x.mp4", "ab=/z.mp4", "a=/y.mp4"}, .nstreams = 3};
    ck_assert_int_lt(vtd_config_load(&c5, &cfg, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "stream a is given twice"));
    vtd_cli c3 = {.listen = "nope"};
    ck_assert_int_lt(vtd_config_load(&c3, &cfg, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "--listen"));
    vtd_cli c4 = {.config_path = tu_path("missing.json")};
    ck_assert_int_lt(vtd_config_load(&c4, &cfg, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "missing.json"));
}
END_TEST

/* The table's defaults, where the file says nothing (config_stream.c, config.c). */
START_TEST(test_table_defaults) {
    vtd_config *cfg = parse_ok("{\"streams\":[{\"name\":\"a\",\"url\":\"rtsp://h/x\"}],"
                               "\"http\":{},\"limits\":{\"clients\":3}}");
    ck_assert_int_eq(cfg->log_level, VTD_LOG_INFO);
    ck_assert_int_eq(cfg->def_pacing, VT_PROTO_PACING_DEFAULT);
    /* limits: the one given, and the defaults of the others */
    ck_assert_int_eq(cfg->limits.clients, 3);
    ck_assert_int_eq(cfg->limits.streams, 16);
    ck_assert_int_eq(cfg->limits.send_buffer_bytes, 0);
    ck_assert_int_eq(cfg->limits.idle_timeout_ms, 60000);
    ck_assert_int_eq(cfg->limits.line_timeout_ms, 10000);
    ck_assert_int_eq(cfg->limits.shutdown_timeout_ms, 2000);
    const vtd_stream_conf *a = &cfg->streams[0];
    ck_assert_int_eq(a->pacing, VT_PROTO_PACING_LIVE); /* resolved: a network URL */
    ck_assert_int_eq(a->tracker, VT_PROTO_TRACKER_MAST);
    ck_assert_int_eq(a->profile, VT_PROTO_PROFILE_REALTIME);
    ck_assert_int_eq(a->transport, VT_SOURCE_TRANSPORT_TCP);
    ck_assert_int_eq(a->reconnect, -1);
    ck_assert_int_eq(a->decoder_threads, 1);
    ck_assert_int_eq(a->connect_timeout_ms, 5000);
    ck_assert_int_eq(a->read_timeout_ms, 5000);
    ck_assert_int_eq(a->stall_ms, 10000);
    ck_assert_int_eq(a->backoff_min_ms, 250);
    ck_assert_int_eq(a->backoff_max_ms, 30000);
    ck_assert_int_eq(a->max_objects, 0);
    ck_assert_int_eq(a->topk, -1);
    ck_assert_int_eq(a->radius, -2);
    ck_assert(a->temperature == -1.0f);
    ck_assert_ptr_null(a->overlay_path);
    /* http: present, so on, with every default */
    ck_assert_int_eq(cfg->http.enabled, 1);
    ck_assert_int_eq(cfg->http.clients, 64);
    ck_assert_uint_eq(cfg->http.header_bytes, 8192);
    ck_assert_uint_eq(cfg->http.body_bytes, 1u << 20);
    ck_assert_int_eq(cfg->http.request_timeout_ms, 10000);
    ck_assert(cfg->http.frame_rate == 10.0);
    ck_assert_uint_eq(cfg->http.ws_queue_bytes, 1u << 20);
    vtd_config_free(&cfg);
    /* a stream's seconds are stored in milliseconds, rounded: 0.0125 s is 13 ms */
    cfg = parse_ok("{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"backoff_min_s\":0.0125,"
                   "\"overlay\":{\"path\":\"o.mp4\"},\"temperature\":0.25,\"radius\":-1}]}");
    ck_assert_int_eq(cfg->streams[0].backoff_min_ms, 13);
    ck_assert(cfg->streams[0].overlay_seconds == 20.0); /* the overlay's default */
    ck_assert(cfg->streams[0].temperature == 0.25f);
    ck_assert_int_eq(cfg->streams[0].radius, -1);
    vtd_config_free(&cfg);
}
END_TEST

/* Whole messages of the table's checks, computed by hand from the rows' bounds. */
static const bad_case table_errors[] = {
    /* an int field out of its bounds, each side */
    {"{\"limits\":{\"streams\":257}}", "limits.streams: must be an integer in [1, 256], got 257"},
    {"{\"limits\":{\"clients\":-1}}", "limits.clients: must be an integer in [1, 65536], got -1"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"radius\":-2}]}",
     "streams[0].radius: must be an integer in [-1, 256], got -2"},
    {"{\"limits\":{\"hard_queue_bytes\":4294967297}}",
     "limits.hard_queue_bytes: must be an integer in [4096, 4294967296], got 4294967297"},
    /* a wrong type */
    {"{\"http\":{\"jpeg_quality\":\"80\"}}",
     "http.jpeg_quality: must be an integer in [1, 100], got \"80\""},
    {"{\"clients\":{\"allow_add_streams\":\"yes\"}}",
     "clients.allow_add_streams: must be true or false, got \"yes\""},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"rtsp_transport\":1}]}",
     "streams[0].rtsp_transport: must be one of \"tcp\", \"udp\", got 1"},
    {"{\"limits\":{\"shutdown_timeout_s\":-0.5}}",
     "limits.shutdown_timeout_s: must be a number in [0, 86400], got -0.5"},
    {"{\"model\":[]}", "model: must be a string of 1..4096 bytes without control characters, got "
                       "an array"},
    {"{\"limits\":[]}", "limits: must be an object, got an array"},
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"overlay\":{\"path\":\"o\",\"sec\":1}}]}",
     "streams[0].overlay.sec: unknown field"},
    /* a check row where it stands: the backoff before max_objects */
    {"{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"backoff_min_s\":50,\"max_objects\":0}]}",
     "streams[0]: backoff_max_s (30.000) is below backoff_min_s (50.000)"},
    {"{\"token\":\"t\",\"token_file\":\"/nonexistent\"}",
     "token_file: give token or token_file, not both"},
};

START_TEST(test_table_errors) {
    expect_refused(&table_errors[_i], 1);
}
END_TEST

/* The flags of the root's rows read their text as the file's field would be read. */
START_TEST(test_cli_flags) {
    vtd_cli cli = {.log_level = "warning", .state_dir = "/tmp/st", .model = "lab"};
    vtd_config *cfg = NULL;
    char err[512];
    ck_assert_msg(vtd_config_load(&cli, &cfg, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(cfg->log_level, VTD_LOG_WARNING);
    ck_assert_str_eq(cfg->state_dir, "/tmp/st");
    ck_assert_str_eq(cfg->model, "lab");
    ck_assert_str_eq(cfg->listen[0], VTD_DEFAULT_LISTEN);
    vtd_config_free(&cfg);
    static const struct {
        vtd_cli cli;
        const char *want;
    } bad_flags[] = {
        {{.log_level = "loud"},
         "--log-level: must be one of \"error\", \"warning\", \"notice\", \"info\", \"debug\", "
         "got \"loud\""},
        {{.listen = "nope"},
         "--listen: must be \"HOST:PORT\" (IPv6 as \"[ADDR]:PORT\", port 1..65535), got \"nope\""},
        {{.model = ""},
         "--model: must be a string of 1..4096 bytes without control characters, got \"\""},
        {{.state_dir = "a\tb"}, "--state-dir: must be a string of 1..4096 bytes"},
    };
    for (size_t i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        ck_assert_int_eq(vtd_config_load(&bad_flags[i].cli, &cfg, err, sizeof err), -EINVAL);
        ck_assert_ptr_null(cfg);
        ck_assert_msg(strncmp(err, bad_flags[i].want, strlen(bad_flags[i].want)) == 0,
                      "got:  %s\nwant: %s", err, bad_flags[i].want);
    }
}
END_TEST

/* The shipped example must load, and its documented example stream must be valid too. */
START_TEST(test_shipped_example) {
    char path[1024];
    snprintf(path, sizeof path, "%s/systemd/vtrackd.json", getenv("VT_SOURCE_ROOT"));
    vtd_cli cli = {.config_path = path};
    vtd_config *cfg = NULL;
    char err[512];
    ck_assert_msg(vtd_config_load(&cli, &cfg, err, sizeof err) == 0, "%s", err);
    vtd_config_free(&cfg);

    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *root = cJSON_Parse(text);
    ck_assert_ptr_nonnull(root);
    cJSON *ex = cJSON_DetachItemFromObjectCaseSensitive(root, "#example_stream");
    ck_assert_ptr_nonnull(ex);
    cJSON_ReplaceItemInObjectCaseSensitive(root, "streams", cJSON_CreateArray());
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(root, "streams"), ex);
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    /* its mask file, relative to the config's folder */
    uint8_t lab[16] = {0, 1, 1, 0};
    ck_assert_int_eq(mkdir(tu_path("masks"), 0755) == 0 || access(tu_path("masks"), F_OK) == 0, 1);
    ck_assert_int_eq(vt_mask_write_png(tu_path("masks/pallet.png"), 4, 4, lab, err, sizeof err), 0);
    ck_assert_msg(vtd_config_parse(out, strlen(out), tu_dir(), &cfg, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_int_eq(cfg->nstreams, 1);
    ck_assert_int_eq(cfg->streams[0].nobjects, 3);
    ck_assert_ptr_nonnull(cfg->streams[0].overlay_path);
    ck_assert_int_eq(cfg->streams[0].adapt.enabled, 1);
    ck_assert_int_eq(cfg->streams[0].adapt.hours_from, 1);
    ck_assert_int_eq(cfg->streams[0].adapt.hours_to, 5);
    free(out);
    vtd_config_free(&cfg);
#if VT_HAVE_MQTT
    /* and its MQTT example, its password a credential */
    root = cJSON_Parse(text);
    ex = cJSON_DetachItemFromObjectCaseSensitive(root, "#example_mqtt");
    ck_assert_ptr_nonnull(ex);
    cJSON_AddItemToObject(root, "mqtt", ex);
    out = cJSON_Print(root);
    cJSON_Delete(root);
    ck_assert_int_eq(tu_write_file(tu_path("mqtt-password"), "pw\n", 3), 0);
    setenv("CREDENTIALS_DIRECTORY", tu_dir(), 1);
    ck_assert_msg(vtd_config_parse(out, strlen(out), tu_dir(), &cfg, err, sizeof err) == 0, "%s",
                  err);
    unsetenv("CREDENTIALS_DIRECTORY");
    ck_assert_str_eq(cfg->mqtt.node, "dock");
    ck_assert_str_eq(cfg->mqtt.password, "pw");
    free(out);
    vtd_config_free(&cfg);
#endif
}
END_TEST

START_TEST(test_hostport) {
    char host[64];
    int port;
    ck_assert_int_eq(vtd_parse_hostport("127.0.0.1:7878", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 7878);
    ck_assert_int_eq(vtd_parse_hostport("[::1]:1", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(vtd_parse_hostport("localhost:65535", host, sizeof host, &port), 0);
    static const char *badv[] = {"",     ":1",    "h:",     "h:0", "h:65536",
                                 "h:1x", "::1:5", "[::1]5", "[]:5"};
    for (size_t i = 0; i < sizeof badv / sizeof badv[0]; i++)
        ck_assert_msg(vtd_parse_hostport(badv[i], host, sizeof host, &port) < 0, "%s", badv[i]);
}
END_TEST

START_TEST(test_stream_params) {
    vt_model *m = NULL;
    char err[256];
    ck_assert_int_eq(vt_model_new("lab", 0, &m, err, sizeof err), 0);
    vtd_config *cfg = parse_ok("{\"streams\":[{\"name\":\"a\",\"url\":\"/x.mp4\",\"topk\":3,"
                               "\"radius\":4,\"temperature\":0.5,\"max_objects\":7},"
                               "{\"name\":\"b\",\"url\":\"rtsp://h/s\",\"pacing\":\"camera\"},"
                               "{\"name\":\"c\",\"url\":\"/x.mp4\",\"pacing\":\"lossless\"}]}");
    vt_stream_config sc;
    ck_assert_int_eq(vtd_stream_conf_to_stream(&cfg->streams[0], m, &sc, err, sizeof err), 0);
    ck_assert_int_eq(sc.params.topk, 3);
    ck_assert_int_eq(sc.params.radius_short, 4);
    ck_assert_int_eq(sc.params.max_objects, 7);
    ck_assert(sc.params.temperature > 0.49f && sc.params.temperature < 0.51f);
    ck_assert_int_eq(sc.source.pacing, VT_SOURCE_PACING_NATIVE_LOOP); /* a file as a camera */
    ck_assert_int_eq(sc.mode, VT_STREAM_LIVE);
    ck_assert_int_eq(sc.source.allow_local, 1);
    ck_assert_int_eq(vtd_stream_conf_to_stream(&cfg->streams[1], m, &sc, err, sizeof err), 0);
    ck_assert_int_eq(sc.source.pacing, VT_SOURCE_PACING_FAST); /* a real camera paces itself */
    ck_assert_int_eq(vtd_stream_conf_to_stream(&cfg->streams[2], m, &sc, err, sizeof err), 0);
    ck_assert_int_eq(sc.mode, VT_STREAM_LOSSLESS);
    vtd_config_free(&cfg);
    vt_model_free(&m);
}
END_TEST

/* Every field of an "adapt" object as one line (the real numbers to 6 significant digits: the
 * values are the configuration's, or its own defaults, none near a rounding edge). */
static void assert_adapt(const vtd_adapt_conf *a, const char *want) {
    char got[320];
    snprintf(got, sizeof got,
             "on %d mb %g every %lld clip %d side %d min %d hold %d interval %lld steps %d "
             "batch %d lr %g load %g hours %d-%d margin %g",
             a->enabled, a->reservoir_mb, (long long)a->every_ms, a->clip, a->short_side,
             a->min_samples, a->hold, (long long)a->interval_ms, a->steps, a->batch, a->lr,
             a->max_load, a->hours_from, a->hours_to, a->margin);
    ck_assert_str_eq(got, want);
}

/* "adapt": {} turns per-camera adaptation on with its defaults; fields override them. */
START_TEST(test_adapt) {
    vtd_config *cfg = parse_ok("{\"streams\":[{\"name\":\"a\",\"url\":\"x\",\"adapt\":{}},"
                               "{\"name\":\"b\",\"url\":\"x\",\"adapt\":{\"every_s\":0.5,"
                               "\"steps\":7,\"hours\":\"22-04\",\"margin\":-0.5}}]}");
    const vtd_adapt_conf *a = &cfg->streams[0].adapt, *b = &cfg->streams[1].adapt;
    assert_adapt(a, "on 1 mb 64 every 60000 clip 3 side 256 min 40 hold 8 interval 3600000 "
                    "steps 50 batch 4 lr 0.0001 load 0.5 hours -1--1 margin 0");
    assert_adapt(b, "on 1 mb 64 every 500 clip 3 side 256 min 40 hold 8 interval 3600000 "
                    "steps 7 batch 4 lr 0.0001 load 0.5 hours 22-4 margin -0.5");
    vtd_stream_conf copy;
    ck_assert_int_eq(vtd_stream_conf_copy(&copy, &cfg->streams[1]), 0);
    ck_assert_int_eq(copy.adapt.steps, 7);
    vtd_stream_conf_clear(&copy);
    vtd_config_free(&cfg);
}
END_TEST

int main(void) {
    Suite *s = suite_create("daemon-config");
    TCase *tc =
        tm_add_case(s, "config", 30, test_defaults, test_full, test_nul_byte, test_comments_ignored,
                    test_mask_object, test_cli_overrides, test_table_defaults, test_cli_flags,
                    test_shipped_example, test_hostport, test_stream_params, test_mqtt, test_http,
                    test_adapt, NULL);
    tcase_add_loop_test(tc, test_bad, 0, (int)TM_LEN(bad));
    tcase_add_loop_test(tc, test_table_errors, 0, (int)TM_LEN(table_errors));
    tcase_add_loop_test(tc, test_bad_http, 0, (int)TM_LEN(bad_http));
#if VT_HAVE_MQTT
    tcase_add_loop_test(tc, test_bad_mqtt, 0, (int)TM_LEN(bad_mqtt));
#endif
    int status = tm_run(s);
    tu_cleanup();
    return status;
}
