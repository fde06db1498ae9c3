#!/usr/bin/python3
"""HTTP server on loopback for codec/'s integration tests: serves one folder (media, HLS).

Prints the bound port on stdout once listening; exits when its stdin closes or its parent
(the thread that started it) dies.
usage: http_server.py FOLDER
"""
import ctypes
import functools
import http.server
import signal
import sys
import threading


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def die_with_parent():
    """SIGKILL when the test process dies, even if a test froze us with SIGSTOP."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main():
    die_with_parent()
    handler = functools.partial(Quiet, directory=sys.argv[1])
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(srv.server_address[1], flush=True)
    sys.stdin.read()  # until the test closes our stdin
    srv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
