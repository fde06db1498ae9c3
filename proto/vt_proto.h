/* vt_proto.h - vtrack's wire protocol: NDJSON framing, COCO RLE masks, commands and events. */
#ifndef VT_PROTO_H
#define VT_PROTO_H

/* Protocol version announced in `hello`. */
#define VT_PROTO_VERSION 1

#endif
