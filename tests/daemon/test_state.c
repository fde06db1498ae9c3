/*
 * test_state.c - vtrackd keeps what clients registered across restarts (daemon/persist.h): a
 * real daemon process restarted on the same state directory, checked over loopback TCP.
 *
 * usage: test_state [restart|faults]
 *   restart: restore after SIGTERM and after SIGKILL, damaged state files, forget
 *   faults:  a full and a read-only state directory (needs mount(2): root; exits 77 without)
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testmain.h"
#include "dtest.h"
#include "vt_proto.h"

#define STREAM_H 120
#define STREAM_W 160

/* A fresh state directory under the scratch folder. */
static const char *state_dir(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s", tu_path(name));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", buf);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(mkdir(buf, 0700), 0);
    return buf;
}

/* Config: a looping camera-paced file "cam" with configured object 1, clients may add streams
 * (local files too), state in `dir`. */
static const char *config(const char *dir) {
    static char buf[4096];
    const char *v = dt_video("v160.mp4", STREAM_W, STREAM_H, 100, 25);
    ck_assert_msg(v != NULL, "ffmpeg could not make the test video");
    snprintf(buf, sizeof buf,
             "{\"listen\":\"127.0.0.1:@PORT@\",\"model\":\"lab\",\"log_level\":\"debug\","
             "\"state_dir\":\"%s\",\"clients\":{\"allow_add_streams\":true,"
             "\"allow_local_urls\":true},\"streams\":[{\"name\":\"cam\",\"url\":\"%s\","
             "\"pacing\":\"camera\",\"objects\":[{\"id\":1,\"label\":\"conf\","
             "\"box\":[40,30,40,40],\"frame\":0}]}]}",
             dir, v);
    return buf;
}

static void start(dt_daemon *d, dt_conn *c, const char *dir) {
    ck_assert_int_eq(dt_start(d, config(dir), NULL), 0);
    ck_assert_int_eq(dt_hello(c, d->port), 0);
}

static void stop_ok(dt_daemon *d) {
    int code = dt_stop(d, SIGTERM, 10000, NULL);
    if (code != 0)
        dt_log_dump(d);
    ck_assert_msg(code == 0, "vtrackd exited with %d after SIGTERM", code);
}

/* The objects of stream `name` in a list reply: ids[] and labels (caller's arrays of n). */
static int list_objects(dt_conn *c, const char *name, uint32_t *ids, char labels[][80], int n) {
    cJSON *l = dt_command(c, "{\"op\":\"list\"}\n", 5000);
    ck_assert_msg(dt_is_type(l, "reply"), "no reply to list");
    const cJSON *s, *o;
    int k = -1;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(l, "streams")) {
        if (strcmp(dt_str(s, "stream"), name) != 0)
            continue;
        k = 0;
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(s, "objects")) {
            if (k < n) {
                ids[k] = (uint32_t)dt_num(o, "id", 0);
                snprintf(labels[k], 80, "%s", dt_str(o, "label") ? dt_str(o, "label") : "");
            }
            k++;
        }
    }
    cJSON_Delete(l);
    return k;
}

static int has_object(dt_conn *c, const char *stream, uint32_t id, const char *label) {
    uint32_t ids[64];
    char labels[64][80];
    int n = list_objects(c, stream, ids, labels, 64);
    for (int i = 0; i < n && i < 64; i++)
        if (ids[i] == id)
            return !label || strcmp(labels[i], label) == 0;
    return 0;
}

/* Wait for a frame of `stream` in which object `id` is `tracking`. */
static void wait_tracking(dt_conn *c, const char *stream, uint32_t id) {
    int64_t end = tu_now_ms() + 20000;
    while (tu_now_ms() < end) {
        cJSON *f = dt_wait_type(c, "frame", "stream", stream, 5000);
        ck_assert_msg(f != NULL, "no frame of %s", stream);
        const cJSON *o;
        int ok = 0;
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(f, "objects")) ok |=
            (uint32_t)dt_num(o, "id", 0) == id && strcmp(dt_str(o, "state"), "tracking") == 0;
        cJSON_Delete(f);
        if (ok)
            return;
    }
    ck_abort_msg("object %u of %s never tracking", id, stream);
}

static cJSON *read_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return cJSON_Parse(buf);
}

