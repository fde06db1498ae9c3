/*
 * overlay_writer.h - an overlay video of a stream's first seconds (the objects drawn on the
 * frames), written by a thread of its own so that neither the tracker nor the loop waits for the
 * encoder.
 *
 * The tracker thread's event callback copies the frame and its label map into one of a few
 * slots (none free: the frame is skipped and counted); the writer thread encodes from the slots
 * (codec/'s vt_overlay) and closes the file after the configured duration of source time.
 */
#ifndef VTD_OVERLAY_WRITER_H
#define VTD_OVERLAY_WRITER_H

#include "vt_stream.h"

typedef struct vtd_overlay vtd_overlay;

/* Start the writer thread for stream `name`; the file is created on the first frame. The strings
 * are copied. 0 or a negative error. */
int vtd_overlay_new(const char *name, const char *path, double seconds, vtd_overlay **out);

/* Hand a tracked frame over (tracker thread; never blocks on the encoder). */
void vtd_overlay_feed(vtd_overlay *ov, const vt_frame *f, const vt_track_result *r);

/* Finish the file (playable however early), join the thread, free; *ov = NULL; accepts NULL. */
void vtd_overlay_free(vtd_overlay **ov);

#endif
