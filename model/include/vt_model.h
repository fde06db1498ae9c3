/*
 * vt_model.h - the public interface of vtrack's model library.
 *
 * model/ turns RGB frames into feature maps with a convolutional encoder (or the weight-free
 * `lab` features), and propagates object masks from frame to frame through feature affinities.
 * It knows nothing of FFmpeg, sockets or event loops: frames come in as packed RGB24 buffers.
 *
 * Threading: a vt_model is immutable once loaded and may be shared by any number of threads.
 * A vt_encoder or vt_tracker holds per-user workspaces and is used by one thread at a time.
 *
 * Errors: fallible functions return 0 or a negative errno value (-EINVAL, -ENOMEM, -EIO, ...).
 * Functions that take `char *err, size_t errlen` also write a one-line message there (naming
 * the file, tensor, field or value at fault) when they fail; `err` may be NULL.
 */
#ifndef VT_MODEL_H
#define VT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Images and colour
 * ------------------------------------------------------------------------------------------- */

/* A packed RGB24 image: `h` rows of `linesize` bytes, the first 3*w of each used. Borrowed. */
typedef struct vt_image {
    int w, h;
    int linesize;
    const uint8_t *rgb;
} vt_image;

/*
 * Convert sRGB (D65) to CIE L*a*b*: out is planar float [3][h][w], L in [0,100], a and b in
 * about [-128,127], as OpenCV's float conversion and scikit-image compute it. The caller owns
 * `out` (3*w*h floats).
 */
void vt_lab_from_rgb(const vt_image *img, float *out);

/* ---------------------------------------------------------------------------------------------
 * Models and encoders
 * ------------------------------------------------------------------------------------------- */

/*
 * Architectures (model/arch.c; `vtrack bench encoder` times them):
 *   mast-r18    MAST's ResNet-18 encoder (Lai et al. 2020): output stride 4, 64 channels, Lab.
 *   r18-s8      torchvision ResNet-18 to layer3 at stride 1 (CRW's test encoder): stride 8,
 *               256 channels, RGB with ImageNet statistics.
 *   compact-s8  vtrack's real-time encoder: stride 8, 64 channels, Lab; about 1 GMAC at
 *               448x256, under a tenth of mast-r18 at any size.
 *   lab         no weights: 8x8-cell Lab means with their 3x3 neighbourhood, 27 channels.
 * A weights file is safetensors whose __metadata__ carries vtrack.arch, vtrack.input ("lab" or
 * "rgb"), vtrack.mean and vtrack.std (three numbers each: (x - mean)/std, RGB in [0,1], L in
 * [0,100], a and b in about +-128), vtrack.padding ("zeros", or "reflect" as CRW's encoder)
 * and vtrack.provenance; missing entries take the architecture's defaults. tools/convert.py
 * writes such files from PyTorch checkpoints (MAST, CRW, torchvision, vtrack's own).
 */
typedef struct vt_model vt_model;

/* Feature map produced by an encoder: `c` channels of h*w floats each (CHW). Borrowed from the
 * encoder; valid until its next run or until it is freed. */
typedef struct vt_features {
    int c, h, w;
    int stride; /* input pixels per feature cell (4 or 8) */
    const float *data;
} vt_features;

/*
 * Load a safetensors weights file; the name "lab" gives the weight-free `lab` model (as
 * vt_model_new("lab")). The architecture is read from the `vtrack.arch` metadata;
 * every tensor is checked against it. On success *out owns the weights; free with
 * vt_model_free(). On failure returns a negative errno value and describes the fault in `err`.
 */
int vt_model_load(const char *path, vt_model **out, char *err, size_t errlen);

/*
 * Create a model of architecture `arch` without loading a file: `lab` (no weights), or any
 * learned architecture with weights initialised randomly from `seed` (He init, BN identity),
 * as the untrained baseline and the trainer's starting point.
 */
int vt_model_new(const char *arch, uint64_t seed, vt_model **out, char *err, size_t errlen);

/*
 * Write the model's parameters and metadata (vtrack.arch, vtrack.input, vtrack.mean,
 * vtrack.std, vtrack.padding and every other entry) as an F32 safetensors file, atomically
 * (temporary file, fsync, rename). `lab` models have no tensors and are written empty.
 */
int vt_model_save(const vt_model *m, const char *path, char *err, size_t errlen);

/* Free a model and set *m to NULL; accepts NULL. No encoder or tracker may still use it. */
void vt_model_free(vt_model **m);

/* Architecture name ("mast-r18", "r18-s8", "compact-s8", "lab"); owned by the model. */
const char *vt_model_arch(const vt_model *m);

