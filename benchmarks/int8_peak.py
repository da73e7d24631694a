"""The machine's int8 and fp32 matrix-multiply peak through onnxruntime, and the model against it.

Runs one-node ONNX graphs on onnxruntime's CPU kernels, one intra-op thread each:
``MatMulInteger`` with uint8 x int8 (the u8s8 kernels LocalEmbedder's int8 model uses),
uint8 x uint8, and fp32 ``MatMul``, on a large square product and on the bundled model's
own shapes (a 256-token text through a 384 x 1536 layer). Throughput is reported in
GMAC/s (10^9 multiply-adds per second) of CPU time, so load from other processes shows
less than in wall time. Then it embeds 256-token texts with LocalEmbedder on one thread and
says what share of that peak the model reaches (all-MiniLM-L6-v2 does about 11.8 M
multiply-adds per token at that length, attention included).

    python benchmarks/int8_peak.py
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time

import numpy as np
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

# all-MiniLM-L6-v2: 6 layers, width 384, feed-forward 1536, at 256 tokens
_LAYERS, _WIDTH, _FFN, _TOKENS = 6, 384, 1536, 256
_MODEL_MACS_PER_TOKEN = _LAYERS * (4 * _WIDTH * _WIDTH + 2 * _WIDTH * _FFN + 2 * _TOKENS * _WIDTH)


def session(m: int, k: int, n: int, kind: str) -> tuple[object, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    if kind == "fp32":
        weight = rng.standard_normal((k, n)).astype(np.float32)
        a = rng.standard_normal((m, k)).astype(np.float32)
        node = helper.make_node("MatMul", ["A", "W"], ["Y"])
        a_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
    else:
        low, dtype = (-127, np.int8) if kind == "u8s8" else (0, np.uint8)
        weight = rng.integers(low, 128, (k, n)).astype(dtype)
        a = rng.integers(0, 256, (m, k)).astype(np.uint8)
        node = helper.make_node("MatMulInteger", ["A", "W"], ["Y"])
        a_type, y_type = TensorProto.UINT8, TensorProto.INT32
    graph = helper.make_graph(
        [node],
        "peak",
        [helper.make_tensor_value_info("A", a_type, [m, k])],
        [helper.make_tensor_value_info("Y", y_type, [m, n])],
        [numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    sess = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return sess, {"A": a}


def gmacs(m: int, k: int, n: int, kind: str, rounds: int) -> list[float]:
    """GMAC/s of CPU time, one figure per round."""
    sess, feeds = session(m, k, n, kind)
    calls = max(1, int(2e9 // (m * k * n)))  # about 2 G multiply-adds per round
    sess.run(None, feeds)  # type: ignore[attr-defined]
    rates = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            sess.run(None, feeds)  # type: ignore[attr-defined]
        rates.append(m * k * n * calls / (time.process_time() - start) / 1e9)
    return rates


def model_rate(rounds: int) -> list[float]:
    """LocalEmbedder's GMAC/s of CPU time on 256-token texts, one thread."""
    from ragmem.embedders.local import LocalEmbedder

    # the texts are longer than the window on purpose: no per-call truncation notice
    logging.getLogger("ragmem.embedders.local").setLevel(logging.ERROR)
    embedder = LocalEmbedder(threads=1, batch_size=1)
    words = [
        "protein",
        "folding",
        "chaperones",
        "mitochondria",
        "vaccination",
        "antigen",
        "immunity",
    ]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, 400)) for _ in range(8)]
    embedder.embed(texts[:1])
    rates = []
    for _ in range(rounds):
        start = time.process_time()
        embedder.embed(texts)
        seconds = time.process_time() - start
        rates.append(len(texts) * _TOKENS * _MODEL_MACS_PER_TOKEN / seconds / 1e9)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(
        f"onnxruntime {onnxruntime.__version__}, cpus visible: {os.cpu_count()}, "
        f"load average: {os.getloadavg()[0]:.1f}; one thread, GMAC/s of CPU time "
        f"(median, min-max of {args.rounds} rounds)"
    )
    peak = 0.0
    for shape in [(1024, 1024, 1024), (_TOKENS, _WIDTH, _FFN)]:
        for kind in ("u8s8", "u8u8", "fp32"):
            rates = gmacs(*shape, kind, args.rounds)
            if kind == "u8s8":
                peak = max(peak, statistics.median(rates))
            print(
                f"{'x'.join(map(str, shape)):>16} {kind:>5}: {statistics.median(rates):6.1f} "
                f"({min(rates):.1f}-{max(rates):.1f})"
            )
    rates = model_rate(args.rounds)
    median = statistics.median(rates)
    print(
        f"LocalEmbedder, 256-token texts: {median:.1f} GMAC/s ({min(rates):.1f}-{max(rates):.1f}),"
        f" {median / peak:.0%} of the u8s8 peak ({peak:.1f})"
    )


if __name__ == "__main__":
    main()
