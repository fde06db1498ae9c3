/*
 * safetensors.c - the safetensors reader and writer (see safetensors.h for the format).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn.h"
#include "safetensors.h"
#include "vt_base.h"

/* Limits that no real weights file reaches but that bound what a hostile file can ask for. */
#define MAX_HEADER     (100u << 20)
#define MAX_NAME       255
#define MAX_DIM        (INT64_C(1) << 40)
#define MAX_FILE_BYTES ((size_t)1 << 34)

struct vt_st_file {
    char *name;
    uint8_t *owned; /* the bytes when read from a file */
    const uint8_t *data;
    size_t data_size;
    vt_st_tensor *t;
    int n;
    char **mkey, **mval;
    int nmeta;
};

static const struct {
    const char *name;
    int size;
    vt_st_dtype dtype;
} dtypes[] = {
    {"F32", 4, VT_ST_F32},    {"F16", 2, VT_ST_F16},       {"BF16", 2, VT_ST_BF16},
    {"F64", 8, VT_ST_OTHER},  {"I64", 8, VT_ST_OTHER},     {"U64", 8, VT_ST_OTHER},
    {"I32", 4, VT_ST_OTHER},  {"U32", 4, VT_ST_OTHER},     {"I16", 2, VT_ST_OTHER},
    {"U16", 2, VT_ST_OTHER},  {"I8", 1, VT_ST_OTHER},      {"U8", 1, VT_ST_OTHER},
    {"BOOL", 1, VT_ST_OTHER}, {"F8_E4M3", 1, VT_ST_OTHER}, {"F8_E5M2", 1, VT_ST_OTHER},
};

void vtm_st_close(vt_st_file **pf) {
    if (!pf || !*pf)
        return;
    vt_st_file *f = *pf;
    for (int i = 0; i < f->n; i++) {
        free((char *)f->t[i].name);
    }
    for (int i = 0; i < f->nmeta; i++) {
        free(f->mkey[i]);
        free(f->mval[i]);
    }
    free(f->t);
    free(f->mkey);
    free(f->mval);
    free(f->owned);
    free(f->name);
    free(f);
    *pf = NULL;
}

/* A JSON number that is a non-negative integer no larger than max; -1 otherwise. */
static int64_t json_uint(const cJSON *j, int64_t max) {
    if (!cJSON_IsNumber(j))
        return -1;
    double v = j->valuedouble;
    if (!(v >= 0.0) || v > (double)max || floor(v) != v)
        return -1;
    return (int64_t)v;
}

static int cmp_begin(const void *a, const void *b) {
    const vt_st_tensor *x = *(const vt_st_tensor *const *)a, *y = *(const vt_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const vt_st_tensor *const *)a)->name, (*(const vt_st_tensor *const *)b)->name);
}

static int parse_tensor(vt_st_file *f, const cJSON *e, vt_st_tensor *t, char *err, size_t errlen) {
    const char *fn = f->name, *tn = e->string;
    if (!cJSON_IsObject(e)) {
        vt_fmt(err, errlen, "%s: tensor '%s': entry is not a JSON object", fn, tn);
        return -EINVAL;
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !dt->valuestring) {
        vt_fmt(err, errlen, "%s: tensor '%s': missing or non-string \"dtype\"", fn, tn);
        return -EINVAL;
    }
    int size = 0;
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dt->valuestring, dtypes[i].name) == 0) {
            size = dtypes[i].size;
            t->dtype = dtypes[i].dtype;
            t->dtype_name = dtypes[i].name;
        }
    if (!size) {
        vt_fmt(err, errlen, "%s: tensor '%s': unknown dtype '%.32s'", fn, tn, dt->valuestring);
        return -EINVAL;
    }
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > VT_ST_MAX_DIMS) {
        vt_fmt(err, errlen, "%s: tensor '%s': \"shape\" must be an array of at most %d sizes", fn,
               tn, VT_ST_MAX_DIMS);
        return -EINVAL;
    }
    t->ndim = 0;
    size_t numel = 1;
    int overflow = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, sh) {
        int64_t v = json_uint(d, MAX_DIM);
        if (v < 0) {
            vt_fmt(err, errlen, "%s: tensor '%s': shape[%d] is not a size in [0, 2^40]", fn, tn,
                   t->ndim);
            return -EINVAL;
        }
        t->shape[t->ndim++] = v;
        if (v != 0 && numel > SIZE_MAX / (size_t)v)
            overflow = 1;
        numel *= (size_t)v;
    }
    if (overflow || numel > SIZE_MAX / (size_t)size) {
        vt_fmt(err, errlen, "%s: tensor '%s': shape too large", fn, tn);
        return -EINVAL;
    }
    t->numel = numel;
    int64_t b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
        (b = json_uint(cJSON_GetArrayItem(off, 0), INT64_MAX / 2)) < 0 ||
        (en = json_uint(cJSON_GetArrayItem(off, 1), INT64_MAX / 2)) < 0) {
        vt_fmt(err, errlen, "%s: tensor '%s': \"data_offsets\" must be [begin, end]", fn, tn);
        return -EINVAL;
    }
    if (b > en || (uint64_t)en > f->data_size) {
        vt_fmt(err, errlen,
               "%s: tensor '%s': data_offsets [%lld, %lld] out of range (data section is %zu "
               "bytes)",
               fn, tn, (long long)b, (long long)en, f->data_size);
        return -EINVAL;
    }
    if ((uint64_t)(en - b) != (uint64_t)numel * size) {
        vt_fmt(err, errlen, "%s: tensor '%s': %lld bytes for %zu elements of %s", fn, tn,
               (long long)(en - b), numel, t->dtype_name);
        return -EINVAL;
    }
    t->begin = (size_t)b;
    t->end = (size_t)en;
    return 0;
}