/* How many files in dir start with `prefix`. */
static int count_files(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static cJSON *stats_state(dt_conn *c) {
    cJSON *r = dt_command(c, "{\"op\":\"stats\"}\n", 5000);
    ck_assert_msg(dt_is_type(r, "reply"), "no reply to stats");
    cJSON *st = cJSON_DetachItemFromObjectCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(r, "stats"), "state");
    cJSON_Delete(r);
    ck_assert_msg(st != NULL, "stats has no state object");
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * Restarts
 * ------------------------------------------------------------------------------------------- */

/* Everything clients registered comes back after a clean stop: a client-added stream with its
 * object, an object on a configured stream (from its last good mask, with the reason
 * `restored`), and the configured object from the configuration. */
START_TEST(test_restore_after_stop) {
    const char *dir = state_dir("state-stop");
    dt_daemon d;
    dt_conn c;
    start(&d, &c, dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "{\"op\":\"add_stream\",\"id\":1,\"stream\":\"net\",\"url\":\"%s\","
             "\"pacing\":\"camera\"}\n",
             dt_video("v160.mp4", STREAM_W, STREAM_H, 100, 25));
    dt_expect_reply(dt_command(&c, cmd, 5000), "add_stream");
    dt_expect_reply(dt_command(&c,
                               "{\"op\":\"track\",\"stream\":\"net\",\"object\":7,\"label\":\"n7\","
                               "\"box\":[60,40,40,40]}\n",
                               5000),
                    "track");
    cJSON *r = dt_command(
        &c, "{\"op\":\"track\",\"stream\":\"cam\",\"label\":\"late\",\"box\":[20,20,50,50]}\n",
        5000);
    ck_assert(dt_is_type(r, "reply"));
    uint32_t late = (uint32_t)dt_num(r, "object", 0);
    ck_assert_int_eq(late, 2); /* the smallest free id: 1 is the configured object */
    cJSON_Delete(r);
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    wait_tracking(&c, "cam", late);
    wait_tracking(&c, "net", 7);
    /* one snapshot interval, so that a state file holds the masks */
    usleep(1500 * 1000);
    cJSON *st = stats_state(&c);
    ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItem(st, "ok")), "state not ok");
    ck_assert_int_ge((int)dt_num(st, "saves", 0), 1);
    cJSON_Delete(st);
    dt_close(&c);
    stop_ok(&d);

    /* The file: the client stream's command, the objects' last good masks (frame size). */
    char path[600];
    snprintf(path, sizeof path, "%s/state.json", dir);
    cJSON *doc = read_json(path);
    ck_assert_msg(doc != NULL, "no state.json");
    int masks = 0, adds = 0;
    const cJSON *s, *o;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(doc, "streams")) {
        adds += cJSON_GetObjectItem(s, "add_stream") != NULL;
        cJSON_ArrayForEach(o, cJSON_GetObjectItem(s, "objects")) {
            const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "track"), "mask");
            if (m) {
                const cJSON *size = cJSON_GetObjectItem(m, "size");
                ck_assert_int_eq(cJSON_GetArrayItem(size, 0)->valueint, STREAM_H);
                ck_assert_int_eq(cJSON_GetArrayItem(size, 1)->valueint, STREAM_W);
                ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(o, "frame")));
                ck_assert(cJSON_IsString(cJSON_GetObjectItem(o, "time")));
                ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "bbox")), 4);
                masks++;
            }
        }
    }
    cJSON_Delete(doc);
    ck_assert_int_eq(adds, 1);
    ck_assert_int_eq(masks, 2);
    ck_assert_int_eq(count_files(dir, "journal."), 1); /* covered journals are deleted */

    start(&d, &c, dir);
    ck_assert_msg(has_object(&c, "net", 7, "n7"), "object 7 of the added stream not restored");
    ck_assert_msg(has_object(&c, "cam", late, "late"), "object %u not restored", late);
    ck_assert_msg(has_object(&c, "cam", 1, "conf"), "configured object missing");
    ck_assert_msg(dt_wait_log(&d, "\"object\":2,\"label\":\"late\",\"event\":\"added\"", 10000),
                  "no added event for the restored object");
    ck_assert_msg(dt_log_has(&d, "\"reason\":\"restored\""), "added event without `restored`");
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    wait_tracking(&c, "cam", late);
    /* untrack and remove_stream are kept too */
    dt_expect_reply(dt_command(&c, "{\"op\":\"untrack\",\"stream\":\"cam\",\"object\":2}\n", 5000),
                    "untrack");
    dt_expect_reply(dt_command(&c, "{\"op\":\"remove_stream\",\"stream\":\"net\"}\n", 5000),
                    "remove_stream");
    dt_close(&c);
    stop_ok(&d);
    start(&d, &c, dir);
    ck_assert(!has_object(&c, "cam", late, NULL));
    ck_assert_int_eq(list_objects(&c, "net", NULL, NULL, 0), -1);
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

