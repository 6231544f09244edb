"""The browser view as an attacker would probe it: a real server on a free loopback port.

Each test builds its own case; every one failed on the hand-written http.server handler
this server replaced (issue 18)."""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import cli
from realtime.browser import BrowserSink
from realtime.controls import Controls
from realtime.sources import Frame


def frame() -> Frame:
    f = Frame(np.full((36, 64, 3), 40, np.uint8), 0, 0)
    f.enhanced, f.captured, f.enhanced_at = f.image, time.monotonic(), time.monotonic()
    return f


@pytest.fixture
def server():
    controls = Controls()
    sink = BrowserSink(("127.0.0.1", 0), controls, timeout=2.0)
    sink.write(frame())
    yield sink, controls
    sink.close()


@pytest.fixture
def guarded():
    controls = Controls()
    sink = BrowserSink(("127.0.0.1", 0), controls, token="s3cret-token", timeout=2.0)
    sink.write(frame())
    yield sink, controls
    sink.close()


def request(sink: BrowserSink, method: str, path: str, body: bytes | None = None, headers: dict | None = None
            ) -> tuple[int, bytes, http.client.HTTPResponse]:
    connection = http.client.HTTPConnection(sink.address[0], sink.address[1], timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read() if method != "HEAD" else b"", response
    finally:
        connection.close()


def post(sink: BrowserSink, body: bytes, **headers: str) -> int:
    own = f"http://127.0.0.1:{sink.address[1]}"
    fields = {"Content-Type": "application/json", "Origin": own, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return request(sink, "POST", "/controls", body, fields)[0]


def strict_json(data: bytes) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")
    return json.loads(data, parse_constant=refuse)


def test_a_rebound_host_name_is_refused(server):
    sink, _ = server
    for path in ("/snapshot.jpg", "/status", "/stream.mjpg", "/"):
        assert request(sink, "GET", path, headers={"Host": "evil.example"})[0] == 421, path
    assert request(sink, "GET", "/status", headers={"Host": f"127.0.0.1:{sink.address[1]}"})[0] == 200
    assert request(sink, "GET", "/status", headers={"Host": f"localhost:{sink.address[1]}"})[0] == 200


def test_names_given_with_hosts_are_served():
    sink = BrowserSink(("127.0.0.1", 0), Controls(), hosts=("camera.lan",))
    try:
        assert request(sink, "GET", "/status", headers={"Host": "camera.lan:8080"})[0] == 200
        assert request(sink, "GET", "/status", headers={"Host": "other.lan"})[0] == 421
    finally:
        sink.close()


def test_other_sites_cannot_change_the_controls(server):
    sink, controls = server
    form = request(sink, "POST", "/controls", b'{"strength": 0.1}',
                   {"Content-Type": "text/plain", "Origin": "http://evil.example"})[0]
    assert form == 403
    assert post(sink, b'{"strength": 0.1}', Origin="http://evil.example") == 403
    assert post(sink, b'{"strength": 0.1}', Origin="http://127.0.0.1:1") == 403  # another port: another origin
    assert post(sink, b'{"strength": 0.1}', Content_Type="text/plain") == 403
    assert request(sink, "GET", "/snapshot.jpg", headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert controls.strength == 1.0
    assert post(sink, b'{"strength": 0.5}') == 200 and controls.strength == 0.5


@pytest.mark.parametrize("body", [b'{"strength": NaN}', b'{"strength": 1e999}', b'{"strength": "x"}',
                                  b'{"strength": "1"}', b'{"strength": true}', b'{"strength": 7}',
                                  b'{"show_both": "false"}', b'{"show_both": 1}', b'{"exposure": -1}',
                                  b'{"volume": 3}', b'[1, 2]', b'{}', b'not json', b"[" * 4000])
def test_bad_values_are_refused_and_never_stored(server, body):
    sink, controls = server
    assert post(sink, body) == 400
    assert (controls.strength, controls.exposure, controls.show_both) == (1.0, None, False)
    status, data, _ = request(sink, "GET", "/status")
    assert status == 200 and strict_json(data)["strength"] == 1.0


def test_good_values_are_taken(server):
    sink, controls = server
    assert post(sink, b'{"strength": 2, "exposure": 0.4, "show_both": true}') == 200
    assert (controls.strength, controls.exposure, controls.show_both) == (2.0, 0.4, True)
    assert post(sink, b'{"exposure": null}') == 200 and controls.exposure is None


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def raw(sink: BrowserSink, data: bytes, read: bool = True) -> bytes:
    with socket.create_connection(sink.address, timeout=10) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # refused before everything was sent
        return s.recv(200) if read else b""


def test_body_limits_hold(server):
    sink, controls = server
    before = rss_mb()
    head = b"POST /controls HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    assert raw(sink, head + b"Content-Length: -1\r\n\r\n" + b"x" * 100_000).split(b" ")[1] == b"400"
    reply = raw(sink, head + b"Content-Length: 50000000\r\n\r\n" + b"x" * 2_000_000)
    assert reply.split(b" ")[1] == b"413"
    assert post(sink, b'{"strength": 0.5, "pad": "' + b"x" * 5000 + b'"}') == 413
    headers = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Big: " + b"y" * 100_000 + b"\r\n\r\n"
    assert raw(sink, headers).split(b" ")[1] in (b"400", b"431")
    assert rss_mb() - before < 20 and controls.strength == 1.0


@pytest.mark.slow
def test_half_sent_requests_are_closed(server):
    sink, _ = server
    sockets = []
    for _ in range(60):
        s = socket.create_connection(sink.address, timeout=15)
        s.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never the rest
        sockets.append(s)
    start = time.monotonic()
    try:
        for s in sockets:
            assert s.recv(100) == b""  # closed by the server
    finally:
        for s in sockets:
            s.close()
    assert time.monotonic() - start < 10
    assert request(sink, "GET", "/status")[0] == 200  # and still serving


def test_head_keep_alive_and_a_viewer_cap(server):
    sink, _ = server
    assert request(sink, "HEAD", "/")[0] == 200
    connection = http.client.HTTPConnection(*sink.address, timeout=5)
    try:
        for _ in range(3):  # HTTP/1.1: one connection, several requests
            connection.request("GET", "/status")
            response = connection.getresponse()
            assert response.status == 200 and response.version == 11
            response.read()
    finally:
        connection.close()
    capped = BrowserSink(("127.0.0.1", 0), Controls(), max_viewers=1, timeout=2.0)
    try:
        capped.write(frame())
        first = socket.create_connection(capped.address, timeout=5)
        first.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert b"200" in first.recv(100).split(b"\r\n")[0]
        assert request(capped, "GET", "/stream.mjpg")[0] == 503
        first.close()
    finally:
        capped.close()


def test_ipv6_loopback_binds():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        sink = BrowserSink(("::1", 0), Controls())
    except Exception as exc:  # noqa: BLE001 - a machine without an IPv6 loopback
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        sink.write(frame())
        assert sink.url.startswith("http://[::1]:")
        assert request(sink, "GET", "/status", headers={"Host": f"[::1]:{sink.address[1]}"})[0] == 200
    finally:
        sink.close()


def test_tokens_log_in_once_and_guessing_is_limited(guarded):
    sink, controls = guarded
    status, _, response = request(sink, "GET", "/?token=s3cret-token")
    assert status == 303 and response.getheader("Location") == "/"
    cookie = response.getheader("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert request(sink, "GET", "/", headers={"Cookie": "token=s3cret-token"})[0] == 200
    assert request(sink, "GET", "/status", headers={"Authorization": "Bearer s3cret-token"})[0] == 200
    # a script: the token as a header, no Origin
    assert post(sink, b'{"strength": 0.3}', Origin="", Authorization="Bearer s3cret-token") in (200, 403)
    assert request(sink, "POST", "/controls", b'{"strength": 0.3}', {"Content-Type": "application/json",
                   "Authorization": "Bearer s3cret-token"})[0] == 200 and controls.strength == 0.3
    assert request(sink, "POST", "/controls", b'{"strength": 0.9}', {"Content-Type": "application/json",
                   "Cookie": "token=s3cret-token"})[0] == 403  # a cookie alone, no Origin: not a script
    statuses = [request(sink, "GET", f"/status?token=guess{i}")[0] for i in range(15)]
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    assert request(sink, "GET", "/status?token=s3cret-token")[0] == 429  # even the right one, for a minute


def test_an_empty_token_is_refused():
    with pytest.raises(ValueError, match="empty token"):
        BrowserSink(("127.0.0.1", 0), Controls(), token="")
    result = cli("--demo", "--serve", "0", "--serve-token", "", "--no-preview")
    assert result.returncode == 2 and "empty token" in result.stderr and "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


@pytest.mark.slow
def test_probes_leave_no_traceback_and_no_token_in_the_log():
    """The command line under -v, probed: disconnecting viewers, guesses, bad bodies."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "--demo", "--serve", f"127.0.0.1:{port}",
                             "--serve-token", "the-real-token", "--no-preview", "-v"],
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(port)
        sink = type("Address", (), {"address": ("127.0.0.1", port)})()
        for i in range(5):
            request(sink, "GET", f"/snapshot.jpg?token=wrong{i}")
        request(sink, "GET", "/status?token=the-real-token")
        for _ in range(3):  # viewers that leave mid-stream
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer the-real-token\r\n\r\n")
                s.recv(1000)
        request(sink, "POST", "/controls", b"[" * 4000, {"Content-Type": "application/json",
                                                         "Authorization": "Bearer the-real-token"})
        raw(sink, b"POST /controls HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n")
        request(sink, "GET", "/nothing-here", headers={"Authorization": "Bearer the-real-token"})
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err, err[-3000:]
    watch_lines = [line for line in err.splitlines() if "watch at" in line]
    assert len(watch_lines) == 1  # the address with the token, printed once
    rest = err.replace(watch_lines[0], "")
    assert "the-real-token" not in rest and "wrong3" not in rest, rest[-2000:]
