/*
 * train_sources.c - decode the training sources with codec/ into the trainer's frame cache.
 *
 * Every source is opened twice: once to learn its size, then with codec's processing output
 * set so FFmpeg's scaler delivers frames whose short side is the training size (portrait and
 * landscape alike). The cache (train/train_data.c) stores them as packed RGB24 and keeps its
 * byte cap by thinning frames evenly in time.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <libavutil/error.h>

#include "cli_util.h"
#include "tracking.h"
#include "train_sources.h"
#include "vt_base.h"
#include "vt_codec.h"

static int has_ext(const char *name, const char *const *exts) {
    const char *dot = strrchr(name, '.');
    if (!dot)
        return 0;
    for (int i = 0; exts[i]; i++)
        if (strcasecmp(dot + 1, exts[i]) == 0)
            return 1;
    return 0;
}

static const char *const video_exts[] = {"mp4",  "avi", "mkv", "mov", "webm", "m4v", "mpg",
                                         "mpeg", "ts",  "flv", "wmv", "3gp",  "ogv", NULL};
static const char *const image_exts[] = {"jpg", "jpeg", "png", NULL};

static const char *base_name(const char *p) {
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        n--;
    const char *s = p + n;
    while (s > p && s[-1] != '/')
        s--;
    return s;
}

/* Decode one source into the cache. */
static int load_one(const char *url, const vt_train_load_opts *o, vt_train_data *d, char *desc,
                    size_t len, char *err, size_t errlen) {
    vt_source_opts so;
    vt_cli_offline_source(&so);
    vt_source *src = NULL;
    vt_source_info info;
    char msg[512] = "";
    int rc = vt_source_new(&src, url, &so, msg, sizeof msg);
    if (rc >= 0)
        rc = vt_source_open(src, msg, sizeof msg);
    if (rc >= 0)
        rc = vt_source_get_info(src, &info);
    vt_source_free(&src);
    if (rc < 0) {
        char e[128];
        vt_fmt(err, errlen, "cannot read training video '%s': %s", url,
               msg[0] ? msg : vt_codec_strerror(rc, e, sizeof e));
        return rc;
    }
    if (info.width <= info.height)
        so.proc_width = o->short_side;
    else
        so.proc_height = o->short_side;
    if ((rc = vt_source_new(&src, url, &so, msg, sizeof msg)) < 0) {
        vt_fmt(err, errlen, "cannot read training video '%s': %s", url, msg);
        return rc;
    }
    const vt_frame *fr;
    int64_t n = 0;
    int vid = -1;
    while (n < o->max_frames && (rc = vt_source_read(src, &fr)) == 0) {
        if (vid < 0 && (vid = vt_train_data_add_video(d, base_name(url), fr->proc_width,
                                                      fr->proc_height)) < 0) {
            rc = vid;
            vt_fmt(err, errlen, "%s: cannot add a video of %dx%d to the cache", url, fr->proc_width,
                   fr->proc_height);
            break;
        }
        if (fr->proc_width != d->v[vid].w || fr->proc_height != d->v[vid].h) {
            rc = -EINVAL;
            vt_fmt(err, errlen,
                   "%s: frame %lld is %dx%d, the first was %dx%d (size changes are "
                   "not supported for training)",
                   url, (long long)n, fr->proc_width, fr->proc_height, d->v[vid].w, d->v[vid].h);
            break;
        }
        if (o->hold) {
            int held = o->hold(o->hold_opaque, n, fr->rgb, fr->width, fr->height, fr->linesize);
            if (held < 0) {
                rc = held;
                vt_fmt(err, errlen, "%s: frame %lld: %s", url, (long long)n, strerror(-held));
                break;
            }
            if (held) {
                n++;
                continue;
            }
        }
        int a = vt_train_data_add_frame(d, fr->proc_rgb, fr->proc_linesize, n);
        if (a < 0) {
            rc = a;
            if (a == -ENOSPC)
                vt_fmt(
                    err, errlen,
                    "%s: the frame cache (%zu bytes) is full with the first frames of %d videos: "
                    "give a larger --cache-mb, a smaller --short-side or fewer videos",
                    url, d->cap_bytes, d->nv);
            else
                vt_fmt(err, errlen, "%s: frame %lld of %dx%d does not fit the cache of %zu bytes",
                       url, (long long)n, fr->proc_width, fr->proc_height, d->cap_bytes);
            break;
        }
        n++;
    }
    if (rc == AVERROR_EOF || (rc == 0 && n >= o->max_frames))
        rc = 0;
    else if (rc < 0 && !(err && err[0])) {
        char e[128];
        const char *le = vt_source_last_error(src);
        vt_fmt(err, errlen, "error decoding training video '%s' after %lld frames: %s", url,
               (long long)n, le && le[0] ? le : vt_codec_strerror(rc, e, sizeof e));
    }
    vt_source_free(&src);
    if (rc < 0)
        return rc;
    if (n == 0) {
        vt_fmt(err, errlen, "training video '%s' has no frames", url);
        return -EINVAL;
    }
    if (o->log)
        fprintf(o->log, "  %-60s %5lld frames %4dx%-4d -> %dx%d\n", base_name(url), (long long)n,
                info.width, info.height, d->v[vid].w, d->v[vid].h);
    size_t l = strlen(desc);
    if (l + 1 < len)
        snprintf(desc + l, len - l, "%s%s:%lld@%dx%d", l ? ", " : "", base_name(url), (long long)n,
                 d->v[vid].w, d->v[vid].h); /* frames and the size they are cached at */
    return 0;
}