/* SIGKILL while objects are being added: every object whose reply was read is there after the
 * restart. Commands go out in bursts of 8, and the kill comes after 2, 4 or 7 replies, with the
 * rest in flight. */
START_TEST(test_restore_after_kill) {
    const char *dir = state_dir("state-kill");
    static const int replied[] = {2, 4, 7};
    int kept = 1; /* the configured object */
    for (int round = 0; round < 3; round++) {
        const int nr = replied[round];
        dt_daemon d;
        dt_conn c;
        start(&d, &c, dir);
        /* the objects replied in earlier rounds are there */
        uint32_t ids[64];
        char labels[64][80];
        int have = list_objects(&c, "cam", ids, labels, 64);
        ck_assert_int_eq(have, kept);
        char burst[8192] = "";
        for (int i = 0; i < 8; i++) {
            char line[160];
            snprintf(line, sizeof line,
                     "{\"op\":\"track\",\"stream\":\"cam\",\"label\":\"r%d-%d\","
                     "\"box\":[%d,%d,20,20]}\n",
                     round, i, 10 + 12 * i, 20 + 8 * round);
            strcat(burst, line);
        }
        ck_assert_int_eq(dt_send(&c, burst), 0);
        for (int got = 0; got < nr;) {
            cJSON *m = dt_read_msg(&c, 5000);
            ck_assert_msg(m != NULL, "no reply");
            got += dt_is_type(m, "reply");
            cJSON_Delete(m);
        }
        /* the others may be in flight: they may or may not have been kept */
        ck_assert_int_eq(dt_stop(&d, SIGKILL, 5000, NULL), 128 + SIGKILL);
        dt_close(&c);
        start(&d, &c, dir);
        for (int i = 0; i < nr; i++) {
            char label[32];
            snprintf(label, sizeof label, "r%d-%d", round, i);
            int found = 0;
            have = list_objects(&c, "cam", ids, labels, 64);
            for (int k = 0; k < have && k < 64; k++)
                found |= strcmp(labels[k], label) == 0;
            ck_assert_msg(found, "round %d: object %s lost", round, label);
        }
        /* the unreplied ones: drop them so that the next round counts exactly */
        for (int i = nr; i < 8; i++) {
            char label[32];
            snprintf(label, sizeof label, "r%d-%d", round, i);
            have = list_objects(&c, "cam", ids, labels, 64);
            for (int k = 0; k < have && k < 64; k++) {
                if (strcmp(labels[k], label) != 0)
                    continue;
                char cmd[128];
                snprintf(cmd, sizeof cmd, "{\"op\":\"untrack\",\"stream\":\"cam\",\"object\":%u}\n",
                         ids[k]);
                dt_expect_reply(dt_command(&c, cmd, 5000), "untrack");
            }
        }
        kept += nr;
        dt_close(&c);
        stop_ok(&d);
    }
}
END_TEST

/* A damaged state file and a journal with a bad line are reported and moved aside; the daemon
 * starts, restores what the journal's good lines say, and saves again. */
