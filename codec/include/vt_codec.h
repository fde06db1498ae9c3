/*
 * vt_codec.h - the public interface of vtrack's codec library.
 *
 * codec/ turns any video source FFmpeg can read (files, RTSP cameras, HTTP/HLS streams, V4L2
 * devices, folders of numbered JPEGs) into a flow of RGB24 frames with honest timestamps,
 * reconnects live sources that drop out, reads and writes DAVIS mask PNGs, and writes overlay
 * videos. It knows nothing of models, sockets or event loops, and this header exposes no FFmpeg
 * type, so its users need not include FFmpeg's headers.
 *
 * Threading: a vt_source is read by one thread at a time; vt_source_cancel() and the
 * vt_source_get_state/info/stats() getters may be called from any thread at any time. A vt_overlay
 * is used by one thread at a time. The mask functions are reentrant.
 *
 * Errors: fallible functions return 0 or a negative error code: AVERROR values pass through
 * (they are negative errno values for system errors: AVERROR(ENOENT) == -ENOENT, and FFmpeg's
 * own tags such as AVERROR_EOF, AVERROR_EXIT, AVERROR_INVALIDDATA otherwise; av_strerror()
 * or vt_codec_strerror() name them). Functions taking `char *err, size_t errlen` also write a
 * one-line message there (naming the URL, path, field or value at fault) when they fail; `err`
 * may be NULL.
 */
#ifndef VT_CODEC_H
#define VT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Sources
 * ------------------------------------------------------------------------------------------- */

/* What a URL or path names; decided by vt_source_new() from its form (and a stat() of local
 * paths, to tell folders from files). */
typedef enum vt_source_kind {
    VT_SOURCE_KIND_FILE,    /* a local media file (path or file:) */
    VT_SOURCE_KIND_IMAGES,  /* a folder of numbered JPEG/PNG frames, or a %0Nd pattern */
    VT_SOURCE_KIND_DEVICE,  /* /dev/videoN (V4L2 through libavdevice) */
    VT_SOURCE_KIND_RTSP,    /* rtsp:// or rtsps:// */
    VT_SOURCE_KIND_HTTP,    /* http:// or https://, HLS playlists included */
    VT_SOURCE_KIND_NETWORK, /* any other network protocol (udp://, rtp://, rtmp://, srt://...) */
} vt_source_kind;

/* How frames are released to the reader. */
typedef enum vt_source_pacing {
    VT_SOURCE_PACING_FAST,        /* every frame as soon as decoded (offline tracking; live) */
    VT_SOURCE_PACING_NATIVE,      /* at the stream's own rate, following its pts */
    VT_SOURCE_PACING_NATIVE_LOOP, /* native rate, restarting at the end: a file as a camera */
} vt_source_pacing;

typedef enum vt_source_transport {
    VT_SOURCE_TRANSPORT_TCP, /* RTSP interleaved over the control connection (default) */
    VT_SOURCE_TRANSPORT_UDP, /* RTP over UDP */
} vt_source_transport;

/* Life cycle of a source. A source without reconnection goes CONNECTING -> UP -> ENDED; a live
 * source cycles CONNECTING -> UP -> (STALLED ->) BACKOFF -> CONNECTING ... until cancelled. */
typedef enum vt_source_state {
    VT_SOURCE_STATE_IDLE,       /* created, nothing attempted yet */
    VT_SOURCE_STATE_CONNECTING, /* opening the URL and probing the stream */
    VT_SOURCE_STATE_UP,         /* frames are flowing */
    VT_SOURCE_STATE_STALLED,    /* no data / no decoded frame for too long; a reconnect follows */
    VT_SOURCE_STATE_BACKOFF,    /* waiting before the next connection attempt */
    VT_SOURCE_STATE_ENDED,      /* end of stream, fatal error or cancelled; reads return errors */
} vt_source_state;

/* Called on the reading thread, inside vt_source_open()/vt_source_read(), on every state
 * change. `reason` is a human sentence (naming the URL and the FFmpeg error where there is one),
 * valid only during the call. Must not call back into the source except vt_source_cancel(). */
typedef void (*vt_source_state_cb)(void *opaque, vt_source_state state, const char *reason);

/* The largest frame a source delivers, in pixels (8K UHD, 7680x4320): a small file can declare
 * a frame size whose buffers alone would take gigabytes. And the longest side (the masks' RLE
 * carries at most 16384 per side). */
