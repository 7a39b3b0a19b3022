"""The ``livematte`` command line.

Every failure a user can cause (bad input, unknown engine, missing device,
unwritable output) is a :class:`~livematte.errors.LivematteError` and ends
as one line ``livematte: error: ...`` with that error's exit code; tracebacks
only appear with ``--debug``. Ctrl-C finalises what was written and exits
130 (SIGTERM: 143).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from livematte import __version__, ffmpeg_threads
from livematte.errors import BATCH_FAILED_EXIT, InputError, LivematteError
from livematte.frame import Size
from livematte.interrupts import checkpoint, deferred, exit_code, sigterm_raises

if TYPE_CHECKING:
    from livematte.backgrounds import Background
    from livematte.manifest import InputSpec
    from livematte.pipeline import PipelineResult

log = logging.getLogger("livematte")


# --------------------------------------------------------------------------- helpers


def _size(text: str) -> Size:
    match = re.fullmatch(r"(\d+)[xX](\d+)", text)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1280x720, got {text!r}")
    return Size(int(match[1]), int(match[2]))


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def _fraction(high: float, closed: bool) -> Callable[[str], float]:
    """A number in [0, high] (``closed``) or [0, high)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (0.0 <= value <= high if closed else 0.0 <= value < high):
            raise argparse.ArgumentTypeError(f"expected a number in [0, {high:g}{']' if closed else ')'}, got {text!r}")
        return value

    return parse


#: x264's presets, fastest first
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high] (bad values are exit 2, not an encoder error later)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected {bounds}, got {text!r}")
        return value

    return parse


def _matte_settings(args: argparse.Namespace):
    from livematte.matte_adjust import MatteSettings

    return MatteSettings(threshold=args.threshold, feather=args.feather, smoothing=args.smoothing)


def _background(bg: str | None, alpha: bool) -> Background:
    """The parsed ``--bg`` (checked before anything is opened or refused)."""
    from livematte.backgrounds import parse_background

    if alpha and bg not in (None, "transparent"):
        raise InputError("--alpha keeps the background transparent; drop --bg or drop --alpha")
    return parse_background("transparent" if alpha else (bg or "blur"))


def _check_options(args: argparse.Namespace, outputs: Sequence[str]) -> Background:
    """Bad option values are reported first, before the input is opened or an
    existing output refused: the background, the engine's name, and whether
    every output can hold a transparent background. Returns the background."""
    from livematte.registry import find_engine
    from livematte.sinks import check_alpha_target

    background = _background(args.bg, getattr(args, "alpha", False))
    find_engine(args.model)
    if background.channels == 4:
        for out in outputs:
            check_alpha_target(out)
    return background


def _report_result(result, target: str, quiet: bool) -> int:
    from livematte.pipeline import PipelineResult
    from livematte.progress import frames_text

    assert isinstance(result, PipelineResult)
    skipped = f", {result.decode_errors} damaged packets skipped or concealed" if result.decode_errors else ""
    if result.missing_frames:
        skipped += f", {result.missing_frames} frames missing from the input stream (lost before they arrived)"
    dropped = f", {result.dropped} dropped to stay live" if result.dropped else ""
    preparing = f"; {result.preparing_s:.0f} s of it preparing --quality high" if result.preparing_s >= 1 else ""
    frames = frames_text(result.frames_out)
    if result.interrupted:
        print(
            f"livematte: interrupted: wrote {frames} to {target} (finalised, playable){skipped}{dropped}",
            file=sys.stderr,
        )
        return 128 + (result.signal or 2)
    if not quiet:
        print(
            f"livematte: wrote {frames} to {target} in {result.elapsed_s + result.preparing_s:.1f} s "
            f"({result.fps:.1f} fps{preparing}){skipped}{dropped}",
            file=sys.stderr,
        )
    return 0


