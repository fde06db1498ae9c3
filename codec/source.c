/* source.c - vt_source: URL checks, the reconnect policy (connecting / up / stalled / backoff /
 * ended), pacing, and cancelling from another thread. One connection's FFmpeg work is in
 * session.c. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libavdevice/avdevice.h>
#include <libavutil/avstring.h>
#include <libavutil/bprint.h>

#include "codec_internal.h"
#include "source_internal.h"

/* Network protocols a client-supplied URL may use; "file" is added only for local sources.
 * Protocols that wrap others (crypto, hls) still see this list for their inner URLs. */
#define DEFAULT_NET_WHITELIST                                                                      \
    "rtsp,rtsps,rtp,srtp,udp,tcp,tls,http,https,httpproxy,crypto,hls,rtmp,rtmps,rtmpt,srt,data"
#define LOCAL_PROTOCOLS "file,pipe"
/* A network recording that ends within this much of its announced duration has reached its
 * end (the last frame starts a frame before it; servers round the range they announce). */
#define END_SLACK_US 1000000

/* ---------------------------------------------------------------------------------------------
 * Waking a thread blocked in FFmpeg
 * ------------------------------------------------------------------------------------------- */

static int wake_signo; /* 0: no usable signal, cancel relies on FFmpeg's 100 ms poll period */
static pthread_once_t wake_once = PTHREAD_ONCE_INIT;

static void wake_handler(int sig) {
    (void)sig; /* Its only purpose is to make poll() in the blocked thread return EINTR. */
}

static void wake_install(void) {
    int sig = SIGRTMIN + 5;
    struct sigaction old, sa;

    if (sig > SIGRTMAX || sigaction(sig, NULL, &old) != 0)
        return;
    /* Someone else owns the signal: leave it alone. */
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = wake_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the point is to interrupt poll() */
    if (sigaction(sig, &sa, NULL) == 0)
        wake_signo = sig;
}

int vtc_interrupt_cb(void *opaque) {
    vt_source *s = opaque;
    int64_t dl;

    if (atomic_load(&s->cancelled))
        return 1;
    dl = atomic_load(&s->deadline_us);
    if (dl && vt_mono_us() > dl) {
        atomic_store(&s->timed_out, 1);
        return 1;
    }
    return 0;
}

void vtc_arm(vt_source *s, int64_t timeout_ms) {
    atomic_store(&s->timed_out, 0);
    atomic_store(&s->deadline_us, vt_mono_us() + timeout_ms * 1000);
    pthread_mutex_lock(&s->lock);
    s->blocked = 1;
    s->blocked_thread = pthread_self();
    pthread_mutex_unlock(&s->lock);
}

void vtc_disarm(vt_source *s) {
    pthread_mutex_lock(&s->lock);
    s->blocked = 0;
    pthread_mutex_unlock(&s->lock);
    atomic_store(&s->deadline_us, 0);
}

void vt_source_cancel(vt_source *s) {
    if (!s)
        return;
    atomic_store(&s->cancelled, 1);
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->cond);
    /* The thread is inside FFmpeg between arm and disarm, so the pthread_t is alive. */
    if (s->blocked && wake_signo && !pthread_equal(s->blocked_thread, pthread_self()))
        pthread_kill(s->blocked_thread, wake_signo);
    pthread_mutex_unlock(&s->lock);
}

