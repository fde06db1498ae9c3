/* test_codec.c - codec/ unit tests (files, folders, errors, whitelist, pacing, masks, overlay)
 * and data tests (DAVIS annotations and frames from $VT_DATA). Media are made by the ffmpeg tool
 * into a scratch folder before the suites run.
 * usage: test_codec [unit|data]   (default: both) */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/error.h>
#include <libavutil/log.h>

#include "testmain.h"
#include "codec_test_util.h"
#include "vt_base.h"
#include "vt_codec.h"

static int have_x264, have_vp8;

/* ---------------------------------------------------------------------------------------------
 * Media
 * ------------------------------------------------------------------------------------------- */

typedef struct clip {
    const char *file;
    const char *encode; /* ffmpeg output options */
    int w, h, fps, frames;
    const char *codec; /* decoder name expected */
    int *needs;        /* encoder availability flag, or NULL */
} clip;

static clip clips[] = {
    {"h264.mp4", "-c:v libx264 -bf 2 -g 12 -pix_fmt yuv420p", 320, 240, 25, 50, "h264", &have_x264},
    {"mpeg4.mkv", "-c:v mpeg4 -q:v 4", 352, 288, 30, 48, "mpeg4", NULL},
    {"mjpeg.avi", "-c:v mjpeg -q:v 5", 320, 240, 25, 40, "mjpeg", NULL},
    {"vp8.webm", "-c:v libvpx -b:v 300k", 256, 144, 24, 30, "vp8", &have_vp8},
    {"h264.ts", "-c:v libx264 -bf 0 -pix_fmt yuv420p", 176, 144, 25, 30, "h264", &have_x264},
};
#define NCLIPS ((int)TM_LEN(clips))

static void make_media(void) {
    have_x264 = tu_have_encoder("libx264");
    have_vp8 = tu_have_encoder("libvpx");
    for (int i = 0; i < NCLIPS; i++) {
        const clip *c = &clips[i];
        if (c->needs && !*c->needs) { /* Debian's ffmpeg has them all */
            fprintf(stderr, "SKIP: ffmpeg has no encoder for %s: the codec tests did not run\n",
                    c->file);
            exit(77);
        }
        if (tu_ffmpeg("-f lavfi -i testsrc=size=%dx%d:rate=%d -frames:v %d %s %s", c->w, c->h,
                      c->fps, c->frames, c->encode, tu_path(c->file)) != 0)
            exit(2);
    }
    /* Solid colours: an independent truth for the YUV -> RGB conversion. */
    if (tu_ffmpeg("-f lavfi -i color=c=0xC83C1E:size=64x48:rate=25 -frames:v 5 -c:v mpeg4 -q:v 2 "
                  "%s",
                  tu_path("color.mkv")) != 0 ||
        tu_ffmpeg("-f lavfi -i color=c=0x1E78C8:size=64x48:rate=25 -frames:v 5 -c:v mjpeg -q:v 2 "
                  "%s",
                  tu_path("color.avi")) != 0)
        exit(2);
    /* Faststart so that a truncated copy still has its index. */
    if (tu_ffmpeg("-f lavfi -i testsrc=size=320x240:rate=25 -frames:v 60 -c:v mpeg4 -q:v 3 "
                  "-movflags +faststart %s",
                  tu_path("long.mp4")) != 0 ||
        tu_ffmpeg("-f lavfi -i testsrc=size=320x240:rate=25 -frames:v 60 -c:v mjpeg -q:v 5 %s",
                  tu_path("long.avi")) != 0 ||
        tu_ffmpeg("-f lavfi -i testsrc=size=320x240:rate=25 -frames:v 60 -c:v mpeg4 -q:v 3 %s",
                  tu_path("long.mkv")) != 0)
        exit(2);
    /* Folders of numbered frames, DAVIS style and a 1-based %03d one. */
    mkdir(tu_path("seq"), 0755);
    mkdir(tu_path("seq3"), 0755);
    mkdir(tu_path("empty"), 0755);
    if (tu_ffmpeg("-f lavfi -i testsrc=size=160x120:rate=25 -frames:v 10 -start_number 0 %s",
                  tu_path("seq/%05d.jpg")) != 0 ||
        tu_ffmpeg("-f lavfi -i testsrc=size=96x64:rate=25 -frames:v 7 -start_number 5 %s",
                  tu_path("seq3/%03d.png")) != 0)
        exit(2);
    /* A 1 fps and a 5-frame clip for pacing. */
    if (tu_ffmpeg("-f lavfi -i testsrc=size=64x48:rate=1 -frames:v 5 -c:v mpeg4 %s",
                  tu_path("slow.mkv")) != 0 ||
        tu_ffmpeg("-f lavfi -i testsrc=size=64x48:rate=25 -frames:v 5 -c:v mpeg4 %s",
                  tu_path("short.mkv")) != 0 ||
        tu_ffmpeg("-f lavfi -i sine=frequency=440:duration=1 %s", tu_path("audio.wav")) != 0)
        exit(2);
    tu_write_file(tu_path("notes.txt"), "this is not a video\n", 20);
}

static vt_source *open_local(const char *path, vt_source_opts *o) {
    vt_source_opts def;
    vt_source *s = NULL;
    char err[512] = "";
    int ret;
    if (!o) {
        vt_source_opts_default(&def);
        o = &def;
    }
    o->allow_local = 1;
    ret = vt_source_new(&s, path, o, err, sizeof(err));
    ck_assert_msg(ret == 0, "vt_source_new(%s): %s", path, err);
    return s;
}

/* Read everything; returns the frame count. */
static int drain(vt_source *s, int *last_ret) {
    const vt_frame *f;
    int n = 0, ret;
    while ((ret = vt_source_read(s, &f)) == 0)
        n++;
    if (last_ret)
        *last_ret = ret;
    return n;
}

/* ---------------------------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_file_clip) {
    const clip *c = &clips[_i];
    vt_source_opts o;
    vt_source *s;
    vt_source_info info;
    const vt_frame *f;
    int64_t pts0 = 0;
    int n = 0, ret;

    vt_source_opts_default(&o);
    o.proc_width = c->w / 2;
    o.decoder_threads = 1;
    s = open_local(tu_path(c->file), &o);
    ck_assert_int_eq(vt_source_get_info(s, &info), AVERROR(EAGAIN));
    while ((ret = vt_source_read(s, &f)) == 0) {
        ck_assert_int_eq(f->width, c->w);
        ck_assert_int_eq(f->height, c->h);
        ck_assert_int_ge(f->linesize, 3 * c->w);
        ck_assert_int_eq(f->proc_width, c->w / 2);
        ck_assert_int_eq(f->proc_height, c->h / 2); /* aspect kept */
        ck_assert_ptr_nonnull(f->proc_rgb);
        ck_assert_int_eq(f->index, n);
        ck_assert_int_eq(f->session, 1);
        ck_assert_int_eq(f->capture_realtime_us, -1);
        ck_assert(f->arrival_realtime_us > 1600000000LL * 1000000);
        if (n == 0)
            pts0 = f->pts;
        /* pts - pts0 == n / fps seconds, to the time base's rounding (mkv/webm: 1 ms). */
        ck_assert_msg(llabs((f->pts - pts0) * f->tb_num * c->fps - (int64_t)n * f->tb_den) <=
                          (long long)f->tb_num * c->fps,
                      "%s frame %d: pts %lld (first %lld) in %d/%d", c->file, n, (long long)f->pts,
                      (long long)pts0, f->tb_num, f->tb_den);
        n++;
    }
    ck_assert_int_eq(ret, AVERROR_EOF);
    ck_assert_int_eq(n, c->frames);
    ck_assert_int_eq(vt_source_get_state(s), VT_SOURCE_STATE_ENDED);
    ck_assert_int_eq(vt_source_read(s, &f), AVERROR_EOF);
    ck_assert_int_eq(vt_source_get_info(s, &info), 0);
    ck_assert_str_eq(info.codec_name, c->codec);
    ck_assert_int_eq(info.kind, VT_SOURCE_KIND_FILE);
    ck_assert_int_eq(info.width, c->w);
    vt_source_stats st;
    vt_source_get_stats(s, &st);
    ck_assert_int_eq(st.frames, c->frames);
    ck_assert_int_eq(st.decode_errors, 0);
    ck_assert_int_eq(st.connect_attempts, 1);
    vt_source_free(&s);
    ck_assert_ptr_null(s);
}
END_TEST