#define VT_SOURCE_MAX_PIXELS (7680 * 4320)
#define VT_SOURCE_MAX_SIDE   16384

typedef struct vt_source_opts {
    /* Local files, folders and devices are refused unless allowed: a URL that a client sent
     * must not read the daemon's files. Default 0; the command line sets 1. */
    int allow_local;
    /* FFmpeg protocol_whitelist ("rtsp,tcp,udp"...), enforced by FFmpeg for nested URLs too
     * (HLS segments, concat:...). NULL: network protocols only, plus "file,pipe" when
     * allow_local is set. Naming file or pipe without allow_local is refused. */
    const char *protocol_whitelist;
    /* FFmpeg format_whitelist for the demuxer (and nested demuxers). NULL: no restriction. */
    const char *format_whitelist;
    /* Force a demuxer (FFmpeg short name, e.g. "mjpeg", "v4l2"). NULL: probe. */
    const char *format;
    /* Extra AVOptions for the demuxer and the decoder: "key=value" pairs separated by ';' or
     * newlines, FFmpeg quoting rules ('...' and \). Unknown keys fail the connection. */
    const char *av_options;
    int64_t connect_timeout_ms; /* bound on opening + probing (default 5000) */
    int64_t read_timeout_ms;    /* bound on one blocking read (default 5000) */
    vt_source_transport rtsp_transport;
    vt_source_pacing pacing;
    /* Second RGB24 output at the processing size; 0x0: none. One of them 0: keep the aspect. */
    int proc_width, proc_height;
    /* Frame rate of image folders (default 25/1); ignored for other kinds. */
    int images_fps_num, images_fps_den;
    int decoder_threads; /* 0: FFmpeg's choice; 1 for deterministic single-thread decoding */
    /* Reconnection: -1 (default) on for RTSP/HTTP/network/device sources, off for files and
     * folders; 0 off; 1 on. */
    int reconnect;
    int64_t backoff_min_ms;   /* first retry delay (default 250) */
    int64_t backoff_max_ms;   /* cap of the doubling delay (default 30000) */
    int64_t backoff_reset_ms; /* up this long resets the delay to the minimum (default 10000) */
    int64_t stall_ms;         /* no decoded frame for this long while up: stalled (default 10000) */
    double backoff_jitter;    /* each delay is scaled by a uniform factor in [1-j, 1] (0.25) */
    vt_source_state_cb on_state;
    void *opaque;
} vt_source_opts;

/* Fill `opts` with the defaults documented above. */
void vt_source_opts_default(vt_source_opts *opts);

/* One decoded frame, borrowed from the source: valid until the next vt_source_read(),
 * vt_source_open() or vt_source_free() on that source. */
typedef struct vt_frame {
    int width, height;           /* source size */
    int linesize;                /* bytes per row of rgb (>= 3 * width) */
    const uint8_t *rgb;          /* RGB24 at source size */
    int proc_width, proc_height; /* processing size; 0x0 without a processing output */
    int proc_linesize;           /* bytes per row of proc_rgb */
    const uint8_t *proc_rgb;     /* RGB24 at processing size, or NULL */
    int64_t pts;                 /* presentation time in time_base units; grows across loops */
    int tb_num, tb_den;          /* time base of pts */
    int64_t index;               /* 0, 1, 2... over the whole life of the source (all sessions) */
    int64_t session;             /* 1 for the first connection, +1 per reconnect */
    int64_t
        arrival_realtime_us; /* CLOCK_REALTIME when decoded (paced: when released), us since 1970 */
    int64_t arrival_mono_us; /* CLOCK_MONOTONIC, same moment, microseconds */
    /* Sender's capture time (RTSP RTCP sender reports: start_time_realtime + pts), microseconds
     * since 1970; -1 when the source does not provide one. */
    int64_t capture_realtime_us;
    int corrupt; /* the decoder concealed errors in this frame */
} vt_frame;

/* Counters since vt_source_new(). */
typedef struct vt_source_stats {
    int64_t frames;           /* frames returned */
    int64_t decode_errors;    /* packets the decoder rejected (their frames are skipped) */
    int64_t corrupt_frames;   /* frames returned with concealed errors */
    int64_t demux_errors;     /* read errors the demuxer recovered from */
    int64_t connect_attempts; /* connection attempts, successful or not */
    int64_t reconnects;       /* attempts after the first (retries), successful or not */
    int64_t loops;            /* restarts of a NATIVE_LOOP file */
} vt_source_stats;