static int parse_meta(vt_st_file *f, const cJSON *m, char *err, size_t errlen) {
    if (!cJSON_IsObject(m)) {
        vt_fmt(err, errlen, "%s: \"__metadata__\" is not a JSON object", f->name);
        return -EINVAL;
    }
    int n = cJSON_GetArraySize(m);
    f->mkey = calloc(n ? n : 1, sizeof *f->mkey);
    f->mval = calloc(n ? n : 1, sizeof *f->mval);
    if (!f->mkey || !f->mval)
        return -ENOMEM;
    const cJSON *e;
    cJSON_ArrayForEach(e, m) {
        if (!cJSON_IsString(e) || !e->valuestring) {
            vt_fmt(err, errlen, "%s: metadata '%.64s' is not a string", f->name, e->string);
            return -EINVAL;
        }
        for (int i = 0; i < f->nmeta; i++)
            if (strcmp(f->mkey[i], e->string) == 0) {
                vt_fmt(err, errlen, "%s: metadata '%.64s' appears twice", f->name, e->string);
                return -EINVAL;
            }
        f->mkey[f->nmeta] = strdup(e->string);
        f->mval[f->nmeta] = strdup(e->valuestring);
        if (!f->mkey[f->nmeta] || !f->mval[f->nmeta]) {
            free(f->mkey[f->nmeta]);
            free(f->mval[f->nmeta]);
            return -ENOMEM;
        }
        f->nmeta++;
    }
    return 0;
}

/* The header's entries: __metadata__ and the tensors, into f (f->t, f->n; names copied). */
static int parse_entries(vt_st_file *f, const cJSON *root, char *err, size_t errlen) {
    const char *fn = f->name;
    int rc, count = cJSON_GetArraySize(root);
    f->t = calloc(count ? count : 1, sizeof *f->t);
    if (!f->t)
        return -ENOMEM;
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (!e->string) {
            vt_fmt(err, errlen, "%s: header entry without a name", fn);
            return -EINVAL;
        }
        if (strcmp(e->string, "__metadata__") == 0) {
            if (f->mkey) {
                vt_fmt(err, errlen, "%s: \"__metadata__\" appears twice", fn);
                return -EINVAL;
            }
            if ((rc = parse_meta(f, e, err, errlen)) < 0)
                return rc;
            continue;
        }
        size_t nl = strlen(e->string);
        if (nl == 0 || nl > MAX_NAME) {
            vt_fmt(err, errlen, "%s: tensor name of %zu bytes (1 to %d allowed)", fn, nl, MAX_NAME);
            return -EINVAL;
        }
        vt_st_tensor *t = &f->t[f->n];
        if ((rc = parse_tensor(f, e, t, err, errlen)) < 0)
            return rc;
        if (!(t->name = strdup(e->string)))
            return -ENOMEM;
        f->n++;
    }
    return 0;
}

/* Overlaps and duplicates: sort pointers by offset, then by name. */
static int check_layout(const vt_st_file *f, char *err, size_t errlen) {
    const char *fn = f->name;
    const vt_st_tensor **order = malloc(sizeof *order * (f->n ? f->n : 1));
    if (!order)
        return -ENOMEM;
    int rc = 0;
    for (int i = 0; i < f->n; i++)
        order[i] = &f->t[i];
    qsort(order, f->n, sizeof *order, cmp_begin);
    size_t hi = 0;
    const vt_st_tensor *last = NULL;
    for (int i = 0; i < f->n && rc == 0; i++) {
        if (order[i]->begin == order[i]->end)
            continue;
        if (last && order[i]->begin < hi) {
            vt_fmt(err, errlen,
                   "%s: tensors '%s' and '%s' overlap (bytes [%zu, %zu) and [%zu, %zu))", fn,
                   last->name, order[i]->name, last->begin, last->end, order[i]->begin,
                   order[i]->end);
            rc = -EINVAL;
        }
        hi = order[i]->end;
        last = order[i];
    }
    if (rc == 0) {
        qsort(order, f->n, sizeof *order, cmp_name);
        for (int i = 1; i < f->n; i++)
            if (strcmp(order[i - 1]->name, order[i]->name) == 0) {
                vt_fmt(err, errlen, "%s: tensor '%s' appears twice", fn, order[i]->name);
                rc = -EINVAL;
                break;
            }
    }
    free(order);
    return rc;
}

