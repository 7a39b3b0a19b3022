"""Per-stage and end-to-end speed of `livematte process` at 720p and 1080p,
for the default engine (when installed) and the MediaPipe peer, in one run.

    python benchmarks/pipeline.py [--frames 90] [--backend cpu] [--bg blur]

The MediaPipe peer runs through a manifest written to a temporary directory
by livematte.peers (as a user with that ONNX would); its ONNX lives in
../shared/peers and is never shipped, so that row is skipped (with a note)
when it is absent.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from livematte.bench import format_table, run_benchmark  # noqa: E402
from livematte.errors import LivematteError  # noqa: E402
from livematte.peers import write_peer_manifest  # noqa: E402
from livematte.registry import DEFAULT_ENGINE, list_engines  # noqa: E402

MEDIAPIPE_ONNX = REPO.parent / "shared" / "peers" / "obsbgr__mediapipe.onnx"
SIZES = [(1280, 720), (1920, 1080)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=90, help="frames per measurement (default 90)")
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--bg", default="blur", help="background spec, as livematte --bg (default blur)")
    parser.add_argument("--upsampler", default="guided", help="guided (default) or bilinear, to see what edges cost")
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX Runtime intra-op threads of the cpu backend (default: ONNX Runtime's own)")
    args = parser.parse_args()

    manifests = tempfile.TemporaryDirectory(prefix="livematte-peers-")
    models = []
    if any(m.name == DEFAULT_ENGINE for m in list_engines()):
        models.append(DEFAULT_ENGINE)
    else:
        print(f"note: default engine {DEFAULT_ENGINE} not installed; skipped", file=sys.stderr)
    if MEDIAPIPE_ONNX.is_file():
        models.append(str(write_peer_manifest("mediapipe", MEDIAPIPE_ONNX, manifests.name)))
    else:
        print("note: ../shared/peers/obsbgr__mediapipe.onnx absent; MediaPipe peer skipped", file=sys.stderr)
    if not models:
        print("nothing to measure", file=sys.stderr)
        return 1
    try:
        rows = run_benchmark(models, SIZES, frames=args.frames, backend=args.backend, background=args.bg,
                             upsampler=args.upsampler, threads=args.threads)
    except LivematteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        manifests.cleanup()
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