int vt_train_load(char *const *paths, int npaths, const vt_train_load_opts *o, vt_train_data **out,
                  char *desc, size_t len, char *err, size_t errlen) {
    *out = NULL;
    if (len)
        desc[0] = 0;
    vt_train_data *d;
    int rc = vt_train_data_new(o->cap_bytes, &d);
    if (rc < 0) {
        vt_fmt(err, errlen, "out of memory");
        return rc;
    }
    for (int i = 0; i < npaths && rc == 0; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            /* a folder of frames, or a folder of videos */
            char **names;
            int n = vt_cli_list_dir(paths[i], &names);
            if (n < 0) {
                rc = n;
                vt_fmt(err, errlen, "cannot read training folder '%s': %s", paths[i], strerror(-n));
                break;
            }
            int nn = 0, images = 0; /* names keeps the videos */
            for (int k = 0; k < n; k++) {
                images += has_ext(names[k], image_exts);
                if (has_ext(names[k], video_exts))
                    names[nn++] = names[k];
                else
                    free(names[k]);
            }
            if (images > 0 && nn > 0) {
                /* a folder of frames or a folder of videos, not both (which would be meant?) */
                rc = -EINVAL;
                vt_fmt(err, errlen,
                       "training folder '%s' holds both numbered frames and %d video(s): give "
                       "each as its own folder",
                       paths[i], nn);
            } else if (images > 0) {
                rc = load_one(paths[i], o, d, desc, len, err, errlen);
            } else if (nn == 0) {
                rc = -ENOENT;
                vt_fmt(err, errlen, "training folder '%s' holds no videos and no frames", paths[i]);
            } else {
                for (int k = 0; k < nn && rc == 0; k++) {
                    char p[4096];
                    snprintf(p, sizeof p, "%s/%s", paths[i], names[k]);
                    rc = load_one(p, o, d, desc, len, err, errlen);
                }
            }
            for (int k = 0; k < nn; k++)
                free(names[k]);
            free(names);
        } else {
            rc = load_one(paths[i], o, d, desc, len, err, errlen);
        }
    }
    if (rc < 0) {
        vt_train_data_free(&d);
        return rc;
    }
    if (vt_train_data_finish(d) < 2) {
        vt_fmt(err, errlen, "the training data has no video with two frames or more");
        vt_train_data_free(&d);
        return -EINVAL;
    }
    *out = d;
    return 0;
}