static int parse_into(vt_st_file *f, const uint8_t *buf, size_t size, char *err, size_t errlen) {
    const char *fn = f->name;
    if (size < 8) {
        vt_fmt(err, errlen, "%s: truncated file (%zu bytes, the header length alone needs 8)", fn,
               size);
        return -EINVAL;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    if (hlen > size - 8) {
        vt_fmt(err, errlen, "%s: header length %llu beyond the file (%zu bytes): truncated?", fn,
               (unsigned long long)hlen, size);
        return -EINVAL;
    }
    if (hlen < 2 || hlen > MAX_HEADER) {
        vt_fmt(err, errlen, "%s: header length %llu is not plausible", fn,
               (unsigned long long)hlen);
        return -EINVAL;
    }
    f->data = buf + 8 + hlen;
    f->data_size = size - 8 - hlen;
    cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        vt_fmt(err, errlen, "%s: header is not a JSON object", fn);
        cJSON_Delete(root);
        return -EINVAL;
    }
    int rc = parse_entries(f, root, err, errlen);
    cJSON_Delete(root);
    return rc < 0 ? rc : check_layout(f, err, errlen);
}

int vtm_st_parse(const uint8_t *buf, size_t size, const char *name, vt_st_file **out, char *err,
                 size_t errlen) {
    *out = NULL;
    vt_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(name ? name : "(memory)"))) {
        free(f);
        vt_fmt(err, errlen, "%s: out of memory", name ? name : "(memory)");
        return -ENOMEM;
    }
    int rc = parse_into(f, buf, size, err, errlen);
    if (rc < 0) {
        if (rc == -ENOMEM)
            vt_fmt(err, errlen, "%s: out of memory", f->name);
        vtm_st_close(&f);
        return rc;
    }
    *out = f;
    return 0;
}

int vtm_st_open(const char *path, vt_st_file **out, char *err, size_t errlen) {
    *out = NULL;
    int rc = 0;
    uint8_t *buf = NULL;
    size_t size;
    vt_st_file *f = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        rc = -errno;
        vt_fmt(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return rc;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        vt_fmt(err, errlen, "%s: not a regular file", path);
        goto done;
    }
    if ((uint64_t)st.st_size > MAX_FILE_BYTES) {
        rc = -EFBIG;
        vt_fmt(err, errlen, "%s: %lld bytes is too large for a weights file", path,
               (long long)st.st_size);
        goto done;
    }
    size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        rc = -ENOMEM;
        vt_fmt(err, errlen, "%s: out of memory for %zu bytes", path, size);
        goto done;
    }
    if (fread(buf, 1, size, fp) != size) {
        rc = -EIO;
        vt_fmt(err, errlen, "%s: read error", path);
        goto done;
    }
    if ((rc = vtm_st_parse(buf, size, path, &f, err, errlen)) < 0)
        goto done;
    f->owned = buf;
    buf = NULL;
    *out = f;
done:
    free(buf);
    fclose(fp);
    return rc;
}

int vtm_st_count(const vt_st_file *f) {
    return f->n;
}

const vt_st_tensor *vtm_st_get(const vt_st_file *f, int i) {
    return i >= 0 && i < f->n ? &f->t[i] : NULL;
}

const vt_st_tensor *vtm_st_find(const vt_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0)
            return &f->t[i];
    return NULL;
}

int vtm_st_meta_count(const vt_st_file *f) {
    return f->nmeta;
}

void vtm_st_meta_get(const vt_st_file *f, int i, const char **key, const char **value) {
    *key = i >= 0 && i < f->nmeta ? f->mkey[i] : NULL;
    *value = i >= 0 && i < f->nmeta ? f->mval[i] : NULL;
}

const char *vtm_st_meta(const vt_st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->mkey[i], key) == 0)
            return f->mval[i];
    return NULL;
}

const char *vtm_st_name(const vt_st_file *f) {
    return f->name;
}

