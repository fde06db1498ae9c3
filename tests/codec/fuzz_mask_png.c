/*
 * libFuzzer target: mask PNGs through vt_mask_read_png, the reader `vtrack eval` uses on DAVIS
 * annotations and predictions and vtrackd on the masks its configuration names.
 *
 * The reader takes a path, so each input is written to one memory-backed file (memfd_create,
 * opened as /proc/self/fd/N: a regular file, no disk, nothing left behind). The reader must fail
 * cleanly on anything malformed, and must not let a tiny file declare a huge picture (it bounds
 * the size before decoding: VT_SOURCE_MAX_PIXELS, VT_SOURCE_MAX_SIDE). A mask that reads must
 * survive vt_mask_write_png and a second read unchanged, as a palette PNG.
 *
 * Seeds (tests/codec/seeds/fuzz_mask_png/): tiny palette, grey and 1-bit masks.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "vt_codec.h"
#include "fuzz.h"

static int in_fd = -1, out_fd = -1;
static char in_path[64], out_path[64];

static int open_memfd(const char *name, char *path, size_t len) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) {
        perror("fuzz_mask_png: memfd_create");
        abort();
    }
    snprintf(path, len, "/proc/self/fd/%d", fd);
    return fd;
}

/* libFuzzer's entry point: called with each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (in_fd < 0) {
        av_log_set_level(AV_LOG_QUIET); /* a line per malformed file would slow the fuzzer */
        in_fd = open_memfd("fuzz_mask_in", in_path, sizeof in_path);
        out_fd = open_memfd("fuzz_mask_out", out_path, sizeof out_path);
    }
    CHECK(ftruncate(in_fd, 0) == 0);
    CHECK(pwrite(in_fd, data, size, 0) == (ssize_t)size);

    char err[512] = "";
    int w = -1, h = -1, isp = -1;
    uint8_t *labels = (uint8_t *)&w; /* must be set to NULL on failure */
    int rc = vt_mask_read_png(in_path, &w, &h, &labels, &isp, err, sizeof err);
    if (rc < 0) {
        CHECK(labels == NULL);
        CHECK(err[0] != '\0');
        return 0;
    }
    CHECK(rc == 0 && labels != NULL && (isp == 0 || isp == 1));
    CHECK(w > 0 && h > 0 && w <= VT_SOURCE_MAX_SIDE && h <= VT_SOURCE_MAX_SIDE);
    CHECK((int64_t)w * h <= VT_SOURCE_MAX_PIXELS);

    /* Round trip through the writer, kept to small masks: encoding costs per pixel. */
    if ((int64_t)w * h <= 1 << 16) {
        int w2, h2, isp2;
        uint8_t *back = NULL;
        CHECK(vt_mask_write_png(out_path, w, h, labels, err, sizeof err) == 0);
        CHECK(vt_mask_read_png(out_path, &w2, &h2, &back, &isp2, err, sizeof err) == 0);
        CHECK(w2 == w && h2 == h && isp2 == 1);
        CHECK(memcmp(back, labels, (size_t)w * h) == 0);
        free(back);
    }
    free(labels);
    return 0;
}
