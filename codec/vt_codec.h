/* vt_codec.h - every video source through FFmpeg, reconnect policy, PNG masks, overlay video. */
#ifndef VT_CODEC_H
#define VT_CODEC_H
#endif
