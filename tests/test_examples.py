"""examples/folder_chatbot.py end to end against a fake OpenAI-compatible server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("openai")
pytest.importorskip("tiktoken")


@pytest.fixture
def server():
    from tests.remote.fake_openai import FakeOpenAI

    class ChatServer(FakeOpenAI):
        """Answers a follow-up rewrite with a standalone query, other questions by echo."""

        def chat(self, body):
            messages = body.get("messages") if isinstance(body, dict) else None
            if messages and "standalone search query" in messages[0].get("content", ""):
                body = {**body, "messages": [{"role": "user", "content": "backup retention"}]}
                reply = super().chat(body)
                return reply
            return super().chat(body)

    fake = ChatServer()
    fake.server.start()
    yield fake
    fake.server.stop()


def chat(server, folder, store, lines):
    from tests.remote.fake_openai import KEY

    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable, str(ROOT / "examples" / "folder_chatbot.py"), str(folder),
            "--store", str(store), "--model", "gpt-4o-mini",
            "--base-url", server.server.url + "/v1", "--embedder", "hashing",
        ],
        input="\n".join(lines) + "\n",
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_folder_chatbot_end_to_end(server, tmp_path):
    folder = tmp_path / "docs"
    (folder / "guides").mkdir(parents=True)
    (folder / "guides" / "backup.md").write_text(
        "# Backups\n\nRestore a backup from the Backup console. Backups are kept 30 days.\n"
    )
    (folder / "faq.txt").write_text("VPN access is requested in the IT portal.\n")
    (folder / "tool.py").write_text("def restore(path):\n    return path\n")
    store = tmp_path / "index"
    out = chat(
        server, folder, store,
        ["How do I restore a backup?", "and how long are they kept?",
         "/delete guides/backup.md", "How do I restore a backup?", "/quit"],
    )  # fmt: skip
    assert "indexed: 3 added" in out
    first, follow_up, after_delete = out.split("> ")[1:4]
    # the answer streams (the fake echoes the prompt: the numbered sources) with citations
    assert "echo: Sources:" in first
    assert "Sources:\n  [1] " + (folder / "guides" / "backup.md").as_posix() in first
    # the follow-up is searched as a standalone question, written by the model
    assert "(searched for: echo: backup retention)" in follow_up
    assert "deleted: " + (folder / "guides" / "backup.md").as_posix() in follow_up
    assert "backup.md" not in after_delete.split("Sources")[-1]
    # a second session: re-indexing picks up the edit and brings the deleted file back
    (folder / "faq.txt").write_text("VPN access is requested from the service desk.\n")
    out = chat(server, folder, store, ["/reindex", "Where is VPN access requested?", "/quit"])
    start, again = [line for line in out.splitlines() if line.startswith("indexed:")]
    assert start.startswith("indexed: 1 added, 1 updated, 0 removed, 1 unchanged")
    assert again.startswith("indexed: 0 added, 0 updated, 0 removed, 3 unchanged")
    assert "service desk" in out
