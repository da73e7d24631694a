"""Build (once) and cache an int8-compute version of a transformer ONNX export.

The bundled all-MiniLM-L6-v2 stores int8 *weights* but computes in fp32: onnxruntime
dequantizes them at load. The conversion makes its matrix products int8. The recipe:

1. let onnxruntime fold the weight dequantization into plain fp32 initializers;
2. drop the ``Where(IsNaN(softmax), 0, softmax)`` guards that newer torch exports add
   (they only matter for fully masked rows, which a text always avoids: it has [CLS]);
3. fuse SkipLayerNorm / BiasGelu with onnxruntime's transformer optimizer;
4. replace each MatMul by a constant weight with an int8 product: weights symmetric per
   output channel (for the bundled model these are exactly its shipped int8 weights), and
   activations symmetric *per token*, each token row with its own scale.

Per-token scales make a token's result independent of every other token, so texts can
share a padded batch, and they keep the products accurate on every CPU: onnxruntime's
``quantize_dynamic`` uses one scale per tensor, which outlier tokens stretch, and on AVX2
CPUs without VNNI its u8s8 kernels also saturate 16-bit pair sums. Per-token scales keep
the lowest cosine against the fp32 model above 0.99 on such a CPU (docs/benchmarks.md).

Conversion needs the ``onnx`` package and takes seconds, so the result is cached on
disk, keyed by the source file's sha256, the onnxruntime version and the recipe version,
with the result's own sha256 beside it: a damaged copy is converted again, never used.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from ragmem._util import cache_root
from ragmem.embedders._model_files import file_digest
from ragmem.errors import MissingDependencyError

try:
    import onnxruntime
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="onnxruntime", extra="local") from exc

__all__ = ["int8_model"]

logger = logging.getLogger(__name__)

# Bump when the conversion changes, so old cached files are not reused.
_RECIPE = 2


def int8_model(
    source: Path,
    cache_dir: Path | None = None,
    *,
    digest: str | None = None,
    rebuild: bool = False,
) -> Path:
    """Path of the int8-compute version of ``source``, converting it on first use.

    ``digest`` is the source's sha256 when the caller already has it. ``rebuild`` converts
    again even if a cached file exists (the caller found it unloadable: the cache is derived
    data, so a damaged copy is replaced rather than reported).
    """
    directory = (cache_dir or cache_root()) / "models"
    key = f"{(digest or file_digest(source))[:24]}-ort{onnxruntime.__version__}-int8-r{_RECIPE}"
    target = directory / f"{source.stem}-{key}.onnx"
    if not rebuild and _intact(target):
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=directory, delete=True)  # noqa: SIM115
        probe.close()
        # The one line a user sees on first use (logging's last-resort handler prints
        # warnings when the application configured none), instead of a silent pause.
        logger.warning(
            "ragmem: preparing the local embedding model for int8 inference; this takes some "
            "seconds and happens once (the result is kept in %s)",
            directory,
        )
    except OSError:
        # A read-only home: convert into a temporary directory every time (slower start).
        unwritable, directory = directory, Path(tempfile.mkdtemp(prefix="ragmem-model-"))
        target = directory / target.name
        logger.warning(
            "ragmem: preparing the local embedding model for int8 inference; this takes some "
            "seconds, and happens in every process since %s is not writable",
            unwritable,
        )
    with tempfile.TemporaryDirectory(dir=directory) as work:
        built = _convert(source, Path(work))
        with built.open("rb") as handle:
            os.fsync(handle.fileno())  # the rename must never publish a file still in flight
        digest_file = Path(work) / "digest"
        digest_file.write_text(file_digest(built), encoding="ascii")
        # Atomic publish: a concurrent process sees either no file or a complete one. The
        # digest goes first, so a model is never published without the digest it must match.
        os.replace(digest_file, _digest_path(target))
        os.replace(built, target)
    return target


def _digest_path(model: Path) -> Path:
    return model.with_name(model.name + ".sha256")


def _intact(model: Path) -> bool:
    """True when the cached model exists and matches the sha256 recorded at conversion."""
    try:
        recorded = _digest_path(model).read_text(encoding="ascii").strip()
        return model.is_file() and file_digest(model) == recorded
    except OSError:
        return False  # no file, or no digest (never verified): convert again


def _convert(source: Path, work: Path) -> Path:
    try:
        import onnx
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError as exc:
        raise MissingDependencyError(package="onnx", extra="local") from exc

    folded = work / "folded.onnx"
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    options.log_severity_level = 3
    onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])

    model = onnx.load(str(folded))
    _drop_nan_guards(model.graph)
    cleaned = work / "cleaned.onnx"
    onnx.save(model, str(cleaned))

    fused = work / "fused.onnx"
    optimized = optimize_model(str(cleaned), model_type="bert", opt_level=0)
    optimized.save_model_to_file(str(fused))

    model = onnx.load(str(fused))
    _quantize_per_token(model)
    quantized = work / "int8.onnx"
    onnx.save(model, str(quantized))
    return quantized


def _quantize_per_token(model: Any) -> int:
    """Turn every MatMul by a constant 2-D weight into an int8 product; returns how many.

    Each token row ``x`` of the activation gets the scale ``s = max|x| / 127`` and the
    codes ``round(x / s) + 128`` (uint8, zero point 128); the weight gets one scale per
    output column. ``MatMulIntegerToFloat`` multiplies the codes exactly in integers and
    applies the weight scales; a ``Mul`` by ``s`` then gives the product in fp32.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    weights = {init.name: init for init in graph.initializer if len(init.dims) == 2}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    constants: dict[str, Any] = {
        "ragmem_q_one": np.array(1.0, np.float32),
        "ragmem_q_tiny": np.array(np.finfo(np.float32).tiny, np.float32),
        "ragmem_q_step": np.array(1.0 / 127.0, np.float32),
        "ragmem_q_zero": np.array(128, np.uint8),
        "ragmem_q_axes": np.array([-1], np.int64),
    }
    added = [numpy_helper.from_array(value, name) for name, value in constants.items()]
    nodes: list[Any] = []
    quantized: dict[str, tuple[str, str]] = {}  # activation -> (codes, per-token scale)
    count = 0
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or weight.data_type != TensorProto.FLOAT:
            nodes.append(node)
            continue
        x = node.input[0]
        if x not in quantized:
            p = f"ragmem_q{len(quantized)}"
            if opset >= 18:  # ReduceMax took its axes as an attribute before opset 18
                reduce = helper.make_node(
                    "ReduceMax", [p + "_abs", "ragmem_q_axes"], [p + "_max"], keepdims=1
                )
            else:
                reduce = helper.make_node("ReduceMax", [p + "_abs"], [p + "_max"], axes=[-1])
            nodes += [
                helper.make_node("Abs", [x], [p + "_abs"]),
                reduce,
                helper.make_node("Max", [p + "_max", "ragmem_q_tiny"], [p + "_range"]),
                helper.make_node("Mul", [p + "_range", "ragmem_q_step"], [p + "_scale"]),
                helper.make_node("Div", [x, p + "_scale"], [p + "_scaled"]),
                helper.make_node(
                    "QuantizeLinear",
                    [p + "_scaled", "ragmem_q_one", "ragmem_q_zero"],
                    [p + "_codes"],
                ),
            ]
            quantized[x] = (p + "_codes", p + "_scale")
        codes, scale = quantized[x]
        w = numpy_helper.to_array(weight).astype(np.float32)
        column_scale = np.abs(w).max(axis=0) / 127.0
        column_scale[column_scale == 0] = 1.0
        w_name = f"{weight.name}_ragmem_int8"
        added += [
            numpy_helper.from_array(np.rint(w / column_scale).astype(np.int8), w_name),
            numpy_helper.from_array(column_scale.astype(np.float32), w_name + "_scale"),
        ]
        product = f"{node.output[0]}_ragmem_unscaled"
        nodes += [
            helper.make_node(
                "MatMulIntegerToFloat",
                [codes, w_name, "ragmem_q_one", w_name + "_scale", "ragmem_q_zero"],
                [product],
                domain="com.microsoft",
            ),
            helper.make_node("Mul", [product, scale], [node.output[0]]),
        ]
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(added)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return count


def _drop_nan_guards(graph: object) -> int:
    """Rewire ``Where(IsNaN(s), c, s)`` after a Softmax to ``s``; returns how many."""
    nodes = graph.node  # type: ignore[attr-defined]
    producer = {output: node for node in nodes for output in node.output}
    dropped, rename = [], {}
    for node in nodes:
        if node.op_type != "Where" or len(node.input) != 3:
            continue
        guard, value = producer.get(node.input[0]), producer.get(node.input[2])
        if (
            guard is not None
            and guard.op_type == "IsNaN"
            and guard.input[0] == node.input[2]
            and value is not None
            and value.op_type == "Softmax"
        ):
            dropped += [node, guard]
            rename[node.output[0]] = node.input[2]
    graph_outputs = {o.name for o in graph.output}  # type: ignore[attr-defined]
    if graph_outputs & rename.keys():
        return 0  # a guard feeds a graph output directly: leave the graph alone
    for node in dropped:
        nodes.remove(node)
    for node in nodes:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    return len(dropped) // 2