/* Output stride and feature channels of the model's encoder. */
int vt_model_stride(const vt_model *m);
int vt_model_channels(const vt_model *m);

/* A `__metadata__` value of the weights file, or NULL; owned by the model. */
const char *vt_model_meta(const vt_model *m, const char *key);

/* Set (or replace) a metadata entry, which vt_model_save writes: only on a model no other thread
 * uses yet (the daemon records where an adapted copy came from before it shares it). 0 or
 * -ENOMEM / -EINVAL (NULL key or value). */
int vt_model_set_meta(vt_model *m, const char *key, const char *value);

/* Multiply-accumulates of one forward pass at an input of w x h pixels. */
double vt_model_macs(const vt_model *m, int w, int h);

/* The list of known architecture names, NULL-terminated; static storage. */
const char *const *vt_model_arch_names(void);

typedef struct vt_encoder vt_encoder;

/* Create an encoder (workspaces) for `m`, which must outlive it. */
int vt_encoder_new(const vt_model *m, vt_encoder **out);

/* Free an encoder and set *e to NULL; accepts NULL. */
void vt_encoder_free(vt_encoder **e);

/*
 * Encode one RGB image into features exactly as the architecture defines them (the input
 * conversion and normalisation named by the weights' metadata are applied first; the output is
 * not L2-normalised, the tracker does that). Output size: the encoder's convolution arithmetic
 * applied to h x w (about h/stride x w/stride; exactly ceil(h/8) x ceil(w/8) for the stride-8
 * architectures). The first call at a given input size sizes the workspaces; later calls at
 * the same size allocate nothing. `out` borrows the encoder's buffer. Returns 0, -EINVAL for
 * an unusable image (empty, linesize < 3*w, a side above 16384, or too small for the
 * architecture's padding), or -ENOMEM.
 */
int vt_encoder_run(vt_encoder *e, const vt_image *img, vt_features *out);

/* ---------------------------------------------------------------------------------------------
 * Tracker: mask propagation through a memory of past frames
 * ------------------------------------------------------------------------------------------- */

/* Window radius meaning "search the whole frame". */
#define VT_RADIUS_GLOBAL (-1)

/*
 * Propagation parameters. Fill them with vt_tracker_params_preset() and adjust. Radii are in
 * feature cells. Memory: the frames where objects were given ("anchors", up to max_anchors),
 * long-term frames (every long_every-th frame; long_count of them: the first ones when
 * long_rolling = 0, as MAST keeps frame 5, or the latest ones when long_rolling = 1), and
 * short-term frames (the short_count latest, short_gap apart: t-1, t-1-gap, ...).
 */
typedef struct vt_tracker_params {
    int proc_short;    /* processing size: short side in pixels (0 = source size) */
    int proc_long_max; /* and at most this long side (0 = no limit) */
    int max_objects;   /* objects tracked at once */
    int max_anchors;
    int long_every, long_count, long_rolling;
    int short_count, short_gap;
    int radius_first; /* for anchors; VT_RADIUS_GLOBAL allowed */
    int radius_long;
    int radius_short;
    int roi_age;      /* references at least this old are ROI-localised first (0 = never) */
    int roi_radius;   /* coarse search radius in grid steps */
    int roi_dilation; /* coarse grid step in cells (MAST grows it with age; this is the cap) */
    int topk;         /* candidates kept per cell (0 = all) */
    float temperature;
    int soft_labels;  /* memory keeps soft probabilities (1) or one-hot argmax labels (0) */
    int l2norm;       /* unit-normalise features before the dot products */
    float lost_score; /* confidence under which an object is not seen */
    float lost_area;  /* share of the area its predicted box should show under which an object
                       * is not seen (twice that to be seen again once hidden) */
    int lost_frames;  /* frames an object may stay hidden (occluded) before it is lost */
    int box_refine;   /* turn a box into the mask of what it holds (1) or keep the rectangle */
    float gate;       /* motion gate: an object may only extend this many times the larger side
                       * of its predicted box beyond that box, plus twice the box's position
                       * uncertainty (and, away from other objects, how far its mask has been
                       * reaching beyond its box), at least gate_min cells (0 = no gate) */
    int gate_min;
    int appearance; /* tell each object from what surrounds it by its appearance banks (1) */
    int background; /* learn a fixed camera's background and keep moving objects off it (1) */
    int locate;     /* find each object as a whole by a template of its box (1) */
    int strays;     /* drop labels that do not move with their object, or lie apart from it (1) */
    float behind;   /* depth order on the ground: an object a third of whose predicted box lies
                     * under the box of another that reaches lower by more than this many times
                     * its height is behind that one, and only its motion moves it (0 = off) */
} vt_tracker_params;