def _live_printer(quiet: bool, drops: bool = True) -> Callable:
    """Once a second: fps, latency and (a live session only; a recording keeps every frame) frames dropped."""
    def show(stats) -> None:
        if not quiet:
            dropped = f"  dropped {stats.dropped}" if drops else ""
            print(f"livematte: {stats.fps:5.1f} fps  latency {stats.latency_ms:6.1f} ms{dropped}", file=sys.stderr)

    return show


# --------------------------------------------------------------------------- commands


def cmd_process(args: argparse.Namespace) -> int:
    return _report_result(run_process(args), args.output, args.quiet)


def run_process(args: argparse.Namespace, engine_threads: int | None = None) -> PipelineResult:
    """The ``process`` job for parsed options: :func:`livematte.process` with them.

    ``livematte batch`` runs it once per file, with ``engine_threads`` set so
    that its parallel jobs share the cores instead of oversubscribing them.
    """
    import livematte
    from livematte.matte_adjust import MatteAdjuster
    from livematte.progress import ProgressBar

    background = _background(args.bg, args.alpha)
    settings = _matte_settings(args)
    bar = ProgressBar(enabled=not args.quiet)
    try:
        return livematte.process(
            args.input, args.output, background, model=args.model, alpha=args.alpha, quality=args.quality,
            matte_out=args.matte_out, backend=args.backend, precision=args.precision, overwrite=args.overwrite,
            duration=args.duration, crf=args.crf, preset=args.preset, threads=args.threads,
            quality_method=args.quality_method, quality_workers=args.quality_workers, engine_threads=engine_threads,
            quiet=args.quiet, adjust=None if settings.is_identity else MatteAdjuster(lambda: settings),
            person_crop=AUTO_ON_OFF[args.person_crop], flip_average=AUTO_ON_OFF[args.flip_average], fps=args.fps,
            on_progress=bar, on_live_stats=_live_printer(args.quiet, drops=False),
        )
    finally:
        bar.finish()


def _control_server(args: argparse.Namespace, controls):
    """The --control endpoint, started, or None without --control."""
    if not args.control:
        return None
    from livematte.control_server import ControlServer, parse_address

    host, port = parse_address(args.control, allow_remote=args.control_allow_remote)
    try:
        server = ControlServer(controls, host, port, allow_remote=args.control_allow_remote)
    except OSError as exc:
        raise InputError(f"--control {args.control}: cannot listen there ({exc.strerror or exc})") from None
    return server.start()


def cmd_webcam(args: argparse.Namespace) -> int:
    from livematte.api import run_job
    from livematte.engine import Matter
    from livematte.live_controls import LiveControls, initial_state, stats_recorder
    from livematte.matte_adjust import MatteAdjuster
    from livematte.preview_keys import apply_key
    from livematte.sinks import PreviewSink, Sink, StreamSink, VirtualCameraSink, open_sink, open_sinks
    from livematte.sources import open_live_device
    from livematte.stages import realtime_stages

    if not (args.virtual_cam or args.preview or args.stream or args.record):
        raise InputError("choose where the video goes: --virtual-cam, --preview, --stream URL and/or --record FILE")
    if args.control:  # a bad address is reported before the camera opens
        from livematte.control_server import parse_address

        parse_address(args.control, allow_remote=args.control_allow_remote)
    background = _check_options(args, [])
    background.close()
    if background.channels == 4:
        raise InputError("--bg transparent: live outputs (virtual camera, stream, preview) carry no alpha; "
                         "use a colour, an image, a video or blur")
    source = open_live_device(args.device, size=args.size, fps=args.fps)
    with contextlib.ExitStack() as cleanup:
        try:  # until the pipeline runs; then the pipeline owns the source and closes it
            matter = cleanup.enter_context(Matter(args.model, backend=args.backend, precision=args.precision,
                                                  person_crop=AUTO_ON_OFF[args.person_crop],
                                                  flip_average=bool(AUTO_ON_OFF[args.flip_average])))
            controls = LiveControls(initial_state(args.bg or "blur", _matte_settings(args)), source.size)
            cleanup.callback(controls.close)
            server = _control_server(args, controls)  # before the sinks: a busy port leaves no file behind
            if server is not None:
                cleanup.callback(server.stop)
            openers: list[Callable[[], Sink]] = []
            if args.record:
                openers.append(lambda: open_sink(args.record, source, overwrite=args.overwrite))
            if args.stream:
                openers.append(lambda: StreamSink(args.stream, source.size, source.fps))
            if args.virtual_cam:
                openers.append(lambda: VirtualCameraSink(source.size, source.fps))
            if args.preview:
                openers.append(lambda: PreviewSink(on_key=lambda key: apply_key(key, controls)))
            checkpoint()  # stopped while setting up: nothing to open
            sinks = open_sinks(openers)
        except BaseException:
            source.close()
            raise
        if not args.quiet:
            print(f"livematte: live input {args.device} at {source.size[0]}x{source.size[1]} "
                  f"{source.fps:.0f} fps; Ctrl-C stops", file=sys.stderr)
        if server is not None:
            # printed even with -q: without it the endpoint cannot be used
            print(f"livematte: control panel and API at {server.url}", file=sys.stderr, flush=True)
        stages = realtime_stages(matter, controls, adjust=MatteAdjuster(lambda: controls.matte))
        result = run_job(source, stages, sinks, duration=args.duration,
                         on_live_stats=stats_recorder(controls, _live_printer(args.quiet)))
    return _report_result(result, "the live outputs", args.quiet)


