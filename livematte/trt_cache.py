"""On-disk cache of TensorRT plans, keyed so a wrong plan is never loaded.

Building a TensorRT engine takes tens of seconds to minutes, so the
serialised plan is kept under ``$XDG_CACHE_HOME/livematte/tensorrt``. A plan
is only valid for the exact ONNX bytes, GPU model (compute capability),
TensorRT version, precision and optimisation-profile shapes it was built
with; all of these go into the key. Each plan has a JSON sidecar holding the
key fields and the plan's own length and hash, written last, so a truncated
plan, a plan copied from another machine or one left by an older TensorRT
is detected and rebuilt instead of being handed to the runtime.

Pure Python on purpose: it is tested on machines without TensorRT.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Mapping

from livematte.graph_inputs import input_shapes
from livematte.manifest import EngineManifest

#: frame shapes (H, W) a dynamic engine's optimisation profile must cover: the
#: smallest is a 360p webcam, the largest 4K; ``opt`` is tuned for 1080p
PROFILE_MIN_LONG_SIDE = 640
PROFILE_MAX_LONG_SIDE = 3840
PROFILE_OPT_FRAME = (1080, 1920)
#: aspect ratios (short/long) scanned between those sizes, in both orientations
PROFILE_ASPECTS = (9 / 16, 3 / 4)
PRECISIONS = ("fp16", "fp32")
Shape = tuple[int, ...]


@dataclass(frozen=True)
class ShapeRange:
    """One input's optimisation-profile shapes (TensorRT's min/opt/max)."""

    min: Shape
    opt: Shape
    max: Shape


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/livematte/tensorrt``, defaulting to ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "livematte" / "tensorrt"


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks (engines can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _scan_frames() -> Iterator[tuple[int, int]]:
    """Frame sizes from the smallest to the largest profile size, every 16 px of long side."""
    for long_side in range(PROFILE_MIN_LONG_SIDE, PROFILE_MAX_LONG_SIDE + 1, 16):
        for aspect in PROFILE_ASPECTS:
            short = round(long_side * aspect)
            yield short, long_side
            yield long_side, short


def graph_size_range(manifest: EngineManifest, graph_size: tuple[int, int] | None = None
                     ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(min, opt, max) graph input [H, W] over the frame sizes the profile covers.

    Dynamic engines pick their internal size from the downsample policy, which
    is not monotonic in the frame size (a 1080p frame at ratio 0.25 is fed
    smaller than a 720p frame at 0.5), so the range is the element-wise
    extreme over a scan of frame sizes and orientations, not its endpoints.
    Engines with ``input.sizes`` range over exactly those sizes, tuned
    (``opt``) for ``graph_size``, the one the backend is built for (default:
    the first declared); each size therefore gets its own plan, and every
    plan still accepts all the sizes.
    """
    if manifest.input.size is not None:
        size = tuple(manifest.input.size)
        return size, size, size  # type: ignore[return-value]
    sizes = manifest.input.sizes
    if sizes:
        opt = graph_size or sizes[0]
        if opt not in sizes:
            raise ValueError(f"engine {manifest.name!r}: {opt} is not one of its input.sizes {sizes}")
        low = (min(h for h, _ in sizes), min(w for _, w in sizes))
        return low, opt, (max(h for h, _ in sizes), max(w for _, w in sizes))
    frames = list(_scan_frames())
    frames += [(rule.max_side * 9 // 16, rule.max_side) for rule in manifest.downsample
               if PROFILE_MIN_LONG_SIDE <= rule.max_side <= PROFILE_MAX_LONG_SIDE]
    sizes = [manifest.graph_size(h, w) for h, w in frames]
    low = (min(s[0] for s in sizes), min(s[1] for s in sizes))
    high = (max(s[0] for s in sizes), max(s[1] for s in sizes))
    return low, manifest.graph_size(*PROFILE_OPT_FRAME), high


def profile_shapes(manifest: EngineManifest, graph_size: tuple[int, int] | None = None) -> dict[str, ShapeRange]:
    """Optimisation-profile shapes of every size-dependent input (image, state, extra inputs).

    Static engines get min = opt = max at ``input.size``; dynamic ones the
    range of :func:`graph_size_range` (``graph_size``: the size an
    ``input.sizes`` engine is built for), applied to each input through
    :func:`livematte.graph_inputs.input_shapes` (so a refinement engine's
    ``coarse`` input follows its image). Constant inputs are static in the
    graph and need no profile.
    """
    low, opt, high = (input_shapes(manifest, h, w) for h, w in graph_size_range(manifest, graph_size))
    return {name: ShapeRange(low[name], opt[name], high[name]) for name in low}


@dataclass(frozen=True)
class PlanKey:
    """Everything a serialised TensorRT plan depends on."""

    engine: str
    onnx_sha256: str
    gpu_name: str
    compute_capability: str
    tensorrt_version: str
    precision: str
    profiles: tuple[tuple[str, Shape, Shape, Shape], ...]

    @classmethod
    def create(cls, manifest: EngineManifest, *, gpu_name: str, compute_capability: str,
               tensorrt_version: str, precision: str, graph_size: tuple[int, int] | None = None,
               profiles: Mapping[str, ShapeRange] | None = None) -> "PlanKey":
        """Key for ``manifest``'s graph as it is on disk now (its bytes are hashed).

        ``graph_size`` is the size an ``input.sizes`` engine is built for: it
        is the profile's ``opt``, so each declared size has its own key.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        ranges = profile_shapes(manifest, graph_size) if profiles is None else profiles
        return cls(
            engine=manifest.name,
            onnx_sha256=file_sha256(manifest.onnx_path),
            gpu_name=gpu_name,
            compute_capability=compute_capability,
            tensorrt_version=tensorrt_version,
            precision=precision,
            profiles=tuple(sorted((name, tuple(r.min), tuple(r.opt), tuple(r.max)) for name, r in ranges.items())),
        )

    def fields(self) -> dict:
        """The key as JSON-compatible data (what the sidecar stores)."""
        data = asdict(self)
        data["profiles"] = [[name, list(lo), list(opt), list(hi)] for name, lo, opt, hi in self.profiles]
        return data

    def digest(self) -> str:
        """SHA-256 over the canonical JSON of :meth:`fields`."""
        canonical = json.dumps(self.fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def plan_path(self, directory: Path | None = None) -> Path:
        """Where this key's plan lives: readable engine/precision prefix, digest for uniqueness."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.engine)
        return (directory or cache_dir()) / f"{safe}-{self.precision}-{self.digest()[:20]}.plan"


def _sidecar(plan: Path) -> Path:
    return plan.with_suffix(".json")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_plan(key: PlanKey, plan: bytes, directory: Path | None = None) -> Path:
    """Save a built plan and its sidecar; the sidecar goes last and marks it complete."""
    path = key.plan_path(directory)
    _sidecar(path).unlink(missing_ok=True)  # an old sidecar must never vouch for new bytes mid-write
    atomic_write_bytes(path, plan)
    sidecar = {"key": key.fields(), "digest": key.digest(), "plan_bytes": len(plan),
               "plan_sha256": hashlib.sha256(plan).hexdigest()}
    atomic_write_bytes(_sidecar(path), json.dumps(sidecar, indent=2).encode())
    return path


def load_plan(key: PlanKey, directory: Path | None = None) -> bytes | None:
    """The cached plan for ``key``, or None when absent, stale, foreign or damaged.

    None means "build it": the caller never has to tell the cases apart.
    """
    path = key.plan_path(directory)
    try:
        sidecar = json.loads(_sidecar(path).read_text())
        plan = path.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(sidecar, dict):
        return None
    if sidecar.get("key") != key.fields() or sidecar.get("digest") != key.digest():
        return None
    if sidecar.get("plan_bytes") != len(plan) or sidecar.get("plan_sha256") != hashlib.sha256(plan).hexdigest():
        return None
    return plan
