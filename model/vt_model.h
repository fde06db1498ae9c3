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

typedef struct vt_model vt_model;

/* Feature map produced by an encoder: `c` channels of h*w floats each (CHW). Borrowed from the
 * encoder; valid until its next run or until it is freed. */
typedef struct vt_features {
    int c, h, w;
    int stride; /* input pixels per feature cell (4 or 8) */
    const float *data;
} vt_features;

/*
 * Load a safetensors weights file. The architecture is read from the `vtrack.arch` metadata;
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

/* Free a model and set *m to NULL; accepts NULL. No encoder or tracker may still use it. */
void vt_model_free(vt_model **m);

/* Architecture name ("mast-r18", "r18-s8", "compact-s8", "lab"); owned by the model. */
const char *vt_model_arch(const vt_model *m);

/* Output stride and feature channels of the model's encoder. */
int vt_model_stride(const vt_model *m);
int vt_model_channels(const vt_model *m);

/* A `__metadata__` value of the weights file, or NULL; owned by the model. */
const char *vt_model_meta(const vt_model *m, const char *key);

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
 * applied to h x w (about h/stride x w/stride). The first call at a given input size sizes the workspaces; later calls at the same size
 * allocate nothing. `out` borrows the encoder's buffer.
 */
int vt_encoder_run(vt_encoder *e, const vt_image *img, vt_features *out);

#ifdef __cplusplus
}
#endif

#endif /* VT_MODEL_H */