float vtm_st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf, NaN */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal half: normalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float vtm_st_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int vtm_st_read_f32(const vt_st_file *f, const vt_st_tensor *t, float *out, char *err,
                    size_t errlen) {
    const uint8_t *p = f->data + t->begin;
    switch (t->dtype) {
    case VT_ST_F32:
        for (size_t i = 0; i < t->numel; i++) {
            uint32_t b = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&out[i], &b, 4);
        }
        return 0;
    case VT_ST_F16:
        for (size_t i = 0; i < t->numel; i++)
            out[i] = vtm_st_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return 0;
    case VT_ST_BF16:
        for (size_t i = 0; i < t->numel; i++)
            out[i] = vtm_st_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return 0;
    default:
        vt_fmt(err, errlen, "%s: tensor '%s': dtype %s is not supported (F32, F16 or BF16)",
               f->name, t->name, t->dtype_name);
        return -EINVAL;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------------------------------- */

/* The header's entries: __metadata__ (meta: key, value, ..., NULL) and each tensor's dtype,
 * shape and offsets, packed back to back. 0 or -1 (out of memory). */
static int add_entries(cJSON *root, const vt_st_out *t, int n, const char *const *meta) {
    if (meta && meta[0]) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        if (!m)
            return -1;
        for (int i = 0; meta[i] && meta[i + 1]; i += 2)
            if (!cJSON_AddStringToObject(m, meta[i], meta[i + 1]))
                return -1;
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name), *sh, *of;
        if (!e || !cJSON_AddStringToObject(e, "dtype", "F32") ||
            !(sh = cJSON_AddArrayToObject(e, "shape")))
            return -1;
        for (int d = 0; d < t[i].ndim; d++) {
            cJSON *v = cJSON_CreateNumber((double)t[i].shape[d]);
            if (!v || !cJSON_AddItemToArray(sh, v))
                return -1;
            numel *= (size_t)t[i].shape[d];
        }
        if (!(of = cJSON_AddArrayToObject(e, "data_offsets")))
            return -1;
        cJSON *b = cJSON_CreateNumber((double)off),
              *en = cJSON_CreateNumber((double)(off + 4 * numel));
        if (!b || !en || !cJSON_AddItemToArray(of, b) || !cJSON_AddItemToArray(of, en))
            return -1;
        off += 4 * numel;
    }
    return 0;
}

/* The file's header: its length (8 bytes) and the JSON, padded. NULL when out of memory. */
static char *build_header(const vt_st_out *t, int n, const char *const *meta, size_t *len) {
    cJSON *root = cJSON_CreateObject();
    char *json = root && add_entries(root, t, n, meta) == 0 ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json)
        return NULL;
    /* Pad the header with spaces to a multiple of 8 so the data is 8-byte aligned, as the
     * reference implementation does. */
    size_t hl = strlen(json), pl = (hl + 7) & ~(size_t)7;
    char *hdr = malloc(8 + pl);
    if (hdr) {
        for (int i = 0; i < 8; i++)
            hdr[i] = (char)((uint64_t)pl >> (8 * i));
        memcpy(hdr + 8, json, hl);
        memset(hdr + 8 + hl, ' ', pl - hl);
        *len = 8 + pl;
    }
    free(json);
    return hdr;
}

/* Write header and data to a temporary file next to path, then rename it over path. */
static int write_file(const char *path, const char *hdr, size_t hlen, const vt_st_out *t, int n,
                      char *err, size_t errlen) {
    int rc, fd;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        vt_fmt(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0) {
        rc = -errno;
        vt_fmt(err, errlen, "%s: cannot create a temporary file: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    /* mkstemp creates 0600; a weights file is meant to be readable like any data file. */
    if (fchmod(fd, 0644) != 0) {
        rc = -errno;
        goto io;
    }
    if ((rc = vt_write_all(fd, hdr, hlen)) < 0)
        goto io;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++)
            numel *= (size_t)t[i].shape[d];
        /* The format is little-endian, as are the machines vtrack runs on. */
        if ((rc = vt_write_all(fd, t[i].data, 4 * numel)) < 0)
            goto io;
    }
    if (fsync(fd) != 0) {
        rc = -errno;
        goto io;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = -errno;
        goto io;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = -errno;
        goto io;
    }
    free(tmp);
    return 0;
io:
    vt_fmt(err, errlen, "%s: write failed: %s", path, strerror(-rc));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return rc;
}

int vtm_st_write(const char *path, const vt_st_out *t, int n, const char *const *meta, char *err,
                 size_t errlen) {
    size_t hlen = 0;
    char *hdr = build_header(t, n, meta, &hlen);
    if (!hdr) {
        vt_fmt(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    int rc = write_file(path, hdr, hlen, t, n, err, errlen);
    free(hdr);
    return rc;
}
