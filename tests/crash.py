"""Crash tests: run a writer in a forked child, SIGKILL it, and replay what it acknowledged.

The kill is decided by the writer's progress, never by a timer, so a loaded machine
moves the kill no more than an idle one: the parent reads the child's ``begin N ...``
lines and kills it as soon as it announces its ``after``-th operation, which is then
in flight (or, if the child was quicker than the kill, done).
"""

import os
import signal
from collections.abc import Callable
from typing import Any

State = dict[str, Any]
"""``id -> (op, position)``: what the acknowledged writes left."""


def run_killed(writer: Callable[[int], None], after: int) -> list[str]:
    """Fork, run ``writer(fd)`` in the child (it writes lines to ``fd``), kill it once it
    has begun ``after`` operations, and return its complete lines (a line cut by the kill
    is dropped: it was never acknowledged)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            os.close(read_fd)
            writer(write_fd)
        finally:
            os._exit(1)
    os.close(write_fd)
    output = b""
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        begun = 0
        while begun < after:
            chunk = pipe.read(65536)
            if not chunk:  # the child died by itself: its lines say how far it got
                break
            begun += chunk.count(b"begin ")
            output += chunk
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        output += pipe.read()
    return output.decode().split("\n")[:-1]


Op = tuple[str, int, list[str]]  # (kind, op number, ids) as a child announced it


def apply(state: State, kind: str, op: int, ids: list[str]) -> State:
    """``id -> (op, position)`` after one write: ``delete`` removes ids, any other kind writes."""
    new = dict(state)
    for pos, id_ in enumerate(ids):
        if kind == "delete":
            new.pop(id_, None)
        else:
            new[id_] = (op, pos)
    return new


def replay(lines: list[str], state: State, next_op: int) -> tuple[State, Op | None, int, int]:
    """Apply the acknowledged operations of a child's ``begin N KIND IDS``/``ack N`` lines.

    Returns the new state, the operation that had begun without an ack (or None), the next
    operation number, and how many operations were acknowledged.
    """
    pending: Op | None = None
    acked = 0
    for line in lines:
        word, op, *rest = line.split(" ")
        if word == "begin":
            pending = (rest[0], int(op), rest[1:])
            next_op = int(op) + 1
        else:
            assert pending is not None
            assert int(op) == pending[1]
            state = apply(state, *pending)
            pending = None
            acked += 1
    return state, pending, next_op, acked


def settle(found: State, state: State, pending: Op | None) -> State:
    """The state to expect after the kill: the operation in flight may have reached the disk
    before it, whole or not at all."""
    if pending is not None and found != state:
        return apply(state, *pending)
    return state
