/*
 * mqtt.h - the MQTT sink: the events subscribers see, published to an MQTT broker (topics and
 * payloads: proto/PROTOCOL.md, "MQTT"; configuration: the "mqtt" object of vtrackd.json).
 *
 * Loop thread only, no thread of its own and no blocking call: libmosquitto is driven through
 * its external-loop interface (its socket in a uv_poll_t, mosquitto_loop_read/write on
 * readiness, mosquitto_loop_misc on a timer), connecting is non-blocking and a host name is
 * resolved with uv_getaddrinfo first. Each connection attempt gets a fresh libmosquitto client,
 * destroyed with everything it still held when the connection ends, and at most
 * `queue_messages` messages are with the library at once: while the broker is away, or when it
 * cannot keep up, messages are dropped and counted (`stats`), never queued without bound. The
 * sink keeps the streams' and objects' current state itself and sends it (retained) again on
 * every new connection. Reconnection backs off from backoff_min_s to backoff_max_s.
 *
 * Built without libmosquitto, the configuration rejects "mqtt" and these do nothing.
 */
#ifndef VTD_MQTT_H
#define VTD_MQTT_H

#include <uv.h>

#include "config.h"
#include "hub.h"

typedef struct vtd_mqtt vtd_mqtt;

/* Start the sink on `loop` with a copy of `conf` (enabled); it connects in the background.
 * 0 or -ENOMEM. */
int vtd_mqtt_start(uv_loop_t *loop, const vtd_mqtt_conf *conf, vtd_mqtt **out);

/* One event of `stream` as dispatched to subscribers: `plain` is the message tail without
 * masks, `masks` the one with masks (frame events only, else NULL). Borrowed. */
void vtd_mqtt_event(vtd_mqtt *m, const char *stream, const vtd_msg *plain, const vtd_msg *masks);

/* The stream was removed: forget its state (its retained `ended` stays on the broker). */
void vtd_mqtt_forget_stream(vtd_mqtt *m, const char *stream);

/* A reload changed the "mqtt" section: say `offline` and disconnect, then connect again with a
 * copy of `conf`, keeping the streams' and objects' state. 0 or -ENOMEM (old settings kept). */
int vtd_mqtt_reconfigure(vtd_mqtt *m, const vtd_mqtt_conf *conf);

/* Publish `offline`, disconnect cleanly and release everything once libuv has closed the
 * handles (the loop must run on). Sets *m to NULL; accepts NULL. */
void vtd_mqtt_stop(vtd_mqtt **m);

/* Counters for `stats` (the error string is borrowed until the next loop iteration). */
void vtd_mqtt_get_stats(const vtd_mqtt *m, vt_proto_mqtt_stats *st);

#endif
