/*
 * vt_proto.h - vtrack's wire protocol: NDJSON framing, COCO RLE masks, commands and events.
 *
 * proto/ is pure data transformation: bytes in, structs out; structs in, bytes out. It knows
 * nothing of sockets, event loops, FFmpeg or models, and keeps no global state, so its functions
 * may be called from any thread on distinct objects. One caveat: cJSON's parser records its last
 * error position in a global, so concurrent vt_proto_cmd_parse() calls race on that (unused)
 * variable; the daemon parses on its loop thread only. proto/PROTOCOL.md is the user-facing spec
 * of what these functions read and write.
 *
 * Errors: fallible functions return 0 (or a documented positive value) or a negative errno value:
 * -EINVAL (malformed input), -ENOSPC (a caller-provided buffer is too small), -EMSGSIZE (over a
 * limit), -EILSEQ (invalid UTF-8), -ENOMEM. Functions that take `char *err, size_t errlen` write a
 * one-line reason there on failure (`err` may be NULL). The command parser reports through a
 * vt_proto_err, which maps directly onto the protocol's `error` message.
 *
 * Server messages and the shared-bytes design
 * -------------------------------------------
 * Every server message is one line `{"seq":N,"type":...}` where `seq` counts the messages sent on
 * that connection (0 for the greeting, then +1 per line, no gaps). A frame event goes to many
 * subscribers but each needs its own seq, so every writer below produces the message's TAIL: the
 * line without its opening `{"seq":N,`, i.e. `"type":"frame",...}\n`. The connection writer sends
 * vt_proto_seq_prefix(seq) followed by the tail (two iovecs, e.g. one uv_write with two uv_buf_t),
 * so the daemon serialises a frame event once per variant (with masks / without masks) and shares
 * the tail bytes, read-only, across all subscribers of that variant.
 *
 * Per-frame cost: vt_proto_write_frame() writes directly into a reusable vt_proto_buf (no cJSON
 * tree, no allocation once the buffer has grown to its working size); the masks are COCO RLE
 * strings that the tracker thread already produced with vt_rle_encode_string() into its own
 * reusable buffers. Every other message is rare and goes through a cJSON tree and cJSON's printer.
 */
#ifndef VT_PROTO_H
#define VT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "vt_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Protocol version announced in the server's `hello`; see PROTOCOL.md "Versions". */
#define VT_PROTO_VERSION 1

/* ---------------------------------------------------------------------------------------------
 * Limits (all validated by the parser; PROTOCOL.md lists them for clients)
 * ------------------------------------------------------------------------------------------- */

#define VT_PROTO_LINE_MAX       65536 /* default longest command line, bytes without \r\n */
#define VT_PROTO_NAME_MAX       64    /* stream name: 1..64 of [A-Za-z0-9_.-], first alphanumeric */
#define VT_PROTO_LABEL_MAX      64    /* object label: 1..64 bytes of UTF-8, no control chars */
#define VT_PROTO_TOKEN_MAX      256   /* hello auth token, bytes */
#define VT_PROTO_URL_MAX        2048  /* add_stream url, bytes */
#define VT_PROTO_OPTIONS_MAX    32    /* add_stream options entries */
#define VT_PROTO_OPT_KEY_MAX    64    /* option name: 1..64 of [A-Za-z0-9_-] */
#define VT_PROTO_OPT_VALUE_MAX  1024  /* option value, bytes */
#define VT_PROTO_FILTER_MAX     64    /* stream names in one subscribe/unsubscribe */
#define VT_PROTO_OBJECTS_MAX    64    /* objects per stream, hence per frame event */
#define VT_PROTO_POLYGON_MAX    1024  /* polygon vertices (at least 3) */
#define VT_PROTO_OBJECT_ID_MAX  2147483647         /* object ids are 1..2^31-1 */
#define VT_PROTO_FRAME_MAX      9007199254740991LL /* 2^53-1: frame numbers exact in a double */
#define VT_PROTO_COORD_MAX      1e6 /* |box and polygon coordinates|, source pixels */
#define VT_PROTO_ID_MAX         128 /* request id's JSON text, bytes (an integer has <= 20 digits) */
#define VT_PROTO_FIELD_MAX      96  /* vt_proto_err.field */
#define VT_PROTO_MESSAGE_MAX    256 /* vt_proto_err.message */
#define VT_PROTO_SEQ_PREFIX_MAX 32  /* `{"seq":18446744073709551615,` + NUL fits */

