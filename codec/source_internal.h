/* source_internal.h - the vt_source object, shared by source.c (policy: reconnect, pacing,
 * cancel) and session.c (one FFmpeg connection: open, demux, decode, convert). Not public. */
#ifndef VT_SOURCE_INTERNAL_H
#define VT_SOURCE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>

#include "vt_codec.h"

/* session_read() result for "no decoded frame for stall_ms" (not an FFmpeg code). */
#define VTC_ERR_STALL FFERRTAG('V', 'S', 'T', 'L')

/* One conversion to RGB24 into buffers reused until the sizes change. Resizing planar YUV takes
 * two steps, YUV -> YUV at the output size (pre) then YUV -> RGB24 (sws): swscale's SIMD covers
 * both, while its one-step scaled YUV -> RGB24 path is about 3x slower. */
typedef struct vtc_scaler {
    struct SwsContext *sws, *pre;
    AVFrame *dst; /* RGB24 */
    AVFrame *mid; /* source format at the output size, when two steps */
    int src_w, src_h, src_fmt, src_cs, src_range;
} vtc_scaler;

struct vt_source {
    /* What to open (owned copies; opts' strings point into the copies below). */
    char *url;
    char *open_url; /* given to avformat_open_input: a pattern for folders */
    char *whitelist;
    char *format_whitelist;
    char *format;
    int images_start;
    vt_source_kind kind;
    vt_source_opts opts;
    AVDictionary *user_opts;
    int reconnect;

    /* Interrupt: read by FFmpeg's callback on the reading thread, written by cancel. */
    atomic_int cancelled;
    atomic_llong deadline_us; /* monotonic; 0 = no deadline */
    atomic_int timed_out;
    pthread_mutex_t lock; /* guards blocked/blocked_thread, the sleep condition, the *_pub */
    pthread_cond_t cond;  /* CLOCK_MONOTONIC; signalled by cancel */
    int blocked;
    pthread_t blocked_thread;

    /* The current connection (session.c). */
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVStream *st;
    int vidx;
    AVPacket *pkt;
    AVFrame *frame;
    int draining;
    int decode_error_run;
    int demux_error_run;
    int64_t last_frame_mono; /* for the stall detector */
    int64_t session_frames;
    vtc_scaler rgb, proc;

    /* Timestamps across loops. */
    int64_t pts_offset;
    int64_t first_pts, last_pts, last_dur;
    int loop_frames;

    /* Pacing anchor: pts (in us, offset applied) shown at monotonic time anchor_mono. */
    int pace_set;
    int64_t pace_pts_us, pace_mono;

    /* Policy (source.c). */
    vt_source_state state;
    int last_ret; /* what reads return once ended */
    int backoff_attempt;
    int64_t up_since;
    uint64_t rng;
    int64_t session_no;

    vt_frame out;
    vt_source_stats stats;
    vt_source_info info;
    int have_info;
    /* Copies for other threads (vt_source_get_*), refreshed under `lock` by publish(). */
    vt_source_stats stats_pub;
    vt_source_info info_pub;
    int have_info_pub;
    vt_source_state state_pub;
    char last_error[512];
};

/* Arm the interrupt deadline `timeout_ms` from now and mark this thread as blocked in FFmpeg
 * (so cancel can wake it); disarm undoes both. */
void vtc_arm(vt_source *s, int64_t timeout_ms);
void vtc_disarm(vt_source *s);
int vtc_interrupt_cb(void *opaque);

/* Open a connection (state handling is the caller's). On failure the message is in err. */
int vtc_session_open(vt_source *s, char *err, size_t errlen);
/* Decode the next frame into s->frame and convert it into s->out. Returns 0, AVERROR_EOF,
 * VTC_ERR_STALL, AVERROR_EXIT (cancelled), AVERROR(ETIMEDOUT) or another error; message in err. */
int vtc_session_read(vt_source *s, char *err, size_t errlen);
/* Restart a file at its beginning for NATIVE_LOOP (seek, or reopen when seeking fails). */
int vtc_session_rewind(vt_source *s, char *err, size_t errlen);
/* How far into its media this pass has read: the end of its last frame from its first, in
 * microseconds (0 before the first frame). */
int64_t vtc_session_position_us(const vt_source *s);
void vtc_session_close(vt_source *s);
void vtc_scaler_free(vtc_scaler *sc);

#endif
