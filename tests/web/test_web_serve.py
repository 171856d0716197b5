"""web/serve.py serves only the demo's own files, with the isolation headers."""
from __future__ import annotations

import http.client
import json
import re
import threading

import pytest


@pytest.fixture
def local_server(web_serve, demo_public):
    server = web_serve.make_server("127.0.0.1", 0, public=demo_public)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def fetch(port: int, path: str, method: str = "GET") -> tuple[int, dict, bytes]:
    """Send ``path`` exactly as given (no client-side normalisation of ``..``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest(method, path, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


@pytest.mark.parametrize("path", [
    "/../", "/..", "/../serve.py", "/src/../../README.md", "/%2e%2e/", "/%2E%2E%2Fbuild.py",
    "/public/../../etc/passwd", "/node_modules/onnxruntime-web/dist/../../../serve.py", "/src/..%5c..%5cREADME.md",
])
def test_web_serve_refuses_path_traversal(local_server, path):
    status, _, body = fetch(local_server, path)
    assert status == 403, (path, status)
    assert b"root:" not in body


@pytest.mark.parametrize("path", ["/build.py", "/serve.py", "/package.json", "/tests/drive.mjs",
                                  "/node_modules/playwright-core/package.json", "/src/", "/public/.manifest.json.tmp"])
def test_web_serve_only_serves_the_page_files(local_server, path):
    status, _, _ = fetch(local_server, path)
    assert status == 404, (path, status)


def test_web_serve_sends_isolation_headers_and_types(local_server, demo_public):
    status, headers, body = fetch(local_server, "/")
    assert status == 200 and b"<!doctype html>" in body.lower()
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-embedder-policy"] == "require-corp"
    assert "default-src 'self'" in headers["content-security-policy"]
    status, headers, body = fetch(local_server, "/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm")
    assert status == 200 and headers["content-type"] == "application/wasm" and body[:4] == b"\0asm"
    status, headers, _ = fetch(local_server, "/src/app.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    status, _, body = fetch(local_server, "/public/manifest.json")
    assert status == 200 and json.loads(body) == json.loads((demo_public / "manifest.json").read_text())


def test_web_serve_without_isolation_omits_coop_coep(web_serve, demo_public):
    server = web_serve.make_server("127.0.0.1", 0, public=demo_public, isolation=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, headers, _ = fetch(server.server_address[1], "/index.html")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200
    assert "cross-origin-embedder-policy" not in headers


def test_web_sources_load_nothing_from_another_origin(repo_root):
    """index.html and the page's modules name no absolute URL (everything is same-origin)."""
    web = repo_root / "web"
    files = [web / "index.html", *sorted((web / "src").glob("*"))]
    assert len(files) > 3
    for path in files:
        text = path.read_text(encoding="utf-8")
        found = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, flags=re.I)
        assert not found, f"{path.name} refers to another origin: {found}"
