"""Run a writer in a forked child, SIGKILL it after a while, and collect what it printed."""

import os
import signal
import time
from collections.abc import Callable


def run_killed(writer: Callable[[int], None], lifetime: float) -> list[str]:
    """Fork, run ``writer(fd)`` in the child (it writes lines to ``fd``), kill it after
    ``lifetime`` seconds, and return its complete lines (a line cut by the kill is dropped:
    it was never acknowledged)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            os.close(read_fd)
            writer(write_fd)
        finally:
            os._exit(1)
    os.close(write_fd)
    time.sleep(lifetime)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with os.fdopen(read_fd, "rb") as pipe:
        output = pipe.read().decode()
    return output.split("\n")[:-1]