/* ---------------------------------------------------------------------------------------------
 * Growable output buffer
 *
 * A plain value type embedded in the caller's structs (like libuv's uv_buf_t), so it is released
 * with vt_proto_buf_free(&b) rather than through a T **. Writers append to it; reset `len` to 0 to
 * reuse the memory: after warm-up, writing allocates nothing. `data` is NUL-terminated after
 * every successful writer (the NUL is not counted in `len`).
 * ------------------------------------------------------------------------------------------- */

typedef struct vt_proto_buf {
    char *data; /* owned; NULL until the first write */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
} vt_proto_buf;

#define VT_PROTO_BUF_INIT                                                                          \
    { NULL, 0, 0 }

/* Ensure room for `extra` more bytes plus a NUL. Returns 0 or -ENOMEM (buffer unchanged). */
int vt_proto_buf_reserve(vt_proto_buf *b, size_t extra);

/* Release the memory and reset *b to empty; accepts an empty buffer. */
void vt_proto_buf_free(vt_proto_buf *b);

/* ---------------------------------------------------------------------------------------------
 * NDJSON framing
 * ------------------------------------------------------------------------------------------- */

typedef struct vt_ndjson_reader vt_ndjson_reader;

/*
 * Create an incremental line reader. `max_line` is the longest accepted line in bytes, not
 * counting its "\n" or "\r\n" (0 selects VT_PROTO_LINE_MAX). The reader buffers at most
 * max_line + 1 bytes of one partial line, allocated as it grows. *out owns the reader; free it
 * with vt_ndjson_reader_free(). Returns 0, -EINVAL or -ENOMEM.
 */
int vt_ndjson_reader_new(size_t max_line, vt_ndjson_reader **out);

/* Free a reader and set *r to NULL; accepts NULL. Lines it returned become invalid. */
void vt_ndjson_reader_free(vt_ndjson_reader **r);

/*
 * Take the next complete line out of a chunk of input. The chunk is (*data, *len); both advance
 * past what was consumed, so call repeatedly on the same chunk until it returns 0:
 *
 *     while ((rc = vt_ndjson_next(r, &p, &n, &line, &line_len)) != 0)
 *         rc > 0 ? handle(line, line_len) : report(rc);
 *
 * Returns 1 with a line: without its terminator (a "\r" before the "\n" is removed), never blank
 * (lines of only spaces/tabs are skipped), valid UTF-8. `line` points into the chunk or into the
 * reader, and is valid until the next call on this reader (and, for the chunk, while the caller
 * keeps the chunk alive); it is not NUL-terminated.
 * Returns 0 when the chunk is used up; an unterminated tail is kept for the next chunk.
 * Returns -EMSGSIZE as soon as the current line exceeds max_line, once per such line, without
 * buffering it: the reader then discards input up to the next "\n" and resynchronises there.
 * Returns -EILSEQ when a complete line is not valid UTF-8; `line` is set to it (for logging) and
 * reading may go on with the next line. Returns -ENOMEM if the buffer could not grow (the line is
 * dropped).
 */
int vt_ndjson_next(vt_ndjson_reader *r, const char **data, size_t *len, const char **line,
                   size_t *line_len);

/*
 * At end of input: return the unterminated last line, if any, with the same rules and return
 * values as vt_ndjson_next() (0 when there is none). The reader is empty afterwards.
 */
int vt_ndjson_flush(vt_ndjson_reader *r, const char **line, size_t *line_len);

/* Bytes of a partial line currently held (for tests and diagnostics). */
size_t vt_ndjson_pending(const vt_ndjson_reader *r);

/*
 * Append `obj` to `b` as one unformatted line: cJSON's printer writing straight into the buffer
 * (cJSON_PrintPreallocated, growing the buffer when it is too small), then "\n". `obj` is only
 * read (cJSON's printer takes a non-const pointer). Returns 0, -ENOMEM or -EMSGSIZE (over 1 GiB);
 * on failure `b` is unchanged.
 */
int vt_ndjson_write(vt_proto_buf *b, cJSON *obj);

/* A short description of a JSON value for error messages: "\"fast\"" (long strings cut with
 * "...", control and broken bytes shown as '?'), "1.5", "true", "null", "an array", "an
 * object". Returns buf. Used by the command parser and by vtrackd's config checks. */
const char *vt_proto_describe(const cJSON *it, char *buf, size_t cap);

/* vt_utf8_check(s, n, bad_at), the UTF-8 validator, is base/'s (vt_base.h, included above). */

