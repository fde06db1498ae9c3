/* overlay.c - draw tracked objects (mask fill and outline, box, "#id label state" tag) onto RGB
 * frames, and the overlay video writer (H.264 through libx264 when FFmpeg has it, else MPEG-4
 * part 2). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "codec_internal.h"
#include "vt_codec.h"

/* ---------------------------------------------------------------------------------------------
 * Drawing
 * ------------------------------------------------------------------------------------------- */

void vt_overlay_style_default(vt_overlay_style *style) {
    style->fill_alpha = 110;
    style->outline = 2;
    style->box = 2;
    style->text_scale = 2;
}

void vt_overlay_id_color(int id, uint8_t rgb[3]) {
    /* Golden-ratio steps around the hue circle keep consecutive ids far apart. */
    double hue = fmod((double)(unsigned)id * 0.6180339887498949, 1.0) * 6.0;
    double s = 0.8, v = 1.0;
    int i = (int)hue;
    double f = hue - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    /* (r, g, b) in each sixth of the hue circle */
    const double sextant[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    for (int k = 0; k < 3; k++)
        rgb[k] = (uint8_t)lrint(sextant[i % 6][k] * 255);
}

static inline void blend(uint8_t *px, const uint8_t c[3], int a) {
    for (int k = 0; k < 3; k++)
        px[k] = (uint8_t)((c[k] * a + px[k] * (255 - a) + 127) / 255);
}

static void fill_rect(uint8_t *rgb, int w, int h, int ls, int x0, int y0, int x1, int y1,
                      const uint8_t c[3], int a) {
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > w)
        x1 = w;
    if (y1 > h)
        y1 = h;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            blend(rgb + (ptrdiff_t)y * ls + 3 * x, c, a);
}

/* `text` in the font on a box of colour bg, its top-left corner at (x0, y0), moved left and up
 * as far as it takes to stay inside the w x h image, and cut to the characters that fit. */
static void draw_text(uint8_t *rgb, int w, int h, int ls, int x0, int y0, const char *text,
                      int scale, const uint8_t bg[3]) {
    static const uint8_t black[3] = {0, 0, 0}, white[3] = {255, 255, 255};
    int n = (int)strlen(text);
    int cw = (VTC_FONT_W + 1) * scale, th = (VTC_FONT_H + 2) * scale;
    /* Dark text on light colours, light text on dark ones (ITU-R BT.601 luma). */
    int luma = (299 * bg[0] + 587 * bg[1] + 114 * bg[2]) / 1000;
    const uint8_t *fg = luma > 140 ? black : white;

    if (n > (w - scale) / cw)
        n = (w - scale) / cw > 0 ? (w - scale) / cw : 0;
    if (x0 > w - (n * cw + scale))
        x0 = w - (n * cw + scale);
    if (y0 > h - th)
        y0 = h - th;
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    fill_rect(rgb, w, h, ls, x0, y0, x0 + n * cw + scale, y0 + th, bg, 220);
    for (int i = 0; i < n; i++) {
        uint8_t rows[VTC_FONT_H];
        vtc_font_rows((unsigned char)text[i], rows);
        for (int gy = 0; gy < VTC_FONT_H; gy++)
            for (int gx = 0; gx < VTC_FONT_W; gx++)
                if (rows[gy] >> (VTC_FONT_W - 1 - gx) & 1) {
                    int px = x0 + scale + i * cw + gx * scale, py = y0 + scale + gy * scale;
                    fill_rect(rgb, w, h, ls, px, py, px + scale, py + scale, fg, 255);
                }
    }
}

/* Does the pixel `off` pixels along an edge belong to a dash? */
static inline int on_dash(int64_t off) {
    return off % (VT_OVERLAY_DASH + VT_OVERLAY_GAP) < VT_OVERLAY_DASH;
}

/* The outline of box b (x, y, w, h), `t` pixels wide inside it, solid or dashed, clipped to the
 * image. Dashes are counted from the box's own corner, so they stay put as the box is clipped. */
