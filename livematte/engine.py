"""Frame in, full-resolution alpha out: everything between a frame and a backend.

:class:`Matter` owns what is the same for every backend: resizing to the
graph's size, colour order and normalisation, layout, constants, the
activation on the outputs, sanitising NaN/Inf, scene-cut resets of the
recurrent state and the full-resolution upsampler. It records how long each
stage took per frame so the pipeline benchmark can report them.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from livematte.aspect import Placement
from livematte.backends import create_backend
from livematte.backends.base import MattingBackend
from livematte.manifest import RATIO, EngineManifest, OutputSpec
from livematte.normalise import InputNormaliser
from livematte.person_crop import PersonCrop
from livematte.resize import shrink
from livematte.upsample import make_upsampler

log = logging.getLogger(__name__)

#: the per-frame stages recorded in :attr:`MatteResult.timings`
STAGES = ("preprocess", "inference", "postprocess", "upsample")


@dataclass
class MatteResult:
    """The matte for one frame.

    ``alpha`` is float32 HxW in [0, 1] at the frame's resolution;
    ``trimap`` (bg/unknown/fg probabilities) and ``foreground`` (RGB in
    [0, 1]) are float32 HxWx3 at the graph's output resolution when the
    engine has them (for ``input.sizes`` engines, the frame's part of it:
    the padding is cropped off). ``timings`` holds milliseconds per stage of
    :data:`STAGES`; ``scene_cut`` says the recurrent state was reset before
    this frame.
    """

    alpha: np.ndarray
    trimap: np.ndarray | None = None
    foreground: np.ndarray | None = None
    scene_cut: bool = False
    timings: dict[str, float] = field(default_factory=dict)


class SceneCutDetector:
    """Flags frames that share nothing with the previous one.

    A recurrent matting state carried across a cut drags the old person's
    silhouette into the new shot, so the state is reset there. Comparing
    32x32 grey thumbnails costs well under a millisecond at 1080p.
    ``threshold`` is the mean absolute grey-level difference (0-255) above
    which two consecutive frames count as a cut.
    """

    def __init__(self, threshold: float = 40.0, thumb: int = 32):
        self.threshold = threshold
        self.thumb = thumb
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def __call__(self, rgb: np.ndarray) -> bool:
        step = max(1, min(rgb.shape[:2]) // (4 * self.thumb))
        small = cv2.resize(rgb[::step, ::step], (self.thumb, self.thumb), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.int16)
        previous, self._previous = self._previous, grey
        return previous is not None and float(np.abs(grey - previous).mean()) > self.threshold


def _to_hwc(tensor: np.ndarray, layout: str) -> np.ndarray:
    """Drop the batch axis and return HxWxC (a missing channel axis becomes C=1)."""
    array = tensor[0]
    if array.ndim == 2:
        return array[..., None]
    return array.transpose(1, 2, 0) if layout == "NCHW" else array


def activate(tensor: np.ndarray, spec: OutputSpec) -> np.ndarray:
    """Apply ``spec.activation`` over channels and pick ``spec.channel``: HxW or HxWxC float32.

    Softmax works plane by plane: numpy reductions over a 2- or 3-long last
    axis cost ~3 ms on a 256x144 output, elementwise plane sums a tenth of that.
    """
    x = _to_hwc(tensor, spec.layout).astype(np.float32, copy=False)
    if spec.activation == "sigmoid":
        x = 1.0 / (1.0 + np.exp(-x))
    elif spec.activation == "softmax":
        planes = [x[..., k] for k in range(x.shape[-1])]
        if spec.channel is not None:
            # softmax_c = 1 / sum_k exp(x_k - x_c); an overflow to inf correctly gives 0
            with np.errstate(over="ignore"):
                return 1.0 / sum(np.exp(plane - planes[spec.channel]) for plane in planes)
        top = np.maximum.reduce(planes)
        e = [np.exp(plane - top) for plane in planes]
        total = sum(e)
        x = np.stack([plane / total for plane in e], axis=-1)
    return x[..., spec.channel] if spec.channel is not None else x


def crop_to_content(output: np.ndarray, placement: Placement) -> np.ndarray:
    """The frame's part of an HxW(xC) output: the padding of an aspect-kept frame cropped off.

    The box scales with the output's resolution, so a head at half the input
    size is cropped at half the offsets (exactly: they are even).
    """
    if not placement.padded:
        return output
    return np.ascontiguousarray(output[placement.box_at(*output.shape[:2])])


def _mean(planes: list[np.ndarray]) -> np.ndarray:
    """The mean of one or more same-shaped mattes (the first itself when alone)."""
    return planes[0] if len(planes) == 1 else sum(planes[1:], planes[0]) / len(planes)


class Matter:
    """Estimates a full-resolution alpha matte per frame with one engine: livematte's frame-level API.

    ``model`` is an engine name (``livematte engines list``), the path of an
    ``.onnx`` with its ``.json`` manifest beside it, a loaded manifest, or
    None for the default engine. :meth:`infer` takes RGB uint8 frames in
    order and carries the engine's recurrent state from one to the next
    (reset on scene cuts); call :meth:`reset` when the frames jump (a seek,
    another clip) and :meth:`close` when done (or use ``with``).
    ``backend`` is a ``--backend`` name (``livematte.backends``);
    ``upsampler`` is ``guided`` or ``bilinear``; ``scene_cut_threshold``
    (None disables) is the :class:`SceneCutDetector` threshold; ``threads``
    is the CPU backend's intra-op thread count (None: ONNX Runtime's
    default); ``precision`` is ``auto``, ``fp16`` or ``fp32``
    (:data:`livematte.backends.PRECISIONS`); ``backend_factory``, when
    given, builds the backend for a graph size instead of the registry
    (the GPU benchmark runs the torch backend on the CPU device this way).
    ``person_crop`` mattes the region around the person rather than the
    whole frame (:mod:`livematte.person_crop`); None turns it on for
    engines that declare several input sizes, the only ones that can take
    a crop of any shape without squashing it.
    ``flip_average`` also mattes each frame's mirror image (with a second
    recurrent state of its own) and averages the two mattes: the engine's
    left-right mistakes partly cancel, at twice the model's cost. On the
    240 ``eg1800-portraits`` it lowered the default engine's MSE by 7 %
    (SAD 2 %), and on the two AISegment mattes its edge-band SAD by 15 %
    and MSE by 29 %; the offline quality mode uses it for its coarse matte.
    A backend is built for each graph size the frames need and kept; when
    the graph size changes (a stream turns from landscape to portrait, the
    person crop changes shape) that size's backend restarts from the
    initial recurrent state.
    """

    def __init__(
        self,
        model: EngineManifest | str | os.PathLike[str] | None = None,
        backend: str = "cpu",
        upsampler: str = "guided",
        scene_cut_threshold: float | None = 40.0,
        threads: int | None = None,
        precision: str = "auto",
        backend_factory: Callable[[tuple[int, int]], MattingBackend] | None = None,
        person_crop: bool | None = None,
        flip_average: bool = False,
    ):
        if not isinstance(model, EngineManifest):
            from livematte.registry import DEFAULT_ENGINE, find_engine

            model = find_engine(str(model) if model is not None else DEFAULT_ENGINE)
        self.manifest = manifest = model
        self.backend_name = backend
        self.threads = threads
        self.precision = precision
        self._make_backend = backend_factory or (
            lambda size: create_backend(backend, manifest, size, threads, precision))
        self.upsample = make_upsampler(upsampler)
        self.scene_cuts = SceneCutDetector(scene_cut_threshold) if scene_cut_threshold is not None else None
        self.backend: MattingBackend | None = None
        self._graph_size: tuple[int, int] | None = None
        self._backends: dict[tuple[int, int], MattingBackend] = {}
        self._probes: dict[tuple[int, int], MattingBackend] = {}  # whole-frame, stateless (person crop)
        self.flip_average = flip_average
        self._mirrors: dict[tuple[int, int], MattingBackend] = {}  # the mirror images' own states (flip_average)
        if person_crop is None:
            person_crop = bool(manifest.input.sizes)
        self.person_crop = PersonCrop(manifest.input.sizes or [manifest.graph_size(9, 16)]) if person_crop else None
        self._warned_nonfinite = False
        #: the graph's image tensor for an RGB uint8 image already at the graph's size
        self.normalise = InputNormaliser(manifest.input)
        if manifest.input.size is not None:
            self._ensure_backend(manifest.input.size)

    def _kept(self, pool: dict[tuple[int, int], MattingBackend], graph_size: tuple[int, int]) -> MattingBackend:
        """``pool``'s backend for ``graph_size``, built on first use and kept."""
        if graph_size not in pool:
            pool[graph_size] = self._make_backend(graph_size)
        return pool[graph_size]

    def _ensure_backend(self, graph_size: tuple[int, int]) -> MattingBackend:
        if self.backend is None or graph_size != self._graph_size:
            if graph_size in self._backends:  # its state (and its mirror's) belongs to frames long gone
                for pool in (self._backends, self._mirrors):
                    if graph_size in pool:
                        pool[graph_size].reset()
            self.backend, self._graph_size = self._kept(self._backends, graph_size), graph_size
        return self.backend

    def reset(self) -> None:
        """Forget the recurrent state: call on seek and source restart."""
        if self.backend is not None:
            self.backend.reset()
        for mirror in self._mirrors.values():
            mirror.reset()
        if self.scene_cuts is not None:
            self.scene_cuts.reset()
        if self.person_crop is not None:
            self.person_crop.reset()

    def close(self) -> None:
        """Release the backends (sessions, GPU memory); safe to call twice."""
        for backend in (*self._backends.values(), *self._probes.values(), *self._mirrors.values()):
            backend.close()
        self._backends.clear()
        self._probes.clear()
        self._mirrors.clear()
        self.backend = None
        self._graph_size = None

    def __enter__(self) -> Matter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def resize_frame(rgb: np.ndarray, graph_size: tuple[int, int]) -> np.ndarray:
        """The RGB uint8 frame at the graph's input size (area-averaged when shrinking)."""
        gh, gw = graph_size
        h, w = rgb.shape[:2]
        if (h, w) == (gh, gw):
            return rgb
        if gh <= h and gw <= w:
            return shrink(rgb, gw, gh)
        return cv2.resize(rgb, (gw, gh), interpolation=cv2.INTER_LINEAR)

    def fit_frame(self, rgb: np.ndarray, placement: Placement) -> tuple[np.ndarray, np.ndarray]:
        """(the frame at its content size, the graph-size image) for ``placement``.

        The frame is resized to the content box; where that leaves part of
        the graph input, the frame's edge pixels are repeated into it
        (``BORDER_REPLICATE``: a black bar would read as background, the
        repeated edge continues a person cut by the frame's edge).
        """
        content = self.resize_frame(rgb, (placement.height, placement.width))
        if not placement.padded:
            return content, content
        gh, gw = placement.graph
        bottom, right = gh - placement.top - placement.height, gw - placement.left - placement.width
        return content, cv2.copyMakeBorder(content, placement.top, bottom, placement.left, right, cv2.BORDER_REPLICATE)

    def preprocess(self, rgb: np.ndarray, graph_size: tuple[int, int]) -> np.ndarray:
        """The graph's image tensor for an RGB uint8 frame at graph input ``graph_size``."""
        placement = self.manifest.placement(*rgb.shape[:2], graph=graph_size)
        return self.normalise(self.fit_frame(rgb, placement)[1])

    def _constants(self, frame_h: int, frame_w: int) -> dict[str, np.ndarray]:
        # constants are fed as one-element tensors (shape [1])
        ratio = self.manifest.ratio_for(frame_h, frame_w)
        return {
            c.name: np.array([ratio if c.value == RATIO else c.value], dtype=c.dtype)
            for c in self.manifest.constants
        }

    def _graph_inputs(self, graph_image: np.ndarray, frame_h: int, frame_w: int) -> dict[str, np.ndarray]:
        """The feeds of one frame (its image at the graph's size), state aside."""
        inputs = {self.manifest.input.name: self.normalise(graph_image)}
        inputs.update(self._constants(frame_h, frame_w))
        return inputs

    @staticmethod
    def _output_of(outputs: dict[str, np.ndarray], spec: OutputSpec, placement: Placement,
                   mirrored: bool = False) -> np.ndarray:
        """One output as HxW(xC) float32, turned back if the graph saw the mirror image,
        cropped to the frame's content."""
        plane = activate(outputs[spec.name], spec)
        return crop_to_content(plane[:, ::-1] if mirrored else plane, placement)

    def _alpha_of(self, outputs: dict[str, np.ndarray], placement: Placement, mirrored: bool = False) -> np.ndarray:
        """The alpha output as a finite H x W matte in [0, 1], cropped to the frame's content."""
        return self._finite(self._output_of(outputs, self.manifest.outputs.alpha, placement, mirrored))

    def _finite(self, alpha: np.ndarray) -> np.ndarray:
        if not np.isfinite(alpha).all():
            if not self._warned_nonfinite:
                log.warning("engine %r produced NaN/Inf in its alpha; those pixels are clamped "
                            "(reported once)", self.manifest.name)
                self._warned_nonfinite = True
            alpha = np.nan_to_num(alpha, nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(alpha, 0.0, 1.0)

    def infer(self, rgb: np.ndarray) -> MatteResult:
        """The matte for one RGB uint8 HxWx3 frame, in decode order."""
        h, w = rgb.shape[:2]
        scene_cut = self.scene_cuts is not None and self.scene_cuts(rgb)
        crop = self.person_crop
        if crop is None:
            return self._infer_view(rgb, scene_cut)
        if scene_cut:
            crop.reset()
        region = crop.region(h, w)
        if region is None:
            result = self._infer_view(rgb, scene_cut)
        else:
            result = self._infer_view(np.ascontiguousarray(rgb[region.slices]), scene_cut)
            alpha = np.zeros((h, w), result.alpha.dtype)
            alpha[region.slices] = result.alpha
            result = MatteResult(alpha=alpha, trimap=None, foreground=None, scene_cut=scene_cut,
                                 timings=result.timings)
        probe = None
        # a whole-frame pass already sees everyone: probes only look beyond a region
        if region is not None and crop.probe_due():
            t0 = time.perf_counter()
            probe = self._probe(rgb)
            result.timings["inference"] += (time.perf_counter() - t0) * 1000.0
        crop.update(result.alpha, probe)
        return result

    def _probe(self, rgb: np.ndarray) -> np.ndarray:
        """The whole frame's matte from a fresh state, coarse (only where people are matters)."""
        h, w = rgb.shape[:2]
        placement = self.manifest.placement(h, w)
        backend = self._kept(self._probes, placement.graph)
        backend.reset()
        coarse = self._alpha_of(backend.run(self._graph_inputs(self.fit_frame(rgb, placement)[1], h, w)), placement)
        return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)

    def _infer_view(self, rgb: np.ndarray, scene_cut: bool) -> MatteResult:
        """The engine on ``rgb`` (the frame, or the region of it being matted)."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        h, w = rgb.shape[:2]
        placement = self.manifest.placement(h, w)
        backend = self._ensure_backend(placement.graph)
        small, graph_image = self.fit_frame(rgb, placement)
        mirror = self._kept(self._mirrors, placement.graph) if self.flip_average else None
        if scene_cut:
            backend.reset()
            if mirror is not None:
                mirror.reset()
        inputs = self._graph_inputs(graph_image, h, w)
        t1 = time.perf_counter()
        views = [(backend.run(inputs), False)]
        if mirror is not None:
            views.append((mirror.run(self._graph_inputs(np.ascontiguousarray(graph_image[:, ::-1]), h, w)), True))
        t2 = time.perf_counter()

        spec = self.manifest.outputs
        alpha = _mean([self._alpha_of(outputs, placement, mirrored) for outputs, mirrored in views])
        trimap, foreground = (_mean([self._output_of(outputs, out, placement, mirrored) for outputs, mirrored in views])
                              if out else None for out in (spec.trimap, spec.foreground))
        t3 = time.perf_counter()
        if alpha.shape != (h, w):
            # the resized frame doubles as the upsampler's low-res guide when sizes agree
            alpha = self.upsample(alpha, rgb, small if small.shape[:2] == alpha.shape else None)
        t4 = time.perf_counter()
        for stage, start, end in zip(STAGES, (t0, t1, t2, t3), (t1, t2, t3, t4)):
            timings[stage] = (end - start) * 1000.0
        return MatteResult(alpha=alpha, trimap=trimap, foreground=foreground,
                           scene_cut=scene_cut, timings=timings)
