/* reservoir.c - see reservoir.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reservoir.h"
#include "vt_base.h"

#define PPM_HEADER_MAX 32 /* "P6\n16384 16384\n255\n" and more */
#define BOXES_TAG      "# vtrack boxes"
_Static_assert(sizeof BOXES_TAG - 1 +
                       VTD_SAMPLE_BOXES * (sizeof " 2147483647" - 1 + 4 * (sizeof " 16384" - 1)) <
                   VTD_BOXES_LINE,
               "a boxes line fits VTD_BOXES_LINE with its newline");

struct vtd_reservoir {
    char dir[4096];
    vtd_adapt_conf conf;
    pthread_mutex_t lock;

    /* tracker thread only */
    int64_t next_us; /* the next sample starts on the first frame at or after this */
    int taking;      /* frames of the current sample captured so far (0: none started) */
    int tw, th;      /* the current sample's size */
    uint8_t *buf;    /* clip frames of tw x th */
    size_t buf_cap;
    int nboxes[VTD_CLIP_MAX]; /* the objects on each frame of the sample, scaled */
    vtd_obj_box boxes[VTD_CLIP_MAX][VTD_SAMPLE_BOXES]; /* (with buf, the writer's while `due`) */

    /* under lock */
    int due;            /* buf holds a chosen sample for slot `due_slot`: the tracker waits */
    int due_slot;       /* its slot */
    int due_w, due_h;   /* its size */
    int reset;          /* the frame size changed: delete the old samples first */
    int dirty;          /* the counters changed since they were written */
    uint64_t seen;      /* Algorithm R's n */
    uint64_t rng;       /* its generator */
    int w, h, capacity; /* the samples' size, k */
    uint8_t *have;      /* capacity flags: a file holds slot i */
    int samples;
    uint64_t skipped, failures;
};

/* splitmix64 */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int vtd_reservoir_choose(uint64_t *rng, uint64_t n, int k) {
    if (k <= 0)
        return -1;
    if (n < (uint64_t)k)
        return (int)n;
    /* j uniform in [0, n]: rejection removes the modulo bias */
    const uint64_t range = n + 1, limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t x;
    do
        x = next_u64(rng);
    while (x >= limit);
    const uint64_t j = x % range;
    return j < (uint64_t)k ? (int)j : -1;
}

static uint64_t sample_bytes(const vtd_adapt_conf *a, int w, int h) {
    char hdr[PPM_HEADER_MAX];
    const int n = snprintf(hdr, sizeof hdr, "P6\n%d %d\n255\n", w, h);
    return (uint64_t)a->clip * ((uint64_t)n + VTD_BOXES_LINE + 3ULL * (uint64_t)w * (uint64_t)h);
}

static int capacity_for(const vtd_adapt_conf *a, int w, int h) {
    const uint64_t budget = (uint64_t)(a->reservoir_mb * 1048576.0);
    const uint64_t k = budget / sample_bytes(a, w, h);
    return k > 100000 ? 100000 : (int)k;
}

static void slot_path(const vtd_reservoir *r, int slot, const char *suffix, char *buf, size_t n) {
    snprintf(buf, n, "%s/frames/s%05d.ppm%s", r->dir, slot, suffix);
}

/* ---------------------------------------------------------------------------------------------
 * Reading: one sample file
 * ------------------------------------------------------------------------------------------- */

/* The numbers of a "# vtrack boxes" line (after the tag): groups of five (id, x, y, w, h), at
 * most VTD_SAMPLE_BOXES. 0 or -EINVAL. */
static int parse_boxes(const char *line, vtd_obj_box *out, int *nout) {
    int n = 0;
    for (;;) {
        while (*line == ' ')
            line++;
        if (!*line)
            break;
        char *end;
        errno = 0;
        const long long v = strtoll(line, &end, 10);
        const long long max = n % 5 ? 16384 : 2147483647;
        if (end == line || errno || v < (n % 5 ? 0 : 1) || v > max || (*end && *end != ' ') ||
            n == 5 * VTD_SAMPLE_BOXES)
            return -EINVAL;
        if (n % 5 == 0)
            out[n / 5].id = (uint32_t)v;
        else
            out[n / 5].box[n % 5 - 1] = (int)v;
        n++;
        line = end;
    }
    if (n % 5)
        return -EINVAL;
    *nout = n / 5;
    return 0;
}

