"""Build (once) and cache an int8-compute version of a transformer ONNX export.

The bundled all-MiniLM-L6-v2 stores int8 *weights* but computes in fp32: onnxruntime
dequantizes them at load. Converting it to dynamic int8 matrix products (per-channel
weight scales, per-call activation scales) roughly halves CPU time at a per-text cosine
above 0.99 against the fp32 model. The recipe:

1. let onnxruntime fold the weight dequantization into plain fp32 initializers;
2. drop the ``Where(IsNaN(softmax), 0, softmax)`` guards that newer torch exports add
   (they only matter for fully masked rows, which a text always avoids: it has [CLS]);
3. fuse SkipLayerNorm / BiasGelu with onnxruntime's transformer optimizer;
4. ``quantize_dynamic`` the MatMuls to int8.

Conversion needs the ``onnx`` package and takes seconds, so the result is cached on
disk, keyed by the source file's sha256, the onnxruntime version and the recipe version,
with the result's own sha256 beside it: a damaged copy is converted again, never used.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from ragmem.embedders._model_files import file_digest
from ragmem.errors import MissingDependencyError

try:
    import onnxruntime
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(package="onnxruntime", extra="local") from exc

__all__ = ["cache_root", "int8_model"]

logger = logging.getLogger(__name__)

# Bump when the conversion changes, so old cached files are not reused.
_RECIPE = 1


def cache_root() -> Path:
    """``$RAGMEM_CACHE_DIR``, else ``$XDG_CACHE_HOME/ragmem``, else ``~/.cache/ragmem``."""
    explicit = os.environ.get("RAGMEM_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ragmem"


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
    except OSError:
        # A read-only home: convert into a temporary directory every time (slower start).
        directory = Path(tempfile.mkdtemp(prefix="ragmem-model-"))
        target = directory / target.name
        logger.warning("cache directory not writable; converting %s in %s", source, directory)
    logger.info("converting %s to int8 compute (once; cached as %s)", source, target)
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
        from onnxruntime.quantization import QuantType, quantize_dynamic
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

    quantized = work / "int8.onnx"
    quantize_dynamic(str(fused), str(quantized), weight_type=QuantType.QInt8, per_channel=True)
    return quantized


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