/* Sleep until the monotonic time `until_us`, waking at once on cancel. */
static int sleep_until(vt_source *s, int64_t until_us) {
    pthread_mutex_lock(&s->lock);
    while (!atomic_load(&s->cancelled)) {
        struct timespec ts;
        if (vt_mono_us() >= until_us)
            break;
        ts.tv_sec = until_us / 1000000;
        ts.tv_nsec = (long)(until_us % 1000000) * 1000;
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    return atomic_load(&s->cancelled) ? AVERROR_EXIT : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Options and URLs
 * ------------------------------------------------------------------------------------------- */

void vt_source_opts_default(vt_source_opts *o) {
    memset(o, 0, sizeof(*o));
    o->connect_timeout_ms = 5000;
    o->read_timeout_ms = 5000;
    o->rtsp_transport = VT_SOURCE_TRANSPORT_TCP;
    o->pacing = VT_SOURCE_PACING_FAST;
    o->images_fps_num = 25;
    o->images_fps_den = 1;
    o->reconnect = -1;
    o->backoff_min_ms = 250;
    o->backoff_max_ms = 30000;
    o->backoff_reset_ms = 10000;
    o->stall_ms = 10000;
    o->backoff_jitter = 0.25;
}

/* The URL scheme ("rtsp" for rtsp://...), or "" for a plain path; `buf` holds the result. */
static const char *url_scheme(const char *url, char *buf, size_t len) {
    size_t n = 0;
    while (url[n] &&
           (isalnum((unsigned char)url[n]) || url[n] == '+' || url[n] == '-' || url[n] == '.'))
        n++;
    /* "C:" style or no colon: a path. FFmpeg also accepts "subfile,,...:" style nesting; a
     * comma ends a scheme there, so take it as the protocol name too. */
    if (n >= 2 && (url[n] == ':' || url[n] == ',') && n < len && isalpha((unsigned char)url[0])) {
        memcpy(buf, url, n);
        buf[n] = 0;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)tolower((unsigned char)buf[i]);
        return buf;
    }
    buf[0] = 0;
    return buf;
}

/* Is `name` in the comma-separated `list`? */
static int in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    const char *p = list;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static int is_frame_name(const char *name, int *digits, long *number) {
    static const char *const exts[] = {".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"};
    int d = 0;
    while (isdigit((unsigned char)name[d]))
        d++;
    if (d == 0 || d > 9)
        return 0;
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        if (!strcmp(name + d, exts[i])) {
            *digits = d;
            *number = strtol(name, NULL, 10);
            return 1;
        }
    }
    return 0;
}

/* A folder of numbered frames (00000.jpg, 00001.jpg...) becomes an image2 pattern such as
 * "<dir>/%05d.jpg" and a start number. '%' in the folder's name is escaped for image2. */
static int folder_pattern(vt_source *s, const char *dir, char *err, size_t errlen) {
    char ebuf[AV_ERROR_MAX_STRING_SIZE];
    DIR *d = opendir(dir);
    struct dirent *de;
    long best = -1;
    int best_digits = 0, same_width = 1, width = -1;
    char ext[8] = "";
    AVBPrint bp;

    if (!d) {
        int ret = AVERROR(errno);
        return vtc_fail(ret, err, errlen, "%s: cannot list the folder: %s", dir,
                        vtc_averr(ret, ebuf, sizeof(ebuf)));
    }
    while ((de = readdir(d))) {
        int digits;
        long number;
        if (!is_frame_name(de->d_name, &digits, &number))
            continue;
        if (width < 0)
            width = digits;
        else if (width != digits)
            same_width = 0;
        if (best < 0 || number < best) {
            best = number;
            best_digits = digits;
            snprintf(ext, sizeof(ext), "%s", de->d_name + digits);
        }
    }
    closedir(d);
    if (best < 0)
        return vtc_fail(AVERROR(ENOENT), err, errlen,
                        "%s: no numbered .jpg/.png frames in the folder (e.g. 00000.jpg)", dir);
    av_bprint_init(&bp, 0, AV_BPRINT_SIZE_UNLIMITED);
    for (const char *p = dir; *p; p++)
        av_bprintf(&bp, *p == '%' ? "%%%%" : "%c", *p);
    if (same_width && best_digits > 1)
        av_bprintf(&bp, "/%%0%dd%s", best_digits, ext);
    else
        av_bprintf(&bp, "/%%d%s", ext);
    if (!av_bprint_is_complete(&bp)) {
        av_bprint_finalize(&bp, NULL);
        return vtc_fail(AVERROR(ENOMEM), err, errlen, "%s: out of memory", dir);
    }
    av_bprint_finalize(&bp, &s->open_url);
    s->images_start = (int)best;
    return 0;
}

/*
 * The URL as messages show it: without its credentials (the "user:pw" of
 * rtsp://user:pw@host/x becomes "***"). Messages reach logs and every subscriber; only the
 * connection itself sees the password.
 */