/* "P6 W H 255" and its single whitespace, with comment lines allowed before W (PPM's rule);
 * a "# vtrack boxes" comment gives the objects of image `k`. 0 or -EINVAL. */
static int read_header(FILE *f, vtd_sample *s, int k, int *w, int *h) {
    int maxv, c;
    char m[3] = {0};
    if (fread(m, 1, 2, f) != 2 || strcmp(m, "P6") != 0)
        return -EINVAL;
    for (;;) {
        while ((c = fgetc(f)) == ' ' || c == '\n' || c == '\t' || c == '\r')
            ;
        if (c != '#')
            break;
        char line[VTD_BOXES_LINE + 1];
        ungetc(c, f);
        if (!fgets(line, sizeof line, f) || !strchr(line, '\n'))
            return -EINVAL; /* longer than any line vtrackd writes */
        *strchr(line, '\n') = 0;
        if (strncmp(line, BOXES_TAG " ", sizeof BOXES_TAG) == 0 &&
            parse_boxes(line + sizeof BOXES_TAG, s->boxes[k], &s->nboxes[k]) < 0)
            return -EINVAL;
    }
    if (c == EOF)
        return -EINVAL;
    ungetc(c, f);
    if (fscanf(f, "%d %d %d", w, h, &maxv) != 3 || maxv != 255 || *w < 1 || *h < 1 || *w > 16384 ||
        *h > 16384)
        return -EINVAL;
    for (int i = 0; i < s->nboxes[k]; i++) {
        const int *b = s->boxes[k][i].box;
        if (b[0] < 0 || b[1] < 0 || b[2] < 1 || b[3] < 1 || b[0] + b[2] > *w || b[1] + b[3] > *h)
            return -EINVAL;
    }
    c = fgetc(f);
    return c == '\n' || c == ' ' || c == '\t' || c == '\r' ? 0 : -EINVAL;
}

/* Every image of one file (all of one size, at least two). 0, -EINVAL or -ENOMEM. */
static int read_sample(const char *path, vtd_sample *s) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    int rc = 0, w, h;
    s->n = 0;
    s->rgb = NULL;
    memset(s->nboxes, 0, sizeof s->nboxes);
    size_t cap = 0;
    while (rc == 0) {
        int c = fgetc(f);
        if (c == EOF)
            break;
        ungetc(c, f);
        if (s->n == VTD_CLIP_MAX || (rc = read_header(f, s, s->n, &w, &h)) < 0) {
            rc = -EINVAL; /* more images than vtrackd writes */
            break;
        }
        if (s->n && (w != s->w || h != s->h)) {
            rc = -EINVAL;
            break;
        }
        const size_t fb = (size_t)3 * w * h;
        if ((size_t)(s->n + 1) * fb > cap) {
            size_t nc = cap ? 2 * cap : 4 * fb;
            uint8_t *p = realloc(s->rgb, nc);
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            s->rgb = p, cap = nc;
        }
        if (fread(s->rgb + (size_t)s->n * fb, 1, fb, f) != fb) {
            rc = -EINVAL;
            break;
        }
        s->w = w, s->h = h;
        s->n++;
    }
    fclose(f);
    if (rc == 0 && s->n < 2)
        rc = -EINVAL;
    if (rc < 0) {
        free(s->rgb);
        s->rgb = NULL;
        s->n = 0;
    }
    return rc;
}

static int slot_of(const char *name) {
    int slot, n = 0;
    if (sscanf(name, "s%5d.ppm%n", &slot, &n) != 1 || name[n] || n != 10 || slot < 0)
        return -1;
    return slot;
}

static int cmp_slot(const void *a, const void *b) {
    const vtd_sample *x = a, *y = b;
    return (x->slot > y->slot) - (x->slot < y->slot);
}

