"""Soak of `ragmem mcp` over stdio: latency per tool and the server's resident memory.

Starts `python -m ragmem.cli mcp` as an MCP client would (the SDK's stdio client) and
sends ``--calls`` tool calls one after another, all for one user:

1. growth: ``add_memory`` of distinct facts (templates of benchmarks/memory.py, fixed
   seed) interleaved with ``search_memory`` (one search after every ``--adds-per-search``
   adds) until the memory holds ``--memories`` items;
2. steady: the remaining calls, 80% ``search_memory`` and 20% ``add_memory`` of facts
   already stored (they merge, so the memory stays the same size).

The steady phase is where a leak shows: the server's RSS (VmRSS of its process) is read
after ``--warmup`` steady calls and at the end, and their difference must stay within
5% (goal). Also reported: p50/p95 round-trip latency per tool and phase (the goal for
``search_memory`` at 20,000 memories is p95 <= 50 ms on 2 cores with the bundled model).
Bounded by the number of calls and by ``--max-minutes`` (growth stops at 60% of it, the
steady phase at 100%; a run stopped by it says so and is a scaled run); ``--embedder
hashing`` makes a quick run. ``--prefill N`` writes the first N facts with
``Memory.add_many`` before the server starts, so the steady phase reaches 20,000 memories
without 20,000 single adds (growing one add at a time is what the growth phase measures).

    python benchmarks/mcp_soak.py [--calls 50000] [--memories 20000] [--prefill 20000]
        [--max-minutes 15]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

sys.path.insert(0, str(Path(__file__).parent))
from memory import make_workload  # the memory benchmark's fact templates


def server_pid(store: Path) -> int:
    """The pid of the `ragmem mcp` process serving ``store`` (Linux /proc)."""
    marker = str(store).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"ragmem.cli" in argv and marker in argv:
                return int(entry.name)
    raise RuntimeError("server process not found")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


class Recorder:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.latencies: dict[tuple[str, str], list[float]] = {}

    async def call(self, phase: str, tool: str, arguments: dict[str, Any]) -> Any:
        start = time.perf_counter()
        result = await self.client.call_tool(tool, arguments)
        elapsed = time.perf_counter() - start
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result.content[0].text}")
        self.latencies.setdefault((phase, tool), []).append(elapsed * 1000)
        return result.structured_content


def prefill(store: Path, facts: list[Any], embedder: str | None) -> float:
    """Write ``facts`` straight into the memory the server will open (its tenant
    ``default``, user ``soak``) with ``Memory.add_many``; returns the seconds taken."""
    from ragmem.agents import Memory, MemoryInput
    from ragmem.mcp_server.toolbox import MEMORY_DIR
    from ragmem.registry import get_embedder

    started = time.perf_counter()
    chosen = get_embedder(embedder) if embedder else None
    with Memory(store / MEMORY_DIR / "default", embedder=chosen) as memory:
        for start in range(0, len(facts), 1000):
            part = facts[start : start + 1000]
            memory.add_many([MemoryInput(text=f.text) for f in part], user_id="soak")
    return time.perf_counter() - started


async def soak(args: argparse.Namespace, store: Path) -> dict[str, Any]:
    facts, _ = make_workload(args.memories, 0, 1, args.seed)
    rng = random.Random(args.seed)
    report: dict[str, Any] = {"rss": []}
    prefilled = min(args.prefill, len(facts))
    if prefilled:
        report["prefill_seconds"] = prefill(store, facts[:prefilled], args.embedder)
    questions = [f.question for f in facts]
    command = [sys.executable, "-m", "ragmem.cli", "mcp", "--store", str(store)]
    command += ["--user-id", "soak"] + (["--embedder", args.embedder] if args.embedder else [])
    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    with open(os.devnull, "w") as quiet:
        async with Client(stdio_client(params, errlog=quiet)) as client:
            rec = Recorder(client)
            pid = server_pid(store)
            await rec.call("start", "search_memory", {"query": "warm the model up"})
            report["rss"].append(("started", 0, rss_mb(pid)))
            calls, added, begin = 0, prefilled, time.perf_counter()
            budget = args.max_minutes * 60
            # a time budget bounds the run on a busy machine: growth gets 60% of it
            while (
                added < len(facts)
                and calls < args.calls
                and time.perf_counter() - begin < 0.6 * budget
            ):
                await rec.call("growth", "add_memory", {"text": facts[added].text})
                added += 1
                calls += 1
                if added % args.adds_per_search == 0:
                    query = questions[rng.randrange(added)]
                    await rec.call("growth", "search_memory", {"query": query, "k": 5})
                    calls += 1
                if added % 2000 == 0:
                    report["rss"].append((f"{added} memories", calls, rss_mb(pid)))
                    print(
                        f"  {calls} calls, {added} memories, {time.perf_counter() - begin:.0f} s",
                        flush=True,
                    )
            grown = time.perf_counter() - begin
            steady_calls = args.calls - calls
            warm = min(args.warmup, steady_calls // 2)
            steady_begin = time.perf_counter()
            warmed = False
            for n in range(steady_calls):
                now = time.perf_counter()
                if now - begin > budget:
                    report["stopped"] = f"time budget of {args.max_minutes} min"
                    break
                if not warmed and (n == warm or now - steady_begin > 0.3 * (budget - grown)):
                    report["rss"].append(("after warm-up", calls, rss_mb(pid)))
                    warmed = True
                if rng.random() < 0.8:
                    query = questions[rng.randrange(added)]
                    await rec.call("steady", "search_memory", {"query": query, "k": 5})
                else:
                    await rec.call(
                        "steady", "add_memory", {"text": facts[rng.randrange(added)].text}
                    )
                calls += 1
                if n and n % 5000 == 0:
                    report["rss"].append((f"steady {n}", calls, rss_mb(pid)))
                    print(
                        f"  {calls} calls (steady), {time.perf_counter() - begin:.0f} s,"
                        f" server RSS {report['rss'][-1][2]:.1f} MB",
                        flush=True,
                    )
            report["rss"].append(("end", calls, rss_mb(pid)))
            listed = await rec.call("end", "list_memories", {"limit": 1})
            assert listed is not None
            report.update(
                calls=calls,
                memories=added,
                growth_seconds=grown,
                steady_seconds=time.perf_counter() - steady_begin,
                latencies=rec.latencies,
            )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--memories", type=int, default=20_000)
    parser.add_argument("--adds-per-search", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2_000, help="steady calls before RSS")
    parser.add_argument("--embedder", default=None, help="default: the bundled local model")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--prefill",
        type=int,
        default=0,
        help="write this many of the facts with Memory.add_many before the server starts "
        "(the growth phase then adds the rest through add_memory)",
    )
    parser.add_argument(
        "--max-minutes", type=float, default=15.0, help="stop after this long (a scaled run)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragmem-mcp-soak-") as tmp:
        report = anyio.run(soak, args, Path(tmp) / "store")
    print(
        f"\nragmem mcp soak over stdio: {report['calls']} calls, {report['memories']} memories, "
        f"embedder {args.embedder or 'local (bundled)'}"
    )
    if "prefill_seconds" in report:
        print(f"prefilled in {report['prefill_seconds']:.0f} s (Memory.add_many, in process)")
    print(
        f"growth phase {report['growth_seconds']:.0f} s, steady phase {report['steady_seconds']:.0f} s"
    )
    if "stopped" in report:
        print(f"stopped early by the {report['stopped']}: a scaled run")
    print(f"{'phase':8} {'tool':15} {'calls':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for (phase, tool), values in sorted(report["latencies"].items()):
        print(
            f"{phase:8} {tool:15} {len(values):>7} {percentile(values, 50):>8.1f} {percentile(values, 95):>8.1f}"
        )
    print("server RSS:")
    for label, calls, mb in report["rss"]:
        print(f"  {label:18} after {calls:>6} calls: {mb:8.1f} MB")
    marks = {label: mb for label, _, mb in report["rss"]}
    if "after warm-up" in marks:
        growth = (marks["end"] / marks["after warm-up"] - 1) * 100
        print(f"RSS growth after warm-up: {growth:+.1f}% (goal <= 5%)")
    searches = report["latencies"].get(("steady", "search_memory"), [])
    if searches:
        print(
            f"search_memory p95 at {report['memories']} memories: {percentile(searches, 95):.1f} ms (goal <= 50 ms)"
        )


if __name__ == "__main__":
    main()