/* Free text as the protocol takes it (labels, URLs, tokens, option values): no control
 * characters (-EINVAL) and valid UTF-8 (-EILSEQ); 0 when s[0..n) is both. */
int vt_proto_text_check(const char *s, size_t n);

/* ---------------------------------------------------------------------------------------------
 * COCO RLE masks (pycocotools semantics)
 *
 * A mask of h rows and w columns is stored by the caller row-major (mask[y * stride + x], nonzero
 * = object). Its RLE lists run lengths in COLUMN-major order (down each column, then the next),
 * alternating background/object and starting with a background run that may be 0. The string
 * form is pycocotools' rleToString: each count (for index i > 2, its difference from count i-2)
 * in signed 5-bit groups, least significant first, one char per group ('0' + group, bit 0x20 =
 * more groups follow), so every char is in '0'..'o' (48..111); note '\\' (92) occurs and is
 * escaped in JSON. Valid counts sum to exactly h*w; zero-length runs are accepted on input.
 * ------------------------------------------------------------------------------------------- */

#define VT_RLE_MAX_DIM 16384 /* h and w are 1..VT_RLE_MAX_DIM */

/* Capacity, in counts, that always suffices for vt_rle_encode(): h*w + 1. 0 for a bad size. */
size_t vt_rle_counts_max(int h, int w);

/*
 * Capacity, in chars including the NUL, that always suffices for vt_rle_encode_string() of any
 * h x w mask: h*w + 2*(h*w/16) + 2 (2 332 802 for 1920x1080; proof in rle.c). Real object masks
 * need a few KiB, so callers may also start small and grow on -ENOSPC. 0 for a bad size.
 */
size_t vt_rle_string_max(int h, int w);

/*
 * Encode a mask to counts in the caller's array (`cap` entries). Allocates nothing; *n receives
 * the number of counts. Returns 0, -EINVAL (bad size or NULL) or -ENOSPC (cap too small).
 */
int vt_rle_encode(const uint8_t *mask, int h, int w, size_t stride, uint32_t *counts, size_t cap,
                  size_t *n);

/*
 * Encode a mask straight to the compressed string, NUL-terminated, in the caller's buffer of
 * `cap` chars; *len receives the length without the NUL. Allocates nothing and keeps no counts
 * array: this is the per-object, per-frame call. Returns 0, -EINVAL or -ENOSPC.
 */
int vt_rle_encode_string(const uint8_t *mask, int h, int w, size_t stride, char *s, size_t cap,
                         size_t *len);

/* Counts to the compressed string (as vt_rle_encode_string). Returns 0, -EINVAL or -ENOSPC. */
int vt_rle_counts_to_string(const uint32_t *counts, size_t n, char *s, size_t cap, size_t *len);

/*
 * Parse the compressed string s[0..len) of an h x w mask into counts (`cap` entries; len + 1
 * always suffices since every count takes at least one char). Rejects, with -EINVAL and a reason
 * in `err`: a char outside '0'..'o', a count truncated by the end of the string, a count wider
 * than 35 bits, a negative run, runs that overrun h*w or that stop short of it. Never reads past
 * len. Returns 0, -EINVAL or -ENOSPC.
 */
int vt_rle_counts_from_string(const char *s, size_t len, int h, int w, uint32_t *counts, size_t cap,
                              size_t *n, char *err, size_t errlen);

/* Check counts of an h x w mask: they must sum to exactly h*w. Returns 0 or -EINVAL (+ err). */
int vt_rle_check(const uint32_t *counts, size_t n, int h, int w, char *err, size_t errlen);

/* Decode valid counts (see vt_rle_check) into a row-major 0/1 mask of `stride` bytes per row.
 * Returns 0 or -EINVAL (counts that do not sum to h*w; the mask is then unspecified). */
int vt_rle_decode(const uint32_t *counts, size_t n, int h, int w, uint8_t *mask, size_t stride);

/* Decode a compressed string into a row-major 0/1 mask without a counts array. Returns 0 or
 * -EINVAL (+ err, as vt_rle_counts_from_string; the mask is then unspecified). */
int vt_rle_decode_string(const char *s, size_t len, int h, int w, uint8_t *mask, size_t stride,
                         char *err, size_t errlen);

/* Object pixels of counts: the sum of the odd-indexed runs. */
uint64_t vt_rle_area(const uint32_t *counts, size_t n);