/* The colour the clip was made with comes back within codec and rounding error. */
static void check_color(const char *file, int r, int g, int b) {
    vt_source *s = open_local(tu_path(file), NULL);
    const vt_frame *f;
    uint8_t *px;
    ck_assert_int_eq(vt_source_read(s, &f), 0);
    px = malloc((size_t)f->width * f->height * 3);
    ck_assert_int_eq(vt_frame_copy_rgb(f, 0, px), 0);
    ck_assert_int_eq(vt_frame_copy_rgb(f, 1, px), AVERROR(EINVAL)); /* no processing size */
    {
        const uint8_t *p = px + ((size_t)24 * f->width + 32) * 3;
        ck_assert_msg(abs(p[0] - r) <= 4 && abs(p[1] - g) <= 4 && abs(p[2] - b) <= 4,
                      "%s: got %d,%d,%d want %d,%d,%d", file, p[0], p[1], p[2], r, g, b);
    }
    free(px);
    vt_source_free(&s);
}

START_TEST(test_colors) {
    check_color("color.mkv", 0xC8, 0x3C, 0x1E); /* limited-range BT.601 */
    check_color("color.avi", 0x1E, 0x78, 0xC8); /* MJPEG: full range */
}
END_TEST

START_TEST(test_real_file) {
    const char *p = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";
    vt_source *s;
    vt_source_info info;
    int ret, n;
    ck_assert_msg(access(p, R_OK) == 0, "%s missing (Debian package opencv-doc; ./dev setup)", p);
    s = open_local(p, NULL);
    n = drain(s, &ret);
    ck_assert_int_eq(ret, AVERROR_EOF);
    ck_assert_int_eq(n, 795);
    ck_assert_int_eq(vt_source_get_info(s, &info), 0);
    ck_assert_int_eq(info.width, 768);
    ck_assert_int_eq(info.height, 576);
    vt_source_free(&s);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Damaged input and errors
 * ------------------------------------------------------------------------------------------- */

static void copy_file(const char *from, const char *to) {
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_truncated) {
    static const char *const names[] = {"long.mp4", "long.avi", "long.mkv"};
    for (int i = 0; i < 3; i++) {
        char cut[64];
        vt_source *s;
        vt_source_stats st;
        int ret, n;
        snprintf(cut, sizeof(cut), "cut-%s", names[i]);
        copy_file(tu_path(names[i]), tu_path(cut));
        ck_assert_int_eq(tu_truncate(tu_path(cut), tu_file_size(tu_path(cut)) * 6 / 10), 0);
        s = open_local(tu_path(cut), NULL);
        n = drain(s, &ret);
        vt_source_get_stats(s, &st);
        /* Most of the first 60% of 60 frames, never more than were there, then a clean end. */
        ck_assert_msg(n >= 25 && n < 60, "%s: %d frames", cut, n);
        ck_assert_int_eq(ret, AVERROR_EOF);
        vt_source_free(&s);
    }
}
END_TEST

START_TEST(test_garbage_middle) {
    static const char *const names[] = {"long.avi", "long.mkv", "long.mp4"};
    /* Matroska drops the rest of a damaged cluster (it resyncs on the next one). */
    static const int min_frames[] = {55, 30, 55};
    for (int i = 0; i < 3; i++) {
        char bad[64];
        vt_source *s;
        vt_source_stats st;
        int ret, n;
        long size;
        snprintf(bad, sizeof(bad), "bad-%s", names[i]);
        copy_file(tu_path(names[i]), tu_path(bad));
        size = tu_file_size(tu_path(bad));
        ck_assert_int_eq(tu_scribble(tu_path(bad), size / 2, 3000), 0);
        s = open_local(tu_path(bad), NULL);
        n = drain(s, &ret);
        vt_source_get_stats(s, &st);
        fprintf(stderr, "%s: %d frames, %lld decode errors, %lld corrupt, %lld demux errors\n", bad,
                n, (long long)st.decode_errors, (long long)st.corrupt_frames,
                (long long)st.demux_errors);
        ck_assert_int_eq(ret, AVERROR_EOF);
        /* The frames around the damage are lost or flagged; the rest come through. */
        ck_assert_msg(n >= min_frames[i] && n <= 60, "%s: %d frames", bad, n);
        ck_assert_msg(st.decode_errors + st.corrupt_frames + st.demux_errors >= 1 || n < 60,
                      "%s: damage went unnoticed", bad);
        vt_source_free(&s);
    }
}
END_TEST

/* A folder holding one grey PNG of `size` (WxH): its first read fails with E2BIG and a reason
 * that names the size and says `why`. */
static void expect_too_big(const char *dir, const char *size, const char *why) {
    char png[600];
    snprintf(png, sizeof png, "%s/00000.png", tu_path(dir));
    ck_assert_int_eq(mkdir(tu_path(dir), 0755) == 0 || errno == EEXIST, 1);
    ck_assert_int_eq(tu_ffmpeg("-f lavfi -i color=c=gray:s=%s -frames:v 1 %s", size, png), 0);
    vt_source *s = open_local(tu_path(dir), NULL);
    const vt_frame *f;
    ck_assert_int_eq(vt_source_read(s, &f), AVERROR(E2BIG));
    const char *msg = vt_source_last_error(s);
    ck_assert_msg(msg && strstr(msg, size) && strstr(msg, why), "%s", msg);
    vt_source_free(&s);
}

START_TEST(test_errors) {
    char err[512];
    vt_source *s;
    const vt_frame *f;
    int ret;

    /* Missing file: ENOENT from open, and the same from read. */
    s = open_local(tu_path("nope.mp4"), NULL);
    ret = vt_source_open(s, err, sizeof(err));
    ck_assert_int_eq(ret, AVERROR(ENOENT));
    ck_assert_msg(strstr(err, "nope.mp4") && strstr(err, "No such file"), "%s", err);
    ck_assert_int_eq(vt_source_get_state(s), VT_SOURCE_STATE_ENDED);
    ck_assert_int_eq(vt_source_read(s, &f), AVERROR(ENOENT));
    ck_assert_ptr_null(f);
    vt_source_free(&s);

    /* Not a media file. */
    s = open_local(tu_path("notes.txt"), NULL);
    ret = vt_source_open(s, err, sizeof(err));
    ck_assert_int_eq(ret, AVERROR_INVALIDDATA);
    ck_assert_msg(strstr(err, "notes.txt") && strstr(err, "nvalid data"), "%s", err);
    vt_source_free(&s);

    /* Audio only. */
    s = open_local(tu_path("audio.wav"), NULL);
    ret = vt_source_open(s, err, sizeof(err));
    ck_assert_int_eq(ret, AVERROR_STREAM_NOT_FOUND);
    ck_assert_msg(strstr(err, "no video stream"), "%s", err);
    vt_source_free(&s);

    /* Frames larger than 8K UHD (a 110 KB PNG of 7744x4320), or longer than 16384 a side:
     * refused before any buffer is made for them */
    expect_too_big("huge", "7744x4320", "larger than");
    expect_too_big("long", "16400x16", "a side");

    /* A forced demuxer FFmpeg does not have. */
    {
        vt_source_opts o;
        vt_source_opts_default(&o);
        o.format = "no-such-format";
        s = open_local(tu_path("h264.mp4"), &o);
        ret = vt_source_open(s, err, sizeof(err));
        ck_assert_int_eq(ret, AVERROR_DEMUXER_NOT_FOUND);
        ck_assert_msg(strstr(err, "no-such-format"), "%s", err);
        vt_source_free(&s);
    }

    /* No camera on this machine: a clear message, no reconnect when told not to. */
    {
        vt_source_opts o;
        vt_source_opts_default(&o);
        o.reconnect = 0;
        s = open_local("/dev/video99", &o);
        ret = vt_source_open(s, err, sizeof(err));
        ck_assert_int_eq(ret, AVERROR(ENOENT));
        ck_assert_msg(strstr(err, "/dev/video99") && strstr(err, "no such video device"), "%s",
                      err);
        vt_source_free(&s);
    }
}
END_TEST

/* The reasons a source reports, as its stream passes them on to every subscriber. */
typedef struct reasons {
    int n, bad; /* state changes; of those, reasons that were not valid UTF-8 */
} reasons;

static void on_reason(void *opaque, vt_source_state st, const char *reason) {
    reasons *r = opaque;
    (void)st;
    r->n++;
    r->bad += vt_utf8_check(reason, strlen(reason), NULL) < 0;
}

/*
 * A missing file whose path is long and not ASCII: the messages that name it (the open's error,
 * vt_source_last_error, the reasons of the state changes) are cut by whole characters. The path
 * is "/nonexistent-vtrack/", _i 'x' (0..9), then 80 times U+00E9 U+20AC U+1D11E "/" (2 + 3 + 4 +
 * 1 = 10 bytes): 820..829 bytes, so every 512-byte message is cut inside the repeated part, at
 * each of its ten byte phases in turn (a cut by bytes splits a character in six of them).
 */
START_TEST(test_error_utf8_cut) {
    char url[1024];
    size_t n = (size_t)snprintf(url, sizeof url, "/nonexistent-vtrack/%.*s", _i, "xxxxxxxxx");
    for (int k = 0; k < 80; k++, n += 10)
        memcpy(url + n, "\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E/", 10);
    url[n] = '\0';
    ck_assert_int_eq(vt_utf8_check(url, n, NULL), 0);

    reasons r = {0};
    vt_source_opts o;
    vt_source_opts_default(&o);
    o.reconnect = 0;
    o.on_state = on_reason;
    o.opaque = &r;
    vt_source *s = open_local(url, &o);
    char err[512];
    ck_assert_int_eq(vt_source_open(s, err, sizeof err), AVERROR(ENOENT));
    ck_assert_msg(vt_utf8_check(err, strlen(err), NULL) == 0, "phase %d: open's error", _i);
    ck_assert_uint_ge(strlen(err), sizeof err - 4); /* cut, and by less than one character */
    ck_assert_int_eq(strncmp(err, url, 20), 0);
    const char *last = vt_source_last_error(s);
    ck_assert_msg(vt_utf8_check(last, strlen(last), NULL) == 0, "phase %d: last error", _i);
    ck_assert_int_ge(r.n, 2); /* connecting, ended */
    ck_assert_msg(r.bad == 0, "phase %d: %d of %d reasons", _i, r.bad, r.n);
    /* The ended source repeats its error into a smaller buffer: cut again, still whole. */
    char small[97];
    ck_assert_int_eq(vt_source_open(s, small, sizeof small), AVERROR(ENOENT));
    ck_assert_int_eq(vt_utf8_check(small, strlen(small), NULL), 0);
    vt_source_free(&s);
}
END_TEST

START_TEST(test_options) {
    char err[512];
    vt_source_opts o;
    vt_source *s = NULL;
    const vt_frame *f;
    int ret;

    vt_source_opts_default(&o);
    o.read_timeout_ms = 0;
    ret = vt_source_new(&s, "rtsp://127.0.0.1:1/x", &o, err, sizeof(err));
    ck_assert_int_eq(ret, AVERROR(EINVAL));
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, "read_timeout_ms") && strstr(err, " 0 "), "%s", err);

    vt_source_opts_default(&o);
    o.backoff_max_ms = 10;
    o.backoff_min_ms = 20;
    ck_assert_int_eq(vt_source_new(&s, "rtsp://127.0.0.1:1/x", &o, err, sizeof(err)),
                     AVERROR(EINVAL));
    ck_assert_msg(strstr(err, "backoff_max_ms"), "%s", err);

    ck_assert_int_eq(vt_source_new(&s, "", NULL, err, sizeof(err)), AVERROR(EINVAL));

    /* An unknown AVOption is named, not ignored. */
    vt_source_opts_default(&o);
    o.av_options = "probesize=100000;bogus_key=7";
    s = open_local(tu_path("h264.ts"), &o);
    ret = vt_source_open(s, err, sizeof(err));
    ck_assert_int_eq(ret, AVERROR_OPTION_NOT_FOUND);
    ck_assert_msg(strstr(err, "bogus_key") && strstr(err, "'7'"), "%s", err);
    vt_source_free(&s);

    /* Known demuxer and decoder options pass through. */
    vt_source_opts_default(&o);
    o.av_options = "probesize=100000;skip_frame=nokey";
    s = open_local(tu_path("h264.ts"), &o);
    ck_assert_int_eq(vt_source_open(s, err, sizeof(err)), 0);
    /* skip_frame=nokey: only the key frames (30 frames, GOP 250: just the first). */
    ck_assert_int_eq(drain(s, &ret), 1);
    vt_source_free(&s);

    /* Parse errors are reported at creation. */
    vt_source_opts_default(&o);
    o.allow_local = 1;
    o.av_options = "novalue";
    ck_assert_int_eq(vt_source_new(&s, tu_path("h264.ts"), &o, err, sizeof(err)), AVERROR(EINVAL));
    ck_assert_msg(strstr(err, "av_options"), "%s", err);
    (void)f;
}
END_TEST

