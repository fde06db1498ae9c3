#!/usr/bin/python3
"""MQTT sink benchmark (bench/daemon.md, "MQTT sink"): vtrackd with 10 streams publishing every
frame event to a local mosquitto.

Ten camera-paced streams of one small test video made with ffmpeg (three squares moving over
ffmpeg's testsrc2 pattern, an object registered on each), the weight-free `lab` model and the
realtime profile so that the tracker stays cheap and the sink is what is measured;
`mqtt.frames` on, `mqtt.masks` off, then on. mosquitto runs on a free loopback port with its own configuration (no persistence, anonymous
on 127.0.0.1 only). vtrackd is pinned to one core (VT_BENCH_CORE, default 0), the broker and
the clients to the other (VT_BENCH_OTHER_CORE, default 1). In each run, over the same window:
- an MQTT subscriber (mosquitto_sub on <prefix>/#, printing receipt time and topic) counts the
  messages per second by topic type, and the latency of frame events (frame wallclock to
  receipt);
- a TCP subscriber (build/tests/daemon/daemon_load, subscribed to every stream, with masks when
  MQTT has them) counts frame events per second: the reference;
- vtrackd's `stats`: frames processed, `mqtt.published` / `dropped` (deltas) and `queued` (at
  the end); its CPU (whole process, and the main thread, which runs the event loop and the MQTT
  sink) and mosquitto's, from /proc, as a share of one core.
Scenarios alternate run by run (no masks, masks, no masks, ...), vtrackd restarted for each;
the median over the runs of each figure is printed last.

usage: bench/mqtt.py BUILD_DIR [--runs 3] [--seconds 20] [--warmup 5] [--streams 10]
                               [--size 320x240] [--fps 25] [--pacing camera|lossless]
Only loopback addresses are used; every child is stopped on exit.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import free_port, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORE = os.environ.get("VT_BENCH_CORE", "0")
OTHER = os.environ.get("VT_BENCH_OTHER_CORE", "1")
HZ = os.sysconf("SC_CLK_TCK")
PREFIX = "vtbench"
CHILDREN = []


def spawn(cmd, core, **kw):
    p = subprocess.Popen(["taskset", "-c", core] + cmd, **kw)
    CHILDREN.append(p)
    return p


def stop(p, sig=signal.SIGTERM, wait=10):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in CHILDREN:
        CHILDREN.remove(p)
    return p.returncode


def cleanup():
    for p in list(CHILDREN):
        stop(p, signal.SIGTERM, 5)


def ticks(path):
    with open(path) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return int(v[11]) + int(v[12])  # utime + stime (fields 14, 15)


def wallclock_ms(s):
    t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    return (time.mktime(t) - time.timezone) * 1000 + int(s[20:23])


def ctl(port, op):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rwb")
        f.readline()  # greeting
        f.write((json.dumps({"op": op}) + "\n").encode())
        f.flush()
        while True:
            m = json.loads(f.readline())
            if m["type"] in ("reply", "error"):
                return m


def quantile(v, q):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


class MqttCounter(threading.Thread):
    """Reads mosquitto_sub's "<unix time> <topic> <payload>" lines; counts those in a window."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc, self.t0, self.t1 = proc, float("inf"), float("inf")
        self.counts, self.lat = {}, []

    def run(self):
        for line in self.proc.stdout:
            ts, _, rest = line.partition(b" ")
            topic, _, payload = rest.partition(b" ")
            try:
                t = float(ts)
            except ValueError:
                continue
            if not (self.t0 <= t < self.t1):
                continue
            parts = topic.decode().split("/")  # vtbench/{available,events,STREAM/...}
            kind = parts[2] if len(parts) > 2 else parts[1]
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if kind == "frame":
                m = re.search(rb'"wallclock":"([^"]+)"', payload)
                if m:
                    self.lat.append(t * 1000 - wallclock_ms(m.group(1).decode()))