/*
 * Bounding box [x, y, w, h] of valid counts of an h x w mask, as pycocotools' rleToBbox (a run
 * that spans columns covers every row). An empty mask gives [0,0,0,0]. Zero-length object runs
 * add nothing (pycocotools would count their position; its own encoder never emits them).
 */
void vt_rle_bbox(const uint32_t *counts, size_t n, int h, int w, int bbox[4]);

/*
 * Validate a compressed string and measure it without decoding or a counts array: object area,
 * bounding box and the number of counts (any of the outputs may be NULL). Same rejections and
 * return values as vt_rle_counts_from_string().
 */
int vt_rle_string_measure(const char *s, size_t len, int h, int w, uint64_t *area, int bbox[4],
                          size_t *ncounts, char *err, size_t errlen);

/* ---------------------------------------------------------------------------------------------
 * Enumerations shared by commands and events (names are the wire strings)
 * ------------------------------------------------------------------------------------------- */

typedef enum vt_proto_op {
    VT_PROTO_OP_NONE = 0, /* not known (e.g. the line was not JSON) */
    VT_PROTO_OP_HELLO,
    VT_PROTO_OP_SUBSCRIBE,
    VT_PROTO_OP_UNSUBSCRIBE,
    VT_PROTO_OP_LIST,
    VT_PROTO_OP_ADD_STREAM,
    VT_PROTO_OP_REMOVE_STREAM,
    VT_PROTO_OP_TRACK,
    VT_PROTO_OP_UNTRACK,
    VT_PROTO_OP_STATS,
    VT_PROTO_OP_FORGET,
    VT_PROTO_OP_RESET_MODEL,
    VT_PROTO_OP_COUNT /* not an op: the number of them (names.c checks its table) */
} vt_proto_op;

/* Error codes of the `error` message. */
typedef enum vt_proto_code {
    VT_PROTO_CODE_OK = 0,
    VT_PROTO_CODE_BAD_JSON,      /* not a JSON text, or trailing bytes after it */
    VT_PROTO_CODE_BAD_UTF8,      /* the line is not valid UTF-8 */
    VT_PROTO_CODE_LINE_TOO_LONG, /* the line exceeds the server's limit; connection closed */
    VT_PROTO_CODE_BAD_REQUEST,   /* valid JSON, invalid command: `field` names the culprit */
    VT_PROTO_CODE_BAD_MASK,      /* track: malformed RLE, empty mask, or size != frame size */
    VT_PROTO_CODE_BAD_VERSION,   /* hello: protocol version the server does not speak */
    VT_PROTO_CODE_UNAUTHORIZED,  /* auth required: no or wrong token */
    VT_PROTO_CODE_FORBIDDEN,     /* the configuration does not allow this op */
    VT_PROTO_CODE_NOT_FOUND,     /* no such stream or object */
    VT_PROTO_CODE_CONFLICT,      /* the stream or object id already exists */
    VT_PROTO_CODE_LIMIT,         /* too many streams, objects or connections */
    VT_PROTO_CODE_INTERNAL,      /* the server failed (out of memory, ...) */
    VT_PROTO_CODE_COUNT          /* not a code: the number of them */
} vt_proto_code;

typedef enum vt_proto_pacing {
    VT_PROTO_PACING_DEFAULT = 0, /* not given: the server's configured default */
    VT_PROTO_PACING_LIVE,        /* track the newest frame, skip when busy */
    VT_PROTO_PACING_CAMERA,      /* file read at its native rate, then as live */
    VT_PROTO_PACING_LOSSLESS,    /* every frame, as fast as the tracker goes */
    VT_PROTO_PACING_COUNT        /* not a pacing: the number of them */
} vt_proto_pacing;

typedef enum vt_proto_tracker {
    VT_PROTO_TRACKER_DEFAULT = 0,
    VT_PROTO_TRACKER_MAST,
    VT_PROTO_TRACKER_COLORIZE,
    VT_PROTO_TRACKER_COUNT /* not a tracker: the number of them */
} vt_proto_tracker;

typedef enum vt_proto_profile {
    VT_PROTO_PROFILE_DEFAULT = 0,
    VT_PROTO_PROFILE_ACCURATE,
    VT_PROTO_PROFILE_REALTIME,
    VT_PROTO_PROFILE_COUNT /* not a profile: the number of them */
} vt_proto_profile;