/*
 * Fill `p` for `tracker` ("mast" or "colorize") and `profile` ("accurate" or "realtime"),
 * adapted to the model's stride (window radii cover the same image extent at every stride).
 * Returns -EINVAL for an unknown name.
 */
int vt_tracker_params_preset(vt_tracker_params *p, const char *tracker, const char *profile,
                             const vt_model *m);

/*
 * Set one parameter by name (the field names above, e.g. "topk", "temperature",
 * "radius_first"; a radius of "global" means VT_RADIUS_GLOBAL) from its text form. Returns
 * -ENOENT for an unknown name, -EINVAL for a malformed value. Ranges are checked by
 * vt_tracker_new().
 */
int vt_tracker_params_set(vt_tracker_params *p, const char *name, const char *value);

/* Multi-line human description of `p` into buf (for logs and --verbose). */
void vt_tracker_params_describe(const vt_tracker_params *p, char *buf, size_t len);

/* How an object is given: a binary mask, one index of a label image, a box or a polygon, all
 * in the pixel coordinates of the frame passed to the next vt_tracker_step(). */
typedef enum vt_shape_kind {
    VT_SHAPE_MASK,
    VT_SHAPE_LABELS,
    VT_SHAPE_BOX,
    VT_SHAPE_POLYGON,
} vt_shape_kind;

typedef struct vt_shape {
    vt_shape_kind kind;
    int w, h;            /* MASK, LABELS: image size (must equal the next frame's size) */
    const uint8_t *data; /* MASK: nonzero = object; LABELS: index per pixel (row-major) */
    int index;           /* LABELS: the index that marks this object */
    float box[4];        /* BOX: x, y, w, h */
    const float *points; /* POLYGON: x0, y0, x1, y1, ... (at least 3 points) */
    int npoints;
} vt_shape;

/*
 * Validate `src` and make `dst` a deep copy that owns its mask data and polygon points (the
 * caller releases them with vt_shape_clear()). Returns 0, -EINVAL (message in err) or -ENOMEM.
 */
int vt_shape_copy(vt_shape *dst, const vt_shape *src, char *err, size_t errlen);

/* Free what a vt_shape_copy() made and reset the pointers; safe on a zeroed shape. */
void vt_shape_clear(vt_shape *s);

/* Pixels of a w x h frame the shape covers (a pixel whose centre lies inside a box or polygon;
 * a mask's nonzero pixels), or -EINVAL (bad sizes; a mask of another size) or -ENOMEM. */
int64_t vt_shape_pixels(const vt_shape *s, int w, int h);

typedef enum vt_object_state {
    VT_OBJECT_TRACKING,
    VT_OBJECT_LOST,
    VT_OBJECT_RECOVERED, /* the frame on which a lost or occluded object came back; then TRACKING */
    VT_OBJECT_OCCLUDED,  /* hidden (behind another object or something of the scene): its box is
                          * the one its motion predicts, its mask what little is still seen */
} vt_object_state;

/* What happened to an object on this frame. */
typedef enum vt_object_event {
    VT_OBJECT_EVENT_NONE,
    VT_OBJECT_EVENT_ADDED,
    VT_OBJECT_EVENT_LOST,
    VT_OBJECT_EVENT_RECOVERED,
    VT_OBJECT_EVENT_OCCLUDED,
} vt_object_event;

typedef struct vt_object_result {
    uint32_t id;
    const char *label; /* may be "" */
    vt_object_state state;
    vt_object_event event;
    int bbox[4]; /* the object's box as the tracker estimates it (its motion filter's: it may
                  * reach beyond the visible mask, and an occluded object's is predicted), x,
                  * y, w, h in source pixels, clipped to the frame; all 0 when there is none (a
                  * lost object whose mask is empty) */
    int64_t area;
    float score;         /* confidence in [0,1]: mean probability over the object's cells */
    const uint8_t *mask; /* source-size w*h bytes, 1 = object */
} vt_object_result;

typedef struct vt_track_timing {
    double resize, encode, affinity, labels, upsample; /* ms */
} vt_track_timing;

/* Longest object label, in bytes (the protocol's limit). */
#define VT_LABEL_MAX 64

typedef struct vt_track_result {
    int64_t frame; /* 0-based count of steps */
    int w, h;      /* source frame size */
    /* w*h bytes: 0 background, i+1 = objects[i] */
    const uint8_t *labels;
    int n_objects;
    const vt_object_result *objects;
    int n_removed; /* objects removed since the previous step */
    const uint32_t *removed;
    const char (*removed_labels)[VT_LABEL_MAX + 1]; /* their labels ("" for none) */
    vt_track_timing timing;
} vt_track_result;

