/*
 * safetensors.h - read and write the safetensors format. Part of model's internal interface
 * (model/internal/, vtmodel_internal_dep): for model/ itself, the trainer's checkpoints
 * (train/train_ckpt.c) and the tests.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"key": "value", ...},
 *    "name": {"dtype": "F32", "shape": [d0, ...], "data_offsets": [begin, end]}, ...}
 * then the raw little-endian tensor data; offsets are relative to the end of the header.
 *
 * The reader validates everything before any tensor is used: the header length against the
 * file, the JSON, each tensor's dtype, shape, and offsets (inside the data, no overlaps, size
 * equal to the shape's), metadata values being strings, and duplicate names. Every failure
 * writes a one-line message naming the file (and tensor or key) into `err`.
 */
#ifndef VT_SAFETENSORS_H
#define VT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vt_st_dtype {
    VT_ST_F32,
    VT_ST_F16,
    VT_ST_BF16,
    VT_ST_OTHER, /* a valid safetensors dtype that vtrack does not read (F64, I64, ...) */
} vt_st_dtype;

#define VT_ST_MAX_DIMS 8

typedef struct vt_st_tensor {
    const char *name; /* owned by the file */
    const char *dtype_name;
    vt_st_dtype dtype;
    int ndim;
    int64_t shape[VT_ST_MAX_DIMS];
    size_t numel;
    size_t begin, end; /* byte offsets into the data section */
} vt_st_tensor;

typedef struct vt_st_file vt_st_file;

/* Parse a safetensors image held in memory. `buf` must outlive the file object (it is not
 * copied); `name` labels error messages. 0, -EINVAL (malformed) or -ENOMEM. */
int vtm_st_parse(const uint8_t *buf, size_t size, const char *name, vt_st_file **out, char *err,
                 size_t errlen);
/* Read a whole file and parse it; the file object owns the bytes. 0, -errno or -EINVAL. */
int vtm_st_open(const char *path, vt_st_file **out, char *err, size_t errlen);
void vtm_st_close(vt_st_file **f);

int vtm_st_count(const vt_st_file *f);
const vt_st_tensor *vtm_st_get(const vt_st_file *f, int i);
const vt_st_tensor *vtm_st_find(const vt_st_file *f, const char *name);
/* Metadata: number of entries, i-th key/value, or the value of a key (NULL if absent). */
int vtm_st_meta_count(const vt_st_file *f);
void vtm_st_meta_get(const vt_st_file *f, int i, const char **key, const char **value);
const char *vtm_st_meta(const vt_st_file *f, const char *key);
/* The label given to vtm_st_parse / the path given to vtm_st_open. */
const char *vtm_st_name(const vt_st_file *f);

/* Copy a tensor into out[numel] as float32, widening F16 and BF16. -EINVAL for other dtypes
 * (message names the tensor). */
int vtm_st_read_f32(const vt_st_file *f, const vt_st_tensor *t, float *out, char *err,
                    size_t errlen);

/* One tensor to write: F32 data of numel = prod(shape) floats, borrowed. */
typedef struct vt_st_out {
    const char *name;
    int ndim;
    const int64_t *shape;
    const float *data;
} vt_st_out;

/*
 * Write an F32 safetensors file atomically: a temporary file in the same directory, fsync, then
 * rename over `path`, so readers never see a half-written file and a crash leaves the old one.
 * `meta` is NULL or a NULL-terminated list of key, value, key, value, ... strings. Tensors are
 * laid out in the order given. 0 or -errno (message in err).
 */
int vtm_st_write(const char *path, const vt_st_out *t, int n, const char *const *meta, char *err,
                 size_t errlen);

/* IEEE half and bfloat16 to float (exposed for tests). */
float vtm_st_f16_to_f32(uint16_t h);
float vtm_st_bf16_to_f32(uint16_t h);

#ifdef __cplusplus
}
#endif

#endif /* VT_SAFETENSORS_H */
