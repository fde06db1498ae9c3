#!/usr/bin/python3
"""vtrackd soak: hours of camera faults and client churn, measured once a minute.

Four RTSP cameras (GStreamer's server, tests/codec/rtsp_server.py, on 127.0.0.1), each killed
and restarted at random every 20-60 s; a churn client that connects, subscribes, registers an
object, untracks it and disconnects in a loop; two subscribers that read everything (one with
masks). Every minute: vtrackd's RSS, open descriptors and threads, processed fps and
reconnections per stream, and the p95 of event latency (frame wallclock to receipt). At the end:
lifecycle events lost (an object registered by the churn client whose `removed` a subscriber
never saw), `seq` gaps and `dropped` notices of the subscribers, crashes, and the RSS
growth from minute 5 (minute 2 in --minutes < 15) to the end. Writes soak.svg (RSS and fps over
time) and soak.json next to --out.

usage: bench/soak.py BUILD_DIR [--minutes 60] [--out DIR] [--model FILE|lab]
Only loopback addresses are used. Not part of the test suite (bench/README.md has a run).
"""
import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import free_port, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTSP = os.path.join(ROOT, "tests", "codec", "rtsp_server.py")
CAMERAS = 4


def wallclock_ms(s):
    # "2024-05-01T12:00:00.123Z"
    t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    return (time.mktime(t) - time.timezone) * 1000 + int(s[20:23])


class Camera(threading.Thread):
    """One RTSP server on a fixed port, killed and restarted at random."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop, self.proc, self.kills = port, stop, None, 0

    def start_server(self):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", RTSP, "--port", str(self.port), "--width", "320",
             "--height", "240", "--fps", "15"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run(self):
        self.start_server()
        while not self.stop.wait(random.uniform(20, 60)):
            self.proc.kill()
            self.proc.wait()
            self.kills += 1
            if self.stop.wait(random.uniform(1, 3)):
                return
            self.start_server()

    def close(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()


class Conn:
    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.next_seq = 0
        self.gaps = 0

    def send(self, obj):
        self.sock.sendall((json.dumps(obj) + "\n").encode())

    def read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        m = json.loads(line)
        if m.get("seq") != self.next_seq:
            self.gaps += 1
        self.next_seq = m.get("seq", self.next_seq) + 1
        return m

    def command(self, obj):
        self.send(obj)
        while True:
            m = self.read()
            if m["type"] in ("reply", "error"):
                return m

    def close(self):
        self.sock.close()


class Subscriber(threading.Thread):
    def __init__(self, port, masks, stop):
        super().__init__(daemon=True)
        self.port, self.masks, self.stop = port, masks, stop
        self.lock = threading.Lock()
        self.latencies = []  # this minute's
        self.added, self.removed = set(), set()
        self.dropped = 0
        self.gaps = 0
        self.error = None

    def run(self):
        try:
            c = Conn(self.port, timeout=30)
            c.read()
            c.command({"op": "subscribe", "masks": self.masks})
            while not self.stop.is_set():
                m = c.read()
                now = time.time() * 1000
                with self.lock:
                    if m["type"] == "frame":
                        self.latencies.append(now - wallclock_ms(m["wallclock"]))
                    elif m["type"] == "object" and m["event"] in ("added", "removed"):
                        (self.added if m["event"] == "added" else self.removed).add(
                            (m["stream"], m["object"], m.get("label")))
                    elif m["type"] == "dropped":
                        self.dropped += 1
                self.gaps = c.gaps
        except Exception as e:  # noqa: BLE001 - reported at the end
            self.error = repr(e)

    def take_latencies(self):
        with self.lock:
            v, self.latencies = self.latencies, []
        return v


class Churn(threading.Thread):
    """connect, subscribe, track, wait, untrack, disconnect; again."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.registered = []  # (stream, id, label) with a track reply
        self.errors = 0
        self.n = 0

    def run(self):
        while not self.stop.is_set():
            self.n += 1
            label = f"churn{self.n}"
            stream = f"cam{random.randrange(CAMERAS)}"
            try:
                c = Conn(self.port)
                c.read()
                c.command({"op": "subscribe", "streams": [stream]})
                r = c.command({"op": "track", "stream": stream, "label": label,
                               "box": [random.randrange(0, 200), random.randrange(0, 140), 60, 60]})
                if r["type"] == "reply":
                    self.registered.append((stream, r["object"], label))
                    self.stop.wait(2)
                    c.command({"op": "untrack", "stream": stream, "object": r["object"]})
                c.close()
            except Exception:  # noqa: BLE001 - counted
                self.errors += 1
                self.stop.wait(1)


