"""The live control endpoint over real HTTP on 127.0.0.1: settings change a running
stream, bad requests get a 4xx and change nothing, foreign pages are refused."""
from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from livematte.control_server import ControlServer, parse_address
from livematte.engine import Matter
from livematte.errors import InputError
from livematte.live_controls import LiveControls, initial_state
from livematte.matte_adjust import MatteAdjuster, MatteSettings
from livematte.pipeline import Pipeline
from livematte.registry import find_engine
from livematte.sinks import Sink
from livematte.sources import FileSource
from livematte.stages import realtime_stages
from media_helpers import BACKDROP_RGB, disc_alpha, disc_frame, write_clip, write_keyer_engine

SIZE = (96, 64)


def request(server: ControlServer, method: str, path: str, body: Any = None, token: str | None = "valid",
            headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One real HTTP request; returns (status, decoded JSON or raw bytes)."""
    sent = {"Content-Type": "application/json"} if body is not None else {}
    if token is not None:
        sent["Authorization"] = f"Bearer {server.token if token == 'valid' else token}"
    sent.update(headers or {})
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        kind = response.getheader("Content-Type", "")
        return response.status, json.loads(raw) if kind == "application/json" else raw
    finally:
        connection.close()


@pytest.fixture()
def controls() -> LiveControls:
    live = LiveControls(initial_state("blur", MatteSettings()), SIZE)
    yield live
    live.close()


@pytest.fixture()
def server(controls: LiveControls) -> ControlServer:
    with ControlServer(controls, "127.0.0.1", 0) as running:
        yield running


def compose_one(controls: LiveControls, index: int = 0) -> np.ndarray:
    frame = disc_frame(*SIZE, index)
    return controls.compose(frame, disc_alpha(*SIZE, index).astype(np.uint8) * 255)


def test_settings_change_what_is_composed(server: ControlServer, controls: LiveControls) -> None:
    status, body = request(server, "POST", "/api/settings", {"background": "#00ff00", "threshold": 0.3})
    assert status == 200 and body["settings"]["background"] == "#00ff00" and body["settings"]["threshold"] == 0.3
    out = compose_one(controls)
    assert tuple(out[0, 0]) == (0, 255, 0)  # the corner is background: now green
    assert request(server, "POST", "/api/settings", {"paused": True})[0] == 200
    assert np.array_equal(compose_one(controls, 1), disc_frame(*SIZE, 1))  # camera passed through
    status, state = request(server, "GET", "/api/state")
    assert status == 200 and state["settings"]["paused"] is True and set(state["stats"]) >= {"fps", "latency_ms"}


@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, "malformed JSON"),
    ([1, 2], 400, "JSON object"),
    ({"threshold": 2}, 422, "threshold must be in"),
    ({"threshold": 0.2, "feather": -1}, 422, "feather"),
    ({"background": "nowhere.jpg"}, 422, "not a colour"),
    ({"background": "transparent"}, 422, "no alpha"),
    ({"blur": 0}, 422, "blur must be"),
    ({"background": "blur:500"}, 422, "blur must be"),
    ({"paused": "yes"}, 422, "paused must be true or false"),
    ({"volume": 3}, 422, "unknown setting 'volume'"),
])
def test_bad_values_are_4xx_and_change_nothing(server: ControlServer, controls: LiveControls,
                                               body: Any, status: int, words: str) -> None:
    before = controls.state
    got, answer = request(server, "POST", "/api/settings", body)
    assert got == status and words in answer["error"]
    assert controls.state == before
    compose_one(controls)  # the stream goes on


def test_requests_from_other_pages_or_without_the_token_are_refused(server: ControlServer) -> None:
    assert request(server, "GET", "/api/state", token=None)[0] == 401
    assert request(server, "GET", "/api/state", token="guess")[0] == 401
    # DNS rebinding: the browser sends the attacker's name as Host
    assert request(server, "GET", "/api/state", headers={"Host": f"evil.example:{server.port}"})[0] == 403
    assert request(server, "GET", "/api/state", headers={"Origin": "http://evil.example"})[0] == 403
    assert request(server, "GET", "/api/state", headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    # a cross-site form can only send text/plain without a preflight this server never grants
    assert request(server, "POST", "/api/settings", b'{"paused": true}', headers={"Content-Type": "text/plain"})[0] == 415
    assert request(server, "GET", "/api/state", headers={"Origin": f"http://localhost:{server.port}"})[0] == 200
    assert request(server, "DELETE", "/api/state")[0] in (405, 501)
    assert request(server, "GET", "/nothing")[0] == 404


def test_panel_and_snapshot(server: ControlServer, controls: LiveControls) -> None:
    assert request(server, "GET", "/api/snapshot.jpg")[0] == 503  # no frame yet
    compose_one(controls)
    status, jpeg = request(server, "GET", f"/api/snapshot.jpg?token={server.token}", token=None)
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert status == 200 and image.shape[1] == 320
    status, page = request(server, "GET", f"/?token={server.token}", token=None)
    assert status == 200 and b"livematte" in page and b"/api/settings" in page
    assert server.url.startswith(f"http://127.0.0.1:{server.port}/?token=")


def test_only_loopback_unless_asked() -> None:
    assert parse_address("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    with pytest.raises(InputError, match="not loopback"):
        parse_address("0.0.0.0:8765")
    assert parse_address("0.0.0.0:8765", allow_remote=True) == ("0.0.0.0", 8765)
    for bad in ("8765", "example.com:80", "127.0.0.1:http", "127.0.0.1:70000"):
        with pytest.raises(InputError):
            parse_address(bad)


class _PausingSink(Sink):
    """Keeps every frame; at frame ``at`` it pauses the matte over HTTP and sends one bad value."""

    def __init__(self, server: ControlServer, at: int) -> None:
        self.server, self.at, self.frames, self.answers = server, at, [], []

    def write(self, image: np.ndarray, pts: float | None) -> None:
        self.frames.append(image.copy())
        if len(self.frames) == self.at:
            self.answers.append(request(self.server, "POST", "/api/settings", {"threshold": 7})[0])
            self.answers.append(request(self.server, "POST", "/api/settings", {"paused": True})[0])

    def close(self, complete: bool = True) -> None:
        pass


def test_a_running_pipeline_follows_the_controls(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", size=SIZE, frames=40, audio=False)
    keyer = Matter(find_engine(str(write_keyer_engine(tmp_path))))
    controls = LiveControls(initial_state("#00ff00", MatteSettings()), SIZE)
    with ControlServer(controls, "127.0.0.1", 0) as server:
        sink = _PausingSink(server, at=10)
        stages = realtime_stages(keyer, controls, adjust=MatteAdjuster(lambda: controls.matte))
        result = Pipeline(FileSource(str(clip)), stages, [sink], live=True, queue_size=40).run()
    controls.close()
    assert sink.answers == [422, 200] and result.frames_out == len(sink.frames) == 40  # the stream never stopped
    green_corner = [tuple(frame[0, 0]) == (0, 255, 0) for frame in sink.frames]
    assert all(green_corner[:10]) and not any(green_corner[-20:])
    assert np.abs(sink.frames[-1][0, 0].astype(int) - BACKDROP_RGB).max() < 12  # the camera's own backdrop
