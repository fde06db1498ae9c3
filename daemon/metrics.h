/*
 * metrics.h - vtrackd's figures in Prometheus' text exposition format (version 0.0.4), for
 * GET /metrics (http.c; the series: docs/HTTP.md). Loop thread; reads the stream snapshots, the
 * connections, the sinks' counters and /proc/self.
 */
#ifndef VTD_METRICS_H
#define VTD_METRICS_H

#include "vt_proto.h"

typedef struct vtd vtd;

/* Append the whole exposition to b. 0 or -ENOMEM. */
int vtd_metrics_write(vtd *d, vt_proto_buf *b);

#endif