/* A URL from a client must not reach local files, whichever way it is spelt. */
START_TEST(test_whitelist) {
    static const char *const refused[] = {
        "/etc/passwd",
        "file:///etc/passwd",
        "file:/etc/passwd",
        "FILE:/etc/passwd",
        "concat:/etc/passwd|/etc/hosts",
        "subfile,,start,0,end,0,,:/etc/passwd",
        "pipe:0",
        "/dev/video0",
        "gopher://example.org/",
    };
    char err[512];
    vt_source_opts o;
    vt_source *s = NULL;

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        vt_source_opts_default(&o);
        err[0] = 0;
        ck_assert_msg(vt_source_new(&s, refused[i], &o, err, sizeof(err)) == AVERROR(EPERM),
                      "%s was accepted", refused[i]);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(err, "not allowed"), "%s: %s", refused[i], err);
    }
    /* The tmp folder too, even though it exists. */
    vt_source_opts_default(&o);
    ck_assert_int_eq(vt_source_new(&s, tu_dir(), &o, err, sizeof(err)), AVERROR(EPERM));

    /* A whitelist naming a local protocol needs allow_local; av_options may not override. */
    vt_source_opts_default(&o);
    o.protocol_whitelist = "rtsp,tcp,file";
    ck_assert_int_eq(vt_source_new(&s, "rtsp://h/x", &o, err, sizeof(err)), AVERROR(EPERM));
    vt_source_opts_default(&o);
    o.av_options = "protocol_whitelist=file,http";
    ck_assert_int_eq(vt_source_new(&s, "http://h/x", &o, err, sizeof(err)), AVERROR(EPERM));

    /* Network URLs are fine (no I/O happens in vt_source_new). */
    vt_source_opts_default(&o);
    ck_assert_int_eq(vt_source_new(&s, "rtsp://127.0.0.1:1/x", &o, err, sizeof(err)), 0);
    vt_source_free(&s);
    ck_assert_int_eq(vt_source_new(&s, "https://127.0.0.1:1/x.m3u8", &o, err, sizeof(err)), 0);
    vt_source_free(&s);

    /* With allow_local, file: works. */
    {
        char url[600];
        const vt_frame *f;
        snprintf(url, sizeof(url), "file://%s", tu_path("mpeg4.mkv"));
        s = open_local(url, NULL);
        ck_assert_int_eq(vt_source_read(s, &f), 0);
        vt_source_free(&s);
    }
    vt_source_free(&s); /* NULL is fine */
    vt_source_free(NULL);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Folders, pacing, loops, cancel
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_folders) {
    vt_source_opts o;
    vt_source *s;
    vt_source_info info;
    const vt_frame *f;
    char err[512];
    int n = 0, ret;

    s = open_local(tu_path("seq"), NULL);
    while ((ret = vt_source_read(s, &f)) == 0) {
        ck_assert_int_eq(f->width, 160);
        ck_assert_int_eq(f->height, 120);
        ck_assert_int_eq(f->pts * f->tb_num * 25, (int64_t)n * f->tb_den);
        n++;
    }
    ck_assert_int_eq(ret, AVERROR_EOF);
    ck_assert_int_eq(n, 10);
    ck_assert_int_eq(vt_source_get_info(s, &info), 0);
    ck_assert_int_eq(info.kind, VT_SOURCE_KIND_IMAGES);
    vt_source_free(&s);

    /* 005.png .. 011.png at 10 fps. */
    vt_source_opts_default(&o);
    o.images_fps_num = 10;
    s = open_local(tu_path("seq3"), &o);
    n = 0;
    while ((ret = vt_source_read(s, &f)) == 0) {
        ck_assert_int_eq(f->width, 96);
        ck_assert_int_eq(f->pts * f->tb_num * 10, (int64_t)n * f->tb_den);
        n++;
    }
    ck_assert_int_eq(n, 7);
    vt_source_free(&s);

    /* An explicit pattern works too. */
    s = open_local(tu_path("seq/%05d.jpg"), NULL);
    ck_assert_int_eq(drain(s, &ret), 10);
    vt_source_free(&s);

    vt_source_opts_default(&o);
    o.allow_local = 1;
    ret = vt_source_new(&s, tu_path("empty"), &o, err, sizeof(err));
    ck_assert_int_eq(ret, AVERROR(ENOENT));
    ck_assert_msg(strstr(err, "numbered"), "%s", err);
}
END_TEST