/* Stream facts known once connected (vt_source_info() fails with AVERROR(EAGAIN) before). */
typedef struct vt_source_info {
    vt_source_kind kind;
    int width, height;
    int tb_num, tb_den;
    int fps_num, fps_den; /* average frame rate; 0/0 when unknown */
    int64_t duration_us;  /* -1 for live or unknown */
    int64_t nb_frames;    /* container's frame count; -1 when unknown */
    char format_name[32]; /* demuxer, e.g. "mov,mp4,m4a,3gp,3g2,mj2" (truncated) */
    char codec_name[32];  /* decoder, e.g. "h264" */
} vt_source_info;

typedef struct vt_source vt_source;

/*
 * Create a source for `url` (a path, a file:/rtsp:/rtsps:/http:/https:/udp:... URL, /dev/videoN,
 * a folder of numbered frames or a printf-style frame pattern) with `opts` (NULL: defaults).
 * Validates the URL against the whitelist and the options and copies what it needs (the caller
 * keeps ownership of url and opts). No network I/O: local paths are only stat()ed, and a folder
 * is listed to find its first numbered frame. On success *out owns the source; free it with
 * vt_source_free(). Fails with AVERROR(EPERM) for a refused protocol or local source,
 * AVERROR(EINVAL) for a bad option, AVERROR(ENOENT) for a folder without numbered frames, all
 * explained in `err`.
 */
int vt_source_new(vt_source **out, const char *url, const vt_source_opts *opts, char *err,
                  size_t errlen);

/*
 * Make one connection attempt now (no backoff): open, probe, find the video stream and open its
 * decoder, bounded by the connect timeout and cancellable. vt_source_read() calls it on demand,
 * so calling it is optional; it lets a caller report a missing file or a refused connection
 * before reading. Returns 0 when up, or the error (with a message in `err`, also kept for
 * vt_source_last_error()); the source stays usable: a later read reconnects if allowed.
 */
int vt_source_open(vt_source *src, char *err, size_t errlen);

/*
 * Return the next frame in *frame (borrowed, see vt_frame). Connects when needed, paces, and for
 * sources with reconnection hides disconnects: it reports stalls and backoff through on_state
 * and keeps trying until a frame arrives or the source is cancelled. Only errors that no retry
 * can fix (unknown option, missing demuxer/decoder/protocol, unsupported feature) and the end
 * of a recording (a stream with a known duration) end a reconnecting source. Decoder errors
 * skip frames and are counted, never fatal. Returns 0, AVERROR_EOF at the end of a non-reconnecting
 * stream, AVERROR_EXIT once cancelled, or the fatal error of a non-reconnecting source (message in
 * vt_source_last_error()). After the first frame no heap memory is allocated by this library
 * per frame (FFmpeg's demuxers still allocate packet buffers).
 */
int vt_source_read(vt_source *src, const vt_frame **frame);

/*
 * Stop the source from any thread: a blocked open or read returns AVERROR_EXIT at once (the
 * reading thread is woken with a signal, see below; without it within FFmpeg's 100 ms poll
 * period), as do pacing and backoff sleeps; every later read returns AVERROR_EXIT.
 * Async-signal-unsafe; thread-safe. Cancelling is final.
 *
 * Waking: the first vt_source_new() installs a do-nothing handler (without SA_RESTART) for
 * SIGRTMIN+5 if that signal still has its default disposition, and cancel sends it to the
 * thread blocked in FFmpeg so that its poll() returns EINTR. If the signal is in use elsewhere
 * the library does not touch it and relies on the poll period.
 */
void vt_source_cancel(vt_source *src);

/* Current state. Thread-safe, like the two getters below: they return what the reading thread
 * published at its last state change or when its last read/open returned. */
vt_source_state vt_source_get_state(const vt_source *src);

/* Facts about the current (or last) connection; AVERROR(EAGAIN) before the first one. */
int vt_source_get_info(const vt_source *src, vt_source_info *info);

/* Copy the counters. */
void vt_source_get_stats(const vt_source *src, vt_source_stats *stats);

/* The last error or state reason as a sentence ("" if none); owned by the source, valid until
 * the next call on it. Reading thread only (or after it stopped); other threads get reasons
 * through on_state. */
const char *vt_source_last_error(const vt_source *src);

/* Close the connection and free the source; *src is set to NULL. Accepts NULL and *src == NULL.
 * The reading thread must have stopped using it (cancel, then join, then free). */
