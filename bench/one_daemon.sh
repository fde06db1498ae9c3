# bench/one_daemon.sh - sourced by the benchmarks that run one vtrackd at a time
# (adapt_camera.sh, adapt_check.sh): PID, the running process, stopped by `cleanup` and at exit;
# free_port, a free loopback TCP port. The caller sets PY.
PID=
cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    PID=
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