START_TEST(test_pacing_native) {
    vt_source_opts o;
    vt_source *s;
    const vt_frame *f;
    int64_t t0 = 0, t1 = 0;
    int n = 0;

    vt_source_opts_default(&o);
    o.pacing = VT_SOURCE_PACING_NATIVE;
    s = open_local(tu_path("h264.ts"), &o); /* 30 frames at 25 fps: 29 intervals = 1160 ms */
    while (vt_source_read(s, &f) == 0) {
        if (n == 0)
            t0 = tu_now_ms();
        t1 = tu_now_ms();
        n++;
    }
    ck_assert_int_eq(n, 30);
    ck_assert_msg(t1 - t0 >= 1120 && t1 - t0 <= 1300, "paced 30 frames in %lld ms",
                  (long long)(t1 - t0));
    vt_source_free(&s);
}
END_TEST

START_TEST(test_pacing_loop) {
    vt_source_opts o;
    vt_source *s;
    vt_source_stats st;
    const vt_frame *f;
    int64_t prev = -1, t0 = tu_now_ms();

    vt_source_opts_default(&o);
    o.pacing = VT_SOURCE_PACING_NATIVE_LOOP;
    s = open_local(tu_path("short.mkv"), &o); /* 5 frames at 25 fps, tb 1/1000 */
    for (int i = 0; i < 13; i++) {
        ck_assert_int_eq(vt_source_read(s, &f), 0);
        ck_assert_int_eq(f->index, i);
        /* One continuous timeline: 40 ms per frame across the restarts. */
        ck_assert_int_eq(f->pts * f->tb_num * 25, (int64_t)i * f->tb_den);
        ck_assert(f->pts > prev);
        prev = f->pts;
    }
    /* 12 intervals of 40 ms, paced. */
    ck_assert_int_ge(tu_now_ms() - t0, 440);
    vt_source_get_stats(s, &st);
    ck_assert_int_eq(st.loops, 2);
    ck_assert_int_eq(vt_source_get_state(s), VT_SOURCE_STATE_UP);
    vt_source_free(&s);
}
END_TEST

typedef struct reader {
    vt_source *s;
    int ret;
    int64_t done_ms;
} reader;

static void *read_all(void *arg) {
    reader *r = arg;
    const vt_frame *f;
    while ((r->ret = vt_source_read(r->s, &f)) == 0)
        ;
    r->done_ms = tu_now_ms();
    return NULL;
}

static void cancel_reader(void *arg) {
    vt_source_cancel(((reader *)arg)->s);
}

START_TEST(test_cancel_pacing) {
    vt_source_opts o;
    reader r = {0};

    vt_source_opts_default(&o);
    o.pacing = VT_SOURCE_PACING_NATIVE; /* 1 fps: the reader sleeps ~1 s per frame */
    r.s = open_local(tu_path("slow.mkv"), &o);
    int64_t took = tu_cancel_blocked(read_all, cancel_reader, &r, &r.done_ms);
    ck_assert_int_eq(r.ret, AVERROR_EXIT);
    ck_assert_msg(took < 100, "cancel took %lld ms", (long long)took);
    ck_assert_int_eq(vt_source_get_state(r.s), VT_SOURCE_STATE_ENDED);
    ck_assert_str_eq(vt_source_last_error(r.s), "cancelled");
    vt_source_free(&r.s);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Masks
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_palette) {
    /* Published VOC/DAVIS palette entries. */
    static const uint8_t want[][4] = {
        {0, 0, 0, 0},     {1, 128, 0, 0},       {2, 0, 128, 0},   {3, 128, 128, 0},
        {4, 0, 0, 128},   {5, 128, 0, 128},     {6, 0, 128, 128}, {7, 128, 128, 128},
        {8, 64, 0, 0},    {9, 192, 0, 0},       {10, 64, 128, 0}, {15, 192, 128, 128},
        {20, 0, 64, 128}, {255, 224, 224, 192},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        uint8_t c[3];
        vt_mask_palette_color(want[i][0], c);
        ck_assert_msg(c[0] == want[i][1] && c[1] == want[i][2] && c[2] == want[i][3],
                      "index %d: %d,%d,%d", want[i][0], c[0], c[1], c[2]);
    }
}
END_TEST