#: ``batch`` options that are not ``process`` options (everything else is passed to each file's job)
_BATCH_ONLY = ("inputs", "out_dir", "suffix", "ext", "jobs", "ray", "retries", "report", "func", "command", "debug")


def batch_job_options(args: argparse.Namespace) -> dict:
    """The ``process`` options each file of a parsed ``batch`` command runs with."""
    options = {key: value for key, value in vars(args).items() if key not in _BATCH_ONLY}
    return {**options, "duration": None, "fps": None, "quiet": True}


def cmd_batch(args: argparse.Namespace) -> int:
    from livematte.batch.plan import plan_jobs
    from livematte.batch.report import BatchProgress, counts_line, summary_table, write_report
    from livematte.batch.run import run_batch

    if args.jobs < 1 or args.retries < 0:
        raise InputError("--jobs must be at least 1 and --retries at least 0")
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"OUT_DIR {out_dir} is a file, not a folder")
    from livematte.engine import Matter

    # a bad --model or --backend is reported once, before any file starts
    Matter(args.model, backend=args.backend, precision=args.precision).close()
    _check_options(args, [f"out.{args.ext}"] if args.ext else []).close()  # and so is a bad --bg
    jobs = plan_jobs(args.inputs, out_dir, args.suffix, args.ext,
                     Path(args.matte_out) if args.matte_out else None, batch_job_options(args))
    progress = BatchProgress(len(jobs), quiet=args.quiet)
    outcome = run_batch(jobs, args.jobs, progress, overwrite=args.overwrite, ray_address=args.ray, retries=args.retries)
    progress.finish()
    if args.report:
        runner = {"kind": "local" if args.ray is None else "ray", "address": args.ray or None, "jobs": args.jobs}
        write_report(Path(args.report), outcome.results, outcome.elapsed_s, runner)
    if not args.quiet:
        print(summary_table(outcome.results), file=sys.stderr)
    print(f"livematte: {counts_line(outcome.results, outcome.elapsed_s)}", file=sys.stderr)
    if outcome.signal is not None:
        return 128 + outcome.signal
    return BATCH_FAILED_EXIT if any(r.status == "failed" for r in outcome.results) else 0


def _graph_size_text(inp: InputSpec, brief: bool) -> str:
    """What an engine's input size is, WxH as the CLI writes sizes (``brief``: fits a 9-wide column)."""
    if inp.size:
        return str(Size(inp.size[1], inp.size[0])) + ("" if brief else " (WxH)")
    if inp.sizes:
        if brief:
            return f"{len(inp.sizes)} sizes"
        listed = ", ".join(str(Size(w, h)) for h, w in inp.sizes)
        return f"{listed} (WxH; the one nearest the frame's aspect, padded)"
    return "any" if brief else f"any size (multiple of {inp.multiple_of})"


