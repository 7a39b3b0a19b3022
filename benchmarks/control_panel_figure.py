"""docs/control-panel.png: the `webcam --control` panel in headless chromium, over a real live session.

    python benchmarks/control_panel_figure.py [--out docs/control-panel.png]

There is no camera here, so the sample clip stands in for one (read as a
live source: oldest frames dropped, latency measured), through the shipped
default engine, the live controls and the control server, exactly as
`livematte webcam --control` wires them; chromium then opens the panel URL
with its token and saves a screenshot while the session runs.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from livematte.control_server import ControlServer  # noqa: E402
from livematte.engine import Matter  # noqa: E402
from livematte.live_controls import LiveControls, initial_state, stats_recorder  # noqa: E402
from livematte.matte_adjust import MatteAdjuster, MatteSettings  # noqa: E402
from livematte.pipeline import Pipeline  # noqa: E402
from livematte.registry import DEFAULT_ENGINE, find_engine  # noqa: E402
from livematte.sample import write_sample  # noqa: E402
from livematte.sinks import Sink  # noqa: E402
from livematte.sources import FileSource  # noqa: E402
from livematte.stages import realtime_stages  # noqa: E402


class _Discard(Sink):
    def write(self, image, pts) -> None:  # noqa: ANN001 - the Sink signature
        self.written += 1

    def close(self, complete: bool = True) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "control-panel.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("needs Debian's chromium: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "sample.mp4"
        write_sample(clip, size=(960, 540), seconds=30.0, fps=30.0)
        source = FileSource(str(clip))
        controls = LiveControls(initial_state("blur:30", MatteSettings(threshold=0.1, feather=3.0, smoothing=0.5)),
                                source.size)
        stages = realtime_stages(Matter(find_engine(DEFAULT_ENGINE)), controls,
                                 adjust=MatteAdjuster(lambda: controls.matte))
        pipeline = Pipeline(source, stages, [_Discard()], live=True, on_live_stats=stats_recorder(controls))
        runner = threading.Thread(target=pipeline.run, daemon=True)
        with ControlServer(controls) as server:
            runner.start()
            time.sleep(4.0)  # a few stats reports and snapshots
            subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            f"--user-data-dir={tmp}/chromium", "--window-size=1000,540", "--virtual-time-budget=3000",
                            f"--screenshot={args.out}", server.url], check=True, capture_output=True, timeout=120)
            pipeline.cancel()
            runner.join(30)
        controls.close()
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