/* An object's state in a frame event (PROTOCOL.md, "frame", says what each one means). */
typedef enum vt_proto_obj_state {
    VT_PROTO_OBJ_TRACKING = 0,
    VT_PROTO_OBJ_LOST,
    VT_PROTO_OBJ_RECOVERED,  /* found again in this frame after being occluded or lost */
    VT_PROTO_OBJ_OCCLUDED,   /* hidden: its bbox is the predicted box, its mask may be empty */
    VT_PROTO_OBJ_PENDING,    /* `list` only: given for a frame that has not come yet */
    VT_PROTO_OBJ_STATE_COUNT /* not a state: the number of them (names.c checks its table) */
} vt_proto_obj_state;

/* Object lifecycle event kinds. */
typedef enum vt_proto_lifecycle {
    VT_PROTO_LIFECYCLE_ADDED = 0,
    VT_PROTO_LIFECYCLE_LOST,
    VT_PROTO_LIFECYCLE_RECOVERED,
    VT_PROTO_LIFECYCLE_REMOVED,
    VT_PROTO_LIFECYCLE_OCCLUDED,
    VT_PROTO_LIFECYCLE_COUNT /* not an event: the number of them (names.c checks its table) */
} vt_proto_lifecycle;

typedef enum vt_proto_stream_state {
    VT_PROTO_STREAM_CONNECTING = 0,
    VT_PROTO_STREAM_UP,
    VT_PROTO_STREAM_STALLED,
    VT_PROTO_STREAM_RECONNECTING,
    VT_PROTO_STREAM_ENDED,
    VT_PROTO_STREAM_STATE_COUNT /* not a state: the number of them */
} vt_proto_stream_state;

/* Wire names of the enumerations ("subscribe", "bad_request", "live", ...); static storage.
 * An out-of-range value gives "?" (an op, pacing, tracker or profile of 0 gives "" ). */
const char *vt_proto_op_name(vt_proto_op op);
const char *vt_proto_code_name(vt_proto_code code);
const char *vt_proto_pacing_name(vt_proto_pacing p);
const char *vt_proto_tracker_name(vt_proto_tracker t);
const char *vt_proto_profile_name(vt_proto_profile p);
const char *vt_proto_obj_state_name(vt_proto_obj_state s);
const char *vt_proto_lifecycle_name(vt_proto_lifecycle l);
const char *vt_proto_stream_state_name(vt_proto_stream_state s);

/* The naming rules, for names that reach the daemon other than in a command (its configuration
 * file and command line). s[0..n) need not be NUL-terminated; 1 when valid, else 0.
 * A stream name: 1..VT_PROTO_NAME_MAX of [A-Za-z0-9_.-], the first a letter or digit.
 * An FFmpeg option name (add_stream `options`): 1..VT_PROTO_OPT_KEY_MAX of [A-Za-z0-9_-]. */
int vt_proto_stream_name_valid(const char *s, size_t n);
int vt_proto_option_key_valid(const char *s, size_t n);

/* ---------------------------------------------------------------------------------------------
 * Request ids and errors
 * ------------------------------------------------------------------------------------------- */

/*
 * A request id as the client wrote it: the exact JSON text of the `id` value (an integer token of
 * at most 20 digits without fraction or exponent, or a string), at most VT_PROTO_ID_MAX bytes.
 * Replies and errors paste it back byte for byte, so ids beyond 2^53 (or any uint64) survive even
 * though cJSON parses numbers to double. json[0] == '\0' means "no id". Writers paste `json` into
 * their output unchecked: fill it only from the parser (or with valid JSON text).
 */
typedef struct vt_proto_id {
    char json[VT_PROTO_ID_MAX + 1];
} vt_proto_id;

/* An error to send back: filled by the parser, or by the daemon with vt_proto_err_set(). */
typedef struct vt_proto_err {
    vt_proto_code code;
    vt_proto_op op;                     /* the command's op when known */
    vt_proto_id id;                     /* the command's id when known */
    char field[VT_PROTO_FIELD_MAX];     /* offending field path ("mask.size[1]"), or "" */
    char message[VT_PROTO_MESSAGE_MAX]; /* one human sentence naming the field and value */
} vt_proto_err;

/* Set code, field (may be NULL) and a printf-style message, keeping op and id; truncates
 * at a UTF-8 boundary. Returns -EINVAL, for `return vt_proto_err_set(...)` in error paths. */