static void draw_box(uint8_t *rgb, int w, int h, int ls, const int b[4], int t, int dashed,
                     const uint8_t c[3]) {
    int64_t bx0 = b[0], by0 = b[1], bx1 = (int64_t)b[0] + b[2], by1 = (int64_t)b[1] + b[3];
    if (b[2] <= 0 || b[3] <= 0 || t <= 0 || bx1 <= 0 || by1 <= 0 || bx0 >= w || by0 >= h)
        return;
    int64_t x0 = bx0 > 0 ? bx0 : 0, y0 = by0 > 0 ? by0 : 0;
    int64_t x1 = bx1 < w ? bx1 : w, y1 = by1 < h ? by1 : h;
    for (int64_t y = y0; y < y1; y++) {
        uint8_t *row = rgb + (ptrdiff_t)y * ls;
        int horiz = y < by0 + t || y >= by1 - t; /* a row of the top or bottom edge */
        int vdash = !dashed || on_dash(y - by0);
        for (int64_t x = x0; x < x1; x++) {
            int vert = x < bx0 + t || x >= bx1 - t;
            if ((horiz && (!dashed || on_dash(x - bx0))) || (vert && vdash))
                blend(row + 3 * x, c, 255);
            else if (!horiz && x < bx1 - t) /* skip the inside of the box */
                x = bx1 - t - 1;
        }
    }
}

static const char *state_word(vt_overlay_state st) {
    switch (st) {
    case VT_OVERLAY_TRACKING:
        return "";
    case VT_OVERLAY_OCCLUDED:
        return " occluded";
    case VT_OVERLAY_RECOVERED:
        return " recovered";
    case VT_OVERLAY_LOST:
        return " lost";
    }
    return "";
}

