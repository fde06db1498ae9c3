/* session.c - one connection of a vt_source: open and probe the URL, pick the video stream,
 * decode it, and convert frames to RGB24 with swscale. Reconnection, pacing and cancelling
 * are source.c's business; everything here is bounded by the interrupt callback. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>

#include "codec_internal.h"
#include "source_internal.h"

/* A file whose demuxer keeps failing is damaged past resync: give up after this many errors in
 * a row. A decoder failing this often without taking a packet is stuck. */
#define MAX_ERROR_RUN 64

static const char *demuxer_for_kind(const vt_source *s) {
    if (s->format)
        return s->format;
    if (s->kind == VT_SOURCE_KIND_IMAGES)
        return "image2";
    if (s->kind == VT_SOURCE_KIND_DEVICE)
        return "video4linux2";
    return NULL;
}

#define NOMEM()                                                                                    \
    do {                                                                                           \
        ret = vtc_fail(AVERROR(ENOMEM), err, errlen, "%s: out of memory", s->url);                 \
        goto fail;                                                                                 \
    } while (0)

int vtc_session_open(vt_source *s, char *err, size_t errlen) {
    char ebuf[AV_ERROR_MAX_STRING_SIZE];
    AVDictionary *o = NULL;
    const AVInputFormat *ifmt = NULL;
    const AVCodec *codec = NULL;
    const char *dname = demuxer_for_kind(s);
    const AVDictionaryEntry *e;
    int ret;

    if (dname && !(ifmt = av_find_input_format(dname)))
        return vtc_fail(AVERROR_DEMUXER_NOT_FOUND, err, errlen, "%s: FFmpeg has no demuxer '%s'",
                        s->url, dname);
    if ((ret = av_dict_copy(&o, s->user_opts, 0)) < 0 ||
        (ret = av_dict_set(&o, "protocol_whitelist", s->whitelist, 0)) < 0 ||
        (s->format_whitelist &&
         (ret = av_dict_set(&o, "format_whitelist", s->format_whitelist, 0)) < 0))
        NOMEM();
    if (s->kind == VT_SOURCE_KIND_RTSP && !av_dict_get(o, "rtsp_transport", NULL, 0) &&
        (ret = av_dict_set(&o, "rtsp_transport",
                           s->opts.rtsp_transport == VT_SOURCE_TRANSPORT_UDP ? "udp" : "tcp", 0)) <
            0)
        NOMEM();
    if (s->kind == VT_SOURCE_KIND_IMAGES) {
        char rate[64];
        snprintf(rate, sizeof(rate), "%d/%d", s->opts.images_fps_num, s->opts.images_fps_den);
        if ((!av_dict_get(o, "framerate", NULL, 0) &&
             (ret = av_dict_set(&o, "framerate", rate, 0)) < 0) ||
            (!av_dict_get(o, "start_number", NULL, 0) &&
             (ret = av_dict_set_int(&o, "start_number", s->images_start, 0)) < 0))
            NOMEM();
    }

    s->fmt = avformat_alloc_context();
    if (!s->fmt)
        NOMEM();
    s->fmt->interrupt_callback.callback = vtc_interrupt_cb;
    s->fmt->interrupt_callback.opaque = s;

    vtc_arm(s, s->opts.connect_timeout_ms);
    /* On failure avformat_open_input frees the context and sets s->fmt to NULL. */
    ret = avformat_open_input(&s->fmt, s->open_url, ifmt, &o);
    if (ret >= 0)
        ret = avformat_find_stream_info(s->fmt, NULL);
    vtc_disarm(s);
    if (ret < 0) {
        if (atomic_load(&s->cancelled))
            ret = AVERROR_EXIT;
        else if (atomic_load(&s->timed_out)) {
            ret = AVERROR(ETIMEDOUT);
            vtc_fail(ret, err, errlen, "%s: no answer within the connect timeout (%lld ms)", s->url,
                     (long long)s->opts.connect_timeout_ms);
            goto fail;
        }
        if (ret == AVERROR(ENOENT) && s->kind == VT_SOURCE_KIND_DEVICE)
            vtc_fail(ret, err, errlen, "%s: no such video device (is the camera connected?)",
                     s->url);
        else
            vtc_fail(ret, err, errlen, "%s: cannot open: %s", s->url,
                     vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto fail;
    }

    ret = av_find_best_stream(s->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (ret < 0) {
        if (ret == AVERROR_DECODER_NOT_FOUND)
            vtc_fail(ret, err, errlen, "%s: no decoder for the video codec", s->url);
        else
            vtc_fail(ret, err, errlen, "%s: no video stream (format %s)", s->url,
                     s->fmt->iformat->name);
        goto fail;
    }
    s->vidx = ret;
    s->st = s->fmt->streams[ret];
    /* Skip audio and data packets before they reach us. */
    for (unsigned i = 0; i < s->fmt->nb_streams; i++)
        if ((int)i != s->vidx)
            s->fmt->streams[i]->discard = AVDISCARD_ALL;

    s->dec = avcodec_alloc_context3(codec);
    if (!s->dec)
        NOMEM();
    if ((ret = avcodec_parameters_to_context(s->dec, s->st->codecpar)) < 0) {
        vtc_fail(ret, err, errlen, "%s: bad codec parameters: %s", s->url,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto fail;
    }
    s->dec->pkt_timebase = s->st->time_base;
    s->dec->thread_count = s->opts.decoder_threads;
    if ((ret = avcodec_open2(s->dec, codec, &o)) < 0) {
        vtc_fail(ret, err, errlen, "%s: cannot open the %s decoder: %s", s->url, codec->name,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto fail;
    }
    /* What neither the demuxer, its protocols nor the decoder took is a mistake in the
     * configuration; say which key rather than ignore it. */
    e = av_dict_get(o, "", NULL, AV_DICT_IGNORE_SUFFIX);
    if (e) {
        ret =
            vtc_fail(AVERROR_OPTION_NOT_FOUND, err, errlen,
                     "%s: av_options: unknown option '%s' (value '%s')", s->url, e->key, e->value);
        goto fail;
    }
    av_dict_free(&o);

    s->draining = 0;
    s->decode_error_run = 0;
    s->demux_error_run = 0;
    s->session_frames = 0;
    s->loop_frames = 0;
    s->last_frame_mono = vt_mono_us();

    memset(&s->info, 0, sizeof(s->info));
    s->info.kind = s->kind;
    s->info.width = s->dec->width;
    s->info.height = s->dec->height;
    s->info.tb_num = s->st->time_base.num;
    s->info.tb_den = s->st->time_base.den;
    s->info.fps_num = s->st->avg_frame_rate.num;
    s->info.fps_den = s->st->avg_frame_rate.den;
    s->info.duration_us = s->fmt->duration > 0 ? s->fmt->duration : -1;
    s->info.nb_frames = s->st->nb_frames > 0 ? s->st->nb_frames : -1;
    snprintf(s->info.format_name, sizeof(s->info.format_name), "%s", s->fmt->iformat->name);
    snprintf(s->info.codec_name, sizeof(s->info.codec_name), "%s", codec->name);
    s->have_info = 1;
    return 0;

fail:
    if (ret == AVERROR_EXIT)
        vtc_fail(ret, err, errlen, "%s: cancelled", s->url);
    av_dict_free(&o);
    vtc_session_close(s);
    return ret;
}
#undef NOMEM

void vtc_session_close(vt_source *s) {
    if (s->fmt) {
        /* Closing may talk to the server (RTSP TEARDOWN): keep it bounded too. */
        vtc_arm(s, s->opts.connect_timeout_ms);
        avformat_close_input(&s->fmt);
        vtc_disarm(s);
    }
    avcodec_free_context(&s->dec);
    s->st = NULL;
    s->vidx = -1;
    if (s->pkt)
        av_packet_unref(s->pkt);
}

void vtc_scaler_free(vtc_scaler *sc) {
    sws_freeContext(sc->sws);
    sws_freeContext(sc->pre);
    sc->sws = sc->pre = NULL;
    av_frame_free(&sc->dst);
    av_frame_free(&sc->mid);
}

/* The deprecated yuvj formats mean "full range"; swscale wants the plain format plus a range. */
static enum AVPixelFormat plain_format(enum AVPixelFormat f, int *full_range) {
    switch (f) {
    case AV_PIX_FMT_YUVJ420P:
        *full_range = 1;
        return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P:
        *full_range = 1;
        return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P:
        *full_range = 1;
        return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P:
        *full_range = 1;
        return AV_PIX_FMT_YUV440P;
    default:
        return f;
    }
}

static int alloc_frame(AVFrame **f, int fmt, int w, int h) {
    if (*f && (*f)->width == w && (*f)->height == h && (*f)->format == fmt)
        return 0;
    av_frame_free(f);
    if (!(*f = av_frame_alloc()))
        return AVERROR(ENOMEM);
    (*f)->format = fmt;
    (*f)->width = w;
    (*f)->height = h;
    if (av_frame_get_buffer(*f, 0) < 0) {
        av_frame_free(f);
        return AVERROR(ENOMEM);
    }
    return 0;
}

/* Planar YUV (the decoders' usual output) can be resized in its own format first. */
static int two_step(enum AVPixelFormat f) {
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f);
    return d && d->nb_components >= 3 && (d->flags & AV_PIX_FMT_FLAG_PLANAR) &&
           !(d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_HWACCEL |
                         AV_PIX_FMT_FLAG_BAYER));
}

/* Convert `src` to RGB24 at dw x dh into sc->dst; allocates only when a size or format
 * changes (the first frame, a resolution change mid-stream). */
static int scale_to(vtc_scaler *sc, const AVFrame *src, int dw, int dh, const char *url, char *err,
                    size_t errlen) {
    char ebuf[AV_ERROR_MAX_STRING_SIZE];
    int full = src->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat sf = plain_format(src->format, &full);
    int cs = src->colorspace;
    int pre = (dw != src->width || dh != src->height) && two_step(sf);
    const uint8_t *const *in = (const uint8_t *const *)src->data;
    const int *in_ls = src->linesize;
    int ret;

    if (alloc_frame(&sc->dst, AV_PIX_FMT_RGB24, dw, dh) < 0 ||
        (pre && alloc_frame(&sc->mid, sf, dw, dh) < 0))
        return vtc_fail(AVERROR(ENOMEM), err, errlen, "%s: out of memory for a %dx%d frame", url,
                        dw, dh);
    if (!sc->sws || sc->src_w != src->width || sc->src_h != src->height || sc->src_fmt != (int)sf ||
        sc->src_cs != cs || sc->src_range != full) {
        const int *coef;
        const char *n = av_get_pix_fmt_name(sf);
        sws_freeContext(sc->pre);
        sc->pre = NULL;
        if (pre) {
            /* Same format on both sides: samples are resampled, never range-converted. */
            sc->pre = sws_getContext(src->width, src->height, sf, dw, dh, sf, SWS_BILINEAR, NULL,
                                     NULL, NULL);
            sc->sws = sc->pre ? sws_getCachedContext(sc->sws, dw, dh, sf, dw, dh, AV_PIX_FMT_RGB24,
                                                     SWS_BILINEAR, NULL, NULL, NULL)
                              : NULL;
        } else {
            sc->sws = sws_getCachedContext(sc->sws, src->width, src->height, sf, dw, dh,
                                           AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
        }
        if (!sc->sws) {
            sc->src_w = 0; /* rebuild next time */
            return vtc_fail(AVERROR(EINVAL), err, errlen,
                            "%s: cannot convert %dx%d %s to %dx%d rgb24", url, src->width,
                            src->height, n ? n : "?", dw, dh);
        }
        /* Unspecified colour spaces get swscale's default (BT.601), as the ffmpeg tool does. */
        coef = sws_getCoefficients(cs == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : cs);
        sws_setColorspaceDetails(sc->sws, coef, full, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                                 1 << 16, 1 << 16);
        sc->src_w = src->width;
        sc->src_h = src->height;
        sc->src_fmt = sf;
        sc->src_cs = cs;
        sc->src_range = full;
    }
    if (sc->pre) {
        ret = sws_scale(sc->pre, in, in_ls, 0, src->height, sc->mid->data, sc->mid->linesize);
        if (ret <= 0)
            goto fail;
        in = (const uint8_t *const *)sc->mid->data;
        in_ls = sc->mid->linesize;
    }
    ret = sws_scale(sc->sws, in, in_ls, 0, sc->pre ? dh : src->height, sc->dst->data,
                    sc->dst->linesize);
    if (ret > 0)
        return 0;
fail:
    return vtc_fail(AVERROR(EINVAL), err, errlen, "%s: swscale failed (%s)", url,
                    vtc_averr(ret < 0 ? ret : AVERROR_UNKNOWN, ebuf, sizeof(ebuf)));
}

/* Processing size for a w x h frame: as requested, the missing side keeping the aspect. */
static void proc_size(const vt_source *s, int w, int h, int *pw, int *ph) {
    *pw = s->opts.proc_width;
    *ph = s->opts.proc_height;
    if (*pw > 0 && *ph <= 0)
        *ph = (int)(((int64_t)h * *pw + w / 2) / w);
    else if (*ph > 0 && *pw <= 0)
        *pw = (int)(((int64_t)w * *ph + h / 2) / h);
    if (*pw < 1 && (s->opts.proc_width > 0 || s->opts.proc_height > 0))
        *pw = 1;
    if (*ph < 1 && (s->opts.proc_width > 0 || s->opts.proc_height > 0))
        *ph = 1;
}

static int convert(vt_source *s, char *err, size_t errlen) {
    AVFrame *f = s->frame;
    vt_frame *o = &s->out;
    int64_t pts = f->best_effort_timestamp;
    int64_t dur = f->pkt_duration;
    int pw, ph, ret;

    if (f->width <= 0 || f->height <= 0)
        return vtc_fail(AVERROR_INVALIDDATA, err, errlen, "%s: decoded frame has size %dx%d",
                        s->url, f->width, f->height);
    if ((int64_t)f->width * f->height > VT_SOURCE_MAX_PIXELS)
        return vtc_fail(AVERROR(E2BIG), err, errlen,
                        "%s: frames of %dx%d are larger than vtrack takes (%d pixels, 8K UHD)",
                        s->url, f->width, f->height, VT_SOURCE_MAX_PIXELS);
    if (f->width > VT_SOURCE_MAX_SIDE || f->height > VT_SOURCE_MAX_SIDE)
        return vtc_fail(AVERROR(E2BIG), err, errlen,
                        "%s: frames of %dx%d are longer than vtrack takes (%d pixels a side)",
                        s->url, f->width, f->height, VT_SOURCE_MAX_SIDE);
    if ((ret = scale_to(&s->rgb, f, f->width, f->height, s->url, err, errlen)) < 0)
        return ret;
    proc_size(s, f->width, f->height, &pw, &ph);
    if (pw > 0 && (ret = scale_to(&s->proc, f, pw, ph, s->url, err, errlen)) < 0)
        return ret;

    if (dur <= 0 && s->st->avg_frame_rate.num > 0 && s->st->avg_frame_rate.den > 0)
        dur = av_rescale_q(1, av_inv_q(s->st->avg_frame_rate), s->st->time_base);
    if (dur <= 0)
        dur = 1;
    /* Streams without timestamps (raw elementary streams) get evenly spaced ones. */
    if (pts == AV_NOPTS_VALUE)
        pts = s->session_frames ? s->last_pts + s->last_dur : 0;
    if (s->loop_frames == 0)
        s->first_pts = pts;
    s->last_pts = pts;
    s->last_dur = dur;
    s->loop_frames++;
    s->session_frames++;

    o->width = f->width;
    o->height = f->height;
    o->linesize = s->rgb.dst->linesize[0];
    o->rgb = s->rgb.dst->data[0];
    if (pw > 0) {
        o->proc_width = pw;
        o->proc_height = ph;
        o->proc_linesize = s->proc.dst->linesize[0];
        o->proc_rgb = s->proc.dst->data[0];
    } else {
        o->proc_width = o->proc_height = o->proc_linesize = 0;
        o->proc_rgb = NULL;
    }
    o->pts = pts + s->pts_offset;
    o->tb_num = s->st->time_base.num;
    o->tb_den = s->st->time_base.den;
    o->arrival_mono_us = vt_mono_us();
    o->arrival_realtime_us = vtc_real_us();
    o->capture_realtime_us = -1;
    /* RTSP sets start_time_realtime from the first RTCP sender report: the wall clock of the
     * sender at pts 0. */
    if (s->fmt->start_time_realtime != AV_NOPTS_VALUE && s->fmt->start_time_realtime > 0)
        o->capture_realtime_us =
            s->fmt->start_time_realtime + av_rescale_q(pts, s->st->time_base, AV_TIME_BASE_Q);
    o->corrupt = f->decode_error_flags != 0 || (f->flags & AV_FRAME_FLAG_CORRUPT);
    return 0;
}

int vtc_session_read(vt_source *s, char *err, size_t errlen) {
    char ebuf[AV_ERROR_MAX_STRING_SIZE];
    int ret;

    for (;;) {
        if (atomic_load(&s->cancelled))
            return vtc_fail(AVERROR_EXIT, err, errlen, "%s: cancelled", s->url);
        ret = avcodec_receive_frame(s->dec, s->frame);
        if (ret >= 0) {
            s->decode_error_run = 0;
            s->last_frame_mono = vt_mono_us();
            ret = convert(s, err, errlen);
            av_frame_unref(s->frame);
            if (ret < 0)
                return ret;
            if (s->out.corrupt)
                s->stats.corrupt_frames++;
            return 0;
        }
        if (ret == AVERROR_EOF)
            return vtc_fail(AVERROR_EOF, err, errlen, "%s: end of stream", s->url);
        if (ret != AVERROR(EAGAIN)) {
            /* The decoder rejected what it had (decoders using the receive API report bad
             * packets here); that frame is lost, the stream goes on. The run counter (reset by
             * every accepted packet) only guards against a decoder failing without consuming. */
            s->stats.decode_errors++;
            if (++s->decode_error_run > MAX_ERROR_RUN)
                return vtc_fail(ret, err, errlen, "%s: %d decode errors in a row, last: %s", s->url,
                                s->decode_error_run, vtc_averr(ret, ebuf, sizeof(ebuf)));
            continue;
        }
        if (s->draining)
            return vtc_fail(AVERROR_EOF, err, errlen, "%s: end of stream", s->url);

        if (s->reconnect && s->opts.stall_ms > 0 &&
            vt_mono_us() - s->last_frame_mono > s->opts.stall_ms * 1000)
            return vtc_fail(VTC_ERR_STALL, err, errlen, "%s: no decoded frame for %lld ms", s->url,
                            (long long)s->opts.stall_ms);

        vtc_arm(s, s->opts.read_timeout_ms);
        ret = av_read_frame(s->fmt, s->pkt);
        vtc_disarm(s);
        if (ret == AVERROR_EOF || (ret < 0 && s->fmt->pb && avio_feof(s->fmt->pb) &&
                                   !atomic_load(&s->cancelled) && !atomic_load(&s->timed_out))) {
            /* Drain the frames the decoder still holds. */
            s->draining = 1;
            avcodec_send_packet(s->dec, NULL);
            continue;
        }
        if (ret < 0) {
            if (atomic_load(&s->cancelled))
                return vtc_fail(AVERROR_EXIT, err, errlen, "%s: cancelled", s->url);
            if (atomic_load(&s->timed_out))
                return vtc_fail(AVERROR(ETIMEDOUT), err, errlen,
                                "%s: no data within the read timeout (%lld ms)", s->url,
                                (long long)s->opts.read_timeout_ms);
            if (ret == AVERROR(EAGAIN)) {
                /* Non-blocking demuxers (some devices) have nothing yet: avoid spinning. */
                struct timespec ts = {0, 2000000};
                nanosleep(&ts, NULL);
                continue;
            }
            if ((s->kind == VT_SOURCE_KIND_FILE || s->kind == VT_SOURCE_KIND_IMAGES) &&
                ++s->demux_error_run <= MAX_ERROR_RUN) {
                /* A damaged region of a file: demuxers resync on the next read. */
                s->stats.demux_errors++;
                continue;
            }
            return vtc_fail(ret, err, errlen, "%s: read error: %s", s->url,
                            vtc_averr(ret, ebuf, sizeof(ebuf)));
        }
        s->demux_error_run = 0;
        if (s->pkt->stream_index != s->vidx) {
            av_packet_unref(s->pkt);
            continue;
        }
        ret = avcodec_send_packet(s->dec, s->pkt);
        av_packet_unref(s->pkt);
        /* A rejected packet loses its frame only. Long runs are legitimate (a camera joined far
         * from its next key frame); the stall detector judges live sources by decoded frames. */
        if (ret < 0 && ret != AVERROR(EAGAIN))
            s->stats.decode_errors++;
        else
            s->decode_error_run = 0;
    }
}

int64_t vtc_session_position_us(const vt_source *s) {
    if (s->loop_frames == 0 || !s->st)
        return 0;
    return av_rescale_q(s->last_pts + s->last_dur - s->first_pts, s->st->time_base, AV_TIME_BASE_Q);
}

int vtc_session_rewind(vt_source *s, char *err, size_t errlen) {
    int64_t start = s->st && s->st->start_time != AV_NOPTS_VALUE ? s->st->start_time : 0;
    int ret = -1;

    if (s->loop_frames == 0)
        return vtc_fail(AVERROR_INVALIDDATA, err, errlen,
                        "%s: no frame in a whole pass, cannot loop", s->url);
    /* The next pass continues the timeline right after this pass's last frame. */
    s->pts_offset += s->last_pts + s->last_dur - s->first_pts;
    s->loop_frames = 0;
    if (s->fmt) {
        vtc_arm(s, s->opts.read_timeout_ms);
        ret = av_seek_frame(s->fmt, s->vidx, start, AVSEEK_FLAG_BACKWARD);
        vtc_disarm(s);
    }
    if (ret >= 0) {
        avcodec_flush_buffers(s->dec);
        s->draining = 0;
        return 0;
    }
    /* Not seekable (pipes, some demuxers): open it again. */
    vtc_session_close(s);
    return vtc_session_open(s, err, errlen);
}
