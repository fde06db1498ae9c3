/*
 * Weights: the safetensors reader/writer and the model loader. Every malformed input the issue
 * names gets its own case and must fail with a message naming the file and the tensor (or
 * key); valid files round-trip exactly, and F16/BF16 tensors widen to the same values.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testmain.h"
#include "nn.h"
#include "safetensors.h"

static char tmpdir[256];

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vt_test_weights.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *tpath(const char *name) {
    static char p[2][320];
    static int i;
    i ^= 1;
    snprintf(p[i], sizeof p[i], "%s/%s", tmpdir, name);
    return p[i];
}

/* A safetensors image: header JSON (as given) + `data` bytes. */
static uint8_t *blob(const char *json, const void *data, size_t dn, size_t *size) {
    size_t hl = strlen(json);
    uint8_t *b = calloc(1, 8 + hl + dn + 1);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, json, hl);
    if (dn)
        memcpy(b + 8 + hl, data, dn);
    *size = 8 + hl + dn;
    return b;
}

/* Parse `json` + `dn` zero bytes; expect failure with every `want` substring in the message. */
static void expect_st_fail(const char *json, size_t dn, const char *want1, const char *want2) {
    uint8_t zeros[512] = {0};
    size_t size;
    uint8_t *b = blob(json, zeros, dn, &size);
    char err[512] = "";
    vt_st_file *f = NULL;
    ck_assert_int_eq(vtm_st_parse(b, size, "bad.safetensors", &f, err, sizeof err), -EINVAL);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(err, "bad.safetensors"), "no file name in '%s'", err);
    ck_assert_msg(strstr(err, want1), "'%s' not in '%s'", want1, err);
    if (want2)
        ck_assert_msg(strstr(err, want2), "'%s' not in '%s'", want2, err);
    free(b);
}

START_TEST(test_st_malformed) {
    char err[256] = "";
    vt_st_file *f = NULL;
    const uint8_t tiny[5] = {1, 0, 0, 0, 0};
    ck_assert_int_eq(vtm_st_parse(tiny, 5, "bad.safetensors", &f, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "truncated"));
    /* Header length beyond the file. */
    uint8_t hdr[20] = {0xe8, 0x03};
    ck_assert_int_eq(vtm_st_parse(hdr, sizeof hdr, "bad.safetensors", &f, err, sizeof err),
                     -EINVAL);
    ck_assert_msg(strstr(err, "1000 beyond the file"), "%s", err);

    expect_st_fail("{\"a\": ", 0, "not a JSON object", NULL);
    expect_st_fail("[1, 2]", 0, "not a JSON object", NULL);
    expect_st_fail("{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'",
                   "unknown dtype 'F33'");
    expect_st_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,400]}}", 8, "'w'",
                   "out of range");
    expect_st_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "'w'",
                   "8 bytes for 3 elements");
    expect_st_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "'w'",
                   "out of range");
    expect_st_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                   24, "overlap", "'b'");
    expect_st_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, "'w'",
                   "shape[0]");
    expect_st_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,0]}}", 0, "'w'",
                   "shape[0]");
    expect_st_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "'w'", "data_offsets");
    expect_st_fail("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'", "dtype");
    expect_st_fail("{\"w\":7}", 0, "'w'", "not a JSON object");
    expect_st_fail("{\"__metadata__\":{\"k\":1}}", 0, "metadata 'k'", "not a string");
    expect_st_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   8, "'w'", "twice");
    expect_st_fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                   "\"data_offsets\":[0,4]}}",
                   4, "'w'", "too large");
}
END_TEST