def proc_status(pid):
    st = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            st[k] = v.strip()
    return {"rss_mib": int(st["VmRSS"].split()[0]) / 1024, "threads": int(st["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def p95(v):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(0.95 * len(v)))]


def svg(minutes, path):
    w, h, pad = 720, 360, 50
    t = [m["minute"] for m in minutes]
    rss = [m["rss_mib"] for m in minutes]
    fps = [sum(m["fps"].values()) for m in minutes]
    tmax = max(t[-1], 1)

    def line(vals, vmax, colour):
        pts = " ".join(f"{pad + (w - 2 * pad) * x / tmax:.1f},{h - pad - (h - 2 * pad) * y / vmax:.1f}"
                       for x, y in zip(t, vals))
        return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>'

    rmax, fmax = max(rss) * 1.2, max(max(fps) * 1.2, 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
           f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">minutes (0-{tmax})</text>',
           f'<text x="{pad}" y="20" fill="#c00">RSS, MiB (0-{rmax:.0f})</text>',
           f'<text x="{w - pad}" y="20" fill="#06c" text-anchor="end">processed fps, all streams '
           f'(0-{fmax:.0f})</text>',
           line(rss, rmax, "#c00"), line(fps, fmax, "#06c"), "</svg>"]
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--out", default=".")
    ap.add_argument("--model", default=None, help="default: the shipped weights")
    a = ap.parse_args()
    vtrackd = os.path.join(a.build, "daemon", "vtrackd")
    tmp = tempfile.mkdtemp(prefix="vtsoak-")
    stop = threading.Event()
    ports = [free_port() for _ in range(CAMERAS)]
    cams = [Camera(p, stop) for p in ports]
    for c in cams:
        c.start()
    time.sleep(2)
    port = free_port()
    cfg = {"listen": f"127.0.0.1:{port}", "log_level": "notice", "state_dir": f"{tmp}/state",
           "limits": {"clients": 64},
           "streams": [{"name": f"cam{i}", "url": f"rtsp://127.0.0.1:{p}/test", "pacing": "live",
                        "profile": "realtime", "read_timeout_s": 3, "backoff_max_s": 2}
                       for i, p in enumerate(ports)]}
    if a.model:
        cfg["model"] = a.model
    with open(f"{tmp}/vtrackd.json", "w") as f:
        json.dump(cfg, f)
    log = open(f"{tmp}/vtrackd.log", "w")
    d = subprocess.Popen([vtrackd, "--config", f"{tmp}/vtrackd.json"], stderr=log)
    wait_port(port, 100, 0.2)
    subs = [Subscriber(port, True, stop), Subscriber(port, False, stop)]
    churn = Churn(port, stop)
    for s in subs:
        s.start()
    churn.start()
    minutes = []
    start = time.time()
    crashed = None
    prev_rec = {}
    try:
        while time.time() - start < a.minutes * 60:
            time.sleep(60 - (time.time() - start) % 60)
            if d.poll() is not None:
                crashed = d.returncode
                break
            ctl = Conn(port)  # a fresh one: an idle connection is closed after a minute
            ctl.read()
            st = ctl.command({"op": "stats"})["stats"]
            ctl.close()
            row = {"minute": round((time.time() - start) / 60), **proc_status(d.pid),
                   "fps": {s["stream"]: s["fps"] for s in st["streams"]},
                   "reconnects": {s["stream"]: s["reconnects"] - prev_rec.get(s["stream"], 0)
                                  for s in st["streams"]},
                   "latency_p95_ms": p95(subs[1].take_latencies() + subs[0].take_latencies()),
                   "load1": os.getloadavg()[0]}
            prev_rec = {s["stream"]: s["reconnects"] for s in st["streams"]}
            minutes.append(row)
            print(json.dumps(row), flush=True)
    finally:
        stop.set()
        time.sleep(3)  # the last untrack's removed event
        if d.poll() is None:
            d.send_signal(signal.SIGTERM)
            rc = d.wait(30)
            crashed = crashed if crashed is not None else (rc if rc != 0 else None)
        for c in cams:
            c.close()
    reg = churn.registered[:-1]  # the last may have been cut short by the stop
    # every registration ends in exactly one `removed` (an object untracked while its camera was
    # down never had an `added`: those are counted, not lost)
    lost = sum(1 for sub in subs for r in reg if r not in sub.removed)
    never_added = sum(1 for r in reg if r not in subs[1].added)
    base = minutes[min(len(minutes) - 1, 4 if a.minutes >= 15 else 1)]["rss_mib"] if minutes else 0
    summary = {
        "minutes": len(minutes), "camera_kills": sum(c.kills for c in cams),
        "objects_registered": len(reg), "churn_errors": churn.errors,
        "lifecycle_events_lost": lost, "untracked_before_added": never_added, "seq_gaps": [s.gaps for s in subs],
        "dropped_notices": [s.dropped for s in subs],
        "subscriber_errors": [s.error for s in subs], "crashes": 0 if crashed is None else 1,
        "exit": crashed, "rss_growth_pct": (minutes[-1]["rss_mib"] / base - 1) * 100 if base else None,
        "load_avg": os.getloadavg(),
    }
    print(json.dumps(summary, indent=1))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "soak.json"), "w") as f:
        json.dump({"minutes": minutes, "summary": summary}, f, indent=1)
    if minutes:
        svg(minutes, os.path.join(a.out, "soak.svg"))
    ok = crashed is None and lost == 0 and not any(s.gaps for s in subs)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