/* Find the PLTE chunk of a PNG file (independent of FFmpeg's decoder). */
static int png_plte(const char *path, uint8_t *pal, int *n) {
    FILE *fp = fopen(path, "rb");
    uint8_t hdr[8];
    int found = 0;
    if (!fp || fread(hdr, 1, 8, fp) != 8) {
        if (fp)
            fclose(fp);
        return -1;
    }
    for (;;) {
        uint8_t lt[8];
        uint32_t len;
        if (fread(lt, 1, 8, fp) != 8)
            break;
        len = (uint32_t)lt[0] << 24 | lt[1] << 16 | lt[2] << 8 | lt[3];
        if (!memcmp(lt + 4, "PLTE", 4) && len <= 768) {
            *n = (int)len / 3;
            found = fread(pal, 1, len, fp) == len;
            break;
        }
        if (fseek(fp, (long)len + 4, SEEK_CUR) != 0)
            break;
    }
    fclose(fp);
    return found ? 0 : -1;
}

START_TEST(test_mask_roundtrip_palette) {
    const int w = 37, h = 23;
    uint8_t lab[37 * 23], pal[768];
    uint8_t *back = NULL;
    char err[512];
    int rw, rh, isp = -1, np = 0;
    uint32_t x = 1;
    for (int i = 0; i < w * h; i++) {
        x = x * 1103515245u + 12345u;
        lab[i] = (uint8_t)(x >> 16);
    }
    lab[0] = 0;
    lab[1] = 255;
    ck_assert_int_eq(vt_mask_write_png(tu_path("m.png"), w, h, lab, err, sizeof(err)), 0);
    ck_assert_int_eq(vt_mask_read_png(tu_path("m.png"), &rw, &rh, &back, &isp, err, sizeof(err)),
                     0);
    ck_assert_int_eq(rw, w);
    ck_assert_int_eq(rh, h);
    ck_assert_int_eq(isp, 1);
    ck_assert_mem_eq(back, lab, sizeof(lab));
    free(back);
    /* The file's own palette is the DAVIS one. */
    ck_assert_int_eq(png_plte(tu_path("m.png"), pal, &np), 0);
    ck_assert_int_ge(np, 3);
    ck_assert(pal[0] == 0 && pal[1] == 0 && pal[2] == 0);
    ck_assert(pal[3] == 128 && pal[4] == 0 && pal[5] == 0);
    ck_assert(pal[6] == 0 && pal[7] == 128 && pal[8] == 0);
}
END_TEST

START_TEST(test_mask_roundtrip_grey) {
    const int w = 31, h = 17;
    uint8_t raw[31 * 17];
    uint8_t *back = NULL;
    char err[512];
    int rw, rh, isp = -1;
    for (int i = 0; i < w * h; i++)
        raw[i] = (i * 7 % 3) ? 255 : (uint8_t)(i % 251);
    ck_assert_int_eq(tu_write_file(tu_path("g.gray"), raw, sizeof(raw)), 0);
    ck_assert_int_eq(tu_ffmpeg("-f rawvideo -pix_fmt gray -s %dx%d -i %s -pix_fmt gray %s", w, h,
                               tu_path("g.gray"), tu_path("g.png")),
                     0);
    ck_assert_int_eq(vt_mask_read_png(tu_path("g.png"), &rw, &rh, &back, &isp, err, sizeof(err)),
                     0);
    ck_assert_int_eq(isp, 0);
    ck_assert_int_eq(rw, w);
    ck_assert_int_eq(rh, h);
    ck_assert_mem_eq(back, raw, sizeof(raw));
    free(back);
}
END_TEST

START_TEST(test_mask_errors) {
    char err[512];
    uint8_t *lab = (uint8_t *)1;
    int w, h;
    uint8_t one = 1;

    ck_assert_int_eq(vt_mask_read_png(tu_path("nope.png"), &w, &h, &lab, NULL, err, sizeof(err)),
                     AVERROR(ENOENT));
    ck_assert_ptr_null(lab);
    ck_assert_msg(strstr(err, "nope.png"), "%s", err);
    ck_assert_int_eq(vt_mask_read_png(tu_path("notes.txt"), &w, &h, &lab, NULL, err, sizeof(err)),
                     AVERROR_INVALIDDATA);
    ck_assert_msg(strstr(err, "not a PNG"), "%s", err);
    ck_assert_int_eq(mkdir(tu_path("dir.png"), 0755) == 0 || errno == EEXIST, 1);
    ck_assert_int_eq(vt_mask_read_png(tu_path("dir.png"), &w, &h, &lab, NULL, err, sizeof(err)),
                     AVERROR(EINVAL));
    ck_assert_msg(strstr(err, "is not a file"), "%s", err);
    ck_assert_int_eq(tu_ffmpeg("-f lavfi -i color=red:size=8x8 -frames:v 1 -pix_fmt rgb24 %s",
                               tu_path("rgb.png")),
                     0);
    ck_assert_int_eq(vt_mask_read_png(tu_path("rgb.png"), &w, &h, &lab, NULL, err, sizeof(err)),
                     AVERROR_PATCHWELCOME);
    ck_assert_msg(strstr(err, "rgb24"), "%s", err);
    /* A truncated PNG. */
    ck_assert_int_eq(
        vt_mask_write_png(tu_path("t.png"), 64, 64, (uint8_t[64 * 64]){0}, err, sizeof(err)), 0);
    ck_assert_int_eq(tu_truncate(tu_path("t.png"), 40), 0);
    ck_assert_int_lt(vt_mask_read_png(tu_path("t.png"), &w, &h, &lab, NULL, err, sizeof(err)), 0);
    ck_assert_ptr_null(lab);

    ck_assert_int_eq(vt_mask_write_png(tu_path("z.png"), 0, 5, &one, err, sizeof(err)),
                     AVERROR(EINVAL));
    ck_assert_msg(strstr(err, "0x5"), "%s", err);
    ck_assert_int_eq(vt_mask_write_png("/nonexistent-dir/x.png", 1, 1, &one, err, sizeof(err)),
                     AVERROR(ENOENT));
}
END_TEST

