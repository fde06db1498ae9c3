/* mask_png.c - DAVIS mask PNGs (grey and palette) through FFmpeg's PNG codec. */
#include <errno.h>
#include <sys/stat.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>

#include "codec_internal.h"
#include "vt_codec.h"

/* Masks are small; a bound keeps a hostile file from making us read gigabytes. */
#define MASK_MAX_FILE_BYTES (256 << 20)

void vt_mask_palette_color(int index, uint8_t rgb[3]) {
    /* The VOC/DAVIS palette: bits 0, 1, 2 of the index go to the top bit of R, G, B, bits 3, 4,
     * 5 to the next bit, and so on, so that low indices get well-separated colours. */
    int r = 0, g = 0, b = 0;
    int c = index & 255;
    for (int j = 7; j >= 0 && c; j--, c >>= 3) {
        r |= ((c >> 0) & 1) << j;
        g |= ((c >> 1) & 1) << j;
        b |= ((c >> 2) & 1) << j;
    }
    rgb[0] = (uint8_t)r;
    rgb[1] = (uint8_t)g;
    rgb[2] = (uint8_t)b;
}

/* Read the whole file into an av_malloc'd buffer with FFmpeg's input padding zeroed. */
static int read_file(const char *path, uint8_t **data, size_t *size, char *err, size_t errlen) {
    char ebuf[AV_ERROR_MAX_STRING_SIZE];
    uint8_t *buf = NULL;
    long len;
    int ret = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        ret = AVERROR(errno);
        return vtc_fail(ret, err, errlen, "cannot open mask '%s': %s", path,
                        vtc_averr(ret, ebuf, sizeof(ebuf)));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && !S_ISREG(sb.st_mode)) {
        ret = AVERROR(EINVAL);
        vtc_fail(ret, err, errlen, "mask '%s' is not a file", path);
        goto end;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        ret = AVERROR(errno);
        vtc_fail(ret, err, errlen, "cannot size mask '%s': %s", path,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto end;
    }
    if (len == 0 || len > MASK_MAX_FILE_BYTES) {
        ret = AVERROR_INVALIDDATA;
        vtc_fail(ret, err, errlen, "mask '%s' has %ld bytes (expected 1..%d)", path, len,
                 MASK_MAX_FILE_BYTES);
        goto end;
    }
    buf = av_malloc((size_t)len + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!buf) {
        ret = AVERROR(ENOMEM);
        vtc_fail(ret, err, errlen, "out of memory reading mask '%s'", path);
        goto end;
    }
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        ret = ferror(f) ? AVERROR(EIO) : AVERROR_INVALIDDATA;
        vtc_fail(ret, err, errlen, "short read on mask '%s'", path);
        goto end;
    }
    memset(buf + len, 0, AV_INPUT_BUFFER_PADDING_SIZE);
    *data = buf;
    *size = (size_t)len;
    buf = NULL;
end:
    av_free(buf);
    fclose(f);
    return ret;
}

/* A mask is the size of a frame: refuse what no source delivers (see VT_SOURCE_MAX_PIXELS). */
static int check_size(const char *path, int64_t w, int64_t h, char *err, size_t errlen) {
    if (w <= 0 || h <= 0)
        return vtc_fail(AVERROR_INVALIDDATA, err, errlen, "mask '%s' has bad size %lldx%lld", path,
                        (long long)w, (long long)h);
    if (w > VT_SOURCE_MAX_PIXELS / h) /* w * h could overflow: 2^32 a side */
        return vtc_fail(AVERROR(E2BIG), err, errlen,
                        "mask '%s' is %lldx%lld, larger than vtrack takes (%d pixels, 8K UHD)",
                        path, (long long)w, (long long)h, VT_SOURCE_MAX_PIXELS);
    if (w > VT_SOURCE_MAX_SIDE || h > VT_SOURCE_MAX_SIDE)
        return vtc_fail(AVERROR(E2BIG), err, errlen,
                        "mask '%s' is %lldx%lld, longer than vtrack takes (%d pixels a side)", path,
                        (long long)w, (long long)h, VT_SOURCE_MAX_SIDE);
    return 0;
}

/* The size the IHDR chunk declares (the first chunk, as PNG requires), checked before the decoder
 * allocates a picture of that size: a 70-byte file can claim 12000x12000 at 64 bits a pixel. A
 * file without it is left to the decoder, which refuses it. */