START_TEST(test_st_roundtrip_and_widen) {
    /* Writer -> reader round trip, metadata included. */
    const int64_t s1[2] = {2, 3}, s2[1] = {0};
    const float a[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 65504};
    vt_st_out t[2] = {{"a.weight", 2, s1, a}, {"empty", 1, s2, a}};
    const char *meta[] = {"k1", "v1", "vtrack.note", "x y", NULL};
    char err[256] = "";
    ck_assert_int_eq(vtm_st_write(tpath("rt.safetensors"), t, 2, meta, err, sizeof err), 0);
    vt_st_file *f;
    ck_assert_int_eq(vtm_st_open(tpath("rt.safetensors"), &f, err, sizeof err), 0);
    ck_assert_int_eq(vtm_st_count(f), 2);
    ck_assert_str_eq(vtm_st_meta(f, "vtrack.note"), "x y");
    const vt_st_tensor *ta = vtm_st_find(f, "a.weight");
    ck_assert_int_eq(ta->ndim, 2);
    ck_assert_int_eq((int)ta->shape[1], 3);
    float back[6];
    ck_assert_int_eq(vtm_st_read_f32(f, ta, back, err, sizeof err), 0);
    ck_assert_int_eq(memcmp(a, back, sizeof a), 0);
    vtm_st_close(&f);
    ck_assert_ptr_null(f);
    vtm_st_close(&f);

    /* F16 and BF16 bit patterns with known values (IEEE 754 binary16; bfloat16 = the top half
     * of a binary32). */
    const uint16_t h[7] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x3555, 0xfc00};
    const float hv[7] = {1.0f,          -2.0f,       65504.0f, 5.9604645e-8f,
                         6.1035156e-5f, 0.33325195f, -INFINITY};
    for (int i = 0; i < 7; i++)
        ck_assert_float_eq(vtm_st_f16_to_f32(h[i]), hv[i]);
    ck_assert(isnan(vtm_st_f16_to_f32(0x7e00)));
    ck_assert_float_eq(vtm_st_bf16_to_f32(0x3f80), 1.0f);
    ck_assert_float_eq(vtm_st_bf16_to_f32(0xc0a0), -5.0f);
    ck_assert_float_eq(vtm_st_bf16_to_f32(0x4049), 3.140625f);

    /* An unsupported dtype parses (sizes are known) but does not read. */
    size_t size;
    uint8_t zeros[8] = {0};
    uint8_t *b =
        blob("{\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", zeros, 8, &size);
    ck_assert_int_eq(vtm_st_parse(b, size, "f64.safetensors", &f, err, sizeof err), 0);
    float out;
    ck_assert_int_eq(vtm_st_read_f32(f, vtm_st_get(f, 0), &out, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'d'"));
    ck_assert_ptr_nonnull(strstr(err, "F64"));
    vtm_st_close(&f);
    free(b);

    ck_assert_int_eq(vtm_st_open(tpath("missing.safetensors"), &f, err, sizeof err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "missing.safetensors"));
}
END_TEST

/*
 * Write `m`'s parameters as a safetensors file by hand (independently of vt_model_save), with
 * one change: dtype for every tensor ("F32", "F16", "BF16"), skip tensor `skip`, add an extra
 * tensor, bump a shape, a custom arch (NULL: none) and extra metadata.
 */
typedef struct {
    const char *dtype;
    int skip, extra, bad_shape;
    const char *arch;
    const char *meta_key, *meta_val;
} variant;

static uint16_t to_half(float v) { /* exact for the values the test uses */
    uint32_t b;
    memcpy(&b, &v, 4);
    uint32_t sign = (b >> 16) & 0x8000;
    int e = (int)((b >> 23) & 0xff) - 127 + 15;
    if ((b & 0x7fffffff) == 0)
        return (uint16_t)sign;
    return (uint16_t)(sign | (uint32_t)e << 10 | ((b >> 13) & 0x3ff));
}

static void write_variant(const char *path, vt_model *m, const variant *v) {
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(root, "__metadata__");
    if (v->arch)
        cJSON_AddStringToObject(meta, "vtrack.arch", v->arch);
    if (v->meta_key)
        cJSON_AddStringToObject(meta, v->meta_key, v->meta_val);
    int es = !strcmp(v->dtype, "F32") ? 4 : 2;
    size_t off = 0, total = 0;
    for (int i = 0; i < vtm_model_nparams(m); i++)
        total += vtm_model_param(m, i)->numel * es;
    total += 4 * es;
    uint8_t *data = calloc(1, total);
    for (int i = 0; i < vtm_model_nparams(m) + v->extra; i++) {
        if (i == v->skip)
            continue;
        vt_param extra = {.name = "bogus.weight", .ndim = 1, .shape = {4}, .numel = 4};
        float four[4] = {1, 2, 3, 4};
        extra.data = four;
        const vt_param *p = i < vtm_model_nparams(m) ? vtm_model_param(m, i) : &extra;
        cJSON *e = cJSON_AddObjectToObject(root, p->name);
        cJSON_AddStringToObject(e, "dtype", v->dtype);
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < p->ndim; d++)
            cJSON_AddItemToArray(sh,
                                 cJSON_CreateNumber(p->shape[d] + (i == v->bad_shape && d == 0)));
        size_t n = p->numel * (i == v->bad_shape ? 0 : 1);
        if (i == v->bad_shape) {
            n = 1;
            for (int d = 0; d < p->ndim; d++)
                n *= (size_t)(p->shape[d] + (d == 0));
            data = realloc(data, total + n * es);
            memset(data + total, 0, n * es);
            total += n * es;
        }
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + n * es)));
        for (size_t j = 0; j < n && i != v->bad_shape; j++) {
            if (es == 4) {
                memcpy(data + off + 4 * j, &p->data[j], 4);
            } else {
                uint16_t hv;
                if (!strcmp(v->dtype, "F16")) {
                    hv = to_half(p->data[j]);
                } else {
                    uint32_t b;
                    memcpy(&b, &p->data[j], 4);
                    hv = (uint16_t)(b >> 16);
                }
                memcpy(data + off + 2 * j, &hv, 2);
            }
        }
        off += n * es;
    }
    char *json = cJSON_PrintUnformatted(root);
    size_t size;
    uint8_t *b = blob(json, data, off, &size);
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq((int)fwrite(b, 1, size, fp), (int)size);
    fclose(fp);
    free(b), free(json), free(data);
    cJSON_Delete(root);
}