/* A PNG that declares w x h in its header and holds nothing else (CRC unchecked, as FFmpeg). */
static void write_png_header(const char *path, uint32_t w, uint32_t h) {
    uint8_t b[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (int i = 0; i < 4; i++) {
        b[16 + i] = (uint8_t)(w >> (24 - 8 * i));
        b[20 + i] = (uint8_t)(h >> (24 - 8 * i));
    }
    b[24] = 16; /* 16 bits per sample, */
    b[25] = 6;  /* RGBA: 8 bytes a pixel, were it decoded */
    ck_assert_int_eq(tu_write_file(path, b, sizeof b), 0);
}

START_TEST(test_mask_too_large) {
    /* A mask larger than any frame is refused from its header, before the decoder allocates
     * it (12000x12000 at 8 bytes a pixel took 1.3 GB and 6 s under ASan before the check). */
    static const struct {
        uint32_t w, h;
        const char *want;
    } big[] = {
        {12000, 12000, "12000x12000, larger than vtrack takes"},
        {7681, 4320, "7681x4320, larger than"},
        {4294967295u, 4294967295u, "4294967295x4294967295, larger than"},
        {16385, 1, "16385x1, longer than vtrack takes (16384 pixels a side)"},
    };
    char err[512];
    uint8_t *lab = (uint8_t *)1;
    int w, h;
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        write_png_header(tu_path("big.png"), big[i].w, big[i].h);
        ck_assert_int_eq(vt_mask_read_png(tu_path("big.png"), &w, &h, &lab, NULL, err, sizeof err),
                         AVERROR(E2BIG));
        ck_assert_ptr_null(lab);
        ck_assert_msg(strstr(err, big[i].want), "%s", err);
    }
    /* A real file one pixel too long, and the longest side that is allowed. */
    static uint8_t row[16385];
    row[3] = 1;
    ck_assert_int_eq(vt_mask_write_png(tu_path("long.png"), 16385, 1, row, err, sizeof err), 0);
    ck_assert_int_eq(vt_mask_read_png(tu_path("long.png"), &w, &h, &lab, NULL, err, sizeof err),
                     AVERROR(E2BIG));
    ck_assert_msg(strstr(err, "16385x1, longer than"), "%s", err);
    ck_assert_int_eq(vt_mask_write_png(tu_path("long.png"), 1, 16384, row, err, sizeof err), 0);
    ck_assert_int_eq(vt_mask_read_png(tu_path("long.png"), &w, &h, &lab, NULL, err, sizeof err), 0);
    ck_assert(w == 1 && h == 16384 && lab[3] == 1 && lab[4] == 0);
    free(lab);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Overlay
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_overlay_draw) {
    enum { W = 80, H = 60, LS = W * 3 + 8 };
    static uint8_t img[H * LS];
    static uint8_t lab[W * H];
    vt_overlay_object obj[2] = {{.index = 1, .id = 7, .label = "cat"}, {.index = 3, .id = 12}};
    vt_overlay_style st;
    uint8_t c7[3], c12[3];

    memset(img, 40, sizeof(img));
    memset(lab, 0, sizeof(lab));
    for (int y = 30; y < 50; y++)
        for (int x = 20; x < 40; x++)
            lab[y * W + x] = 1;
    for (int y = 5; y < 10; y++)
        for (int x = 60; x < 70; x++)
            lab[y * W + x] = 2; /* not in the object list: untouched */
    vt_overlay_style_default(&st);
    vt_overlay_id_color(7, c7);
    vt_overlay_id_color(12, c12);
    ck_assert(memcmp(c7, c12, 3) != 0);
    vt_overlay_draw(img, W, H, LS, lab, obj, 2, &st);

    /* Inside, away from the outline: exact alpha blend of 40 with the colour. */
    for (int k = 0; k < 3; k++) {
        int want = (c7[k] * st.fill_alpha + 40 * (255 - st.fill_alpha) + 127) / 255;
        ck_assert_int_eq(img[40 * LS + 30 * 3 + k], want);
    }
    /* On the boundary: the full colour. */
    ck_assert_mem_eq(&img[30 * LS + 30 * 3], c7, 3);
    ck_assert_mem_eq(&img[49 * LS + 39 * 3], c7, 3);
    /* Background and the unlisted label: untouched. */
    ck_assert_int_eq(img[55 * LS + 5 * 3], 40);
    ck_assert_int_eq(img[7 * LS + 65 * 3], 40);
    ck_assert_int_eq(img[7 * LS + 65 * 3 + 2], 40);
    /* With no box, the "#7 cat" tag sits above the mask (rows 11..29), starting at x=20. */
    {
        int changed = 0;
        for (int y = 11; y < 30; y++)
            for (int x = 20; x < 80; x++)
                changed += img[y * LS + x * 3] != 40;
        ck_assert_int_gt(changed, 200);
    }
    /* Padding bytes past 3*W are never written. */
    ck_assert_int_eq(img[10 * LS + W * 3 + 2], 40);
}
END_TEST

/* A lost object: its outline in its colour, its inside untouched, "#3 cat lost" wider than
 * "#3 cat". */
START_TEST(test_overlay_lost) {
    enum { W = 160, H = 60 };
    static uint8_t img[2][H * W * 3];
    static uint8_t lab[W * H];
    uint8_t c3[3];
    int width[2];

    memset(lab, 0, sizeof(lab));
    for (int y = 30; y < 50; y++)
        for (int x = 20; x < 40; x++)
            lab[y * W + x] = 1;
    vt_overlay_id_color(3, c3);
    for (int lost = 0; lost < 2; lost++) {
        vt_overlay_object obj = {.index = 1,
                                 .id = 3,
                                 .label = "cat",
                                 .state = lost ? VT_OVERLAY_LOST : VT_OVERLAY_TRACKING};
        memset(img[lost], 40, sizeof(img[lost]));
        vt_overlay_draw(img[lost], W, H, W * 3, lab, &obj, 1, NULL);
        ck_assert_mem_eq(&img[lost][30 * W * 3 + 30 * 3], c3, 3);
        if (lost)
            ck_assert_int_eq(img[lost][40 * W * 3 + 30 * 3], 40);
        else
            ck_assert_int_ne(img[lost][40 * W * 3 + 30 * 3], 40);
        /* the tag's right end: the last changed column above the box */
        width[lost] = 0;
        for (int y = 0; y < 29; y++)
            for (int x = 0; x < W; x++)
                if (img[lost][y * W * 3 + x * 3] != 40 && x > width[lost])
                    width[lost] = x;
    }
    /* " lost" is 5 more characters of the 2x-scaled font */
    ck_assert_msg(width[1] >= width[0] + 5 * 8, "tag ends at %d, lost at %d", width[0], width[1]);
}
END_TEST

/* Boxes: solid for a tracking object, dashed for an occluded one (VT_OVERLAY_DASH on,
 * VT_OVERLAY_GAP off from the corner), in the object's colour, drawn without a mask too; the
 * tag names the state and stays inside the frame. */