int vtd_samples_read(const char *dir, vtd_sample **out, int *nout) {
    *out = NULL;
    *nout = 0;
    char path[4400];
    snprintf(path, sizeof path, "%s/frames", dir);
    DIR *dd = opendir(path);
    if (!dd)
        return -errno;
    vtd_sample *v = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dd))) {
        const int slot = slot_of(e->d_name);
        if (slot < 0)
            continue;
        if (n == cap) {
            int nc = cap ? 2 * cap : 16;
            vtd_sample *p = realloc(v, (size_t)nc * sizeof *p);
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            v = p, cap = nc;
        }
        snprintf(path, sizeof path, "%s/frames/%s", dir, e->d_name);
        vtd_sample s = {.slot = slot};
        int r2 = read_sample(path, &s);
        if (r2 == -ENOMEM)
            rc = r2;
        else if (r2 == 0)
            v[n++] = s;
    }
    closedir(dd);
    if (rc < 0) {
        vtd_samples_free(&v, n);
        return rc;
    }
    if (n)
        qsort(v, (size_t)n, sizeof *v, cmp_slot);
    *out = v;
    *nout = n;
    return 0;
}

void vtd_samples_free(vtd_sample **s, int n) {
    if (!*s)
        return;
    for (int i = 0; i < n; i++)
        free((*s)[i].rgb);
    free(*s);
    *s = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Opening: what an earlier run left
 * ------------------------------------------------------------------------------------------- */

static int mkdir_one(const char *p) {
    return mkdir(p, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

/* mkdir -p of `dir` and dir/frames. */
static int make_dirs(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s", dir);
    int rc = 0;
    for (char *q = p + 1; *q && rc == 0; q++)
        if (*q == '/') {
            *q = 0;
            rc = mkdir_one(p);
            *q = '/';
        }
    if (rc == 0)
        rc = mkdir_one(p);
    snprintf(p, sizeof p, "%s/frames", dir);
    return rc == 0 ? mkdir_one(p) : rc;
}

/* <dir>/reservoir: "seen N", "rng S" lines (an absent or unreadable file: zeros). */
static void read_counters(vtd_reservoir *r) {
    char p[4200];
    snprintf(p, sizeof p, "%s/reservoir", r->dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return;
    char key[16];
    uint64_t v;
    while (fscanf(f, "%15s %" SCNu64, key, &v) == 2) {
        if (strcmp(key, "seen") == 0)
            r->seen = v;
        else if (strcmp(key, "rng") == 0)
            r->rng = v;
    }
    fclose(f);
}

/* The files of the frames folder: the samples' size from the first one that parses, the slots
 * held, and files beyond the capacity (a smaller budget now) or of another size removed. */
static int scan(vtd_reservoir *r) {
    vtd_sample *s;
    int n;
    int rc = vtd_samples_read(r->dir, &s, &n);
    if (rc < 0)
        return rc;
    if (n) {
        r->w = s[0].w, r->h = s[0].h;
        r->capacity = capacity_for(&r->conf, r->w, r->h);
        if (r->capacity > 0 && !(r->have = calloc((size_t)r->capacity, 1))) {
            vtd_samples_free(&s, n);
            return -ENOMEM;
        }
    }
    for (int i = 0; i < n; i++) {
        if (s[i].slot < r->capacity && s[i].w == r->w && s[i].h == r->h && s[i].n == r->conf.clip) {
            r->have[s[i].slot] = 1;
            r->samples++;
        } else {
            char p[4200];
            slot_path(r, s[i].slot, "", p, sizeof p);
            unlink(p);
        }
    }
    vtd_samples_free(&s, n);
    /* counters lost or behind the files: Algorithm R has seen at least what is kept */
    if (r->seen < (uint64_t)r->samples)
        r->seen = (uint64_t)r->samples;
    return 0;
}

int vtd_reservoir_open(const char *dir, const vtd_adapt_conf *a, vtd_reservoir **out, char *err,
                       size_t errlen) {
    *out = NULL;
    vtd_reservoir *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    vt_fmt(r->dir, sizeof r->dir, "%s", dir);
    r->conf = *a;
    r->rng = 0x5eed0000ULL + (uint64_t)a->seed;
    pthread_mutex_init(&r->lock, NULL);
    int rc = make_dirs(dir);
    if (rc < 0) {
        vt_fmt(err, errlen, "%s: %s", dir, strerror(-rc));
        vtd_reservoir_free(&r);
        return rc;
    }
    read_counters(r);
    if ((rc = scan(r)) < 0) {
        vt_fmt(err, errlen, "%s/frames: %s", dir, strerror(-rc));
        vtd_reservoir_free(&r);
        return rc;
    }
    *out = r;
    return 0;
}

void vtd_reservoir_free(vtd_reservoir **rp) {
    vtd_reservoir *r = *rp;
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r->buf);
    free(r->have);
    free(r);
    *rp = NULL;
}

const char *vtd_reservoir_dir(const vtd_reservoir *r) {
    return r->dir;
}

/* ---------------------------------------------------------------------------------------------
 * The tracker thread: taking a sample
 * ------------------------------------------------------------------------------------------- */

/* The sample's size for a w x h frame: short side scaled to short_side, never up. */
static void scaled_size(int short_side, int w, int h, int *sw, int *sh) {
    const int s = w < h ? w : h;
    if (s <= short_side) {
        *sw = w, *sh = h;
        return;
    }
    *sw = (int)(((int64_t)w * short_side + s / 2) / s);
    *sh = (int)(((int64_t)h * short_side + s / 2) / s);
    *sw = *sw < 1 ? 1 : *sw;
    *sh = *sh < 1 ? 1 : *sh;
}

/* Box filter: each output pixel the mean of the source pixels it covers. */
static void scale_box(const uint8_t *src, int w, int h, int ls, uint8_t *dst, int dw, int dh) {
    for (int y = 0; y < dh; y++) {
        const int y0 = (int)((int64_t)y * h / dh), y1r = (int)((int64_t)(y + 1) * h / dh);
        const int y1 = y1r > y0 ? y1r : y0 + 1;
        for (int x = 0; x < dw; x++) {
            const int x0 = (int)((int64_t)x * w / dw), x1r = (int)((int64_t)(x + 1) * w / dw);
            const int x1 = x1r > x0 ? x1r : x0 + 1;
            unsigned sum[3] = {0, 0, 0};
            for (int yy = y0; yy < y1; yy++) {
                const uint8_t *p = src + (size_t)yy * ls + (size_t)3 * x0;
                for (int xx = x0; xx < x1; xx++, p += 3)
                    sum[0] += p[0], sum[1] += p[1], sum[2] += p[2];
            }
            const unsigned cnt = (unsigned)((y1 - y0) * (x1 - x0));
            uint8_t *q = dst + ((size_t)y * dw + x) * 3;
            for (int c = 0; c < 3; c++)
                q[c] = (uint8_t)((sum[c] + cnt / 2) / cnt);
        }
    }
}

/* The sample is complete: Algorithm R chooses its slot, or drops it. */
static void sample_done(vtd_reservoir *r) {
    pthread_mutex_lock(&r->lock);
    if (r->w && (r->tw != r->w || r->th != r->h)) {
        /* a new frame size: the reservoir starts again (the writer deletes the old files) */
        r->reset = 1;
        r->seen = 0;
        r->w = 0;
    }
    if (!r->w) {
        r->w = r->tw, r->h = r->th;
        r->capacity = capacity_for(&r->conf, r->w, r->h);
    }
    const int slot = vtd_reservoir_choose(&r->rng, r->seen, r->capacity);
    r->seen++;
    r->dirty = 1;
    if (slot >= 0) {
        r->due = 1;
        r->due_slot = slot;
        r->due_w = r->tw, r->due_h = r->th;
    }
    pthread_mutex_unlock(&r->lock);
}

/* The objects of a w x h frame as frame `k` of the sample, in its tw x th pixels: boxes outward
 * to whole pixels, clipped; a box that keeps no pixel is dropped. */
static void take_boxes(vtd_reservoir *r, int k, int w, int h, const vtd_obj_box *boxes,
                       int nboxes) {
    int n = 0;
    for (int i = 0; i < nboxes && n < VTD_SAMPLE_BOXES; i++) {
        const int *b = boxes[i].box;
        const int64_t x0 = b[0] < 0 ? 0 : b[0], y0 = b[1] < 0 ? 0 : b[1];
        int64_t x1 = (int64_t)b[0] + b[2], y1 = (int64_t)b[1] + b[3];
        x1 = x1 > w ? w : x1;
        y1 = y1 > h ? h : y1;
        const int sx0 = (int)(x0 * r->tw / w), sy0 = (int)(y0 * r->th / h);
        const int sx1 = (int)((x1 * r->tw + w - 1) / w), sy1 = (int)((y1 * r->th + h - 1) / h);
        if (sx1 <= sx0 || sy1 <= sy0 || boxes[i].id < 1 || boxes[i].id > 2147483647u)
            continue;
        r->boxes[k][n++] = (vtd_obj_box){boxes[i].id, {sx0, sy0, sx1 - sx0, sy1 - sy0}};
    }
    r->nboxes[k] = n;
}

int vtd_reservoir_wants(const vtd_reservoir *r, int64_t mono_us) {
    return r->taking || mono_us >= r->next_us;
}

void vtd_reservoir_frame(vtd_reservoir *r, const uint8_t *rgb, int w, int h, int linesize,
                         int64_t mono_us, const vtd_obj_box *boxes, int nboxes) {
    if (!vtd_reservoir_wants(r, mono_us))
        return;
    if (!r->taking) {
        r->next_us = mono_us + r->conf.every_ms * 1000;
        pthread_mutex_lock(&r->lock);
        const int busy = r->due;
        r->skipped += busy != 0;
        pthread_mutex_unlock(&r->lock);
        if (busy)
            return;
        scaled_size(r->conf.short_side, w, h, &r->tw, &r->th);
        const size_t need = (size_t)r->conf.clip * 3 * r->tw * r->th;
        if (need > r->buf_cap) {
            uint8_t *p = realloc(r->buf, need); /* the first sample, or a new frame size */
            if (!p)
                return;
            r->buf = p, r->buf_cap = need;
        }
    } else {
        int sw, sh;
        scaled_size(r->conf.short_side, w, h, &sw, &sh);
        if (sw != r->tw || sh != r->th) { /* the size changed within the sample: drop it */
            r->taking = 0;
            return;
        }
    }
    scale_box(rgb, w, h, linesize, r->buf + (size_t)r->taking * 3 * r->tw * r->th, r->tw, r->th);
    take_boxes(r, r->taking, w, h, boxes, nboxes);
    if (++r->taking == r->conf.clip) {
        r->taking = 0;
        sample_done(r);
    }
}

int vtd_reservoir_due(vtd_reservoir *r) {
    pthread_mutex_lock(&r->lock);
    const int due = r->due || r->dirty;
    pthread_mutex_unlock(&r->lock);
    return due;
}

/* ---------------------------------------------------------------------------------------------
 * The pool: writing it
 * ------------------------------------------------------------------------------------------- */

/* Frame k's boxes line: the tag, the ids and boxes, spaces to VTD_BOXES_LINE - 1 bytes, and a
 * newline. */
static void boxes_line(const vtd_reservoir *r, int k, char *line) {
    int n = snprintf(line, VTD_BOXES_LINE, "%s", BOXES_TAG);
    for (int i = 0; i < r->nboxes[k]; i++) {
        const vtd_obj_box *b = &r->boxes[k][i];
        n += snprintf(line + n, (size_t)(VTD_BOXES_LINE - n), " %u %d %d %d %d", (unsigned)b->id,
                      b->box[0], b->box[1], b->box[2], b->box[3]);
    }
    memset(line + n, ' ', (size_t)(VTD_BOXES_LINE - 1 - n));
    line[VTD_BOXES_LINE - 1] = '\n';
    line[VTD_BOXES_LINE] = 0;
}

/* Write `text`, or the sample in r->buf as binary PPMs (each header with its boxes line), to
 * tmp and rename it to path. No fsync: a sample lost in a crash is one sample fewer, and the
 * scan at start-up drops a file that does not parse. */
static int write_any(const char *tmp, const char *path, const char *text, const vtd_reservoir *r,
                     int w, int h) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (text) {
        rc = vt_write_all(fd, text, strlen(text));
    } else {
        char hdr[PPM_HEADER_MAX];
        const int hn = snprintf(hdr, sizeof hdr, "P6\n%d %d\n255\n", w, h);
        const size_t fb = (size_t)3 * w * h;
        char line[VTD_BOXES_LINE + 1];
        for (int i = 0; i < r->conf.clip && rc == 0; i++) {
            boxes_line(r, i, line);
            if ((rc = vt_write_all(fd, hdr, 3)) == 0 &&
                (rc = vt_write_all(fd, line, strlen(line))) == 0 &&
                (rc = vt_write_all(fd, hdr + 3, (size_t)hn - 3)) == 0)
                rc = vt_write_all(fd, r->buf + (size_t)i * fb, fb);
        }
    }
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

static int write_file(const vtd_reservoir *r, const char *tmp, const char *path, int w, int h) {
    return write_any(tmp, path, NULL, r, w, h);
}

static int write_text(const char *tmp, const char *path, const char *text) {
    return write_any(tmp, path, text, NULL, 0, 0);
}

static void delete_all(vtd_reservoir *r) {
    char p[4400];
    snprintf(p, sizeof p, "%s/frames", r->dir);
    DIR *dd = opendir(p);
    if (!dd)
        return;
    struct dirent *e;
    while ((e = readdir(dd)))
        if (slot_of(e->d_name) >= 0) {
            snprintf(p, sizeof p, "%s/frames/%s", r->dir, e->d_name);
            unlink(p);
        }
    closedir(dd);
}

int vtd_reservoir_write(vtd_reservoir *r, char *err, size_t errlen) {
    pthread_mutex_lock(&r->lock);
    const int due = r->due, slot = r->due_slot, w = r->due_w, h = r->due_h, reset = r->reset;
    const int capacity = r->capacity, dirty = r->dirty;
    r->reset = 0;
    pthread_mutex_unlock(&r->lock);
    if (!due && !dirty)
        return 0;
    if (reset) {
        delete_all(r);
        pthread_mutex_lock(&r->lock);
        r->samples = 0;
        pthread_mutex_unlock(&r->lock);
        free(r->have);
        r->have = NULL;
    }
    int rc = 0;
    if (due && !r->have && !(r->have = calloc((size_t)(capacity > 0 ? capacity : 1), 1)))
        rc = -ENOMEM;
    char tmp[4200], path[4200];
    slot_path(r, slot, ".tmp", tmp, sizeof tmp);
    slot_path(r, slot, "", path, sizeof path);
    if (due && rc == 0)
        rc = write_file(r, tmp, path, w, h);
    pthread_mutex_lock(&r->lock);
    if (due && rc == 0 && !r->have[slot]) {
        r->have[slot] = 1;
        r->samples++;
    }
    r->failures += rc < 0;
    char counters[128];
    snprintf(counters, sizeof counters, "seen %" PRIu64 "\nrng %" PRIu64 "\n", r->seen, r->rng);
    r->due = 0; /* the buffer is the tracker's again */
    r->dirty = 0;
    pthread_mutex_unlock(&r->lock);
    if (rc < 0) {
        vt_fmt(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    snprintf(tmp, sizeof tmp, "%s/reservoir.tmp", r->dir);
    snprintf(path, sizeof path, "%s/reservoir", r->dir);
    if ((rc = write_text(tmp, path, counters)) < 0) {
        vt_fmt(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    return 1;
}

void vtd_reservoir_get_stats(vtd_reservoir *r, vtd_reservoir_stats *st) {
    pthread_mutex_lock(&r->lock);
    *st = (vtd_reservoir_stats){
        .offered = r->seen,
        .skipped = r->skipped,
        .failures = r->failures,
        .samples = r->samples,
        .capacity = r->capacity,
        .bytes = r->w ? (uint64_t)r->samples * sample_bytes(&r->conf, r->w, r->h) : 0,
        .budget = (uint64_t)(r->conf.reservoir_mb * 1048576.0),
        .w = r->w,
        .h = r->h,
    };
    pthread_mutex_unlock(&r->lock);
}
