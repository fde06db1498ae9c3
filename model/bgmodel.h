/*
 * bgmodel.h - the background of a fixed camera (internal to model/).
 *
 * A camera that does not move sees the same background behind its moving objects. The model
 * keeps, per block of 2x2 processing pixels, the colour of that background and how long it has
 * been seen, and classifies every block of a new frame as background (it shows the known
 * background, or the known background in shadow), foreground, or unknown (no background learnt
 * there yet):
 *
 *   - A block is learnt once it has shown the same colour for VT_BG_LEARN frames in a row, or
 *     for as many as the caller asks where a tracked object may be (the tracker asks for the
 *     time the object takes to move by its own size, and never while it stands still: a
 *     block that does not change while the object walks past its own width is not the
 *     object). The objects in view when tracking starts are therefore never learnt as
 *     background while they stand, and the ground they leave is learnt soon after.
 *   - A learnt block follows slow changes (light, weather) through the frames that match it,
 *     and is replaced when it has shown another colour for VT_BG_RELEARN frames in a row
 *     (a car parked or gone), again no sooner than the caller allows.
 *   - Matching allows the camera's noise, measured each frame as a robust spread of the
 *     differences over the learnt blocks, and shadows: a block darker than the background by a
 *     factor of 0.4 to 0.95 with the same chromaticity still shows the background.
 *   - When under half of the learnt blocks match, the camera has moved (or the light changed
 *     at once): everything is forgotten and learnt again.
 *
 * A camera that moves never lets a block stay the same long enough, so the model stays unknown
 * and changes nothing.
 */
#ifndef VT_BGMODEL_H
#define VT_BGMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "vt_model.h"

/* Classes of a block. */
enum { VT_BG_UNKNOWN = 0, VT_BG_BACKGROUND = 1, VT_BG_FOREGROUND = 2 };

typedef struct vt_bgmodel vt_bgmodel;

/* A model for processing frames of w x h pixels (blocks of 2x2: (w+1)/2 x (h+1)/2). */
int vtm_bgmodel_new(int w, int h, vt_bgmodel **out);
void vtm_bgmodel_free(vt_bgmodel **b);

/* Block grid size. */
void vtm_bgmodel_size(const vt_bgmodel *b, int *bw, int *bh);

/* Bytes held for frames of w x h. */
size_t vtm_bgmodel_bytes(int w, int h);

/*
 * Classify the blocks of `img` (the processing frame, w x h) and learn from it. `hold` gives,
 * per block, how many frames in a row it must show the same colour before it is learnt (0: the
 * default VT_BG_LEARN or VT_BG_RELEARN; 255: never), so the caller can protect the blocks where
 * a tracked object may stand still; NULL = no block held. Returns the share of blocks whose
 * background is known.
 */
double vtm_bgmodel_update(vt_bgmodel *b, const vt_image *img, const uint8_t *hold);

/* The classes of the last frame, one byte per block (VT_BG_*), row-major. */
const uint8_t *vtm_bgmodel_classes(const vt_bgmodel *b);

/* Times the model was reset because the camera moved (for tests and logs). */
int64_t vtm_bgmodel_resets(const vt_bgmodel *b);

/* Frames a block must stay the same to be learnt, and to replace a learnt background. */
#define VT_BG_LEARN   8
#define VT_BG_RELEARN 100

#endif
