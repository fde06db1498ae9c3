/*
 * Reference check of the encoders against PyTorch (tests/reference/ref_encoders.py).
 *
 * As a test (no arguments) it runs `/usr/bin/python3 tests/reference/ref_encoders.py`, which
 * builds each architecture in PyTorch from the published definitions, randomises weights and
 * batch-norm statistics, saves checkpoints, converts them with tools/convert.py, and calls this
 * program back as the C side:
 *
 *   test_encoders_ref encode WEIGHTS IN OUT
 *     IN:  "VTIN", int32 kind (0: float NCHW network input, 1: RGB24 image HWC), n, c, h, w,
 *          then the data (float32 or uint8, little-endian)
 *     OUT: "VTOU", int32 n, c, h, w, then float32 features
 *   kind 0 runs the layer table on an already-normalised tensor (vtm_net_forward); kind 1 runs
 *   the public encoder on RGB (colour conversion and normalisation included).
 *
 * Skips (exit 77) when /usr/bin/python3 cannot import torch.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn.h"

static int read_i32(FILE *f, int32_t *v) {
    return fread(v, 4, 1, f) == 1 ? 0 : -1;
}

static int encode(const char *weights, const char *in, const char *out) {
    char err[512];
    vt_model *m = NULL;
    vt_encoder *e = NULL;
    vt_net *net = NULL;
    void *buf = NULL;
    FILE *o = NULL;
    size_t count, es, on;
    int rc = 1;
    if (vt_model_load(weights, &m, err, sizeof err) < 0) {
        fprintf(stderr, "encode: %s\n", err);
        return 1;
    }
    FILE *f = fopen(in, "rb");
    char magic[4];
    int32_t kind, n, c, h, w;
    if (!f || fread(magic, 1, 4, f) != 4 || memcmp(magic, "VTIN", 4) || read_i32(f, &kind) ||
        read_i32(f, &n) || read_i32(f, &c) || read_i32(f, &h) || read_i32(f, &w) || n < 1 ||
        c != 3 || h < 1 || w < 1) {
        fprintf(stderr, "encode: %s: bad input file\n", in);
        goto done;
    }
    count = (size_t)n * c * h * w, es = kind == 0 ? 4 : 1;
    buf = malloc(count * es);
    if (!buf || fread(buf, es, count, f) != count) {
        fprintf(stderr, "encode: %s: short input\n", in);
        goto done;
    }
    int32_t dims[4];
    const float *data;
    if (kind == 0) {
        vt_tensor x = {n, c, h, w, buf};
        const vt_tensor *y;
        int r;
        if ((r = vtm_net_new(m, 0, &net)) < 0 ||
            (r = vtm_net_forward(net, &x, VT_CONV_AUTO, &y)) < 0) {
            fprintf(stderr, "encode: forward failed: %s\n", strerror(-r));
            goto done;
        }
        dims[0] = y->n, dims[1] = y->c, dims[2] = y->h, dims[3] = y->w;
        data = y->data;
    } else {
        if (n != 1) {
            fprintf(stderr, "encode: RGB input is one image\n");
            goto done;
        }
        vt_image img = {w, h, 3 * w, buf};
        vt_features ft;
        int r;
        if ((r = vt_encoder_new(m, &e)) < 0 || (r = vt_encoder_run(e, &img, &ft)) < 0) {
            fprintf(stderr, "encode: encoder failed: %s\n", strerror(-r));
            goto done;
        }
        dims[0] = 1, dims[1] = ft.c, dims[2] = ft.h, dims[3] = ft.w;
        data = ft.data;
    }
    o = fopen(out, "wb");
    on = (size_t)dims[0] * dims[1] * dims[2] * dims[3];
    if (!o || fwrite("VTOU", 1, 4, o) != 4 || fwrite(dims, 4, 4, o) != 4 ||
        fwrite(data, 4, on, o) != on) {
        fprintf(stderr, "encode: %s: write failed\n", out);
        if (o)
            fclose(o);
        goto done;
    }
    fclose(o);
    rc = 0;
done:
    if (f)
        fclose(f);
    free(buf);
    vtm_net_free(&net);
    vt_encoder_free(&e);
    vt_model_free(&m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "encode") == 0)
        return encode(argv[2], argv[3], argv[4]);
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null") != 0) {
        fprintf(stderr, "SKIP: the encoder reference check needs /usr/bin/python3 with torch and "
                        "numpy (apt-get install python3-torch python3-numpy)\n");
        return 77;
    }
    const char *root = getenv("VT_SOURCE_ROOT");
    if (!root) {
        fprintf(stderr, "VT_SOURCE_ROOT is not set (run through meson test)\n");
        return 1;
    }
    char self[PATH_MAX], cmd[3 * PATH_MAX];
    if (!realpath(argv[0], self)) {
        perror(argv[0]);
        return 1;
    }
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/tests/reference/ref_encoders.py' --driver '%s' "
             "--convert '%s/tools/convert.py'",
             root, self, root);
    fflush(stdout);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return 1;
    return WEXITSTATUS(st);
}
