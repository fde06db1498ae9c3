/* train_sources.h - `vtrack train`'s data loading: decode every source once into the trainer's
 * bounded frame cache (train/include/vt_train.h, vt_train_data). */
#ifndef VT_CLI_TRAIN_SOURCES_H
#define VT_CLI_TRAIN_SOURCES_H

#include <stdint.h>
#include <stdio.h>

#include "vt_train.h"

typedef struct vt_train_load_opts {
    int short_side;   /* frames are scaled so their short side is this many pixels */
    size_t cap_bytes; /* cache cap */
    long max_frames;  /* per source (a camera or stream never ends) */
    FILE *log;        /* one line per source; NULL: quiet */
    /* Optional: offered every decoded frame first, at source size (rows of linesize bytes);
     * returns 1 to hold it back from the cache (per-clip adaptation's check frames), 0 to
     * cache it, or a negative errno to stop. NULL: every frame is cached. */
    int (*hold)(void *opaque, int64_t index, const uint8_t *rgb, int w, int h, int linesize);
    void *hold_opaque;
} vt_train_load_opts;

/*
 * Decode `paths` into a new cache *out. A path is a video file (anything codec/ reads, URLs
 * included), a folder of numbered frames, or a folder of videos (every file with a video
 * extension in it, in name order). `desc` receives "name:frames, name:frames, ..." (truncated
 * to len). Returns 0, or a negative error with a message naming the path in err; the caller
 * frees *out.
 */
int vt_train_load(char *const *paths, int npaths, const vt_train_load_opts *o, vt_train_data **out,
                  char *desc, size_t len, char *err, size_t errlen);

#endif
