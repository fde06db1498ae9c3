"""What the Python benchmarks of bench/ share (they import it from their own folder)."""
import socket
import time


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, tries, pause):
    """Wait until 127.0.0.1:port accepts a connection, trying `tries` times `pause` s apart."""
    for _ in range(tries):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(pause)
    return False