void vt_source_free(vt_source **src);

/* Copy a frame's pixels into caller memory as packed RGB24 (3*w bytes per row, no padding):
 * the source-size image when `proc` is 0, the processing-size image otherwise. `dst` holds
 * 3*w*h bytes. Returns AVERROR(EINVAL) when the requested image is absent. */
int vt_frame_copy_rgb(const vt_frame *frame, int proc, uint8_t *dst);

/* Names for logs and events: "connecting", "up", "stalled", "backoff", "ended", "idle". */
const char *vt_source_state_name(vt_source_state state);
const char *vt_source_kind_name(vt_source_kind kind);

/* Describe an error code (AVERROR or negative errno) in `buf`; returns buf. */
const char *vt_codec_strerror(int errnum, char *buf, size_t buflen);

/* ---------------------------------------------------------------------------------------------
 * Mask PNGs (FFmpeg's PNG codec)
 * ------------------------------------------------------------------------------------------- */

/* Read a mask PNG: 8-bit grey (values as stored; DAVIS-2016 uses {0,255}; 1-bit grey reads as
   {0,255}) or palette/indexed (the palette index per pixel; DAVIS-2017: index = object id,
   255 = void). *labels is malloc'd w*h bytes, row-major; the caller frees it. *is_palette set
   to 1 for palette PNGs (0 otherwise; is_palette may be NULL). Other pixel formats (colour,
   16-bit) fail with AVERROR_PATCHWELCOME naming the format. A mask larger than any frame (more
   than VT_SOURCE_MAX_PIXELS, or a side above VT_SOURCE_MAX_SIDE) fails with AVERROR(E2BIG),
   checked on the file's header before anything is decoded. */
int vt_mask_read_png(const char *path, int *w, int *h, uint8_t **labels, int *is_palette, char *err,
                     size_t errlen);

/* Write w*h row-major label bytes as a palette PNG with the DAVIS palette (index 0 black,
   1 (128,0,0), 2 (0,128,0), ... the standard VOC/DAVIS bit-interleaved palette). The file is
   replaced; the caller keeps `labels`. */
int vt_mask_write_png(const char *path, int w, int h, const uint8_t *labels, char *err,
                      size_t errlen);

/* The colour of palette index `index` (0..255) in the DAVIS/VOC palette. */
void vt_mask_palette_color(int index, uint8_t rgb[3]);

/* ---------------------------------------------------------------------------------------------
 * Overlay drawing and overlay video
 * ------------------------------------------------------------------------------------------- */

/* How an object is shown: the tracker's state (PROTOCOL.md, "frame", says what each means). */
typedef enum vt_overlay_state {
    VT_OVERLAY_TRACKING = 0, /* its mask filled and outlined, a solid box, "#id label" */
    VT_OVERLAY_OCCLUDED,  /* hidden: what is still seen of its mask, a dashed box, "... occluded" */
    VT_OVERLAY_RECOVERED, /* found again on this frame: as tracking, "... recovered" */
    VT_OVERLAY_LOST,      /* its mask's outline only, a dashed box, "... lost" */
} vt_overlay_state;

/* Dashes of a dashed box: VT_OVERLAY_DASH pixels drawn, then VT_OVERLAY_GAP skipped, along each
 * edge from the box's top or left side. */
#define VT_OVERLAY_DASH 6
#define VT_OVERLAY_GAP  4

/* One object: pixels of the label map whose label equals `index` belong to it. */
typedef struct vt_overlay_object {
    uint8_t index;     /* value in the label map (1..254); 0: no pixels (box and tag only) */
    int id;            /* object id shown in the tag and choosing the colour */
    const char *label; /* optional text after the id; NULL or "" for none */
    vt_overlay_state state;
    int box[4]; /* x, y, w, h of the object's box (the tracker's estimate; it may extend beyond the
                 * mask or the frame); w or h <= 0: no box */
} vt_overlay_object;

typedef struct vt_overlay_style {
    int fill_alpha; /* 0..255 opacity of the fill (default 110) */
    int outline;    /* mask outline width in pixels, 0 for none (default 2) */
    int box;        /* box line width in pixels, drawn inside the box, 0 for none (default 2) */
    int text_scale; /* font scale: each font pixel is scale x scale (default 2); 0: no text */
} vt_overlay_style;

/* Fill `style` with the defaults documented above. */
void vt_overlay_style_default(vt_overlay_style *style);