static char *shown_url(const char *url) {
    const char *start = strstr(url, "://");
    if (!start)
        return av_strdup(url);
    start += 3;
    const char *at = start + strcspn(start, "/?#");
    while (at > start && at[-1] != '@')
        at--;            /* the last '@' of the authority ends the credentials */
    if (at <= start + 1) /* none, or empty ("rtsp://@host") */
        return av_strdup(url);
    return av_asprintf("%.*s***@%s", (int)(start - url), url, at);
}

static char *dup_or_null(const char *str, int *fail) {
    char *d;
    if (!str)
        return NULL;
    d = av_strdup(str);
    if (!d)
        *fail = 1;
    return d;
}

static int check_opts(const vt_source_opts *o, const char *url, char *err, size_t errlen) {
#define BAD(field, fmt, val)                                                                       \
    return vtc_fail(AVERROR(EINVAL), err, errlen, "%s: option %s: bad value " fmt, url, field, val)
    if (o->connect_timeout_ms <= 0)
        BAD("connect_timeout_ms", "%lld (must be > 0)", (long long)o->connect_timeout_ms);
    if (o->read_timeout_ms <= 0)
        BAD("read_timeout_ms", "%lld (must be > 0)", (long long)o->read_timeout_ms);
    if (o->rtsp_transport != VT_SOURCE_TRANSPORT_TCP &&
        o->rtsp_transport != VT_SOURCE_TRANSPORT_UDP)
        BAD("rtsp_transport", "%d", (int)o->rtsp_transport);
    if (o->pacing != VT_SOURCE_PACING_FAST && o->pacing != VT_SOURCE_PACING_NATIVE &&
        o->pacing != VT_SOURCE_PACING_NATIVE_LOOP)
        BAD("pacing", "%d", (int)o->pacing);
    if (o->proc_width < 0 || o->proc_width > 16384)
        BAD("proc_width", "%d (0..16384)", o->proc_width);
    if (o->proc_height < 0 || o->proc_height > 16384)
        BAD("proc_height", "%d (0..16384)", o->proc_height);
    if (o->images_fps_num <= 0 || o->images_fps_den <= 0)
        BAD("images_fps", "%d/...(both parts must be > 0)", o->images_fps_num);
    if (o->decoder_threads < 0 || o->decoder_threads > 64)
        BAD("decoder_threads", "%d (0..64)", o->decoder_threads);
    if (o->reconnect < -1 || o->reconnect > 1)
        BAD("reconnect", "%d (-1, 0 or 1)", o->reconnect);
    if (o->backoff_min_ms <= 0)
        BAD("backoff_min_ms", "%lld (must be > 0)", (long long)o->backoff_min_ms);
    if (o->backoff_max_ms < o->backoff_min_ms)
        BAD("backoff_max_ms", "%lld (must be >= backoff_min_ms)", (long long)o->backoff_max_ms);
    if (o->backoff_reset_ms < 0)
        BAD("backoff_reset_ms", "%lld (must be >= 0)", (long long)o->backoff_reset_ms);
    if (o->stall_ms < 0)
        BAD("stall_ms", "%lld (must be >= 0; 0 disables)", (long long)o->stall_ms);
    if (!(o->backoff_jitter >= 0.0 && o->backoff_jitter <= 1.0))
        BAD("backoff_jitter", "%g (0..1)", o->backoff_jitter);
#undef BAD
    return 0;
}

static int classify(vt_source *s, const char *url, char *err, size_t errlen) {
    char sch[32];
    struct stat sb;
    const char *path = NULL;

    url_scheme(url, sch, sizeof(sch));
    if (!strcmp(sch, "rtsp") || !strcmp(sch, "rtsps"))
        s->kind = VT_SOURCE_KIND_RTSP;
    else if (!strcmp(sch, "http") || !strcmp(sch, "https"))
        s->kind = VT_SOURCE_KIND_HTTP;
    else if (!strcmp(sch, "file"))
        path = url + 5 + (strncmp(url + 5, "//", 2) ? 0 : 2);
    else if (sch[0])
        s->kind = VT_SOURCE_KIND_NETWORK;
    else
        path = url;

    if (!path) {
        /* Every protocol, nested ones included, is also checked by FFmpeg itself. */
        if (!in_list(s->whitelist, sch))
            return vtc_fail(AVERROR(EPERM), err, errlen,
                            "%s: protocol '%s' is not allowed (protocol_whitelist: %s)", url, sch,
                            s->whitelist);
        return 0;
    }
    if (!s->opts.allow_local)
        return vtc_fail(AVERROR(EPERM), err, errlen,
                        "%s: local files and devices are not allowed for this source "
                        "(allow_local is off)",
                        url);
    if (!strncmp(path, "/dev/video", 10) || !strncmp(path, "/dev/v4l/", 9)) {
        s->kind = VT_SOURCE_KIND_DEVICE;
    } else if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        s->kind = VT_SOURCE_KIND_IMAGES;
        return folder_pattern(s, path, err, errlen);
    } else if (strstr(path, "%0") || strstr(path, "%d")) {
        s->kind = VT_SOURCE_KIND_IMAGES;
        s->images_start = -1; /* image2 finds the first number itself */
    } else {
        s->kind = VT_SOURCE_KIND_FILE;
    }
    return 0;
}

