/*
 * libFuzzer target for the weights loader: any byte string is parsed as a safetensors file and,
 * when it parses, loaded as a model (architecture lookup, tensor matching, dtype widening,
 * metadata, folding). The loader must fail cleanly on anything malformed: no crash, no leak,
 * no sanitizer report. Seeds (tests/model/seeds/fuzz_weights/) are small valid and near-valid
 * files: the `lab` model (metadata only), tensors of each dtype, and a full compact-s8 header
 * (its data truncated) so mutations reach shape and name checks.
 */
#include <stddef.h>
#include <stdint.h>

#include "nn.h"
#include "safetensors.h"

/* libFuzzer's entry point: called with each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    vt_st_file *f = NULL;
    if (vtm_st_parse(data, size, "fuzz", &f, err, sizeof err) == 0) {
        /* Widen every readable tensor (bounds of begin/end are the parser's promise). */
        float buf[64];
        for (int i = 0; i < vtm_st_count(f); i++) {
            const vt_st_tensor *t = vtm_st_get(f, i);
            if (t->numel <= 64)
                vtm_st_read_f32(f, t, buf, err, sizeof err);
        }
        vtm_st_close(&f);
    }
    vt_model *m = NULL;
    if (vtm_model_load_mem(data, size, "fuzz", &m, err, sizeof err) == 0) {
        /* A model that loads must run: encode a tiny frame. */
        uint8_t rgb[3 * 24 * 16] = {0};
        vt_image img = {24, 16, 3 * 24, rgb};
        vt_encoder *e = NULL;
        vt_features feat;
        if (vt_encoder_new(m, &e) == 0)
            vt_encoder_run(e, &img, &feat);
        vt_encoder_free(&e);
        vt_model_free(&m);
    }
    return 0;
}