START_TEST(test_overlay_box) {
    enum { W = 160, H = 140, P = VT_OVERLAY_DASH + VT_OVERLAY_GAP, TH = 18 /* tag height */ };
    static uint8_t img[H * W * 3];
    static uint8_t lab[W * H];
    uint8_t c1[3], c2[3];
    vt_overlay_id_color(1, c1);
    vt_overlay_id_color(2, c2);
    memset(lab, 0, sizeof(lab));
    for (int y = 35; y < 55; y++) /* object 1's mask, inside its box */
        for (int x = 30; x < 50; x++)
            lab[y * W + x] = 1;
    vt_overlay_object obj[2] = {
        {.index = 1, .id = 1, .label = "left", .box = {20, 25, 40, 40}},
        /* hidden: no pixels, its predicted box only */
        {.index = 0,
         .id = 2,
         .label = "centre",
         .state = VT_OVERLAY_OCCLUDED,
         .box = {80, 100, 50, 30}},
    };
    memset(img, 40, sizeof(img));
    vt_overlay_draw(img, W, H, W * 3, lab, obj, 2, NULL); /* style: box 2 pixels wide */
#define PX(x, y) (&img[((y)*W + (x)) * 3])
    /* The solid box: both rows of every edge, all along, in the colour; inside it, between box
     * and mask, untouched. */
    for (int x = 20; x < 60; x++)
        for (int t = 0; t < 2; t++) {
            ck_assert_mem_eq(PX(x, 25 + t), c1, 3);
            ck_assert_mem_eq(PX(x, 64 - t), c1, 3);
        }
    for (int y = 25; y < 65; y++)
        for (int t = 0; t < 2; t++) {
            ck_assert_mem_eq(PX(20 + t, y), c1, 3);
            ck_assert_mem_eq(PX(59 - t, y), c1, 3);
        }
    ck_assert_int_eq(PX(25, 30)[0], 40);
    ck_assert_int_eq(PX(25, 30)[1], 40);
    ck_assert_int_eq(PX(22, 27)[0], 40); /* 2 pixels wide, no more */
    /* The dashed box: the top and bottom edges (away from the side edges) and the side edges
     * (away from the top and bottom ones) alternate dashes and gaps from the corner. */
    for (int x = 82; x < 128; x++) {
        int dash = (x - 80) % P < VT_OVERLAY_DASH;
        const int ys[4] = {100, 101, 128, 129};
        for (int k = 0; k < 4; k++) {
            if (dash)
                ck_assert_msg(!memcmp(PX(x, ys[k]), c2, 3), "(%d,%d) is no dash", x, ys[k]);
            else
                ck_assert_msg(PX(x, ys[k])[0] == 40 && PX(x, ys[k])[1] == 40, "(%d,%d) is no gap",
                              x, ys[k]);
        }
    }
    for (int y = 102; y < 128; y++) {
        int dash = (y - 100) % P < VT_OVERLAY_DASH;
        const int xs[4] = {80, 81, 128, 129};
        for (int k = 0; k < 4; k++)
            ck_assert_msg(dash ? !memcmp(PX(xs[k], y), c2, 3) : PX(xs[k], y)[0] == 40,
                          "(%d,%d): want a %s", xs[k], y, dash ? "dash" : "gap");
    }
    ck_assert_int_eq(PX(100, 115)[0], 40); /* no mask: nothing inside */
    /* The tags sit above the boxes' corners. "#2 centre occluded" (18 characters of 12 pixels
     * and a margin of 2: 218 > 160) is cut to the 13 characters that fit and moved inside the
     * frame, x = 2..159. */
    ck_assert_int_ne(PX(20, 25 - 2)[0], 40); /* #1's tag, above its box */
    ck_assert_int_eq(PX(19, 25 - 2)[0], 40);
    int tag_row = 100 - TH - 1, first = -1, last = -1;
    for (int x = 0; x < W; x++)
        if (PX(x, tag_row)[0] != 40) {
            first = first < 0 ? x : first;
            last = x;
        }
    ck_assert_int_eq(first, 2);
    ck_assert_int_eq(last, W - 1);

    /* A box past the frame's edges is clipped, its tag kept inside; a tracking object's tag
     * has no state word, a recovered one's does. */
    int width[2];
    for (int k = 0; k < 2; k++) {
        vt_overlay_object o = {.id = 1,
                               .label = "x",
                               .state = k ? VT_OVERLAY_RECOVERED : VT_OVERLAY_TRACKING,
                               .box = {-10, 50, 40, 200}};
        memset(img, 40, sizeof(img));
        vt_overlay_draw(img, W, H, W * 3, NULL, &o, 1, NULL);
        ck_assert_int_eq(PX(0, 60)[0], 40);  /* the left edge, x = -10..-9, is outside */
        ck_assert_mem_eq(PX(28, 60), c1, 3); /* the right edge, x = 28..29 */
        ck_assert_mem_eq(PX(10, 50), c1, 3); /* the top edge; the bottom one is outside */
        ck_assert_int_eq(PX(10, H - 1)[0], 40);
        width[k] = 0;
        for (int x = 0; x < W; x++)
            if (PX(x, 50 - TH - 1)[0] != 40)
                width[k] = x + 1;
    }
    ck_assert_int_eq(width[0], 4 * 12 + 2);  /* "#1 x" from x = 0 */
    ck_assert_int_eq(width[1], 13 * 12 + 2); /* "#1 x recovere", cut at the frame's edge */
#undef PX
}
END_TEST

