"""Kill a writer just before its Nth call of one syscall, with ``strace -e inject``.

The writer runs in a forked child that waits on a pipe until ``strace -p`` has attached
to it, so the syscalls counted are the writer's own work (opening the store, writing,
closing), never the interpreter's start. The child acknowledges each call that returned
by bumping a counter in memory shared with the parent: storing to shared memory is no
syscall, so acknowledgements add no crash points and cannot be lost by the kill.

Nothing here waits on a timer: the parent sends "go" once strace reports the attach,
and the kill comes from the writer's own Nth syscall.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# the syscalls that change files, as the brief of each crash point names them; the
# variants on the right are counted and injected under their own names when they occur
KINDS = {
    "write": ("write", "writev"),
    "pwrite64": ("pwrite64", "pwritev", "pwritev2"),
    "fsync": ("fsync",),
    "fdatasync": ("fdatasync",),
    "rename": ("rename", "renameat", "renameat2"),
    "unlink": ("unlink", "unlinkat"),
    "ftruncate": ("ftruncate",),
}
SYSCALLS = tuple(name for names in KINDS.values() for name in names)
_PR_SET_PTRACER, _PR_SET_PTRACER_ANY = 0x59616D61, ctypes.c_ulong(-1).value
_LINE = re.compile(r"^(?:\d+\s+)?(\w+)\(")


class Acks:
    """A counter the child bumps after each call returned; the parent reads it after the kill."""

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, 8)  # anonymous and shared: survives the fork, no syscalls

    def ack(self) -> None:
        self._map[:8] = struct.pack("<q", self.count + 1)

    @property
    def count(self) -> int:
        return int(struct.unpack("<q", self._map[:8])[0])


@dataclass
class Run:
    """How a traced writer ended: killed by the injection, or finished (rc 0)."""

    killed: bool
    acks: int


def unavailable() -> str | None:
    """Why strace cannot inject faults here, or None when it can."""
    if shutil.which("strace") is None:
        return "strace is not installed"
    if not hasattr(os, "fork"):
        return "needs os.fork"
    try:
        run = trace(lambda acks: acks.ack(), ["-e", "trace=write"])
    except RuntimeError as exc:
        return str(exc)
    return None if run.acks == 1 and not run.killed else "strace -p did not trace the writer"


def trace(work: Callable[[Acks], None], options: list[str], output: str = "/dev/null") -> Run:
    """Run ``work(acks)`` in a forked child traced by ``strace OPTIONS -p CHILD``.

    Raises:
        RuntimeError: strace could not attach, or the child failed other than by the kill.
    """
    acks = Acks()
    go_read, go_write = os.pipe()
    error_read, error_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        code = 0
        try:
            os.close(go_write)
            os.close(error_read)
            with contextlib.suppress(AttributeError, OSError):  # Yama: let a sibling trace us
                ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PTRACER, _PR_SET_PTRACER_ANY)
            if os.read(go_read, 1) == b"g":
                work(acks)
            else:
                code = 2  # the parent gave up before attaching
        except BaseException:
            os.write(error_write, traceback.format_exc().encode())
            code = 3
        finally:
            os._exit(code)
    os.close(go_read)
    os.close(error_write)
    strace = subprocess.Popen(
        ["strace", "-f", "-o", output, *options, "-p", str(pid)],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert strace.stderr is not None
    # strace says "Process N attached" once it has seized and interrupted the child:
    # every syscall the child makes after that is traced
    first = strace.stderr.readline()
    attached = first.rstrip().endswith("attached")
    os.write(go_write, b"g" if attached else b"x")
    os.close(go_write)
    _, status = os.waitpid(pid, 0)
    if strace.poll() is None:
        strace.wait()
    rest = strace.stderr.read()
    strace.stderr.close()
    with os.fdopen(error_read, "rb") as errors:
        failure = errors.read().decode(errors="replace")
    if not attached:
        raise RuntimeError(f"strace cannot attach: {(first + rest).strip()}")
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return Run(killed=True, acks=acks.count)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return Run(killed=False, acks=acks.count)
    raise RuntimeError(f"the writer failed (status {status}; strace: {rest.strip()!r}):\n{failure}")


def count_calls(work: Callable[[Acks], None], scratch: Path) -> Counter[str]:
    """How many times ``work`` calls each syscall of :data:`SYSCALLS` (one traced run)."""
    log = scratch / "strace.log"
    run = trace(work, ["-e", f"trace={','.join(SYSCALLS)}"], str(log))
    if run.killed:
        raise RuntimeError("the counting run was killed")
    counts: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        match = _LINE.match(line)
        if match:
            counts[match.group(1)] += 1
    return counts


def kill_at(work: Callable[[Acks], None], syscall: str, n: int) -> Run:
    """Run ``work`` and SIGKILL it on entering its ``n``th ``syscall`` (before the call)."""
    inject = f"inject={syscall}:signal=KILL:when={n}"
    return trace(work, ["-e", f"trace={syscall}", "-e", inject])


if __name__ == "__main__":  # a quick look: python -m tests.reliability.tracing
    print(unavailable() or "strace can inject faults here", file=sys.stderr)
