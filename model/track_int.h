/* track_int.h - internals shared by the tracker's sources (track.c, track_params.c, shape.c). */
#ifndef VT_TRACK_INT_H
#define VT_TRACK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "vt_model.h"

/* Check every parameter's range; -EINVAL with the field named in err. */
int vtm_tracker_params_check(const vt_tracker_params *p, char *err, size_t errlen);

/* Rasterise a shape into mask[w*h] (1 inside, 0 outside). -EINVAL when a mask or label
 * image's size differs from w x h. */
int vtm_shape_rasterise(const vt_shape *s, uint8_t *mask, int w, int h);

#endif