START_TEST(test_overlay_video) {
    const int w = 161, h = 121, n = 30;
    vt_overlay_opts o;
    vt_overlay *ov = NULL;
    vt_source *s;
    const vt_frame *f;
    vt_source_info info;
    char err[512];
    uint8_t *rgb = malloc((size_t)w * h * 3), *lab = calloc((size_t)w * h, 1);
    vt_overlay_object obj = {.index = 1, .id = 3, .label = "person"};
    uint8_t col[3];
    int ret, got = 0;

    for (int i = 0; i < w * h * 3; i++)
        rgb[i] = 20;
    for (int y = 40; y < 100; y++)
        for (int x = 50; x < 120; x++)
            lab[y * w + x] = 1;
    vt_overlay_opts_default(&o);
    o.style.fill_alpha = 255; /* a solid fill, to check the colour after coding */
    ck_assert_int_eq(vt_overlay_new(&ov, tu_path("ov.mp4"), w, h, &o, err, sizeof(err)), 0);
    for (int i = 0; i < n; i++)
        ck_assert_msg(vt_overlay_write(ov, rgb, w, h, w * 3, i % 2 ? lab : NULL, &obj, 1, err,
                                       sizeof(err)) == 0,
                      "%s", err);
    ck_assert_int_eq(vt_overlay_frames(ov), n);
    /* a frame of another size is refused, not read past its end (ASan) */
    uint8_t *small = malloc((size_t)(w / 2) * 3 * h);
    ck_assert_int_eq(
        vt_overlay_write(ov, small, w / 2, h, w / 2 * 3, NULL, NULL, 0, err, sizeof(err)),
        AVERROR(EINVAL));
    ck_assert_ptr_nonnull(strstr(err, "was started at"));
    free(small);
    ck_assert_int_eq(vt_overlay_frames(ov), n);
    ck_assert_int_eq(vt_overlay_close(ov, err, sizeof(err)), 0);
    ck_assert_int_eq(vt_overlay_write(ov, rgb, w, h, w * 3, NULL, NULL, 0, err, sizeof(err)),
                     AVERROR(EINVAL));
    vt_overlay_free(&ov);
    ck_assert_ptr_null(ov);

    s = open_local(tu_path("ov.mp4"), NULL);
    vt_overlay_id_color(3, col);
    while ((ret = vt_source_read(s, &f)) == 0) {
        const uint8_t *p = f->rgb + 70 * f->linesize + 85 * 3;
        ck_assert_int_eq(f->width, 162); /* padded to even */
        ck_assert_int_eq(f->height, 122);
        if (got % 2)
            ck_assert_msg(
                abs(p[0] - col[0]) < 16 && abs(p[1] - col[1]) < 16 && abs(p[2] - col[2]) < 16,
                "frame %d: %d,%d,%d vs %d,%d,%d", got, p[0], p[1], p[2], col[0], col[1], col[2]);
        else
            ck_assert_msg(abs(p[0] - 20) < 8, "frame %d: %d", got, p[0]);
        got++;
    }
    ck_assert_int_eq(got, n);
    ck_assert_int_eq(vt_source_get_info(s, &info), 0);
    ck_assert_str_eq(info.codec_name, have_x264 ? "h264" : "mpeg4");
    ck_assert_int_eq(info.fps_num / info.fps_den, 25);
    vt_source_free(&s);

    /* Errors name the problem. */
    vt_overlay_opts_default(&o);
    o.encoder = "no-such-encoder";
    ck_assert_int_eq(vt_overlay_new(&ov, tu_path("x.mp4"), w, h, &o, err, sizeof(err)),
                     AVERROR_ENCODER_NOT_FOUND);
    ck_assert_msg(strstr(err, "no-such-encoder"), "%s", err);
    ck_assert_int_eq(vt_overlay_new(&ov, "/nonexistent-dir/x.mp4", w, h, NULL, err, sizeof(err)),
                     AVERROR(ENOENT));
    ck_assert_int_eq(vt_overlay_new(&ov, tu_path("x.mp4"), 0, h, NULL, err, sizeof(err)),
                     AVERROR(EINVAL));
    /* MPEG-4 part 2 on request. */
    vt_overlay_opts_default(&o);
    o.encoder = "mpeg4";
    ck_assert_int_eq(vt_overlay_new(&ov, tu_path("ov4.mp4"), w, h, &o, err, sizeof(err)), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(vt_overlay_write(ov, rgb, w, h, w * 3, lab, &obj, 1, err, sizeof(err)), 0);
    ck_assert_int_eq(vt_overlay_close(ov, err, sizeof(err)), 0);
    vt_overlay_free(&ov);
    s = open_local(tu_path("ov4.mp4"), NULL);
    ck_assert_int_eq(drain(s, &ret), 5);
    vt_source_free(&s);
    free(rgb);
    free(lab);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Data ($VT_DATA)
 * ------------------------------------------------------------------------------------------- */

static const char *data_dir(void) {
    const char *d = getenv("VT_DATA");
    char p[1024];
    if (!d || !d[0]) {
        fprintf(stderr, "SKIP: VT_DATA is not set: DAVIS data tests did not run\n");
        return NULL;
    }
    snprintf(p, sizeof(p), "%s/davis16-dev", d);
    if (access(p, R_OK) != 0) {
        fprintf(stderr, "SKIP: %s missing: DAVIS data tests did not run\n", p);
        return NULL;
    }
    return d;
}

typedef struct mask_truth {
    const char *rel;
    int w, h, palette;
    int n;
    int values[4], counts[4]; /* counted with PIL + NumPy */
} mask_truth;

static const mask_truth masks[] = {
    {"davis16-dev/Annotations/480p/bear/00000.png", 854, 480, 0, 2, {0, 255}, {360716, 49204}},
    {"davis16-dev/Annotations/480p/tennis/00010.png", 854, 480, 0, 2, {0, 255}, {397152, 12768}},
    {"multi/masks/bike/00000.png", 854, 480, 1, 3, {0, 1, 2}, {395483, 6466, 7971}},
    {"multi/masks/judo/00000.png", 854, 480, 1, 2, {0, 1}, {356109, 53811}},
    {"multi/masks/judo/00005.png", 853, 480, 1, 2, {0, 2}, {403406, 6034}},
    {"multi/masks/judo/00013.png", 854, 480, 1, 2, {0, 4}, {400431, 9489}},
};

START_TEST(test_data_masks) {
    const char *d = data_dir();
    const mask_truth *m = &masks[_i];
    char p[1024], err[512];
    uint8_t *lab = NULL;
    int w, h, isp, hist[256] = {0}, total = 0;
    if (!d)
        return;
    snprintf(p, sizeof(p), "%s/%s", d, m->rel);
    ck_assert_msg(vt_mask_read_png(p, &w, &h, &lab, &isp, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(w, m->w);
    ck_assert_int_eq(h, m->h);
    ck_assert_int_eq(isp, m->palette);
    for (int i = 0; i < w * h; i++)
        hist[lab[i]]++;
    for (int k = 0; k < m->n; k++) {
        ck_assert_msg(hist[m->values[k]] == m->counts[k], "%s: value %d: %d pixels, want %d",
                      m->rel, m->values[k], hist[m->values[k]], m->counts[k]);
        total += m->counts[k];
    }
    ck_assert_int_eq(total, w * h); /* no other values */
    /* A hand-checked pixel: bike's object 2 covers the centre. */
    if (_i == 2)
        ck_assert_int_eq(lab[240 * w + 427], 2);
    free(lab);
}
END_TEST

START_TEST(test_data_frames) {
    const char *d = data_dir();
    char p[1024];
    vt_source_opts o;
    vt_source *s;
    const vt_frame *f;
    int n = 0, ret, files = 0;
    if (!d)
        return;
    /* Count the JPEGs with the shell, independently of the folder scanner. */
    snprintf(p, sizeof(p), "ls %s/davis16-dev/JPEGImages/480p/bear/*.jpg | wc -l", d);
    {
        FILE *pp = popen(p, "r");
        ck_assert_int_eq(fscanf(pp, "%d", &files), 1);
        pclose(pp);
    }
    snprintf(p, sizeof(p), "%s/davis16-dev/JPEGImages/480p/bear", d);
    vt_source_opts_default(&o);
    o.proc_width = 424;
    s = open_local(p, &o);
    while ((ret = vt_source_read(s, &f)) == 0) {
        ck_assert_int_eq(f->width, 854);
        ck_assert_int_eq(f->height, 480);
        ck_assert_int_eq(f->proc_height, 238); /* 480 * 424 / 854 rounded */
        n++;
    }
    ck_assert_int_eq(ret, AVERROR_EOF);
    ck_assert_int_eq(n, files);
    vt_source_free(&s);
}
END_TEST

static Suite *unit_suite(void) {
    Suite *s = suite_create("codec");
    TCase *tc = tm_add_case(s, "files", 60, test_colors, test_real_file, test_truncated,
                            test_garbage_middle, test_errors, test_options, test_whitelist,
                            test_folders, NULL);
    tcase_add_loop_test(tc, test_file_clip, 0, NCLIPS);
    tcase_add_loop_test(tc, test_error_utf8_cut, 0, 10);
    tm_add_case(s, "pacing", 30, test_pacing_native, test_pacing_loop, test_cancel_pacing, NULL);
    tm_add_case(s, "masks", 30, test_palette, test_mask_roundtrip_palette, test_mask_roundtrip_grey,
                test_mask_errors, test_mask_too_large, NULL);
    tm_add_case(s, "overlay", 60, test_overlay_draw, test_overlay_lost, test_overlay_box,
                test_overlay_video, NULL);
    return s;
}

static Suite *data_suite(void) {
    Suite *s = suite_create("codec-data");
    TCase *tc = tm_add_case(s, "davis", 60, test_data_frames, NULL);
    tcase_add_loop_test(tc, test_data_masks, 0, (int)TM_LEN(masks));
    return s;
}

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "all";
    if (strcmp(which, "unit") && strcmp(which, "data") && strcmp(which, "all")) {
        fprintf(stderr, "usage: %s [unit|data]\n", argv[0]);
        return 2;
    }
    /* FFmpeg reports damaged input at length; the tests check the counters instead. */
    av_log_set_level(getenv("VT_TEST_AVLOG") ? AV_LOG_INFO : AV_LOG_QUIET);
    /* The data suite alone without the data: say why and report "skipped" (exit 77). */
    if (!strcmp(which, "data") && !data_dir())
        return 77;
    if (strcmp(which, "data"))
        make_media();
    Suite *suites[] = {strcmp(which, "data") ? unit_suite() : NULL,
                       strcmp(which, "unit") ? data_suite() : NULL};
    int status = tm_run_suites(suites, TM_LEN(suites));
    tu_cleanup();
    return status;
}
