#!/usr/bin/python3
"""RTSP server on loopback for codec/'s integration tests (GStreamer's RTSP server).

Serves /test: a live test pattern as H.264 (RTP over UDP or TCP, as the client asks), or with
--file a recording: an MP4 file with H.264 video, played from its start for each client, its
duration announced (SDP range), as a video-on-demand server does.
Prints the bound port on stdout once listening, then runs until killed, until its stdin closes
or until its parent (the thread that started it) dies, so that it never outlives the test.
usage: rtsp_server.py [--port N] [--width W] [--height H] [--fps F] [--file MP4]
"""
import argparse
import ctypes
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def die_with_parent():
    """SIGKILL when the test process dies, even if a test froze us with SIGSTOP."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main():
    die_with_parent()
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--file", help="serve this MP4 (H.264) as a recording")
    args = ap.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    if args.file:
        factory.set_launch(
            f'( filesrc location="{args.file}" ! qtdemux ! h264parse '
            "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )
        factory.set_shared(False)
    else:
        # A key frame every 5th of a second and SPS/PPS with every IDR: clients join quickly.
        factory.set_launch(
            "( videotestsrc is-live=true pattern=ball "
            f"! video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 "
            "! x264enc tune=zerolatency speed-preset=ultrafast "
            f"key-int-max={max(1, args.fps // 5)} ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )
        factory.set_shared(True)

    # RTCP sender reports (which give clients the capture wall clock) every 0.5 s instead of
    # every 5 s, so that tests see one quickly.
    def on_prepared(media):
        for i in range(media.n_streams()):
            session = media.get_stream(i).get_rtpsession()
            if session is not None:
                session.set_property("rtcp-min-interval", 500 * Gst.MSECOND)

    factory.connect("media-configure", lambda f, media: media.connect("prepared", on_prepared))
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        print("cannot listen on 127.0.0.1:%d" % args.port, file=sys.stderr)
        return 1
    print(server.get_bound_port(), flush=True)
    loop = GLib.MainLoop()
    # The test holds our stdin: when it exits (however it exits), so do we.
    GLib.io_add_watch(GLib.IOChannel.unix_new(0), GLib.PRIORITY_DEFAULT,
                      GLib.IOCondition.IN | GLib.IOCondition.HUP, lambda *a: loop.quit())
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