START_TEST(test_damaged_files) {
    const char *dir = state_dir("state-bad");
    char path[600];
    snprintf(path, sizeof path, "%s/state.json", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"vtrackd_state\":1,\"journal\":3,\"streams\":[{\"stream\":\"cam\",\"obj", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/journal.4", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"op\":\"track\",\"stream\":\"cam\",\"object\":5,\"label\":\"j\","
          "\"box\":[10,10,30,30]}\n"
          "garbage line\n"
          "{\"op\":\"track\",\"stream\":\"cam\",\"object\":6,\"box\":[1,2]}\n"
          "{\"op\":\"track\",\"stream\":\"nowhere\",\"object\":9,\"box\":[10,10,30,30]}\n",
          f);
    fclose(f);
    dt_daemon d;
    dt_conn c;
    start(&d, &c, dir);
    ck_assert_msg(dt_log_has(&d, "not JSON"), "the damaged state file was not reported");
    ck_assert_msg(dt_log_has(&d, "line 2 is not a state change"), "the bad line not reported");
    ck_assert_int_eq(count_files(dir, "state.json.bad-"), 1);
    ck_assert_int_eq(count_files(dir, "journal.4.bad-"), 1);
    ck_assert_msg(has_object(&c, "cam", 5, "j"), "the journal's good line was not restored");
    ck_assert(!has_object(&c, "cam", 6, NULL)); /* a box of two numbers: refused, reported */
    ck_assert_msg(dt_log_has(&d, "object 6 cannot be restored"), "bad object not reported");
    ck_assert_msg(dt_log_has(&d, "stream nowhere is no longer configured"), "unknown stream");
    /* saved again: a fresh state file */
    int64_t end = tu_now_ms() + 5000;
    cJSON *st = NULL;
    while (tu_now_ms() < end) {
        cJSON_Delete(st);
        st = stats_state(&c);
        if (dt_num(st, "saves", 0) >= 1)
            break;
        usleep(100 * 1000);
    }
    ck_assert_int_ge((int)dt_num(st, "saves", 0), 1);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(st, "ok")));
    cJSON_Delete(st);
    dt_close(&c);
    stop_ok(&d);
    /* a foreign JSON file is not taken for a state */
    snprintf(path, sizeof path, "%s/state.json", dir);
    f = fopen(path, "w");
    fputs("{\"hello\":\"world\"}", f);
    fclose(f);
    start(&d, &c, dir);
    ck_assert_msg(dt_log_has(&d, "not a vtrackd state file"), "foreign file not reported");
    ck_assert(!has_object(&c, "cam", 5, NULL));
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

/* forget: nothing registered before it comes back; what comes after does. */
START_TEST(test_forget) {
    const char *dir = state_dir("state-forget");
    dt_daemon d;
    dt_conn c;
    start(&d, &c, dir);
    dt_expect_reply(dt_command(&c,
                               "{\"op\":\"track\",\"stream\":\"cam\",\"object\":3,"
                               "\"box\":[20,20,50,50]}\n",
                               5000),
                    "track");
    dt_expect_reply(dt_command(&c, "{\"op\":\"forget\"}\n", 5000), "forget");
    dt_expect_reply(dt_command(&c,
                               "{\"op\":\"track\",\"stream\":\"cam\",\"object\":4,"
                               "\"box\":[60,20,50,50]}\n",
                               5000),
                    "track");
    ck_assert(has_object(&c, "cam", 3, NULL)); /* forgetting does not stop tracking */
    dt_close(&c);
    stop_ok(&d);
    start(&d, &c, dir);
    ck_assert(!has_object(&c, "cam", 3, NULL));
    ck_assert(has_object(&c, "cam", 4, NULL));
    ck_assert(has_object(&c, "cam", 1, "conf"));
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Faults of the state directory
 * ------------------------------------------------------------------------------------------- */

static char g_mnt[512];

static int mount_small_tmpfs(void) {
    snprintf(g_mnt, sizeof g_mnt, "%s", tu_path("state-mnt"));
    if (mkdir(g_mnt, 0700) < 0 && errno != EEXIST)
        return -1;
    return mount("tmpfs", g_mnt, "tmpfs", 0, "size=64k,mode=0700");
}

/* Poll stats until the state's `ok` is `want`; returns the state object. */
static cJSON *wait_state_ok(dt_conn *c, int want) {
    int64_t end = tu_now_ms() + 8000;
    for (;;) {
        cJSON *st = stats_state(c);
        if (cJSON_IsTrue(cJSON_GetObjectItem(st, "ok")) == want || tu_now_ms() > end)
            return st;
        cJSON_Delete(st);
        usleep(200 * 1000);
    }
}

/* Check that frames keep coming for "cam" (tracking goes on). */
static void frames_flow(dt_conn *c) {
    for (int i = 0; i < 3; i++) {
        cJSON *f = dt_wait_type(c, "frame", "stream", "cam", 5000);
        ck_assert_msg(f != NULL, "frames stopped");
        cJSON_Delete(f);
    }
}

START_TEST(test_full_dir) {
    dt_daemon d;
    dt_conn c;
    start(&d, &c, g_mnt);
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    /* fill the file system */
    char fill[600];
    snprintf(fill, sizeof fill, "dd if=/dev/zero of='%s/fill' bs=4k count=64 2>/dev/null", g_mnt);
    ck_assert_int_ne(system(fill), -1);
    char cmd[256];
    for (int i = 0; i < 4; i++) {
        snprintf(
            cmd, sizeof cmd,
            "{\"op\":\"track\",\"stream\":\"cam\",\"label\":\"%060d\",\"box\":[%d,10,20,20]}\n", i,
            10 + 30 * i);
        dt_expect_reply(dt_command(&c, cmd, 5000), "track");
    }
    cJSON *st = wait_state_ok(&c, 0);
    ck_assert_msg(!cJSON_IsTrue(cJSON_GetObjectItem(st, "ok")), "a full disk was not reported");
    ck_assert_int_ge((int)dt_num(st, "failures", 0), 1);
    ck_assert_msg(strstr(dt_str(st, "error"), "No space left"), "error: %s", dt_str(st, "error"));
    cJSON_Delete(st);
    frames_flow(&c);
    ck_assert(dt_log_has(&d, "No space left"));
    /* room again: the next snapshot succeeds and holds everything */
    snprintf(fill, sizeof fill, "%s/fill", g_mnt);
    unlink(fill);
    st = wait_state_ok(&c, 1);
    ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItem(st, "ok")), "not saved once room came back");
    cJSON_Delete(st);
    dt_close(&c);
    stop_ok(&d);
    start(&d, &c, g_mnt);
    uint32_t ids[64];
    char labels[64][80];
    ck_assert_int_eq(list_objects(&c, "cam", ids, labels, 64), 5);
    dt_close(&c);
    stop_ok(&d);
}
END_TEST

