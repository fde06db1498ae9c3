/* vt_stream.h - one tracked source: codec source -> model tracker -> results -> events. */
#ifndef VT_STREAM_H
#define VT_STREAM_H
#endif
