"""Watch from a browser: a sink that serves the live picture over HTTP (aiohttp).

    /               the page: the stream, before | after, strength slider, fps and latency
    /stream.mjpg    the enhanced stream as MJPEG (multipart/x-mixed-replace)
    /snapshot.jpg   the latest enhanced frame
    /status         fps, latency, strength as JSON; POST /controls (JSON) changes them

The sink's `write` (on the pipeline's sink thread) only keeps the newest frame; a thread
of its own encodes it as JPEG once, whatever the number of viewers, and hands it to the
server's event loop (its own thread), where each viewer's coroutine sends the newest JPEG
it has not sent yet: a slow viewer gets fewer frames and never slows anyone.

Safe by default (the threat model is in the README, "Watch from a browser"):
- Host: only IP literals, localhost and the names given as `hosts` are served (a web
  page whose name is re-pointed at this machine, DNS rebinding, gets 421);
- requests that a browser marks as coming from another site (Sec-Fetch-Site) are refused,
  and POST /controls needs `application/json` and, from a browser, this server's own
  Origin: another page cannot change the controls;
- every control value is checked (finite numbers in range, booleans as booleans) and
  refused with 400, never stored;
- a token, when set, is needed by every request (`?token=` once, which sets an HttpOnly
  cookie and redirects to the same page without it; or `Authorization: Bearer`); failed
  attempts are limited per client address, and the token never appears in a log line;
- limits: a 4 KB body, 8 KB header lines, 64 headers, idle and half-sent connections
  closed after `timeout` seconds, at most `max_viewers` streams at once.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import math
import re
import threading
import time
from dataclasses import dataclass, field

import cv2
from aiohttp import web

from .controls import MAX_STRENGTH, Controls
from .frame import Frame, as_rgb
from .sinks import SinkError, side_by_side

log = logging.getLogger("realtime")

BOUNDARY = "frame"
LOCAL = {"127.0.0.1", "localhost", "::1"}
MAX_BODY = 4096
FAILED_LOGINS = 10  # per client address and minute; then 429 until the minute is over


def parse_address(text: str) -> tuple[str, int]:
    """"[HOST:]PORT" -> (host, port); the host defaults to 127.0.0.1 ([::1] for IPv6)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"expected [HOST:]PORT such as 8080, 0.0.0.0:8080 or [::1]:8080, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port must be 0..65535, got {number}")
    return host.strip("[]") or "127.0.0.1", number


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def masked(text: str, token: str | None) -> str:
    """`text` (a path and query) for a log line: any token= value (right or a guess) and the
    token itself replaced by ***."""
    text = re.sub(r"(?i)(token=)[^&\s]*", r"\1***", text)
    return text.replace(token, "***") if token else text