int vt_source_new(vt_source **out, const char *url, const vt_source_opts *opts, char *err,
                  size_t errlen) {
    vt_source *s = NULL;
    vt_source_opts def;
    pthread_condattr_t ca;
    int fail = 0, ret;

    if (!out || !url)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "vt_source_new: NULL argument");
    *out = NULL;
    if (!url[0])
        return vtc_fail(AVERROR(EINVAL), err, errlen, "source URL is empty");
    if (!opts) {
        vt_source_opts_default(&def);
        opts = &def;
    }
    if ((ret = check_opts(opts, url, err, errlen)) < 0)
        return ret;

    pthread_once(&wake_once, wake_install);
    avdevice_register_all(); /* idempotent; makes the v4l2 demuxer visible */

    s = av_mallocz(sizeof(*s));
    if (!s)
        return vtc_fail(AVERROR(ENOMEM), err, errlen, "%s: out of memory", url);
    s->opts = *opts;
    s->vidx = -1;
    s->state = VT_SOURCE_STATE_IDLE;
    atomic_init(&s->cancelled, 0);
    atomic_init(&s->deadline_us, 0);
    atomic_init(&s->timed_out, 0);
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    s->rng = (uint64_t)vt_mono_us() ^ (uint64_t)(uintptr_t)s ^ 0x9E3779B97F4A7C15ull;

    s->url = shown_url(url);
    fail |= !s->url;
    s->format = dup_or_null(opts->format, &fail);
    s->format_whitelist = dup_or_null(opts->format_whitelist, &fail);
    if (opts->protocol_whitelist)
        s->whitelist = dup_or_null(opts->protocol_whitelist, &fail);
    else
        s->whitelist = av_asprintf("%s%s", DEFAULT_NET_WHITELIST,
                                   opts->allow_local ? "," LOCAL_PROTOCOLS : "");
    s->pkt = av_packet_alloc();
    s->frame = av_frame_alloc();
    if (fail || !s->url || !s->whitelist || !s->pkt || !s->frame) {
        ret =
            vtc_fail(AVERROR(ENOMEM), err, errlen, "%s: out of memory", s->url ? s->url : "source");
        goto fail;
    }
    /* The struct's copies must not point at the caller's strings. */
    s->opts.protocol_whitelist = s->whitelist;
    s->opts.format_whitelist = s->format_whitelist;
    s->opts.format = s->format;
    s->opts.av_options = NULL;

    if (!opts->allow_local && (in_list(s->whitelist, "file") || in_list(s->whitelist, "pipe"))) {
        ret = vtc_fail(AVERROR(EPERM), err, errlen,
                       "%s: protocol_whitelist '%s' names a local protocol but allow_local is off",
                       s->url, s->whitelist);
        goto fail;
    }
    if (opts->av_options && opts->av_options[0]) {
        ret = av_dict_parse_string(&s->user_opts, opts->av_options, "=", ";\n", 0);
        if (ret < 0) {
            vtc_fail(ret, err, errlen, "%s: av_options: cannot parse '%s' (expected key=value;...)",
                     s->url, opts->av_options);
            goto fail;
        }
        /* The whitelists are security settings: only the dedicated fields may set them. */
        if (av_dict_get(s->user_opts, "protocol_whitelist", NULL, 0) ||
            av_dict_get(s->user_opts, "format_whitelist", NULL, 0) ||
            av_dict_get(s->user_opts, "protocol_blacklist", NULL, 0)) {
            ret =
                vtc_fail(AVERROR(EPERM), err, errlen,
                         "%s: av_options may not set protocol/format white- or blacklists", s->url);
            goto fail;
        }
    }
    if ((ret = classify(s, url, err, errlen)) < 0)
        goto fail;
    if (!s->open_url) {
        /* file:// URLs go to FFmpeg as plain "file:" paths. */
        if (!strncmp(url, "file://", 7))
            s->open_url = av_asprintf("file:%s", url + 7);
        else
            s->open_url = av_strdup(url);
        if (!s->open_url) {
            ret = vtc_fail(AVERROR(ENOMEM), err, errlen, "%s: out of memory", s->url);
            goto fail;
        }
    }
    if (s->kind == VT_SOURCE_KIND_IMAGES && s->images_start < 0)
        s->images_start = 0;
    s->reconnect = opts->reconnect >= 0
                       ? opts->reconnect
                       : !(s->kind == VT_SOURCE_KIND_FILE || s->kind == VT_SOURCE_KIND_IMAGES);
    *out = s;
    return 0;