def cmd_engines_list(args: argparse.Namespace) -> int:
    from livematte.registry import DEFAULT_ENGINE, list_engines

    engines = list_engines()
    if not engines:
        print(f"no engines installed (the default is {DEFAULT_ENGINE}); use --model path/to/model.onnx")
        return 0
    for m in engines:
        size = _graph_size_text(m.input, brief=True)
        default = " (default)" if m.name == DEFAULT_ENGINE else ""
        print(f"{m.name:28s} {size:>9s}  {m.description}{default}")
    return 0


def cmd_engines_info(args: argparse.Namespace) -> int:
    from livematte.registry import find_engine

    m = find_engine(args.name)
    inp = m.input
    lines = [
        f"name:        {m.name}",
        f"description: {m.description}",
        f"onnx:        {m.onnx_path.resolve()}",
        f"input:       {inp.name} {inp.layout} {inp.dtype} {inp.color} {_graph_size_text(inp, brief=False)}",
        f"recurrent:   {len(m.state)} state tensors" if m.state else "recurrent:   no",
        f"licence:     {m.license or 'not stated'}",
    ]
    speed = m.speed or {}
    if speed:
        lines.append(f"speed:       {speed.get('ms_per_frame', '?')} ms/frame on {speed.get('machine', '?')}")
    else:
        lines.append("speed:       not measured")
    if m.metrics:
        for dataset, values in m.metrics.items():
            shown = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in values.items())
            lines.append(f"quality:     {dataset}: {shown}")
    else:
        lines.append("quality:     not measured")
    print("\n".join(lines))
    return 0