static int check_declared_size(const char *path, const uint8_t *data, size_t size, char *err,
                               size_t errlen) {
    if (size < 24 || memcmp(data + 12, "IHDR", 4) != 0)
        return 0;
    uint32_t w =
        (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19];
    uint32_t h =
        (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23];
    return check_size(path, w, h, err, errlen);
}

int vt_mask_read_png(const char *path, int *w, int *h, uint8_t **labels, int *is_palette, char *err,
                     size_t errlen) {
    char ebuf[AV_ERROR_MAX_STRING_SIZE];
    const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_PNG);
    AVCodecContext *ctx = NULL;
    AVPacket *pkt = NULL;
    AVFrame *frame = NULL;
    uint8_t *data = NULL, *out = NULL;
    size_t size = 0;
    int ret;

    if (!path || !w || !h || !labels)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "vt_mask_read_png: NULL argument");
    *labels = NULL;
    if (!codec)
        return vtc_fail(AVERROR_DECODER_NOT_FOUND, err, errlen,
                        "FFmpeg has no PNG decoder (reading mask '%s')", path);
    if ((ret = read_file(path, &data, &size, err, errlen)) < 0)
        return ret;
    if (size < 8 || memcmp(data, "\x89PNG\r\n\x1a\n", 8) != 0) {
        ret = vtc_fail(AVERROR_INVALIDDATA, err, errlen, "mask '%s' is not a PNG file", path);
        goto end;
    }
    if ((ret = check_declared_size(path, data, size, err, errlen)) < 0)
        goto end;
    ctx = avcodec_alloc_context3(codec);
    pkt = av_packet_alloc();
    frame = av_frame_alloc();
    if (!ctx || !pkt || !frame) {
        ret = vtc_fail(AVERROR(ENOMEM), err, errlen, "out of memory reading mask '%s'", path);
        goto end;
    }
    ctx->thread_count = 1;
    ctx->max_pixels = VT_SOURCE_MAX_PIXELS; /* whatever the header said */
    if ((ret = avcodec_open2(ctx, codec, NULL)) < 0) {
        vtc_fail(ret, err, errlen, "cannot open the PNG decoder for '%s': %s", path,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto end;
    }
    if ((ret = av_packet_from_data(pkt, data, (int)size)) < 0) {
        vtc_fail(ret, err, errlen, "cannot wrap mask '%s': %s", path,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto end;
    }
    data = NULL; /* now owned by pkt */
    ret = avcodec_send_packet(ctx, pkt);
    if (ret >= 0)
        ret = avcodec_receive_frame(ctx, frame);
    if (ret == AVERROR(EAGAIN)) {
        /* A frame-threaded decoder may hold the picture until drained. */
        avcodec_send_packet(ctx, NULL);
        ret = avcodec_receive_frame(ctx, frame);
    }
    if (ret < 0) {
        vtc_fail(ret, err, errlen, "cannot decode mask '%s': %s", path,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto end;
    }
    if ((ret = check_size(path, frame->width, frame->height, err, errlen)) < 0)
        goto end;
    out = malloc((size_t)frame->width * frame->height);
    if (!out) {
        ret = vtc_fail(AVERROR(ENOMEM), err, errlen, "out of memory for mask '%s' (%dx%d)", path,
                       frame->width, frame->height);
        goto end;
    }
    switch (frame->format) {
    case AV_PIX_FMT_GRAY8:
    case AV_PIX_FMT_PAL8:
        for (int y = 0; y < frame->height; y++)
            memcpy(out + (size_t)y * frame->width,
                   frame->data[0] + (ptrdiff_t)y * frame->linesize[0], frame->width);
        break;
    case AV_PIX_FMT_YA8:
        /* Grey with alpha: the grey sample is the label; alpha carries no label meaning. */
        for (int y = 0; y < frame->height; y++) {
            const uint8_t *row = frame->data[0] + (ptrdiff_t)y * frame->linesize[0];
            for (int x = 0; x < frame->width; x++)
                out[(size_t)y * frame->width + x] = row[2 * x];
        }
        break;
    case AV_PIX_FMT_MONOBLACK:
        /* 1-bit grey: white is full intensity, as in an 8-bit {0,255} mask. */
        for (int y = 0; y < frame->height; y++) {
            const uint8_t *row = frame->data[0] + (ptrdiff_t)y * frame->linesize[0];
            for (int x = 0; x < frame->width; x++)
                out[(size_t)y * frame->width + x] = (row[x >> 3] >> (7 - (x & 7))) & 1 ? 255 : 0;
        }
        break;
    default: {
        const char *name = av_get_pix_fmt_name(frame->format);
        ret = vtc_fail(AVERROR_PATCHWELCOME, err, errlen,
                       "mask '%s' has pixel format %s; expected 8-bit grey or palette", path,
                       name ? name : "unknown");
        goto end;
    }
    }
    *w = frame->width;
    *h = frame->height;
    if (is_palette)
        *is_palette = frame->format == AV_PIX_FMT_PAL8;
    *labels = out;
    out = NULL;
    ret = 0;
end:
    free(out);
    av_free(data);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    return ret;
}

int vt_mask_write_png(const char *path, int w, int h, const uint8_t *labels, char *err,
                      size_t errlen) {
    char ebuf[AV_ERROR_MAX_STRING_SIZE];
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
    AVCodecContext *ctx = NULL;
    AVFrame *frame = NULL;
    AVPacket *pkt = NULL;
    FILE *f = NULL;
    int ret;

    if (!path || !labels)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "vt_mask_write_png: NULL argument");
    if (w <= 0 || h <= 0 || av_image_check_size((unsigned)w, (unsigned)h, 0, NULL) < 0)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "mask '%s': bad size %dx%d", path, w, h);
    if (!codec)
        return vtc_fail(AVERROR_ENCODER_NOT_FOUND, err, errlen,
                        "FFmpeg has no PNG encoder (writing mask '%s')", path);
    ctx = avcodec_alloc_context3(codec);
    frame = av_frame_alloc();
    pkt = av_packet_alloc();
    if (!ctx || !frame || !pkt) {
        ret = vtc_fail(AVERROR(ENOMEM), err, errlen, "out of memory writing mask '%s'", path);
        goto end;
    }
    ctx->width = w;
    ctx->height = h;
    ctx->pix_fmt = AV_PIX_FMT_PAL8;
    ctx->time_base = (AVRational){1, 25}; /* encoders insist on one; a still has no timing */
    ctx->thread_count = 1;
    if ((ret = avcodec_open2(ctx, codec, NULL)) < 0) {
        vtc_fail(ret, err, errlen, "cannot open the PNG encoder for '%s': %s", path,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto end;
    }
    frame->format = AV_PIX_FMT_PAL8;
    frame->width = w;
    frame->height = h;
    if ((ret = av_frame_get_buffer(frame, 0)) < 0) {
        vtc_fail(ret, err, errlen, "out of memory writing mask '%s'", path);
        goto end;
    }
    for (int y = 0; y < h; y++)
        memcpy(frame->data[0] + (ptrdiff_t)y * frame->linesize[0], labels + (size_t)y * w, w);
    {
        uint32_t *pal = (uint32_t *)frame->data[1];
        for (int i = 0; i < 256; i++) {
            uint8_t c[3];
            vt_mask_palette_color(i, c);
            pal[i] = 0xFF000000u | (uint32_t)c[0] << 16 | (uint32_t)c[1] << 8 | c[2];
        }
    }
    if ((ret = avcodec_send_frame(ctx, frame)) < 0 || (ret = avcodec_send_frame(ctx, NULL)) < 0) {
        vtc_fail(ret, err, errlen, "cannot encode mask '%s': %s", path,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto end;
    }
    f = fopen(path, "wb");
    if (!f) {
        ret = AVERROR(errno);
        vtc_fail(ret, err, errlen, "cannot create mask '%s': %s", path,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto end;
    }
    while ((ret = avcodec_receive_packet(ctx, pkt)) >= 0) {
        size_t want = (size_t)pkt->size;
        size_t n = fwrite(pkt->data, 1, want, f);
        av_packet_unref(pkt);
        if (n != want) {
            ret = AVERROR(EIO);
            break;
        }
    }
    if (ret == AVERROR_EOF)
        ret = 0;
    if (ret < 0) {
        vtc_fail(ret, err, errlen, "cannot write mask '%s': %s", path,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto end;
    }
    if (fclose(f) != 0) {
        f = NULL;
        ret = AVERROR(errno);
        vtc_fail(ret, err, errlen, "cannot write mask '%s': %s", path,
                 vtc_averr(ret, ebuf, sizeof(ebuf)));
        goto end;
    }
    f = NULL;
end:
    if (f)
        fclose(f);
    av_packet_free(&pkt);
    av_frame_free(&frame);
    avcodec_free_context(&ctx);
    return ret;
}
