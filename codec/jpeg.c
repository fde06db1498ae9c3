/* jpeg.c - JPEG stills with FFmpeg's mjpeg encoder (vt_jpeg_*, vt_codec.h). */
#include <errno.h>
#include <stdlib.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "codec_internal.h"
#include "vt_codec.h"

struct vt_jpeg {
    int quality; /* 1..100 */
    int w, h;    /* size the encoder is open for, 0 before the first frame */
    AVCodecContext *enc;
    struct SwsContext *sws;
    AVFrame *yuv;
    AVPacket *pkt;
};

int vt_jpeg_new(int quality, vt_jpeg **out) {
    *out = NULL;
    if (quality < 1 || quality > 100)
        return AVERROR(EINVAL);
    vt_jpeg *j = calloc(1, sizeof *j);
    if (!j || !(j->pkt = av_packet_alloc())) {
        free(j);
        return AVERROR(ENOMEM);
    }
    j->quality = quality;
    *out = j;
    return 0;
}

static void close_encoder(vt_jpeg *j) {
    avcodec_free_context(&j->enc);
    sws_freeContext(j->sws);
    j->sws = NULL;
    av_frame_free(&j->yuv);
    j->w = j->h = 0;
}

void vt_jpeg_free(vt_jpeg **pj) {
    vt_jpeg *j = *pj;
    if (!j)
        return;
    close_encoder(j);
    av_packet_free(&j->pkt);
    free(j);
    *pj = NULL;
}

/* Quality 1..100 to the encoder's qscale 31..2 (lower is better). */
static int qscale_of(int quality) {
    return 31 - (quality - 1) * 29 / 99;
}

static int open_encoder(vt_jpeg *j, int w, int h, char *err, size_t errlen) {
    close_encoder(j);
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (!codec)
        return vtc_fail(AVERROR_ENCODER_NOT_FOUND, err, errlen, "no mjpeg encoder in FFmpeg");
    if (!(j->enc = avcodec_alloc_context3(codec)) || !(j->yuv = av_frame_alloc()))
        return vtc_fail(AVERROR(ENOMEM), err, errlen, "out of memory");
    j->enc->width = w;
    j->enc->height = h;
    j->enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
    j->enc->time_base = (AVRational){1, 25};
    j->enc->flags |= AV_CODEC_FLAG_QSCALE;
    j->enc->global_quality = FF_QP2LAMBDA * qscale_of(j->quality);
    j->enc->thread_count = 1;
    char eb[128];
    int ret = avcodec_open2(j->enc, codec, NULL);
    if (ret < 0)
        return vtc_fail(ret, err, errlen, "mjpeg encoder: %s", vtc_averr(ret, eb, sizeof eb));
    j->yuv->format = AV_PIX_FMT_YUVJ420P;
    j->yuv->width = w;
    j->yuv->height = h;
    j->yuv->quality = j->enc->global_quality;
    if ((ret = av_frame_get_buffer(j->yuv, 0)) < 0)
        return vtc_fail(ret, err, errlen, "out of memory");
    j->sws = sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h, AV_PIX_FMT_YUVJ420P, SWS_BILINEAR, NULL,
                            NULL, NULL);
    if (!j->sws)
        return vtc_fail(AVERROR(ENOMEM), err, errlen, "cannot convert RGB24 to YUVJ420P");
    j->w = w;
    j->h = h;
    return 0;
}

int vt_jpeg_encode(vt_jpeg *j, const uint8_t *rgb, int w, int h, int linesize, const uint8_t **data,
                   size_t *len, char *err, size_t errlen) {
    *data = NULL;
    *len = 0;
    if (w < 1 || h < 1 || w > 16384 || h > 16384 || linesize < 3 * w)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "bad frame size %dx%d", w, h);
    int ret;
    if ((w != j->w || h != j->h) && (ret = open_encoder(j, w, h, err, errlen)) < 0) {
        close_encoder(j);
        return ret;
    }
    if ((ret = av_frame_make_writable(j->yuv)) < 0)
        return vtc_fail(ret, err, errlen, "out of memory");
    const uint8_t *src[4] = {rgb};
    const int stride[4] = {linesize};
    sws_scale(j->sws, src, stride, 0, h, j->yuv->data, j->yuv->linesize);
    j->yuv->pts++;
    char eb[128];
    av_packet_unref(j->pkt);
    if ((ret = avcodec_send_frame(j->enc, j->yuv)) < 0 ||
        (ret = avcodec_receive_packet(j->enc, j->pkt)) < 0)
        return vtc_fail(ret, err, errlen, "mjpeg encoder: %s", vtc_averr(ret, eb, sizeof eb));
    *data = j->pkt->data;
    *len = (size_t)j->pkt->size;
    return 0;
}
