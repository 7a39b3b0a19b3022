"""A local HTTP endpoint to change a live session's settings, and its one-page panel.

Stream Deck-style tools call a small JSON API; people open the panel in a
browser. It is the standard library's ``http.server`` in a daemon thread:
one session, one user, a few requests a second.

Listening on loopback alone does not protect it: any web page the user has
open can send requests to ``127.0.0.1`` (cross-site requests), and a page
on a domain that re-resolves to 127.0.0.1 can even read the answers (DNS
rebinding). So every request must carry the session's random token (printed
at start, in the panel's URL), a ``Host`` that names this machine by address
or ``localhost`` (a rebinding page sends its own domain), and no foreign
``Origin``; settings are changed only by a JSON POST, which a cross-site
form cannot send without a preflight this server never grants.

API (token as ``Authorization: Bearer TOKEN``, ``X-Livematte-Token`` or ``?token=``):

- ``GET /api/state``: ``{"settings": {...}, "stats": {"fps", "latency_ms", "dropped", "frames"}}``
- ``POST /api/settings`` with a JSON object of the settings to change
  (``background``, ``blur``, ``threshold``, ``feather``, ``smoothing``, ``paused``):
  the new settings, or 4xx with ``{"error": "..."}`` and nothing changed
- ``GET /api/snapshot.jpg``: the latest output frame, small (503 before the first)
- ``GET /?token=TOKEN``: the control panel
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from livematte.errors import InputError, LivematteError
from livematte.live_controls import LiveControls

log = logging.getLogger("livematte")

#: the largest request body accepted, in bytes (a settings object is ~200)
MAX_BODY = 16 * 1024


class _Refused(Exception):
    """A request answered with ``status`` and a one-line ``message``."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_address(text: str, allow_remote: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port); non-loopback hosts only with ``allow_remote``."""
    host, sep, port_text = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise InputError(f"--control expects HOST:PORT such as 127.0.0.1:8765, got {text!r}")
    if host != "localhost":
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise InputError(f"--control host must be an IP address or localhost, got {host!r}") from None
        if not address.is_loopback and not allow_remote:
            raise InputError(
                f"--control {text}: refusing to listen on {host}, which is not loopback; anyone who can reach it "
                "and learns the token controls the stream. Use 127.0.0.1, or add --control-allow-remote"
            )
    return host, int(port_text)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class ControlServer:
    """Serves the API and the panel for ``controls`` on ``host:port`` (port 0: any free one).

    ``allow_remote`` also accepts requests whose ``Host`` is any IP address
    (for a LAN client); DNS names other than ``localhost`` are always refused.
    """

    def __init__(self, controls: LiveControls, host: str = "127.0.0.1", port: int = 0,
                 allow_remote: bool = False, token: str | None = None) -> None:
        self.controls = controls
        self.token = token or secrets.token_urlsafe(18)
        self.allow_remote = allow_remote
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.host, self.port = host, self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="livematte-control", daemon=True)

    @property
    def url(self) -> str:
        """The panel's address, token included."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.token}"

    def start(self) -> "ControlServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(2.0)

    def __enter__(self) -> "ControlServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ checks

    def check_host(self, host_header: str | None) -> None:
        """Refuse a Host that is not this machine by address or ``localhost`` (DNS rebinding)."""
        host, _, port = (host_header or "").rpartition(":")
        allowed = {"localhost", "127.0.0.1", "[::1]", f"[{self.host}]" if ":" in self.host else self.host}
        if port != str(self.port) or not (host in allowed or (self.allow_remote and _is_ip(host))):
            raise _Refused(HTTPStatus.FORBIDDEN, f"Host {host_header!r} is not this control endpoint")

    def check_origin(self, origin: str | None, fetch_site: str | None) -> None:
        """Refuse requests a browser marks as coming from another site."""
        if fetch_site not in (None, "same-origin", "none"):
            raise _Refused(HTTPStatus.FORBIDDEN, f"cross-site request refused (Sec-Fetch-Site: {fetch_site})")
        if origin is None:
            return
        parts = urlsplit(origin)
        if parts.scheme != "http" or not parts.netloc:
            raise _Refused(HTTPStatus.FORBIDDEN, f"Origin {origin!r} refused")
        self.check_host(parts.netloc)

    def check_token(self, presented: str | None) -> None:
        if not presented:
            raise _Refused(HTTPStatus.UNAUTHORIZED, "missing token: use the URL printed at start")
        if not hmac.compare_digest(presented.encode(), self.token.encode()):
            raise _Refused(HTTPStatus.UNAUTHORIZED, "wrong token: use the URL printed at start")


class _Handler(BaseHTTPRequestHandler):
    server_state: ControlServer
    server_version = "livematte-control"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("control: " + format, *args)

    # ------------------------------------------------------------------ plumbing

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # the panel's URL holds the token
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _token(self, query: dict[str, list[str]]) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return self.headers.get("X-Livematte-Token") or (query.get("token") or [None])[0]

    def _guarded(self, method: str) -> None:
        """Check the request, route it; every refusal is a 4xx with a one-line JSON error."""
        server = self.server_state
        try:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            server.check_host(self.headers.get("Host"))
            server.check_origin(self.headers.get("Origin"), self.headers.get("Sec-Fetch-Site"))
            server.check_token(self._token(query))
            route = _ROUTES.get((method, parts.path))
            if route is None:
                known = [m for (m, path) in _ROUTES if path == parts.path]
                raise _Refused(HTTPStatus.METHOD_NOT_ALLOWED if known else HTTPStatus.NOT_FOUND,
                               f"{method} {parts.path} is not part of the API")
            route(self)
        except _Refused as exc:
            self._json(exc.status, {"error": str(exc)})
        except LivematteError as exc:
            self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": str(exc)})
        except OSError:  # the client hung up mid-answer: nothing to tell it
            log.debug("control: client went away", exc_info=True)
        except Exception as exc:  # noqa: BLE001 - a bug answers 500; the stream goes on
            log.warning("control endpoint: %s: %s", type(exc).__name__, exc)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {type(exc).__name__}"})

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._guarded("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._guarded("POST")

    # ------------------------------------------------------------------ routes

    def _panel(self) -> None:
        page = resources.files("livematte").joinpath("assets/panel.html").read_bytes()
        self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")

    def _state(self) -> None:
        controls = self.server_state.controls
        self._json(HTTPStatus.OK, {"settings": controls.state.as_json(), "stats": controls.stats})

    def _snapshot(self) -> None:
        jpeg = self.server_state.controls.snapshot_jpeg()
        if jpeg is None:
            raise _Refused(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
        self._send(HTTPStatus.OK, jpeg, "image/jpeg")

    def _settings(self) -> None:
        if self.headers.get_content_type() != "application/json":
            raise _Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the settings as Content-Type: application/json")
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            raise _Refused(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        if int(length) > MAX_BODY:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
        try:
            changes = json.loads(self.rfile.read(int(length)) or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Refused(HTTPStatus.BAD_REQUEST, f"malformed JSON: {exc}") from None
        if not isinstance(changes, dict):
            raise _Refused(HTTPStatus.BAD_REQUEST, 'expected a JSON object such as {"threshold": 0.2}')
        self._json(HTTPStatus.OK, {"settings": self.server_state.controls.update(changes).as_json()})


_ROUTES = {
    ("GET", "/"): _Handler._panel,
    ("GET", "/api/state"): _Handler._state,
    ("GET", "/api/snapshot.jpg"): _Handler._snapshot,
    ("POST", "/api/settings"): _Handler._settings,
}