/* The colour of object `id` (a bright, well-separated hue per id; stable across runs). */
void vt_overlay_id_color(int id, uint8_t rgb[3]);

/*
 * Draw `nobj` objects onto the packed-or-padded RGB24 image `rgb` (h rows of `linesize` bytes)
 * in place, each in its colour: its pixels of the label map `labels` (w*h bytes, row-major, one
 * label per pixel) with a translucent fill (not for a lost object) and an outline; its box, solid,
 * or dashed when it is occluded or lost; and a tag in a small built-in bitmap font, "#id label"
 * followed by the state unless it is tracking ("#2 centre occluded"), above the box's top-left
 * corner (inside it when there is no room above; at the mask's corner when there is no box),
 * moved and cut as needed to stay inside the image. An object with neither pixels nor a box is
 * skipped. `labels` may be NULL (boxes and tags only); `style` NULL: defaults. Allocates nothing.
 */
void vt_overlay_draw(uint8_t *rgb, int w, int h, int linesize, const uint8_t *labels,
                     const vt_overlay_object *objs, int nobj, const vt_overlay_style *style);

typedef struct vt_overlay_opts {
    int fps_num, fps_den;   /* frame rate of the output (default 25/1) */
    const char *encoder;    /* NULL: libx264 when FFmpeg has it, else mpeg4 */
    int crf;                /* libx264 quality (default 23); mpeg4 uses a matching qscale */
    vt_overlay_style style; /* drawing */
} vt_overlay_opts;

/* Fill `opts` with the defaults documented above. */
void vt_overlay_opts_default(vt_overlay_opts *opts);

typedef struct vt_overlay vt_overlay;

/*
 * Create an overlay video at `path` (the container follows the extension; .mp4 expected) for
 * frames of w x h. Odd sizes are padded to even by repeating the last column/row. On success
 * *out owns the writer; finish it with vt_overlay_close() and free it with vt_overlay_free().
 */
int vt_overlay_new(vt_overlay **out, const char *path, int w, int h, const vt_overlay_opts *opts,
                   char *err, size_t errlen);

/*
 * Draw the objects onto a private copy of `rgb` (w x h pixels in rows of `linesize` bytes,
 * RGB24, not modified) and encode it as the next frame (frames are spaced 1/fps apart). The
 * frame must have the size the writer was created for (-EINVAL otherwise: a source that changes
 * size needs a new writer). `labels` may be NULL when no object has pixels (vt_overlay_draw). No
 * allocation per frame after the first.
 */
int vt_overlay_write(vt_overlay *ov, const uint8_t *rgb, int w, int h, int linesize,
                     const uint8_t *labels, const vt_overlay_object *objs, int nobj, char *err,
                     size_t errlen);

/* Flush the encoder and write the trailer. Returns 0 or the first error; further writes fail.
 * The caller still frees the writer. */
int vt_overlay_close(vt_overlay *ov, char *err, size_t errlen);

/* Number of frames written so far. */
int64_t vt_overlay_frames(const vt_overlay *ov);

/* Free the writer (closing the file without a trailer if vt_overlay_close() was not called,
 * which leaves an unplayable MP4); *ov is set to NULL. Accepts NULL. */
void vt_overlay_free(vt_overlay **ov);

/* ---------------------------------------------------------------------------------------------
 * JPEG stills (jpeg.c): FFmpeg's mjpeg encoder, for the daemon's live view.
 * ------------------------------------------------------------------------------------------- */

typedef struct vt_jpeg vt_jpeg;

/* An encoder of `quality` 1..100 (higher: larger and better). 0, AVERROR(EINVAL) or ENOMEM. */
int vt_jpeg_new(int quality, vt_jpeg **out);

/* Encode w x h RGB24 pixels (rows of `linesize` bytes) as one baseline JPEG (full-range
 * YUV 4:2:0). *data / *len are borrowed until the next call. The encoder is set up on the first
 * frame and again when the size changes; no allocation per frame otherwise. One thread at a
 * time. 0 or an AVERROR with a message in err. */
int vt_jpeg_encode(vt_jpeg *j, const uint8_t *rgb, int w, int h, int linesize, const uint8_t **data,
                   size_t *len, char *err, size_t errlen);

/* Free; sets *j to NULL; accepts NULL. */
void vt_jpeg_free(vt_jpeg **j);

#ifdef __cplusplus
}
#endif

#endif /* VT_CODEC_H */