fail:
    vt_source_free(&s);
    return ret;
}

void vt_source_free(vt_source **ps) {
    vt_source *s;
    if (!ps || !*ps)
        return;
    s = *ps;
    vtc_session_close(s);
    vtc_scaler_free(&s->rgb);
    vtc_scaler_free(&s->proc);
    av_packet_free(&s->pkt);
    av_frame_free(&s->frame);
    av_dict_free(&s->user_opts);
    av_freep(&s->url);
    av_freep(&s->open_url);
    av_freep(&s->whitelist);
    av_freep(&s->format_whitelist);
    av_freep(&s->format);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    av_freep(ps);
}

/* ---------------------------------------------------------------------------------------------
 * States and the reconnect policy
 * ------------------------------------------------------------------------------------------- */

/* Make the counters, facts and state visible to other threads' vt_source_get_*(). */
static void publish(vt_source *s) {
    pthread_mutex_lock(&s->lock);
    s->stats_pub = s->stats;
    s->info_pub = s->info;
    s->have_info_pub = s->have_info;
    s->state_pub = s->state;
    pthread_mutex_unlock(&s->lock);
}

static void set_state(vt_source *s, vt_source_state st, const char *reason) {
    if (reason && reason != s->last_error)
        vt_fmt(s->last_error, sizeof(s->last_error), "%s", reason);
    if (st == s->state)
        return;
    s->state = st;
    publish(s);
    if (s->opts.on_state)
        s->opts.on_state(s->opts.opaque, st, s->last_error);
}

static void end_with(vt_source *s, int ret, const char *reason) {
    vtc_session_close(s);
    s->last_ret = ret;
    set_state(s, VT_SOURCE_STATE_ENDED, reason);
}

static uint64_t next_rand(vt_source *s) {
    /* xorshift64*: good enough to spread reconnecting cameras apart. */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 0x2545F4914F6CDD1Dull;
}

/* Close, wait the next backoff delay (cancellable), and leave the source ready to connect. */
static int backoff(vt_source *s, const char *why) {
    char msg[640];
    int64_t delay, now = vt_mono_us();
    double u;

    vtc_session_close(s);
    if (s->up_since && now - s->up_since >= s->opts.backoff_reset_ms * 1000)
        s->backoff_attempt = 0;
    s->up_since = 0;
    delay = s->opts.backoff_min_ms;
    for (int i = 0; i < s->backoff_attempt && delay < s->opts.backoff_max_ms; i++)
        delay *= 2;
    if (delay > s->opts.backoff_max_ms)
        delay = s->opts.backoff_max_ms;
    s->backoff_attempt++;
    u = (double)(next_rand(s) >> 11) / 9007199254740992.0; /* [0, 1) */
    delay = (int64_t)((double)delay * (1.0 - s->opts.backoff_jitter * u));
    if (delay < 1)
        delay = 1;
    vt_fmt(msg, sizeof(msg), "%s; retrying in %.2f s", why, (double)delay / 1000.0);
    set_state(s, VT_SOURCE_STATE_BACKOFF, msg);
    if (sleep_until(s, now + delay * 1000) < 0) {
        end_with(s, AVERROR_EXIT, "cancelled");
        return AVERROR_EXIT;
    }
    return 0;
}