class OneLine(logging.Filter):
    """The server library's own messages (a malformed request, a viewer gone) as one line,
    without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            record.msg, record.args = f"browser view: {record.getMessage()}: {record.exc_info[1]}", ()
            record.exc_info = record.exc_text = None
        return True


HTTP_LOG = logging.getLogger("realtime.http")
HTTP_LOG.addFilter(OneLine())


class ControlsError(ValueError):
    """A control value that is refused (the message says which and why)."""


def checked_changes(body: object) -> dict:
    """The changes a POST /controls body asks for, each checked: {"strength": 0..2,
    "exposure": null or (0, 1), "show_both": true/false}. Raises ControlsError."""
    if not isinstance(body, dict) or not body:
        raise ControlsError('expected a JSON object such as {"strength": 1.2}')
    unknown = sorted(set(body) - {"strength", "exposure", "show_both"})
    if unknown:
        raise ControlsError(f"unknown control {unknown[0]!r}")

    def number(name: str, low: float, high: float) -> float:
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not low <= value <= high:
            raise ControlsError(f"{name} must be a number from {low:g} to {high:g}")
        return float(value)

    changes = {}
    if "strength" in body:
        changes["strength"] = number("strength", 0.0, MAX_STRENGTH)
    if "exposure" in body:
        changes["exposure"] = None if body["exposure"] is None else number("exposure", 0.01, 0.99)
    if "show_both" in body:
        if not isinstance(body["show_both"], bool):
            raise ControlsError("show_both must be true or false")
        changes["show_both"] = body["show_both"]
    return changes


@dataclass
class LoginLimiter:
    """Failed token attempts per client address, in one-minute windows."""

    per_minute: int = FAILED_LOGINS
    failures: dict[str, tuple[float, int]] = field(default_factory=dict)

    def blocked(self, client: str) -> bool:
        start, count = self.failures.get(client, (0.0, 0))
        return time.monotonic() - start < 60 and count >= self.per_minute

    def failed(self, client: str) -> None:
        now = time.monotonic()
        start, count = self.failures.get(client, (now, 0))
        self.failures[client] = (start, count + 1) if now - start < 60 else (now, 1)
        if len(self.failures) > 10_000:  # bounded: forget the oldest windows
            for key in sorted(self.failures, key=lambda k: self.failures[k][0])[:5_000]:
                del self.failures[key]


class BrowserSink:
    """A sink serving the live picture to browsers (see the module docstring).

    address: (host, port) to listen on (port 0: a free one). token: required by every
    request when set (a non-empty string). hosts: names besides IP literals and localhost
    that may appear in the Host header (the machine's name on the network)."""

    def __init__(self, address: tuple[str, int], controls: Controls, token: str | None = None,
                 hosts: tuple[str, ...] = (), quality: int = 80, max_viewers: int = 64, timeout: float = 15.0) -> None:
        if token is not None and not token:
            raise ValueError("an empty token would let everyone in; give a token or none")
        self.controls, self.token, self.quality = controls, token, quality
        self.hosts = {h.lower() for h in hosts} | {"localhost"}
        self.max_viewers, self.timeout = max_viewers, timeout
        self.limiter = LoginLimiter()
        self._cond = threading.Condition()
        self._frame: Frame | None = None  # newest frame, not yet encoded
        self._jpeg: bytes | None = None
        self._sequence = 0  # of the newest JPEG
        self._viewers = 0
        self._times: list[float] = []
        self._latency_ms = 0.0
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._published: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        try:
            self.address = self._loop.run_until_complete(self._start(address))
        except OSError as exc:
            self._loop.close()
            raise SinkError(f"cannot serve on {address[0]}:{address[1]} ({exc.strerror or exc})") from None
        if not is_loopback(address[0]) and not self.token:
            log.warning("serving on %s:%d without a token: anyone who can reach this machine can watch",
                        *self.address[:2])
        self._threads = [threading.Thread(target=self._loop.run_forever, name="http", daemon=True),
                         threading.Thread(target=self._encode_loop, name="jpeg", daemon=True)]
        for thread in self._threads:
            thread.start()

    async def _start(self, address: tuple[str, int]) -> tuple[str, int]:
        self._published = asyncio.Event()
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard],
                              handler_args={"max_line_size": 8190, "max_field_size": 8190, "max_headers": 64})
        app.router.add_get("/", self._page)
        app.router.add_get("/index.html", self._page)
        app.router.add_get("/stream.mjpg", self._stream)
        app.router.add_get("/snapshot.jpg", self._snapshot)
        app.router.add_get("/status", self._status)
        app.router.add_post("/controls", self._controls)
        self._runner = web.AppRunner(app, access_log=None, keepalive_timeout=self.timeout, handle_signals=False,
                                     shutdown_timeout=1.0, logger=HTTP_LOG)
        await self._runner.setup()
        site = web.TCPSite(self._runner, address[0], address[1], backlog=128, reuse_address=True)
        await site.start()
        return tuple(self._runner.addresses[0][:2])  # the port chosen when 0 was asked

    @property
    def url(self) -> str:
        """Where to watch (with the token: print it once, never log it)."""
        host = self.address[0] if self.address[0] not in ("0.0.0.0", "::") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
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
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        try:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=5)
        except Exception as exc:  # noqa: BLE001 - closing: say what went wrong, do not mask the run's result
            log.debug("browser view: closing: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._threads[0].join(5)

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
                try:
                    self._loop.call_soon_threadsafe(self._publish)
                except RuntimeError:  # the loop has closed
                    return

    def _publish(self) -> None:
        """On the loop: wake everyone waiting for a newer JPEG."""
        event, self._published = self._published, asyncio.Event()
        event.set()

    async def _newer_jpeg(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        """The newest JPEG newer than sequence number `after`, waiting up to `timeout` s."""
        deadline = time.monotonic() + timeout
        while self._sequence <= after and not self._closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(self._published.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass
        with self._cond:
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

    def _host_allowed(self, request: web.Request) -> bool:
        host = (request.host or "").lower()
        name = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
        if name in self.hosts:
            return True
        try:
            ipaddress.ip_address(name)  # an address, not a name that could be re-pointed
            return True
        except ValueError:
            return False

    def _offered_token(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        return request.query.get("token") or (header[7:] if header.startswith("Bearer ") else "") \
            or request.cookies.get("token", "")

    def _refuse(self, request: web.Request, status: int, why: str) -> web.Response:
        log.info("browser view: %s %s from %s: %d %s", request.method, masked(request.path_qs, self.token),
                 request.remote, status, why)
        return web.Response(status=status, text=why + "\n", headers={"Cache-Control": "no-store"})

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        """Who may ask, checked before any route: the Host, the site the request comes from, the token."""
        if not self._host_allowed(request):
            return self._refuse(request, 421, "this server answers to its own address only")
        site = request.headers.get("Sec-Fetch-Site", "")
        navigation = request.path in ("/", "/index.html") and request.headers.get("Sec-Fetch-Mode") == "navigate"
        if site in ("cross-site", "same-site") and not navigation:
            return self._refuse(request, 403, "requests from other sites are refused")
        if self.token:
            client = request.remote or "?"
            if self.limiter.blocked(client):
                return self._refuse(request, 429, "too many wrong tokens; wait a minute")
            if not hmac.compare_digest(self._offered_token(request).encode(), self.token.encode()):
                self.limiter.failed(client)
                return self._refuse(request, 401, "a token is required: open the address printed at start")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400:
                log.info("browser view: %s %s: %d", request.method, masked(request.path_qs, self.token), exc.status)
            raise
        except (ConnectionError, asyncio.CancelledError):
            raise  # a viewer that left: nothing to say
        except Exception as exc:  # noqa: BLE001 - one line, not a traceback per request
            log.warning("browser view: %s %s failed: %s", request.method, request.path, exc)
            return web.Response(status=500, text="internal error\n")

    async def _page(self, request: web.Request) -> web.StreamResponse:
        if self.token and "token" in request.query:  # logged in: the cookie carries it, the address bar need not
            response = web.HTTPSeeOther(request.path)
            response.set_cookie("token", self.token, httponly=True, samesite="Strict", path="/")
            raise response
        return web.Response(text=PAGE, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                     "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
                                                                "script-src 'unsafe-inline'; img-src 'self'"})

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        self._watching(+1)  # a newer frame than the last encoded one, if one comes
        try:
            _, jpeg = await self._newer_jpeg(self._sequence, 1.0 if self._jpeg is not None else 3.0)
        finally:
            self._watching(-1)
        jpeg = jpeg or self._jpeg
        if jpeg is None:
            return self._refuse(request, 503, "no frame yet")
        return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def _status(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=json.dumps(self.status(), allow_nan=False), content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def _controls(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        own = f"{request.scheme}://{request.host}"
        if origin is not None and origin != own:
            return self._refuse(request, 403, "controls can be changed from this server's own page only")
        if origin is None and self.token and not request.headers.get("Authorization", "").startswith("Bearer "):
            return self._refuse(request, 403, "scripts send the token as Authorization: Bearer ...")
        if request.content_type != "application/json":
            return self._refuse(request, 403, "controls take application/json")
        if request.content_length is None or request.content_length > MAX_BODY:
            return self._refuse(request, 413 if request.content_length else 411, "a JSON body of at most 4 KB")
        try:
            changes = checked_changes(json.loads(await request.read()))
        except (ControlsError, ValueError, RecursionError) as exc:
            why = str(exc) if isinstance(exc, ControlsError) else 'expected JSON such as {"strength": 1.2}'
            return self._refuse(request, 400, why)
        if "strength" in changes:
            self.controls.set_strength(changes["strength"])
        if "exposure" in changes:
            self.controls.set_exposure(changes["exposure"])
        if "show_both" in changes:
            self.controls.show_both = changes["show_both"]
        return await self._status(request)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if self._viewers >= self.max_viewers:
            return self._refuse(request, 503, f"{self.max_viewers} viewers already; try again later")
        response = web.StreamResponse(headers={"Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                               "Cache-Control": "no-store"})
        self._watching(+1)
        try:
            await response.prepare(request)
            sequence = -1
            while not self._closed:
                sequence, jpeg = await self._newer_jpeg(sequence, 5.0)
                if jpeg is None:
                    continue
                part = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                        + jpeg + b"\r\n")
                await asyncio.wait_for(response.write(part), self.timeout)  # a viewer that stops reading leaves
        except (ConnectionError, asyncio.TimeoutError):
            pass  # the viewer left, or stopped reading
        finally:
            self._watching(-1)
        return response


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
const post = (body) => fetch("controls", {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify(body)}).then((r) => r.json()).then(show);
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
setInterval(() => fetch("status").then((r) => r.json()).then(show), 1000);
</script>
</body></html>
"""