/* A compact-s8 model whose parameters are exact in F16 and BF16 (k/32, |k| < 64). */
static vt_model *exact_model(void) {
    vt_model *m;
    char err[256];
    ck_assert_int_eq(vt_model_new("compact-s8", 7, &m, err, sizeof err), 0);
    for (int i = 0; i < vtm_model_nparams(m); i++) {
        vt_param *p = vtm_model_param(m, i);
        for (size_t j = 0; j < p->numel; j++)
            p->data[j] = strstr(p->name, "running_var")
                             ? (float)(1 + j % 7) / 4.0f
                             : (float)((int)((j * 37 + i) % 127) - 63) / 32.0f;
    }
    ck_assert_int_eq(vtm_model_refold(m), 0);
    return m;
}

static void expect_load_fail(vt_model *m, const variant *v, const char *want1, const char *want2) {
    const char *path = tpath("variant.safetensors");
    write_variant(path, m, v);
    vt_model *out = (vt_model *)1;
    char err[512] = "";
    ck_assert_int_lt(vt_model_load(path, &out, err, sizeof err), 0);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err, "variant.safetensors"), "no file name in '%s'", err);
    ck_assert_msg(strstr(err, want1), "'%s' not in '%s'", want1, err);
    if (want2)
        ck_assert_msg(strstr(err, want2), "'%s' not in '%s'", want2, err);
}

START_TEST(test_model_load_failures) {
    vt_model *m = exact_model();
    const variant ok = {"F32", -1, 0, -1, "compact-s8", NULL, NULL};
    variant v = ok;
    v.skip = 5;
    expect_load_fail(m, &v, "missing", vtm_model_param(m, 5)->name);
    v = ok;
    v.extra = 1;
    expect_load_fail(m, &v, "unexpected tensor 'bogus.weight'", "compact-s8");
    v = ok;
    v.bad_shape = 0;
    expect_load_fail(m, &v, "'conv1.weight' has shape [33,3,3,3]", "expects [32,3,3,3]");
    v = ok;
    v.arch = "resnet-9000";
    expect_load_fail(m, &v, "unknown architecture 'resnet-9000'", "compact-s8");
    v = ok;
    v.arch = NULL;
    expect_load_fail(m, &v, "no vtrack.arch", NULL);
    /* metadata values a model cannot be built or tracked with: an error naming the key */
    static const char *const bad_meta[][3] = {
        {"vtrack.input", "hsv", "vtrack.input 'hsv'"},
        {"vtrack.std", "1,0,1", "vtrack.std"},
        {"vtrack.padding", "circular", "vtrack.padding 'circular'"},
        {"vtrack.prop.temperature", "0", "vtrack.prop.temperature '0'"},
        {"vtrack.prop.l2norm", "0.5", "vtrack.prop.l2norm '0.5' is not 0 or 1"},
        {"vtrack.prop.topk", "abc", "vtrack.prop.topk 'abc'"},
    };
    for (size_t i = 0; i < sizeof bad_meta / sizeof bad_meta[0]; i++) {
        v = ok;
        v.meta_key = bad_meta[i][0];
        v.meta_val = bad_meta[i][1];
        expect_load_fail(m, &v, bad_meta[i][2], NULL);
    }
    /* Values the format allows but a model cannot use. */
    vt_param *var = vtm_model_param_find(m, "bn1.running_var");
    var->data[3] = -1.0f;
    expect_load_fail(m, &ok, "'bn1.running_var'", "negative variance");
    var->data[3] = 1.0f;
    vtm_model_param_find(m, "head.bias")->data[2] = NAN;
    expect_load_fail(m, &ok, "'head.bias'", "NaN");
    vt_model_free(&m);

    char err[256];
    ck_assert_int_eq(vt_model_new("nope", 1, &m, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "unknown architecture 'nope'"));
    ck_assert_int_eq(vt_model_load(tpath("absent.safetensors"), &m, err, sizeof err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "absent.safetensors"));
}
END_TEST