/* Errors that another attempt cannot fix: the configuration or the build is at fault. */
static int is_permanent(int err) {
    return err == AVERROR_OPTION_NOT_FOUND || err == AVERROR_DEMUXER_NOT_FOUND ||
           err == AVERROR_DECODER_NOT_FOUND || err == AVERROR_PROTOCOL_NOT_FOUND ||
           err == AVERROR_PATCHWELCOME || err == AVERROR_EXIT;
}

/* One connection attempt with its state reports. */
static int connect_once(vt_source *s, char *err, size_t errlen) {
    char msg[512];
    int ret;

    vt_fmt(msg, sizeof(msg), "%s: connecting (attempt %lld)", s->url,
           (long long)s->stats.connect_attempts + 1);
    set_state(s, VT_SOURCE_STATE_CONNECTING, msg);
    /* every retry counts, also of a camera that has never come up */
    if (s->stats.connect_attempts++ > 0)
        s->stats.reconnects++;
    ret = vtc_session_open(s, err, errlen);
    if (ret < 0)
        return ret;
    s->session_no++;
    s->up_since = vt_mono_us();
    s->pace_set = 0;
    vt_fmt(msg, sizeof(msg), "%s: up (%s %dx%d, %s)", s->url, s->info.codec_name, s->info.width,
           s->info.height, s->info.format_name);
    set_state(s, VT_SOURCE_STATE_UP, msg);
    return 0;
}

int vt_source_open(vt_source *s, char *err, size_t errlen) {
    char msg[512] = "";
    int ret;

    if (!s)
        return vtc_fail(AVERROR(EINVAL), err, errlen, "vt_source_open: NULL source");
    if (s->state == VT_SOURCE_STATE_ENDED)
        return vtc_fail(s->last_ret, err, errlen, "%s", s->last_error);
    if (s->fmt)
        return 0;
    if (atomic_load(&s->cancelled)) {
        end_with(s, AVERROR_EXIT, "cancelled");
        return vtc_fail(AVERROR_EXIT, err, errlen, "%s: cancelled", s->url);
    }
    ret = connect_once(s, msg, sizeof(msg));
    if (ret < 0) {
        vtc_fail(ret, err, errlen, "%s", msg);
        if (!s->reconnect || is_permanent(ret))
            end_with(s, ret, msg);
        else
            vt_fmt(s->last_error, sizeof(s->last_error), "%s", msg);
    }
    publish(s);
    return ret;
}

/* Wait until the frame's time on the native-rate schedule. */
static int pace(vt_source *s) {
    int64_t pts_us, now, due;

    if (s->opts.pacing == VT_SOURCE_PACING_FAST)
        return 0;
    pts_us = av_rescale_q(s->out.pts, (AVRational){s->out.tb_num, s->out.tb_den}, AV_TIME_BASE_Q);
    now = vt_mono_us();
    due = s->pace_mono + (pts_us - s->pace_pts_us);
    /* Start of a session, or a jump (we fell behind by half a second, or pts leapt ahead):
     * re-anchor rather than burst or stall. */
    if (!s->pace_set || due < now - 500000 || due > now + 10000000) {
        s->pace_set = 1;
        s->pace_pts_us = pts_us;
        s->pace_mono = now;
        return 0;
    }
    return sleep_until(s, due);
}