def make_video(path, size, fps):
    w, h = (int(x) for x in size.split("x"))
    s = max(8, w // 8)  # square side
    boxes = [(w // 8, h // 6, "white", 1.0), (w // 2, h // 3, "0xe0c040", -0.7),
             (w // 4, 3 * h // 5, "0x40c0e0", 0.5)]
    vf = ",".join(f"drawbox=x='{x}+{v * w / 40:.2f}*t':y={y}:w={s}:h={s}:color={c}:t=fill"
                  for x, y, c, v in boxes)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=s={size}:r={fps}:d=8", "-vf", vf, "-c:v", "mpeg4",
                    "-q:v", "3", "-g", str(fps), path], check=True)
    return [[x, y, s, s] for x, y, _, _ in boxes]


def run_once(a, tmp, broker_port, broker, masks, vtrackd, load, video, boxes):
    port = free_port()
    cfg = {"listen": f"127.0.0.1:{port}", "log_level": "notice", "blas_threads": 1,
           "model": "lab", "limits": {"streams": max(16, a.streams)},
           "mqtt": {"host": "127.0.0.1", "port": broker_port, "client_id": "vtbench",
                    "topic_prefix": PREFIX, "qos": 1, "frames": True, "masks": masks},
           "streams": [{"name": f"s{i}", "url": video, "pacing": a.pacing,
                        "profile": "realtime", "tracker": "mast",
                        "objects": [{"label": f"o{k}", "box": b} for k, b in enumerate(boxes)]}
                       for i in range(a.streams)]}
    with open(f"{tmp}/vtrackd.json", "w") as f:
        json.dump(cfg, f)
    log = open(f"{tmp}/vtrackd.log", "w")
    d = spawn([vtrackd, "--config", f"{tmp}/vtrackd.json"], CORE, stderr=log)
    sub = spawn(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker_port), "-t", f"{PREFIX}/#",
                 "-F", "%U %t %p"], OTHER, stdout=subprocess.PIPE)
    counter = MqttCounter(sub)
    counter.start()
    try:
        for _ in range(100):
            try:
                st = ctl(port, "stats")["stats"]
                if st.get("mqtt", {}).get("connected"):
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("vtrackd did not connect to the broker: " + open(log.name).read())
        # daemon_load measures from --warmup after it starts; the rest uses the same window
        tl = time.time()
        lp = spawn([load, str(port), "--subs", "1"] + (["--masks"] if masks else [])
                   + ["--warmup", str(a.warmup), "--seconds", str(a.seconds)], OTHER,
                   stdout=subprocess.PIPE)
        time.sleep(max(0, tl + a.warmup - time.time()))
        pid = d.pid
        s0 = ctl(port, "stats")["stats"]
        c0, l0, b0 = ticks(f"/proc/{pid}/stat"), ticks(f"/proc/{pid}/task/{pid}/stat"), \
            ticks(f"/proc/{broker.pid}/stat")
        t0 = time.time()
        counter.t0, counter.t1 = t0, t0 + a.seconds
        time.sleep(a.seconds)
        t1 = time.time()
        s1 = ctl(port, "stats")["stats"]
        c1, l1, b1 = ticks(f"/proc/{pid}/stat"), ticks(f"/proc/{pid}/task/{pid}/stat"), \
            ticks(f"/proc/{broker.pid}/stat")
        out, _ = lp.communicate(timeout=30)
        CHILDREN.remove(lp)
        tcp = json.loads(out)
        time.sleep(0.5)  # the last messages of the window reach the counter
        dt = t1 - t0
        frames = sum(s["frames"] for s in s1["streams"]) - sum(s["frames"] for s in s0["streams"])
        m0, m1 = s0["mqtt"], s1["mqtt"]
        n = sum(counter.counts.values())
        r = {"masks": masks, "seconds": round(dt, 2),
             "processed_fps": frames / dt,
             "mqtt_msgs_per_s": n / dt,
             "mqtt_by_topic_per_s": {k: round(v / dt, 2) for k, v in sorted(counter.counts.items())},
             "mqtt_frame_per_s": counter.counts.get("frame", 0) / dt,
             "tcp_frame_per_s": tcp["fps_per_sub"],
             "mqtt_latency_p50_ms": quantile(counter.lat, 0.5),
             "mqtt_latency_p95_ms": quantile(counter.lat, 0.95),
             "tcp_latency_p50_ms": tcp["latency_ms"]["p50"],
             "tcp_latency_p95_ms": tcp["latency_ms"]["p95"],
             "published_per_s": (m1["published"] - m0["published"]) / dt,
             "dropped": m1["dropped"] - m0["dropped"], "queued_end": m1["queued"],
             "mqtt_failures": m1["failures"], "tcp_dropped": tcp["dropped_events"],
             "tcp_seq_gaps": tcp["seq_gaps"],
             "vtrackd_cpu_pct": 100 * (c1 - c0) / HZ / dt,
             "loop_cpu_pct": 100 * (l1 - l0) / HZ / dt,
             "mosquitto_cpu_pct": 100 * (b1 - b0) / HZ / dt}
        return r
    finally:
        rc = stop(d)
        stop(sub, signal.SIGTERM)
        log.close()
        if rc not in (0, None):
            print(f"vtrackd exit {rc}: " + open(f"{tmp}/vtrackd.log").read()[-2000:], file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--pacing", default="camera", choices=["camera", "lossless"])
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    vtrackd = os.path.join(build, "daemon", "vtrackd")
    load = os.path.join(build, "tests", "daemon", "daemon_load")
    tmp = tempfile.mkdtemp(prefix="vtmqtt-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        video = f"{tmp}/v.mp4"
        boxes = make_video(video, a.size, a.fps)
        broker_port = free_port()
        with open(f"{tmp}/mosquitto.conf", "w") as f:
            f.write(f"listener {broker_port} 127.0.0.1\nallow_anonymous true\n"
                    f"persistence false\nlog_dest file {tmp}/mosquitto.log\n")
        broker = spawn(["mosquitto", "-c", f"{tmp}/mosquitto.conf"], OTHER,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(broker_port, 50, 0.1)
        print(f"# {a.streams} streams of {a.size}@{a.fps} ({a.pacing}), lab model, realtime; "
              f"vtrackd on core {CORE}, mosquitto 127.0.0.1:{broker_port} and clients on core "
              f"{OTHER}; {a.runs} runs x {a.seconds:g} s; load {os.getloadavg()}", flush=True)
        res = {False: [], True: []}
        for i in range(a.runs):
            for masks in (False, True):
                r = run_once(a, tmp, broker_port, broker, masks, vtrackd, load, video, boxes)
                res[masks].append(r)
                print(json.dumps({"run": i + 1, **{k: round(v, 2) if isinstance(v, float) else v
                                                   for k, v in r.items()}}), flush=True)
        keys = ["processed_fps", "mqtt_msgs_per_s", "mqtt_frame_per_s", "tcp_frame_per_s",
                "published_per_s", "dropped", "queued_end", "mqtt_latency_p50_ms",
                "mqtt_latency_p95_ms", "tcp_latency_p50_ms", "tcp_latency_p95_ms",
                "vtrackd_cpu_pct", "loop_cpu_pct", "mosquitto_cpu_pct"]
        for masks in (False, True):
            rs = res[masks]
            med = {k: round(statistics.median(r[k] for r in rs), 1) for k in keys}
            rng = {k: [round(min(r[k] for r in rs), 1), round(max(r[k] for r in rs), 1)]
                   for k in keys}
            print(json.dumps({"median": "masks" if masks else "no masks", **med, "range": rng}))
        print(f"# load after: {os.getloadavg()}")
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