void vt_overlay_draw(uint8_t *rgb, int w, int h, int linesize, const uint8_t *labels,
                     const vt_overlay_object *objs, int nobj, const vt_overlay_style *style) {
    vt_overlay_style def;
    int16_t slot[256];
    uint8_t col[256][3];
    int x0[256], y0[256], x1[256], y1[256];

    if (!rgb || !objs || nobj <= 0 || w <= 0 || h <= 0 || linesize < 3 * w)
        return;
    if (!style) {
        vt_overlay_style_default(&def);
        style = &def;
    }
    if (nobj > 256)
        nobj = 256;
    for (int i = 0; i < 256; i++)
        slot[i] = -1;
    for (int i = 0; i < nobj; i++) {
        int l = objs[i].index;
        vt_overlay_id_color(objs[i].id, col[i]);
        x0[i] = w;
        y0[i] = h;
        x1[i] = y1[i] = -1;
        if (l != 0 && l != 255) /* background and void are never objects */
            slot[l] = (int16_t)i;
    }

    /* Fill and the masks' bounding boxes in one pass. */
    for (int y = 0; labels && y < h; y++) {
        const uint8_t *lr = labels + (size_t)y * w;
        uint8_t *pr = rgb + (ptrdiff_t)y * linesize;
        for (int x = 0; x < w; x++) {
            int i = slot[lr[x]];
            if (i < 0)
                continue;
            if (style->fill_alpha > 0 && objs[i].state != VT_OVERLAY_LOST)
                blend(pr + 3 * x, col[i], style->fill_alpha);
            if (x < x0[i])
                x0[i] = x;
            if (x > x1[i])
                x1[i] = x;
            if (y < y0[i])
                y0[i] = y;
            y1[i] = y;
        }
    }

    /* Outline: every object pixel with a 4-neighbour outside the object (or the image edge)
     * paints an outline-sized square. Reads only the label map, so order does not matter. */
    if (labels && style->outline > 0) {
        int k = style->outline, lo = (k - 1) / 2;
        for (int y = 0; y < h; y++) {
            const uint8_t *lr = labels + (size_t)y * w;
            for (int x = 0; x < w; x++) {
                int l = lr[x], i = slot[l];
                if (i < 0)
                    continue;
                if (x > 0 && x < w - 1 && y > 0 && y < h - 1 && lr[x - 1] == l && lr[x + 1] == l &&
                    lr[x - w] == l && lr[x + w] == l)
                    continue;
                fill_rect(rgb, w, h, linesize, x - lo, y - lo, x - lo + k, y - lo + k, col[i], 255);
            }
        }
    }

    /* Boxes over the masks, then every tag over everything. */
    for (int i = 0; i < nobj && style->box > 0; i++)
        draw_box(rgb, w, h, linesize, objs[i].box, style->box,
                 objs[i].state == VT_OVERLAY_OCCLUDED || objs[i].state == VT_OVERLAY_LOST, col[i]);
    if (style->text_scale > 0) {
        int sc = style->text_scale, th = (VTC_FONT_H + 2) * sc;
        for (int i = 0; i < nobj; i++) {
            const vt_overlay_object *o = &objs[i];
            int has_box = o->box[2] > 0 && o->box[3] > 0;
            if (!has_box && x1[i] < 0)
                continue; /* nothing of it drawn: no tag either */
            char text[128];
            const char *sep = o->label && o->label[0] ? " " : "";
            snprintf(text, sizeof(text), "#%d%s%s%s", o->id, sep, *sep ? o->label : "",
                     state_word(o->state));
            /* Above the corner when there is room, else inside the top edge. */
            int tx = has_box ? o->box[0] : x0[i], ty = has_box ? o->box[1] : y0[i];
            draw_text(rgb, w, h, linesize, tx, ty - th - 1 >= 0 ? ty - th - 1 : ty, text, sc,
                      col[i]);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * The video writer
 * ------------------------------------------------------------------------------------------- */

void vt_overlay_opts_default(vt_overlay_opts *opts) {
    memset(opts, 0, sizeof(*opts));
    opts->fps_num = 25;
    opts->fps_den = 1;
    opts->crf = 23;
    vt_overlay_style_default(&opts->style);
}

struct vt_overlay {
    char *path;
    AVFormatContext *oc;
    AVCodecContext *enc;
    AVStream *st;
    AVFrame *yuv;
    AVPacket *pkt;
    struct SwsContext *sws;
    uint8_t *work; /* padded RGB copy we draw on: eh rows of work_ls bytes */
    int work_ls;   /* 3*ew rounded up to 64: swscale's SIMD reads whole vectors */
    int w, h, ew, eh;
    int64_t next_pts;
    int header_written, closed, failed;
    vt_overlay_style style;
};

void vt_overlay_free(vt_overlay **pov) {
    vt_overlay *ov;
    if (!pov || !*pov)
        return;
    ov = *pov;
    if (ov->oc && !(ov->oc->oformat->flags & AVFMT_NOFILE))
        avio_closep(&ov->oc->pb);
    avformat_free_context(ov->oc);
    avcodec_free_context(&ov->enc);
    av_frame_free(&ov->yuv);
    av_packet_free(&ov->pkt);
    sws_freeContext(ov->sws);
    av_freep(&ov->work);
    av_freep(&ov->path);
    av_freep(pov);
}

#define NOMEM()                                                                                    \
    do {                                                                                           \
        ret = vtc_fail(AVERROR(ENOMEM), err, errlen, "%s: out of memory", path);                   \
        goto fail;                                                                                 \
    } while (0)

int vt_overlay_new(vt_overlay **out, const char *path, int w, int h, const vt_overlay_opts *opts,
                   char *err, size_t errlen) {
    char ebuf[AV_ERROR_MAX_STRING_SIZE];
    vt_overlay_opts def;
    vt_overlay *ov = NULL;
    const AVCodec *codec;
    int ret;

    if (!out || !path)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "vt_overlay_new: NULL argument");
    *out = NULL;
    if (!opts) {
        vt_overlay_opts_default(&def);
        opts = &def;
    }
    if (w <= 0 || h <= 0 || av_image_check_size((unsigned)w, (unsigned)h, 0, NULL) < 0)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "%s: bad frame size %dx%d", path, w, h);
    if (opts->fps_num <= 0 || opts->fps_den <= 0)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "%s: bad fps %d/%d", path, opts->fps_num,
                        opts->fps_den);
    if (opts->crf < 0 || opts->crf > 51)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "%s: bad crf %d (0..51)", path, opts->crf);
    if (opts->encoder) {
        codec = avcodec_find_encoder_by_name(opts->encoder);
        if (!codec || codec->type != AVMEDIA_TYPE_VIDEO)
            return vtc_fail(AVERROR_ENCODER_NOT_FOUND, err, errlen,
                            "%s: FFmpeg has no video encoder '%s'", path, opts->encoder);
    } else {
        codec = avcodec_find_encoder_by_name("libx264");
        if (!codec)
            codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
        if (!codec)
            return vtc_fail(AVERROR_ENCODER_NOT_FOUND, err, errlen,
                            "%s: FFmpeg has neither libx264 nor an MPEG-4 encoder", path);
    }

    ov = av_mallocz(sizeof(*ov));
    if (!ov)
        return vtc_fail(AVERROR(ENOMEM), err, errlen, "%s: out of memory", path);
    ov->w = w;
    ov->h = h;
    /* 4:2:0 needs even sizes: pad by repeating the last column/row. */
    ov->ew = (w + 1) & ~1;
    ov->eh = (h + 1) & ~1;
    ov->style = opts->style;
    ov->path = av_strdup(path);
    ov->pkt = av_packet_alloc();
    ov->yuv = av_frame_alloc();
    ov->work_ls = FFALIGN(ov->ew * 3, 64);
    /* One spare row: the converter's vector loads may run past the last pixel. */
    ov->work = av_mallocz((size_t)ov->work_ls * (ov->eh + 1));
    if (!ov->path || !ov->pkt || !ov->yuv || !ov->work)
        NOMEM();

    ret = avformat_alloc_output_context2(&ov->oc, NULL, NULL, path);
    if (ret < 0 || !ov->oc) {
        vtc_fail(ret < 0 ? ret : AVERROR_MUXER_NOT_FOUND, err, errlen,
                 "%s: no container for this file name: %s", path,
                 vtc_averr(ret < 0 ? ret : AVERROR_MUXER_NOT_FOUND, ebuf, sizeof(ebuf)));
        ret = ret < 0 ? ret : AVERROR_MUXER_NOT_FOUND;
        goto fail;
    }
    ov->enc = avcodec_alloc_context3(codec);
    if (!ov->enc)
        NOMEM();
    ov->enc->width = ov->ew;
    ov->enc->height = ov->eh;
    ov->enc->pix_fmt = AV_PIX_FMT_YUV420P;
    ov->enc->time_base = (AVRational){opts->fps_den, opts->fps_num};
    ov->enc->framerate = (AVRational){opts->fps_num, opts->fps_den};
    ov->enc->gop_size = 2 * (opts->fps_num / opts->fps_den > 0 ? opts->fps_num / opts->fps_den : 1);
    /* We convert with swscale's BT.601 limited-range matrix: say so in the stream. */
    ov->enc->colorspace = AVCOL_SPC_SMPTE170M;
    ov->enc->color_range = AVCOL_RANGE_MPEG;
    if (codec->id == AV_CODEC_ID_H264) {
        av_opt_set(ov->enc->priv_data, "preset", "veryfast", 0);
        av_opt_set_int(ov->enc->priv_data, "crf", opts->crf, 0);
    } else {
        /* A fixed quantiser roughly as good as the requested CRF (23 -> q 4). */
        int q = opts->crf / 6;
        ov->enc->flags |= AV_CODEC_FLAG_QSCALE;
        ov->enc->global_quality = FF_QP2LAMBDA * (q < 2 ? 2 : q > 31 ? 31 : q);
    }
    if (ov->oc->oformat->flags & AVFMT_GLOBALHEADER)
        ov->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((ret = avcodec_open2(ov->enc, codec, NULL)) < 0) {
        vtc_fail(ret, err, errlen, "%s: cannot open the %s encoder: %s", path, codec->name,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto fail;
    }
    ov->st = avformat_new_stream(ov->oc, NULL);
    if (!ov->st)
        NOMEM();
    ov->st->time_base = ov->enc->time_base;
    ov->st->avg_frame_rate = ov->enc->framerate;
    if ((ret = avcodec_parameters_from_context(ov->st->codecpar, ov->enc)) < 0)
        NOMEM();
    if (!(ov->oc->oformat->flags & AVFMT_NOFILE) &&
        (ret = avio_open(&ov->oc->pb, path, AVIO_FLAG_WRITE)) < 0) {
        vtc_fail(ret, err, errlen, "%s: cannot create: %s", path,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto fail;
    }
    if ((ret = avformat_write_header(ov->oc, NULL)) < 0) {
        vtc_fail(ret, err, errlen, "%s: cannot write the header: %s", path,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto fail;
    }
    ov->header_written = 1;

    ov->yuv->format = AV_PIX_FMT_YUV420P;
    ov->yuv->width = ov->ew;
    ov->yuv->height = ov->eh;
    if ((ret = av_frame_get_buffer(ov->yuv, 0)) < 0)
        NOMEM();
    ov->sws = sws_getContext(ov->ew, ov->eh, AV_PIX_FMT_RGB24, ov->ew, ov->eh, AV_PIX_FMT_YUV420P,
                             SWS_BILINEAR, NULL, NULL, NULL);
    if (!ov->sws)
        NOMEM();
    *out = ov;
    return 0;

fail:
    vt_overlay_free(&ov);
    return ret;
}
#undef NOMEM

/* Move every packet the encoder has ready into the file. */
static int drain(vt_overlay *ov, char *err, size_t errlen) {
    char ebuf[AV_ERROR_MAX_STRING_SIZE];
    int ret;
    while ((ret = avcodec_receive_packet(ov->enc, ov->pkt)) >= 0) {
        av_packet_rescale_ts(ov->pkt, ov->enc->time_base, ov->st->time_base);
        ov->pkt->stream_index = ov->st->index;
        if ((ret = av_interleaved_write_frame(ov->oc, ov->pkt)) < 0)
            return vtc_fail(ret, err, errlen, "%s: cannot write: %s", ov->path,
                            vtc_averr(ret, ebuf, sizeof(ebuf)));
    }
    if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
        return 0;
    return vtc_fail(ret, err, errlen, "%s: encoder failed: %s", ov->path,
                    vtc_averr(ret, ebuf, sizeof(ebuf)));
}

int vt_overlay_write(vt_overlay *ov, const uint8_t *rgb, int w, int h, int linesize,
                     const uint8_t *labels, const vt_overlay_object *objs, int nobj, char *err,
                     size_t errlen) {
    char ebuf[AV_ERROR_MAX_STRING_SIZE];
    const uint8_t *src[1];
    int src_ls[1], ret, wls;

    if (!ov || !rgb || linesize < 3 * w)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "vt_overlay_write: bad argument");
    if (w != ov->w || h != ov->h)
        return vtc_fail(AVERROR(EINVAL), err, errlen,
                        "%s: the frame is %dx%d but the video was started at %dx%d", ov->path, w, h,
                        ov->w, ov->h);
    if (ov->closed || ov->failed)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "%s: writer is %s", ov->path,
                        ov->closed ? "closed" : "in error");
    wls = ov->work_ls;
    for (int y = 0; y < ov->eh; y++) {
        const uint8_t *s = rgb + (ptrdiff_t)(y < ov->h ? y : ov->h - 1) * linesize;
        uint8_t *d = ov->work + (size_t)y * wls;
        memcpy(d, s, (size_t)ov->w * 3);
        if (ov->ew > ov->w)
            memcpy(d + 3 * ov->w, d + 3 * (ov->w - 1), 3);
    }
    vt_overlay_draw(ov->work, ov->w, ov->h, wls, labels, objs, nobj, &ov->style);
    if ((ret = av_frame_make_writable(ov->yuv)) < 0) {
        ov->failed = 1;
        return vtc_fail(ret, err, errlen, "%s: out of memory", ov->path);
    }
    src[0] = ov->work;
    src_ls[0] = wls;
    sws_scale(ov->sws, src, src_ls, 0, ov->eh, ov->yuv->data, ov->yuv->linesize);
    ov->yuv->pts = ov->next_pts++;
    if ((ret = avcodec_send_frame(ov->enc, ov->yuv)) < 0) {
        ov->failed = 1;
        return vtc_fail(ret, err, errlen, "%s: encoder refused a frame: %s", ov->path,
                        vtc_averr(ret, ebuf, sizeof(ebuf)));
    }
    if ((ret = drain(ov, err, errlen)) < 0)
        ov->failed = 1;
    return ret;
}

int vt_overlay_close(vt_overlay *ov, char *err, size_t errlen) {
    char ebuf[AV_ERROR_MAX_STRING_SIZE];
    int ret;

    if (!ov)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "vt_overlay_close: NULL writer");
    if (ov->closed)
        return 0;
    ov->closed = 1;
    if ((ret = avcodec_send_frame(ov->enc, NULL)) < 0) {
        vtc_fail(ret, err, errlen, "%s: cannot flush the encoder: %s", ov->path,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        return ret;
    }
    if ((ret = drain(ov, err, errlen)) < 0)
        return ret;
    if ((ret = av_write_trailer(ov->oc)) < 0)
        return vtc_fail(ret, err, errlen, "%s: cannot write the trailer: %s", ov->path,
                        vtc_averr(ret, ebuf, sizeof(ebuf)));
    if (!(ov->oc->oformat->flags & AVFMT_NOFILE) && (ret = avio_closep(&ov->oc->pb)) < 0)
        return vtc_fail(ret, err, errlen, "%s: cannot close: %s", ov->path,
                        vtc_averr(ret, ebuf, sizeof(ebuf)));
    return 0;
}

int64_t vt_overlay_frames(const vt_overlay *ov) {
    return ov ? ov->next_pts : 0;
}
