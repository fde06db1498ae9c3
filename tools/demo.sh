#!/usr/bin/env bash
# ./dev demo (tools/demo.sh BUILD_DIR): run vtrackd on Debian opencv-doc's vtest.avi (people on a
# walkway) as if it were a live camera (native rate, looped), with three pedestrians registered
# by boxes on later frames; write an overlay video of the first 20 seconds; show the events
# streaming in (vtrack sub --pretty) until Ctrl-C; then stop the daemon cleanly.
#
# Environment: VT_DEMO_PORT (default 7878, or the next free one), VT_DEMO_SECONDS (stop by
# itself after that many seconds, for scripted runs), VT_DEMO_OVERLAY_SECONDS (default 20),
# VT_DEMO_PROFILE (accurate or realtime; default accurate: with the shipped model one core
# tracks about 7 of vtest.avi's 10 frames a second at 640x480, and follows the people longer than
# realtime does), VT_MODEL (weights; default: the shipped ones, else lab).
set -euo pipefail

BUILD=${1:?usage: tools/demo.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd)
VTRACKD=$BUILD/daemon/vtrackd
VTRACK=$BUILD/cli/vtrack
VIDEO=/usr/share/doc/opencv-doc/examples/data/vtest.avi
DIR=$BUILD/demo
OVERLAY=$BUILD/demo-overlay.mp4
OVERLAY_SECONDS=${VT_DEMO_OVERLAY_SECONDS:-20}
PROFILE=${VT_DEMO_PROFILE:-accurate}

die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
[ -x "$VTRACKD" ] && [ -x "$VTRACK" ] || die "$BUILD has no vtrackd/vtrack: run ./dev build"
[ -r "$VIDEO" ] || die "$VIDEO is missing: install Debian's opencv-doc (./dev setup does)"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=${VT_DEMO_PORT:-7878}
if [ -z "${VT_DEMO_PORT:-}" ]; then
    while port_busy "$PORT"; do
        PORT=$((PORT + 1))
        [ "$PORT" -lt 7900 ] || die "no free port in 7878..7899"
    done
fi
ADDR=127.0.0.1:$PORT
# The live view (HTTP) on the first free port from 7979.
HPORT=${VT_DEMO_HTTP_PORT:-7979}
while [ -z "${VT_DEMO_HTTP_PORT:-}" ] && port_busy "$HPORT"; do
    HPORT=$((HPORT + 1))
    [ "$HPORT" -lt 8000 ] || die "no free port in 7979..7999"
done
# An MQTT broker already listening on this machine (mosquitto) gets the events too.
MQTT=
if port_busy 1883; then
    MQTT='"mqtt": {"host": "127.0.0.1", "topic_prefix": "vtrack-demo"},'
fi

mkdir -p "$DIR"
rm -f "$OVERLAY"
# Three people, each registered by a box on a frame where it is clear of the others (vtest.avi
# is 768x576, 10 fps): #1 walks right in front of a man by the sign (frames ~102-107) and of the
# woman in light blue (~129-131), then leaves on the right (~150); #3, the woman in light blue,
# walks left behind a man and the sign post (~150-156); #4 walks right until he leaves (~212).
# #4 is registered after he has crossed another man in dark clothes by the sign (~158-164): a
# live tracker that skips frames takes the other man there (docs/RESULTS.md, "The demo scene").
cat >"$DIR/vtrackd.json" <<JSON
{
  "listen": "$ADDR",
  "log_level": "notice",
  "http": {"listen": "127.0.0.1:$HPORT"},
  $MQTT
  "streams": [{
    "name": "walkway",
    "url": "$VIDEO",
    "pacing": "camera",
    "profile": "$PROFILE",
    "objects": [
      {"id": 1, "label": "black-coat", "box": [302, 190, 31, 72], "frame": 92},
      {"id": 3, "label": "light-blue", "box": [632, 211, 44, 85], "frame": 126},
      {"id": 4, "label": "black-jacket", "box": [520, 218, 27, 85], "frame": 170}
    ],
    "overlay": {"path": "$OVERLAY", "seconds": $OVERLAY_SECONDS}
  }]
}
JSON

# Its own session: Ctrl-C reaches the client, and this script stops the daemon in order.
setsid "$VTRACKD" --config "$DIR/vtrackd.json" >"$DIR/vtrackd.log" 2>&1 &
DAEMON=$!
stop_daemon() {
    if kill -0 "$DAEMON" 2>/dev/null; then
        kill -TERM "$DAEMON" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$DAEMON" 2>/dev/null && kill -KILL "$DAEMON" 2>/dev/null
    fi
    wait "$DAEMON" 2>/dev/null
}
trap 'stop_daemon' EXIT

ready=0
for _ in $(seq 100); do
    if "$VTRACK" ctl "$ADDR" list --timeout 1 >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$DAEMON" 2>/dev/null || break
    sleep 0.1
done
if [ $ready -ne 1 ]; then
    cat "$DIR/vtrackd.log" >&2
    die "vtrackd did not start (log above, config $DIR/vtrackd.json)"
fi

cat >&2 <<MSG
vtrackd is tracking three people in vtest.avi, replayed at its own 10 fps as a live camera,
each registered by a box when it first walks clear of the others:
  #1 black-coat from 9 s: passes in front of two people (10 s, 13 s), leaves right at 15 s
  #3 light-blue from 12.6 s: walks left behind a man and the sign post at 15 s
  #4 black-jacket from 17 s: walks right until he leaves at 21 s
  events:  vtrack sub $ADDR --pretty     (below; Ctrl-C stops the demo)
  live:    http://127.0.0.1:$HPORT/      (the camera with its objects; drag a box to track)
  control: $VTRACK ctl $ADDR list | stats
  overlay: $OVERLAY (the first $OVERLAY_SECONDS s, complete after that long)
  log:     $DIR/vtrackd.log
MSG
[ -n "$MQTT" ] && printf '  mqtt:    mosquitto_sub -h 127.0.0.1 -t "vtrack-demo/#" -v\n' >&2

interrupted=0
trap 'interrupted=1' INT
status=0
if [ -n "${VT_DEMO_SECONDS:-}" ]; then
    timeout -s INT "$VT_DEMO_SECONDS" "$VTRACK" sub "$ADDR" --pretty || status=$?
    [ $status -eq 124 ] && status=0
else
    "$VTRACK" sub "$ADDR" --pretty || status=$?
fi
trap - INT

kill -TERM "$DAEMON" 2>/dev/null || true
code=0
wait "$DAEMON" || code=$?
trap - EXIT
printf '\nvtrackd stopped (exit status %d).\n' "$code" >&2
if [ -s "$OVERLAY" ]; then
    printf 'overlay video: %s\n' "$OVERLAY" >&2
else
    printf 'no overlay video was written (see %s)\n' "$DIR/vtrackd.log" >&2
fi
[ $code -eq 0 ] || exit "$code"
[ $interrupted -eq 1 ] && exit 0
exit "$status"