typedef struct vt_tracker vt_tracker;

/* Create a tracker on model `m` (which must outlive it) with a copy of `p`. */
int vt_tracker_new(const vt_model *m, const vt_tracker_params *p, vt_tracker **out, char *err,
                   size_t errlen);

/* Free a tracker and set *t to NULL; accepts NULL. */
void vt_tracker_free(vt_tracker **t);

/*
 * Register object `id` (nonzero, unique among live objects) with an optional label (copied;
 * at most VT_LABEL_MAX bytes, else -EINVAL). The shape is copied and applied to the next frame
 * stepped: that frame's output for the object is exactly the given shape (a box is first refined
 * into the mask of what it holds, see box_refine) and it joins the memory as an anchor. Returns
 * -EEXIST, -ENOSPC (max_objects) or -EINVAL (bad shape, message in err; once a frame has been
 * stepped, also a shape that covers no pixel of a frame of that size, or a mask of another size).
 */
int vt_tracker_add_object(vt_tracker *t, uint32_t id, const char *label, const vt_shape *shape,
                          char *err, size_t errlen);

/* Stop tracking `id` from the next frame on; it never reappears. -ENOENT if unknown. */
int vt_tracker_remove_object(vt_tracker *t, uint32_t id);

/* Number of live objects (including those pending for the next frame). */
int vt_tracker_object_count(const vt_tracker *t);

/*
 * Process the next frame `src`. `proc` may be NULL; when not NULL it is the same frame already
 * scaled to the processing size (vt_tracker_proc_size()), which saves the tracker's own resize.
 * *out borrows the tracker's buffers until the next step. Allocates nothing after the first
 * frames at a given size.
 */
int vt_tracker_step(vt_tracker *t, const vt_image *src, const vt_image *proc,
                    const vt_track_result **out);

/* Processing size the tracker uses for a source of sw x sh pixels. */
void vt_tracker_proc_size(const vt_tracker *t, int sw, int sh, int *pw, int *ph);

/* Bytes of memory the tracker holds for a source of sw x sh, at most: its memory bank and
 * workspaces (docs/TRACKING.md, "Memory and allocation"). */
size_t vt_tracker_memory_bound(const vt_tracker *t, int sw, int sh);

/* ---------------------------------------------------------------------------------------------
 * Unsupervised check of a model on held-back frames (model/check.c)
 * ------------------------------------------------------------------------------------------- */

/*
 * How vt_check_score() scores a model without labels:
 *   VT_CHECK_CYCLE  forward-backward consistency: the objects given on frames[0] are tracked
 *                   (tracker parameters p) forward over the frames; then, for every horizon
 *                   h = 1 .. n-1, the masks they have on frames[h] are given to a fresh
 *                   tracker and tracked back to frames[0]. The score of a horizon is the mean
 *                   IoU, over the objects and frames[0 .. h-1], of the masks on the way back
 *                   with those on the way forward (the tracker's own output: a box counts as
 *                   the mask it was refined into; an object lost on the way forward counts 0);
 *                   the score is the mean over the horizons. In [0, 1].
 *   VT_CHECK_RECON  the mast objective on held-back pairs: each frame's Lab (8x8-cell means)
 *                   reconstructed from the previous frame's through the model's unit-norm
 *                   affinity (window p->radius_short, temperature p->temperature); the score is
 *                   1 - the mean absolute error in normalised Lab ((L-50)/50, a/110, b/110).
 * Higher is better for both.
 */
typedef enum vt_check_kind {
    VT_CHECK_CYCLE = 0,
    VT_CHECK_RECON = 1,
} vt_check_kind;

/* "cycle", "recon". */
const char *vt_check_name(vt_check_kind kind);

/*
 * Score model m on n >= 2 frames of one size, in time order (frames the model was not tuned
 * on: the guard of per-clip adaptation compares a model before and after it, and keeps the
 * tuned copy only if its score is higher). `shapes` (nshapes of them, at most p->max_objects)
 * are the objects given on frames[0], needed by VT_CHECK_CYCLE, ignored by VT_CHECK_RECON.
 * `per_h` (may be NULL; n-1 values) receives the score of each horizon h = 1 .. n-1 (cycle)
 * or of each pair (frames[h-1], frames[h]) (recon).
 * Deterministic: the same model, frames and parameters give the same score. The caller's
 * thread runs it (with OpenBLAS's threads). 0, or a negative errno with a message in err.
 */
int vt_check_score(const vt_model *m, const vt_tracker_params *p, vt_check_kind kind,
                   const vt_image *frames, int n, const vt_shape *shapes, int nshapes,
                   double *score, double *per_h, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* VT_MODEL_H */