START_TEST(test_model_roundtrip_f16_bf16) {
    vt_model *m = exact_model();
    static const char *const dtypes[] = {"F32", "F16", "BF16"};
    for (int d = 0; d < 3; d++) {
        variant v = {dtypes[d], -1, 0, -1, "compact-s8", "vtrack.provenance", "test"};
        write_variant(tpath("w.safetensors"), m, &v);
        vt_model *l;
        char err[256] = "";
        ck_assert_msg(vt_model_load(tpath("w.safetensors"), &l, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(vtm_model_nparams(l), vtm_model_nparams(m));
        for (int i = 0; i < vtm_model_nparams(m); i++) {
            vt_param *a = vtm_model_param(m, i), *b = vtm_model_param(l, i);
            ck_assert_str_eq(a->name, b->name);
            ck_assert_msg(memcmp(a->data, b->data, a->numel * 4) == 0, "%s %s", dtypes[d], a->name);
        }
        ck_assert_str_eq(vt_model_meta(l, "vtrack.provenance"), "test");
        /* Defaults written back so a saved file describes itself. */
        ck_assert_str_eq(vt_model_meta(l, "vtrack.input"), "lab");
        ck_assert_str_eq(vt_model_meta(l, "vtrack.std"), "50,110,110");
        /* vt_model_save -> vt_model_load is exact, metadata included. */
        ck_assert_int_eq(vtm_model_set_meta(l, "vtrack.padding", "reflect"), 0);
        ck_assert_int_eq(vt_model_save(l, tpath("saved.safetensors"), err, sizeof err), 0);
        vt_model *s;
        ck_assert_msg(vt_model_load(tpath("saved.safetensors"), &s, err, sizeof err) == 0, "%s",
                      err);
        ck_assert_int_eq(vtm_model_pad_mode(s), VT_PAD_REFLECT);
        ck_assert_str_eq(vt_model_arch(s), "compact-s8");
        for (int i = 0; i < vtm_model_nparams(m); i++)
            ck_assert(memcmp(vtm_model_param(s, i)->data, vtm_model_param(m, i)->data,
                             vtm_model_param(m, i)->numel * 4) == 0);
        vt_model_free(&s);
        vt_model_free(&l);
    }
    vt_model_free(&m);
    vt_model_free(&m);
}
END_TEST

START_TEST(test_lab_model_file) {
    /* `lab` has no tensors: a file with only metadata loads, one with a tensor does not. */
    vt_model *m;
    char err[256];
    ck_assert_int_eq(vt_model_new("lab", 0, &m, err, sizeof err), 0);
    ck_assert_int_eq(vt_model_save(m, tpath("lab.safetensors"), err, sizeof err), 0);
    vt_model_free(&m);
    ck_assert_int_eq(vt_model_load(tpath("lab.safetensors"), &m, err, sizeof err), 0);
    ck_assert_str_eq(vt_model_arch(m), "lab");
    ck_assert_int_eq(vt_model_channels(m), 27);
    vt_model_free(&m);
    size_t size;
    float z[1] = {0};
    uint8_t *b = blob("{\"__metadata__\":{\"vtrack.arch\":\"lab\"},"
                      "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                      z, 4, &size);
    ck_assert_int_eq(vtm_model_load_mem(b, size, "lab.mem", &m, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "unexpected tensor 'x'"));
    free(b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("weights");
    TCase *tc = tm_add_case(s, "core", 60, test_st_malformed, test_st_roundtrip_and_widen,
                            test_model_load_failures, test_model_roundtrip_f16_bf16,
                            test_lab_model_file, NULL);
    tcase_add_checked_fixture(tc, setup, teardown);
    return tm_run(s);
}
