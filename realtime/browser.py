"""Watch from a browser: a sink that serves the live picture over HTTP.

    /               the page: the stream, before | after, strength slider, fps and latency
    /stream.mjpg    the enhanced stream as MJPEG (multipart/x-mixed-replace)
    /snapshot.jpg   the latest enhanced frame
    /status         fps, latency, strength as JSON; POST /controls changes them

The sink's `write` (on the pipeline's sink thread) only keeps the newest frame; a thread
of its own encodes it as JPEG once, whatever the number of viewers, and each viewer's
connection (a thread of the standard library's ThreadingHTTPServer) sends the newest
JPEG it has not sent yet, so a slow viewer gets fewer frames and never slows anyone.
With a token, every request must carry it (?token=..., an `Authorization: Bearer`
header, or the cookie the page sets).
"""
from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import cv2

from .controls import Controls
from .frame import Frame, as_rgb
from .sinks import SinkError, side_by_side

log = logging.getLogger("realtime")

BOUNDARY = "frame"
LOCAL = {"127.0.0.1", "localhost", "::1"}


def parse_address(text: str) -> tuple[str, int]:
    """"[HOST:]PORT" -> (host, port); the host defaults to 127.0.0.1."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"expected [HOST:]PORT such as 8080 or 0.0.0.0:8080, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port must be 0..65535, got {number}")
    return host.strip("[]") or "127.0.0.1", number


class BrowserSink:
    """A sink serving the live picture to browsers (see the module docstring)."""

    def __init__(self, address: tuple[str, int], controls: Controls, token: str | None = None,
                 quality: int = 80) -> None:
        self.controls, self.token, self.quality = controls, token or None, quality
        self._cond = threading.Condition()
        self._frame: Frame | None = None  # newest frame, not yet encoded
        self._jpeg: bytes | None = None
        self._sequence = 0  # of the newest JPEG
        self._viewers = 0
        self._times: list[float] = []
        self._latency_ms = 0.0
        self._closed = False
        try:
            self.server = ThreadingHTTPServer(address, self._handler())
        except OSError as exc:
            raise SinkError(f"cannot serve on {address[0]}:{address[1]} ({exc.strerror})") from None
        self.server.daemon_threads = True
        self.address = self.server.server_address[:2]
        if address[0] not in LOCAL:
            log.warning("serving on %s:%d: anyone who can reach this machine can watch%s", *self.address[:2],
                        "" if self.token else " (set --serve-token to require a token)")
        self._threads = [threading.Thread(target=self.server.serve_forever, name="http", daemon=True),
                         threading.Thread(target=self._encode_loop, name="jpeg", daemon=True)]
        for thread in self._threads:
            thread.start()

    @property
    def url(self) -> str:
        host = self.address[0] if self.address[0] not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.address[1]}/" + (f"?token={self.token}" if self.token else "")

    # --- the sink -------------------------------------------------------------------------

    def write(self, frame: Frame) -> bool:
        now = time.monotonic()
        with self._cond:
            self._frame = frame
            self._times = [t for t in self._times if now - t < 1.0] + [now]
            self._latency_ms = 1000 * (frame.enhanced_at - frame.captured)
            self._cond.notify_all()
        return True

    def close(self, complete: bool = True) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # --- encoding: once per new frame, while someone watches --------------------------------

    def _encode_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (self._frame is None or (self._viewers == 0 and self._jpeg is not None)):
                    self._cond.wait(0.5)
                if self._closed:
                    return
                frame, self._frame = self._frame, None
            picture = side_by_side(frame.image, frame.enhanced) if self.controls.show_both else as_rgb(frame.enhanced)
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(as_rgb(picture), cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if ok:
                with self._cond:
                    self._jpeg, self._sequence = data.tobytes(), self._sequence + 1
                    self._cond.notify_all()

    def next_jpeg(self, after: int, timeout: float = 5.0) -> tuple[int, bytes | None]:
        """The newest JPEG newer than sequence number `after` (waiting for one)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._sequence <= after and not self._closed and time.monotonic() < deadline:
                self._cond.wait(0.25)
            return self._sequence, self._jpeg if self._sequence > after else None

    def status(self) -> dict:
        with self._cond:
            fps = len([t for t in self._times if time.monotonic() - t < 1.0])
            return {"fps": fps, "latency_ms": round(self._latency_ms, 1), "strength": self.controls.strength,
                    "exposure": self.controls.exposure, "show_both": self.controls.show_both,
                    "viewers": self._viewers}

    def _watching(self, change: int) -> None:
        with self._cond:
            self._viewers += change
            self._cond.notify_all()

    # --- HTTP ---------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "realtime-enhance"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
                log.debug("http: " + format, *args)

            def _authorised(self) -> bool:
                if sink.token is None:
                    return True
                query = parse_qs(urlparse(self.path).query)
                offered = query.get("token", [""])[0]
                header = self.headers.get("Authorization", "")
                if header.startswith("Bearer "):
                    offered = offered or header[7:]
                cookie = SimpleCookie(self.headers.get("Cookie", ""))
                if not offered and "token" in cookie:
                    offered = cookie["token"].value
                if hmac.compare_digest(offered.encode(), sink.token.encode()):
                    return True
                self.send_error(HTTPStatus.UNAUTHORIZED, "a token is required: add ?token=...")
                return False

            def _send(self, body: bytes, kind: str, extra: dict | None = None) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                if not self._authorised():
                    return
                route = urlparse(self.path).path
                if route in ("/", "/index.html"):
                    cookie = {"Set-Cookie": f"token={sink.token}; HttpOnly; SameSite=Strict"} if sink.token else None
                    self._send(PAGE.encode(), "text/html; charset=utf-8", cookie)
                elif route == "/snapshot.jpg":
                    sink._watching(+1)  # a newer frame than the last encoded one, if one comes
                    try:
                        _, jpeg = sink.next_jpeg(sink._sequence, timeout=1.0 if sink._jpeg is not None else 3.0)
                    finally:
                        sink._watching(-1)
                    jpeg = jpeg or sink._jpeg
                    if jpeg is None:
                        self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
                    else:
                        self._send(jpeg, "image/jpeg")
                elif route == "/stream.mjpg":
                    self._stream()
                elif route == "/status":
                    self._send(json.dumps(sink.status()).encode(), "application/json")
                else:
                    self.send_error(HTTPStatus.NOT_FOUND)

            def do_POST(self) -> None:  # noqa: N802
                if not self._authorised():
                    return
                if urlparse(self.path).path != "/controls":
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                try:
                    length = min(int(self.headers.get("Content-Length", "0")), 4096)
                    changes = json.loads(self.rfile.read(length) or b"{}")
                    if "strength" in changes:
                        sink.controls.set_strength(float(changes["strength"]))
                    if "exposure" in changes:
                        sink.controls.set_exposure(None if changes["exposure"] is None else float(changes["exposure"]))
                    if "show_both" in changes:
                        sink.controls.show_both = bool(changes["show_both"])
                except (ValueError, TypeError, AttributeError):
                    self.send_error(HTTPStatus.BAD_REQUEST, 'expected JSON such as {"strength": 1.2}')
                    return
                self._send(json.dumps(sink.status()).encode(), "application/json")

            def _stream(self) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                sink._watching(+1)
                sequence = -1
                try:
                    while not sink._closed:
                        sequence, jpeg = sink.next_jpeg(sequence)
                        if jpeg is None:
                            continue
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the viewer left
                finally:
                    sink._watching(-1)

        return Handler


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>realtime-enhance</title>
<style>
  body { margin: 0; background: #111; color: #eee; font: 15px system-ui, sans-serif; }
  img { display: block; width: 100%; max-height: 80vh; object-fit: contain; background: #000; }
  .bar { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 10px; }
  input[type=range] { flex: 1; min-width: 160px; }
  button { font: inherit; padding: 8px 14px; border-radius: 6px; border: 0; background: #333; color: #eee; }
  #stats { opacity: .75; font-variant-numeric: tabular-nums; }
</style></head>
<body>
<img id="view" src="stream.mjpg" alt="live picture">
<div class="bar">
  <button id="both">before | after</button>
  <label for="strength">strength <span id="value">1.0</span></label>
  <input id="strength" type="range" min="0" max="2" step="0.05" value="1">
  <span id="stats"></span>
</div>
<script>
const token = new URLSearchParams(location.search).get("token");
const withToken = (url) => token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;
document.getElementById("view").src = withToken("stream.mjpg");
const post = (body) => fetch(withToken("controls"), {method: "POST", body: JSON.stringify(body)})
  .then((r) => r.json()).then(show);
const slider = document.getElementById("strength");
slider.addEventListener("input", () => post({strength: parseFloat(slider.value)}));
let both = false;
document.getElementById("both").addEventListener("click", () => { both = !both; post({show_both: both}); });
function show(s) {
  document.getElementById("value").textContent = s.strength.toFixed(2);
  if (document.activeElement !== slider) slider.value = s.strength;
  document.getElementById("stats").textContent = s.fps + " fps · latency " + s.latency_ms + " ms";
  both = s.show_both;
}
setInterval(() => fetch(withToken("status")).then((r) => r.json()).then(show), 1000);
</script>
</body></html>
"""