/* Read-only from the start (a file system cannot become read-only while the journal is open
 * for writing). */
START_TEST(test_readonly_dir) {
    ck_assert_int_eq(mount(NULL, g_mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0);
    dt_daemon d;
    dt_conn c;
    start(&d, &c, g_mnt);
    ck_assert_msg(has_object(&c, "cam", 1, "conf"), "the saved objects are read");
    dt_expect_reply(dt_command(&c, "{\"op\":\"subscribe\"}\n", 5000), "subscribe");
    dt_expect_reply(
        dt_command(&c, "{\"op\":\"track\",\"stream\":\"cam\",\"box\":[20,20,30,30]}\n", 5000),
        "track");
    cJSON *st = wait_state_ok(&c, 0);
    ck_assert_msg(!cJSON_IsTrue(cJSON_GetObjectItem(st, "ok")), "read-only not reported");
    ck_assert_msg(strstr(dt_str(st, "error"), "Read-only"), "error: %s", dt_str(st, "error"));
    cJSON_Delete(st);
    frames_flow(&c);
    dt_close(&c);
    stop_ok(&d); /* the last write fails too; the stop is still clean */
    ck_assert_int_eq(mount(NULL, g_mnt, NULL, MS_REMOUNT, NULL), 0);
}
END_TEST

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "restart";
    Suite *s = suite_create("daemon-state");
    int mounted = 0;
    if (strcmp(which, "restart") == 0) {
        tm_add_case(s, which, 120, test_restore_after_stop, test_restore_after_kill,
                    test_damaged_files, test_forget, NULL);
    } else if (strcmp(which, "faults") == 0) {
        if (mount_small_tmpfs() < 0) {
            fprintf(stderr, "test_state: cannot mount a tmpfs (%s): skipped\n", strerror(errno));
            tu_cleanup();
            return 77;
        }
        mounted = 1;
        tm_add_case(s, which, 120, test_full_dir, test_readonly_dir, NULL);
    } else {
        fprintf(stderr, "usage: %s [restart|faults]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int status = tm_run(s);
    if (mounted)
        umount2(g_mnt, MNT_DETACH);
    tu_cleanup();
    return status;
}
