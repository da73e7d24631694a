"""A real Chroma server for tests: ``chroma run`` (the CLI ships with chromadb) on a free port."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from pathlib import Path


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chroma_cli() -> str | None:
    return shutil.which("chroma")


class ChromaServer:
    """Starts and stops ``chroma run --path PATH --host 127.0.0.1 --port PORT``."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        self.path = path
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log = path.parent / f"chroma-{self.port}.log"

    def start(self, timeout: float = 60.0) -> None:
        cli = chroma_cli()
        assert cli is not None
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    cli,
                    "run",
                    "--path",
                    str(self.path),
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        url = f"http://{self.host}:{self.port}/api/v2/heartbeat"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chroma run exited early: {self._log.read_text()[-2000:]}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"chroma run did not answer its heartbeat within {timeout}s")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