int vt_proto_err_set(vt_proto_err *e, vt_proto_code code, const char *field, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/*
 * Fill `e` for a framing failure of vt_ndjson_next()/vt_ndjson_flush(): -EMSGSIZE gives
 * line_too_long (naming max_line), -EILSEQ gives bad_utf8 (with the offset of the first bad byte
 * of line[0..line_len)), anything else gives internal. Returns -EINVAL.
 */
int vt_proto_err_framing(vt_proto_err *e, int rc, const char *line, size_t line_len,
                         size_t max_line);

/* ---------------------------------------------------------------------------------------------
 * Commands (client -> server)
 * ------------------------------------------------------------------------------------------- */

typedef enum vt_proto_shape {
    VT_PROTO_SHAPE_MASK = 1,
    VT_PROTO_SHAPE_BOX,
    VT_PROTO_SHAPE_POLYGON,
} vt_proto_shape;

typedef struct vt_proto_kv {
    const char *key, *value;
} vt_proto_kv;

/*
 * One parsed and fully validated command. Every pointer borrows from the command itself and lives
 * until vt_proto_cmd_free(). Strings are NUL-terminated valid UTF-8 without U+0000.
 */
typedef struct vt_proto_cmd {
    vt_proto_op op;
    vt_proto_id id;
    union {
        struct {
            const char *token; /* NULL when absent */
            int protocol;      /* client's protocol version, 0 when absent */
        } hello;
        struct {                        /* subscribe and unsubscribe */
            const char *const *streams; /* NULL = all streams */
            int nstreams;               /* 1..VT_PROTO_FILTER_MAX, or 0 for all */
            int masks;                  /* subscribe: 1 = frame events carry masks (default 0) */
        } subscribe;
        struct {
            const char *stream, *url;
            const vt_proto_kv *options; /* FFmpeg options, in the order sent */
            int noptions;
            vt_proto_pacing pacing;
            vt_proto_tracker tracker;
            vt_proto_profile profile;
        } add_stream;
        struct { /* reset_model */
            const char *stream;
        } reset_model;
        struct { /* remove_stream */
            const char *stream;
        } remove_stream;
        struct {
            const char *stream;
            uint32_t object;   /* 0 = let the server assign one */
            const char *label; /* NULL when absent */
            int64_t frame;     /* frame number the shape refers to, -1 = the next frame */
            vt_proto_shape shape;
            struct { /* SHAPE_MASK: counts of an h x w mask, checked to sum to h*w, area > 0 */
                int h, w;
                const uint32_t *counts;
                size_t ncounts;
            } mask;
            double box[4]; /* SHAPE_BOX: x, y, w, h in source pixels, w and h > 0 */
            struct {       /* SHAPE_POLYGON: npoints (3..VT_PROTO_POLYGON_MAX) of x, y */
                const double (*points)[2];
                int npoints;
            } polygon;
        } track;
        struct { /* untrack */
            const char *stream;
            uint32_t object;
        } untrack;
    };
    /* private */
    cJSON *json_;
    void *mem_;
} vt_proto_cmd;

/*
 * Parse and validate one command line (line[0..len), no terminator needed). On success *out owns
 * the command (free with vt_proto_cmd_free()) and `err->code` is VT_PROTO_CODE_OK. On failure
 * *out is NULL, `err` holds the code, field, message, and the op and id when they were readable,
 * and the return value is -EINVAL (or -ENOMEM, code `internal`). `err` must not be NULL.
 * See PROTOCOL.md for every rule.
 */
int vt_proto_cmd_parse(const char *line, size_t len, vt_proto_cmd **out, vt_proto_err *err);

/* Free a command and set *cmd to NULL; accepts NULL. */
void vt_proto_cmd_free(vt_proto_cmd **cmd);

/* ---------------------------------------------------------------------------------------------
 * Server messages. Every writer appends the message's tail (see the top of this file) to `b`,
 * returns 0, -EINVAL (an input out of its documented range) or -ENOMEM, and leaves `b` unchanged
 * on failure. Input structs and strings are only read; strings must be valid UTF-8.
 * ------------------------------------------------------------------------------------------- */

/*
 * Write `{"seq":<seq>,` into out[VT_PROTO_SEQ_PREFIX_MAX] (NUL-terminated) and return its length.
 * prefix + tail is the complete line.
 */
size_t vt_proto_seq_prefix(char *out, uint64_t seq);

/* The greeting, sent first on every connection (seq 0). */
typedef struct vt_proto_hello {
    const char *server; /* e.g. "vtrackd 0.1.0" */
    int auth;           /* 1 if commands need a prior hello with the right token */
    size_t max_line;    /* the server's command line limit */
} vt_proto_hello;

int vt_proto_write_hello(vt_proto_buf *b, const vt_proto_hello *h);

/* An object as listed by `list`. */
typedef struct vt_proto_object_info {
    uint32_t id;
    const char *label; /* NULL = none */
    vt_proto_obj_state state;
} vt_proto_object_info;

/* A stream as listed by `list`. */
typedef struct vt_proto_stream_info {
    const char *name;
    const char *url; /* as configured, at most VT_PROTO_URL_MAX bytes; the writer replaces
                      * any user:password@ with "***@" */
    vt_proto_stream_state state;
    vt_proto_pacing pacing;   /* as in effect, not DEFAULT */
    vt_proto_tracker tracker; /* as in effect */
    vt_proto_profile profile; /* as in effect */
    int width, height;        /* 0 until known */
    int64_t frame;            /* last frame tracked, -1 before the first */
    const vt_proto_object_info *objects;
    int nobjects;
} vt_proto_stream_info;

/* A stream's per-camera adaptation, as seen by `stats` (only streams that have it on). */
typedef struct vt_proto_adapt_stats {
    const char *model;      /* "shipped" or "adapted" */
    const char *provenance; /* adapted: how the weights were made (their vtrack.adapt), or NULL */
    int samples, capacity;  /* the reservoir: samples on disk, and room for */
    uint64_t bytes, budget_bytes;
    uint64_t offered, skipped; /* samples Algorithm R has seen; not taken (a write was slow) */
    uint64_t runs, accepted, rejected, failed;
    int running; /* a run is under way */
    int checked; /* the last run reached the check: before, after */
    double before, after;
    const char *last; /* the last run's outcome in words, NULL: no run yet */
} vt_proto_adapt_stats;

typedef struct vt_proto_stream_stats {
    const char *name;
    uint64_t frames;                   /* frames tracked */
    uint64_t skipped;                  /* live frames skipped because the tracker was busy */
    uint64_t reconnects;               /* source reconnection attempts, successful or not */
    double fps;                        /* tracked frames per second, recent average */
    double latency_ms;                 /* frame decoded -> event published, recent average */
    const vt_proto_adapt_stats *adapt; /* NULL: adaptation is off for the stream (omitted) */
} vt_proto_stream_stats;

/* One subscribed connection, as seen by `stats`. */
typedef struct vt_proto_subscriber_stats {
    const char *peer;      /* "host:port" of the client */
    int masks;             /* 1 if its frame events carry masks */
    uint64_t queued_bytes; /* bytes waiting to be sent to it */
    uint64_t dropped;      /* frame events dropped for it since it connected */
} vt_proto_subscriber_stats;

/* The daemon's saved state (its state directory), as seen by `stats`. */
typedef struct vt_proto_state_stats {
    const char *dir;    /* the state directory */
    int ok;             /* 1 if the last write (or the start-up read) succeeded */
    const char *error;  /* the last failure, or NULL */
    uint64_t saves;     /* state files written */
    uint64_t failures;  /* writes that failed (state file or journal) */
    double last_save_s; /* seconds since the last successful save, < 0: none yet */
} vt_proto_state_stats;

/* vtrackd's MQTT sink, as seen by `stats`. */
typedef struct vt_proto_mqtt_stats {
    int connected;        /* 1 while the broker has accepted the connection */
    uint64_t connections; /* connections the broker accepted */
    uint64_t failures;    /* connection attempts that failed, and connections lost */
    uint64_t published;   /* messages sent (QoS 0) or acknowledged (QoS 1, 2) */
    uint64_t dropped;     /* messages not sent: no connection, queue full, or lost with one */
    uint64_t queued;      /* messages handed to the MQTT library, not yet sent */
    const char *error;    /* why the last attempt or connection failed, NULL: none yet */
} vt_proto_mqtt_stats;

typedef struct vt_proto_stats {
    const vt_proto_state_stats *state; /* NULL: the server saves no state */
    double uptime_s;
    int clients;           /* connected clients */
    uint64_t dropped;      /* frame events dropped for THIS connection since it opened */
    uint64_t queued_bytes; /* bytes queued for THIS connection */
    const vt_proto_stream_stats *streams;
    int nstreams;
    const vt_proto_subscriber_stats *subscribers; /* every subscribed connection */
    int nsubscribers;
    const vt_proto_mqtt_stats *mqtt; /* NULL: no MQTT sink configured */
} vt_proto_stats;

/* The reply to a successful command. Which payload member is read depends on `op`:
 * add_stream, remove_stream, reset_model: `stream`; track: `stream`, `object`, `frame`; untrack:
 * `stream`, `object`; list: `streams`; stats: `stats`; hello, subscribe, unsubscribe, forget: none.
 */
typedef struct vt_proto_reply {
    vt_proto_op op;
    const vt_proto_id *id; /* NULL or empty: the command had no id */
    const char *stream;
    uint32_t object;
    int64_t frame; /* track: the frame the object starts on, -1 = the next frame */
    const vt_proto_stream_info *streams;
    int nstreams;
    const vt_proto_stats *stats;
} vt_proto_reply;

int vt_proto_write_reply(vt_proto_buf *b, const vt_proto_reply *r);

/* `error`: code, message, and field, op and id when set in `e`. */
int vt_proto_write_error(vt_proto_buf *b, const vt_proto_err *e);

/* One tracked object in a frame event. */
typedef struct vt_proto_object {
    uint32_t id;
    const char *label; /* NULL = none */
    int bbox[4];       /* x, y, w, h in source pixels (vt_rle_bbox) */
    uint64_t area;     /* object pixels (vt_rle_area) */
    float score;       /* 0..1, written with 3 decimals */
    vt_proto_obj_state state;
    const char *rle; /* compressed RLE string of the height x width mask; NULL = no mask */
    size_t rle_len;
} vt_proto_object;

#define VT_PROTO_NO_PTS   INT64_MIN /* vt_proto_frame.pts unknown: written as null */
#define VT_PROTO_NO_CLOCK INT64_MIN /* vt_proto_frame.capture_us unknown: field omitted */

typedef struct vt_proto_frame {
    const char *stream;
    int64_t frame;        /* index of the decoded source frame (gaps = frames skipped) */
    int64_t pts;          /* in time_base units, or VT_PROTO_NO_PTS */
    int tb_num, tb_den;   /* time base, den > 0 */
    int64_t wallclock_us; /* server clock when the frame was decoded, us since the Unix epoch */
    int64_t capture_us;   /* RTSP sender-report capture time, or VT_PROTO_NO_CLOCK */
    int width, height;    /* source frame size; masks are height x width */
    const vt_proto_object *objects;
    int nobjects; /* 0..VT_PROTO_OBJECTS_MAX */
} vt_proto_frame;

/*
 * Frame event. With `with_masks` each object whose `rle` is set gets "mask":{"size":[h,w],
 * "counts":...}; without, no masks are written. Writes directly into `b` (no allocation once
 * `b` is big enough): call once per variant and share the tail across subscribers.
 */
int vt_proto_write_frame(vt_proto_buf *b, const vt_proto_frame *f, int with_masks);

/* Object lifecycle event. */
typedef struct vt_proto_object_event {
    const char *stream;
    uint32_t id;
    const char *label; /* NULL = none */
    vt_proto_lifecycle event;
    int64_t frame;      /* frame where it happened, -1 = none (e.g. removed before any frame) */
    const char *reason; /* NULL, or a short phrase ("untrack", "stream removed", ...) */
} vt_proto_object_event;

int vt_proto_write_object_event(vt_proto_buf *b, const vt_proto_object_event *ev);

/* Stream state event. */
typedef struct vt_proto_stream_event {
    const char *stream;
    vt_proto_stream_state state;
    const char *reason; /* NULL, or why (the FFmpeg error, "end of file", ...) */
    int width, height;  /* when known (state up), else 0: omitted */
} vt_proto_stream_event;

int vt_proto_write_stream_event(vt_proto_buf *b, const vt_proto_stream_event *ev);

/* `model`: the model a stream tracks with changed (per-camera adaptation). */
typedef struct vt_proto_model_event {
    const char *stream;
    const char *model;      /* "shipped" or "adapted" */
    const char *reason;     /* "accepted", "reset", "loaded" (at start-up), ... */
    const char *provenance; /* adapted: how the weights were made, or NULL */
    int checked;            /* the check's scores follow */
    double before, after;
} vt_proto_model_event;

int vt_proto_write_model_event(vt_proto_buf *b, const vt_proto_model_event *ev);

/* `dropped`: `count` frame events were not sent to this connection since the last notice. */
int vt_proto_write_dropped(vt_proto_buf *b, uint64_t count);

#ifdef __cplusplus
}
#endif

#endif /* VT_PROTO_H */