int vt_source_read(vt_source *s, const vt_frame **frame) {
    char msg[512];
    int ret;

    if (!s || !frame)
        return AVERROR(EINVAL);
    *frame = NULL;
    for (;;) {
        if (s->state == VT_SOURCE_STATE_ENDED) {
            publish(s);
            return s->last_ret;
        }
        if (atomic_load(&s->cancelled)) {
            end_with(s, AVERROR_EXIT, "cancelled");
            continue;
        }
        if (!s->fmt) {
            msg[0] = 0;
            ret = connect_once(s, msg, sizeof(msg));
            if (ret < 0 && (!s->reconnect || is_permanent(ret))) {
                end_with(s, ret, msg);
                continue;
            }
            if (ret < 0 && backoff(s, msg) < 0)
                continue;
            continue;
        }
        msg[0] = 0;
        ret = vtc_session_read(s, msg, sizeof(msg));
        if (ret == 0) {
            if (pace(s) < 0)
                continue; /* cancelled while pacing */
            if (s->opts.pacing != VT_SOURCE_PACING_FAST) {
                /* A paced frame "arrives" when its time comes, as from a camera, not when it
                 * was decoded ahead of time. */
                s->out.arrival_mono_us = vt_mono_us();
                s->out.arrival_realtime_us = vtc_real_us();
            }
            s->out.index = s->stats.frames++;
            s->out.session = s->session_no;
            *frame = &s->out;
            publish(s);
            return 0;
        }
        if (ret == AVERROR_EXIT) {
            end_with(s, ret, "cancelled");
            continue;
        }
        if (ret == AVERROR_EOF && s->opts.pacing == VT_SOURCE_PACING_NATIVE_LOOP &&
            (s->kind == VT_SOURCE_KIND_FILE || s->kind == VT_SOURCE_KIND_IMAGES)) {
            char emsg[512] = "";
            s->stats.loops++;
            if ((ret = vtc_session_rewind(s, emsg, sizeof(emsg))) < 0)
                end_with(s, ret, emsg);
            continue;
        }
        /* The end of a recording (known duration: files, VOD over HTTP/HLS/RTSP) is the end,
         * once it has been read to within a second of that duration (a file always has); the
         * end of a live stream, or a connection that drops before the recording's end, is a
         * disconnect. */
        const int local = s->kind == VT_SOURCE_KIND_FILE || s->kind == VT_SOURCE_KIND_IMAGES;
        const int recording_done =
            ret == AVERROR_EOF && s->info.duration_us > 0 &&
            (local || vtc_session_position_us(s) >= s->info.duration_us - END_SLACK_US);
        if (!s->reconnect || recording_done) {
            end_with(s, ret, msg);
            continue;
        }
        if (ret == AVERROR(ETIMEDOUT) || ret == VTC_ERR_STALL)
            set_state(s, VT_SOURCE_STATE_STALLED, msg);
        else if (ret == AVERROR_EOF)
            vt_fmt(msg, sizeof(msg), "%s: the stream ended", s->url);
        backoff(s, msg);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Accessors
 * ------------------------------------------------------------------------------------------- */

/* The getters may run on any thread: they read the copies publish() made under the lock. The
 * lock is logically mutable, hence the casts. */
vt_source_state vt_source_get_state(const vt_source *s) {
    vt_source_state st;
    if (!s)
        return VT_SOURCE_STATE_ENDED;
    pthread_mutex_lock((pthread_mutex_t *)&s->lock);
    st = s->state_pub;
    pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
    return st;
}

int vt_source_get_info(const vt_source *s, vt_source_info *info) {
    int ret = 0;
    if (!s || !info)
        return AVERROR(EINVAL);
    pthread_mutex_lock((pthread_mutex_t *)&s->lock);
    if (s->have_info_pub)
        *info = s->info_pub;
    else
        ret = AVERROR(EAGAIN);
    pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
    return ret;
}

void vt_source_get_stats(const vt_source *s, vt_source_stats *stats) {
    if (!s || !stats)
        return;
    pthread_mutex_lock((pthread_mutex_t *)&s->lock);
    *stats = s->stats_pub;
    pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
}

const char *vt_source_last_error(const vt_source *s) {
    return s ? s->last_error : "";
}

int vt_frame_copy_rgb(const vt_frame *f, int proc, uint8_t *dst) {
    const uint8_t *src;
    int w, h, ls;

    if (!f || !dst)
        return AVERROR(EINVAL);
    src = proc ? f->proc_rgb : f->rgb;
    w = proc ? f->proc_width : f->width;
    h = proc ? f->proc_height : f->height;
    ls = proc ? f->proc_linesize : f->linesize;
    if (!src || w <= 0 || h <= 0)
        return AVERROR(EINVAL);
    for (int y = 0; y < h; y++)
        memcpy(dst + (size_t)y * w * 3, src + (ptrdiff_t)y * ls, (size_t)w * 3);
    return 0;
}