def cmd_engines_build(args: argparse.Namespace) -> int:
    from livematte.backends.base import BackendUnavailable
    from livematte.backends.tensorrt import build_engine_cache
    from livematte.errors import DeviceError
    from livematte.registry import find_engine

    manifest = find_engine(args.name)
    progress = None if args.quiet else (lambda line: print(f"livematte: {line}", file=sys.stderr))
    try:
        paths = build_engine_cache(manifest, args.precision, progress)
    except BackendUnavailable as exc:
        raise DeviceError(f"backend 'tensorrt' is unavailable: {exc}") from None
    print("\n".join(map(str, paths)))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from livematte.sample import write_sample

    path = write_sample(args.output, size=args.size, seconds=args.seconds, fps=args.fps, overwrite=args.overwrite)
    if not args.quiet:
        print(f"livematte: wrote sample clip {path}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from livematte.bench import format_table, run_benchmark

    rows = run_benchmark([args.model], sizes=args.sizes, frames=args.frames, backend=args.backend,
                         precision=args.precision)
    print(format_table(rows))
    return 0


# --------------------------------------------------------------------------- backend and precision options

#: ``--person-crop`` and ``--flip-average`` -> the ``Matter`` argument (None: the default for the job)
AUTO_ON_OFF = {"auto": None, "on": True, "off": False}


def _backend_name(text: str) -> str:
    """``--backend`` value: a name from the backend registry, else a bad option (exit 2)."""
    from livematte.backends import UnknownBackend, backend_spec

    try:
        return backend_spec(text).name
    except UnknownBackend as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _backend_options() -> argparse.ArgumentParser:
    """``--backend`` and ``--precision``, defined once for process, webcam and bench."""
    from livematte.backends import DEFAULT_BACKEND, backend_help

    options = argparse.ArgumentParser(add_help=False, parents=[_precision_option()])
    options.add_argument("--backend", type=_backend_name, default=DEFAULT_BACKEND, metavar="NAME",
                         help=f"{backend_help()} (default {DEFAULT_BACKEND})")
    return options


def _precision_option() -> argparse.ArgumentParser:
    """``--precision``, shared by the runtime commands and ``engines build`` so both mean the same plan."""
    from livematte.backends import PRECISIONS

    option = argparse.ArgumentParser(add_help=False)
    option.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="GPU arithmetic: auto (fp16 where the GPU has fast fp16, else fp32), fp16 or fp32; "
                             "the CPU backend runs fp32 (default auto)")
    return option


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from livematte.preview_keys import keys_help
    from livematte.registry import DEFAULT_ENGINE

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug logs")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="only print errors")

    engine = argparse.ArgumentParser(add_help=False, parents=[_backend_options()])
    engine.add_argument("--model", default=DEFAULT_ENGINE, help=f"engine name or path to an .onnx with its .json (default {DEFAULT_ENGINE})")
    engine.add_argument("--person-crop", choices=sorted(AUTO_ON_OFF), default="auto",
                        help="matte the region around the person, at the engine's input size that fits them, rather "
                             "than the whole frame: sharper for people far from the camera at the same cost; auto: on "
                             "for engines that declare several input sizes (default auto)")
    engine.add_argument("--flip-average", choices=sorted(AUTO_ON_OFF), default="auto",
                        help="also matte each frame's mirror image and average the two mattes: fewer one-sided "
                             "mistakes and cleaner soft edges, at twice the engine's cost; auto: on with --quality "
                             "high and for a photo, off otherwise (default auto)")
    engine.add_argument("--bg", help="background: blur[:RADIUS] (the person left out), bokeh[:RADIUS] (blurrier farther from the person), "
                             "'#rrggbb' or a colour name, image file, video file (looped) or transparent (default blur)")

    from livematte.matte_adjust import MAX_FEATHER, MAX_SMOOTHING

    matte = argparse.ArgumentParser(add_help=False)
    matte.add_argument("--threshold", type=_fraction(1.0, closed=False), default=0.0, metavar="T",
                       help="alpha below T (0..1) becomes 0; the rest is stretched linearly from [T, 1] to [0, 1] "
                            "(default 0: off)")
    matte.add_argument("--feather", type=_fraction(MAX_FEATHER, closed=True), default=0.0, metavar="PX",
                       help="soften the matte's edge: a hard edge becomes a ramp PX pixels wide (default 0)")
    matte.add_argument("--smoothing", type=_fraction(MAX_SMOOTHING, closed=True), default=0.0, metavar="S",
                       help="temporal smoothing 0..0.95 against flicker: slow matte changes lag by S/(1-S) frames on "
                            "average (0.5: 1 frame, 0.8: 4 frames), motion over 24/255 a frame is not delayed (default 0)")

    parser = argparse.ArgumentParser(prog="livematte", description="Real-time human matting for video files, webcams and streams.",
                                     parents=[common])
    parser.add_argument("--version", action="version", version=f"livematte {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    job = argparse.ArgumentParser(add_help=False)  # what `process` and `batch` share
    job.add_argument("--alpha", action="store_true", help="keep the background transparent (.mov ProRes 4444, .webm VP9, PNG)")
    job.add_argument("--overwrite", action="store_true", help="replace an existing output")
    job.add_argument("--threads", type=_int_in(0), default=0, help="encoder threads (0: automatic)")
    job.add_argument("--crf", type=_int_in(0, 51), default=20, help="encoder CRF 0..51: lower is better and bigger (default 20)")
    job.add_argument("--preset", choices=X264_PRESETS, default="superfast", metavar="PRESET",
                     help="x264 preset: ultrafast ... veryslow (default superfast)")
    job.add_argument("--quality", choices=["realtime", "high"], default="realtime",
                     help="high: re-solve the edges offline (closed-form matting / refinement engine), seconds per frame; files only")
    job.add_argument("--quality-method", choices=["closed-form", "refine", "both"], default="both",
                     help="edge solver for --quality high (default both)")
    job.add_argument("--quality-workers", type=int, default=os.cpu_count() or 1,
                     help="processes for --quality high (default: one per CPU core)")

    p = sub.add_parser("process", parents=[common, engine, matte, job], help="matte a video file or stream into a file")
    p.add_argument("input", help="video file, photo, image sequence (a folder of numbered images or "
                                 "dir/%%06d.png), or stream URL (udp://, rtsp://, http(s)://, srt://)")
    p.add_argument("output", help="video file (.mp4/.mov/.webm/.mkv), PNG directory or dir/%%06d.png, udp:// URL, "
                                  "or for a photo an image file (.png keeps --alpha; .jpg, .webp, .tif)")
    p.add_argument("--fps", type=_positive(float),
                   help="frame rate of an image-sequence input (default 30; a video keeps its own)")
    p.add_argument("--matte-out", metavar="DIR|FILE",
                   help="also write the alpha matte (after --threshold/--feather/--smoothing): a folder or "
                        "dir/%%06d.png gets lossless 8-bit grey PNGs, a video file (.mp4, .mkv, .mov, .webm) the "
                        "matte as its luma")
    p.add_argument("--duration", type=_positive(float),
                   help="stop after SECONDS of the input (media time: video and audio alike)")
    p.set_defaults(func=cmd_process, job=True)

    from livematte.batch.run import default_jobs

    bt = sub.add_parser(
        "batch", parents=[common, engine, matte, job], help="process many files (folders, globs) locally or on Ray",
        description="Process every input file into OUT_DIR with the `process` options. Finished outputs are "
                    "skipped on a rerun (resume); a failed file never stops the others.",
        epilog=f"exit codes: 0 every file done or already done, {BATCH_FAILED_EXIT} some files failed (the rest "
               "were written), 130/143 stopped by Ctrl-C/SIGTERM (files in flight finalised as NAME.partial.EXT)")
    bt.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, folders (searched recursively) or globs ('clips/**/*.mov')")
    bt.add_argument("out_dir", metavar="OUT_DIR", help="where outputs go, keeping the inputs' relative names")
    bt.add_argument("--suffix", default="", help="added to each output's name before the extension (e.g. _matted)")
    bt.add_argument("--ext", help="output container: mp4, mov, webm or mkv (default mp4; mov with --alpha); "
                                  "png, jpg, webp or tif make it a batch of photos (folders give their photos)")
    bt.add_argument("--jobs", type=int, default=default_jobs(),
                    help=f"files at once (default {default_jobs()}: one per two cores, measured); each gets the "
                         "cores divided by --jobs for its engine, encoder and --quality-workers")
    bt.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                    help="run the files as Ray tasks: on a local Ray instance, or the cluster at ADDRESS "
                         "(e.g. auto or 10.0.0.5:6379; inputs and outputs must be on paths every node sees). "
                         "Needs `pip install 'livematte[cluster]'`; put it after OUT_DIR or give an ADDRESS")
    bt.add_argument("--retries", type=int, default=2, help="with --ray: retries of a file whose worker died (default 2)")
    bt.add_argument("--matte-out", metavar="DIR",
                    help="also write each file's alpha matte (after --threshold/--feather/--smoothing) as 8-bit "
                         "grey PNGs in DIR/<its relative name>/ (a photo's as DIR/<its relative name>.png)")
    bt.add_argument("--report", metavar="FILE.json", help="also write the results as JSON")
    bt.set_defaults(func=cmd_batch)

    w = sub.add_parser("webcam", parents=[common, engine, matte], help="matte a webcam live",
                       epilog=f"--preview keys: q/Esc quit; {keys_help()}")
    w.add_argument("--device", default="0", help="camera index or device path (default 0)")
    w.add_argument("--size", type=_size, default=(1280, 720), help="requested WIDTHxHEIGHT (default 1280x720)")
    w.add_argument("--fps", type=_positive(float), default=30.0, help="requested frame rate (default 30)")
    w.add_argument("--virtual-cam", action="store_true", help="send to a virtual camera (Zoom, Meet, OBS)")
    w.add_argument("--preview", action="store_true", help="show a preview window")
    w.add_argument("--stream", metavar="URL", help="send MPEG-TS, e.g. udp://127.0.0.1:5000")
    w.add_argument("--record", metavar="FILE", help="also record to a video file")
    w.add_argument("--overwrite", action="store_true", help="replace an existing --record file")
    w.add_argument("--duration", type=_positive(float), help="stop after SECONDS")
    w.add_argument("--control", metavar="HOST:PORT",
                   help="serve a control panel and JSON API there, e.g. 127.0.0.1:8765 (loopback only; the URL "
                        "with its token is printed at start)")
    w.add_argument("--control-allow-remote", action="store_true",
                   help="let --control listen on a non-loopback address (anyone who reaches it with the token controls the stream)")
    w.set_defaults(func=cmd_webcam, job=True)

    e = sub.add_parser("engines", parents=[common], help="list installed engines or show one")
    esub = e.add_subparsers(dest="engines_command", required=True, metavar="list|info|build")
    esub.add_parser("list", parents=[common], help="installed engines").set_defaults(func=cmd_engines_list)
    info = esub.add_parser("info", parents=[common], help="what an engine's manifest says")
    info.add_argument("name", help="engine name or path")
    info.set_defaults(func=cmd_engines_info)
    build = esub.add_parser("build", parents=[common, _precision_option()],
                            help="build and cache an engine's TensorRT plan ahead of first use")
    build.add_argument("name", help="engine name or path")
    build.add_argument("--backend", choices=["tensorrt"], default="tensorrt", help="only tensorrt needs a build (default)")
    build.add_argument("--fp32", dest="precision", action="store_const", const="fp32", help="same as --precision fp32")
    build.set_defaults(func=cmd_engines_build)

    s = sub.add_parser("sample", parents=[common], help="generate the sample clip (NASA astronaut over a moving background)")
    s.add_argument("output", help="output video file, e.g. sample.mp4")
    s.add_argument("--size", type=_size, default=(1280, 720), help="WIDTHxHEIGHT (default 1280x720)")
    s.add_argument("--seconds", type=_positive(float), default=5.0, help="length (default 5)")
    s.add_argument("--fps", type=_positive(float), default=30.0, help="frame rate (default 30)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing file")
    s.set_defaults(func=cmd_sample)

    b = sub.add_parser("bench", parents=[common, _backend_options()], help="per-stage and end-to-end speed of an engine")
    b.add_argument("--model", default=DEFAULT_ENGINE, help="engine name or path")
    b.add_argument("--frames", type=int, default=90, help="frames per size (default 90)")
    b.add_argument("--sizes", type=_size, nargs="+", default=[(1280, 720), (1920, 1080)], help="WIDTHxHEIGHT ...")
    b.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (console scripts pass it to sys.exit)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.debug = getattr(args, "debug", False)
    args.quiet = getattr(args, "quiet", False)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.ERROR if args.quiet else logging.WARNING,
        format="livematte: %(levelname)s: %(message)s" if args.debug else "livematte: warning: %(message)s",
    )
    # a job notes stop signals while it sets up (see interrupts.deferred); other commands stop at once
    stops = deferred() if getattr(args, "job", False) else sigterm_raises()
    try:
        with stops:
            code = args.func(args)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
            return code
    except BrokenPipeError:  # `livematte engines info X | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except LivematteError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"livematte: error: {exc.for_cli()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM with nothing written (a job in flight finalises instead)
        print(f"livematte: {getattr(exc, 'message', 'interrupted; nothing kept')}", file=sys.stderr)
        return exit_code(exc)
    except Exception as exc:  # a bug: keep it one line unless --debug
        if args.debug:
            raise
        print(f"livematte: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return 1


def run() -> None:
    """The console entry point: :func:`main`, then exit with its code. A stop
    signal that arrives while the interpreter shuts down (a second Ctrl-C just
    after the output was finalised) has nothing left to stop: ignored, so the
    exit code stays the one the job reported. Every output is closed by now,
    so a stalled stream's read still waiting for its timeout is left behind
    (see :mod:`livematte.ffmpeg_threads`) rather than waited for."""
    code = main()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    ffmpeg_threads.exit_now(code)


if __name__ == "__main__":
    run()
