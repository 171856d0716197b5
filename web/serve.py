"""Serve the web demo from its own folder, with the headers that enable multi-threaded wasm.

    python web/serve.py [--port 8000] [--host 127.0.0.1] [--no-isolation]

Sends ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy:
require-corp`` (the page is then *cross-origin isolated*, which SharedArrayBuffer and so
onnxruntime-web's threads need) and a Content-Security-Policy that lets the page load
nothing from another origin. Only the page, its modules, ``public/`` and the two runtime
packages inside ``node_modules`` are served; a path with ``..`` (raw or percent-encoded)
or a symlink leading out of the folder is refused with 403. ``--port 0`` picks a free
port; the first line printed is the URL.
"""
from __future__ import annotations

import argparse
import http.server
import posixpath
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

WEB_DIR = Path(__file__).resolve().parent

# What the page needs and nothing else (no build scripts, tests or other packages).
ALLOWED_FILES = ("index.html", "favicon.svg")
ALLOWED_PREFIXES = ("src/", "public/", "node_modules/onnxruntime-web/dist/", "node_modules/@mediapipe/holistic/")

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}
COMMON_HEADERS = {
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
    # 'self' only (wasm needs wasm-unsafe-eval; a chosen video file plays from a blob: URL).
    "Content-Security-Policy": ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
                                "worker-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
                                "style-src 'self'; connect-src 'self' blob: data:; object-src 'none'; "
                                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
}
EXTRA_TYPES = {
    ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
    ".json": "application/json", ".onnx": "application/octet-stream", ".npy": "application/octet-stream",
    ".bin": "application/octet-stream", ".data": "application/octet-stream",
    ".binarypb": "application/octet-stream", ".tflite": "application/octet-stream", ".svg": "image/svg+xml",
}


class TraversalError(ValueError):
    """The request path tries to leave the served folder."""


def resolve_request(root: Path, url_path: str, public: Path | None = None) -> Path | None:
    """File for a URL path, None when it is not one of the served files.

    ``/public/...`` comes from ``public`` (default ``root/public``). Raises
    :class:`TraversalError` for any ``..`` segment, backslash or NUL (after
    percent-decoding) and for a path whose real location is outside its folder.
    """
    path = unquote(urlsplit(url_path).path)
    if "\\" in path or "\0" in path or any(part == ".." for part in path.split("/")):
        raise TraversalError(url_path)
    relative = posixpath.normpath(path).lstrip("/")
    if relative in ("", "."):
        relative = "index.html"
    if any(part.startswith(".") for part in relative.split("/")):
        return None  # dotfiles (temporary build files, stamps) are never served
    if relative not in ALLOWED_FILES and not relative.startswith(ALLOWED_PREFIXES):
        return None
    base = root
    if public is not None and relative.startswith("public/"):
        base, relative = public, relative[len("public/"):]
    elif relative.startswith("node_modules/"):
        # node_modules may be a symlink to a shared install: confine paths to where it really is
        base, relative = root / "node_modules", relative[len("node_modules/"):]
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base.resolve()):
        raise TraversalError(url_path)
    return candidate if candidate.is_file() else None


class DemoHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from ``root`` with isolation headers; no directory listings."""

    root: Path = WEB_DIR
    public: Path | None = None
    isolation: bool = True
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **EXTRA_TYPES}

    def send_head(self):
        try:
            target = resolve_request(self.root, self.path, self.public)
        except TraversalError:
            self.send_error(403, "path outside the served folder")
            return None
        if target is None:
            self.send_error(404, "not found")
            return None
        try:
            handle = open(target, "rb")
        except OSError:
            self.send_error(404, "not found")
            return None
        size = target.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(target)))
        self.send_header("Content-Length", str(size))
        self.end_headers()
        return handle

    def end_headers(self):
        headers = {**COMMON_HEADERS, **(ISOLATION_HEADERS if self.isolation else {})}
        for name, value in headers.items():
            self.send_header(name, value)
        super().end_headers()

    def do_POST(self):  # noqa: N802 - http.server naming
        self.send_error(405, "read-only server")

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        if self.server.verbose:
            super().log_message(format, *args)


def make_server(host: str = "127.0.0.1", port: int = 8000, root: Path = WEB_DIR, isolation: bool = True,
                verbose: bool = False, public: Path | None = None) -> http.server.ThreadingHTTPServer:
    handler = type("Handler", (DemoHandler,), {
        "root": Path(root).resolve(), "isolation": isolation,
        "public": Path(public).resolve() if public is not None else None,
    })
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.verbose = verbose
    return server


def port_number(text: str) -> int:
    """argparse type: a TCP port, so a typo ends in a usage error rather than a traceback."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 0..65535")
    return port


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Serve web/ with COOP/COEP headers (multi-threaded wasm).")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    parser.add_argument("--port", type=port_number, default=8000, help="0 picks a free port")
    parser.add_argument("--no-isolation", action="store_true",
                        help="omit COOP/COEP: the page then runs single-threaded")
    parser.add_argument("--public", type=Path, help="serve /public/ from this folder (default web/public)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.public is not None and not args.public.is_dir():
        parser.exit(2, f"error: --public {args.public}: not a folder\n")
    try:
        server = make_server(args.host, args.port, WEB_DIR, not args.no_isolation, args.verbose, args.public)
    except OSError as error:
        parser.exit(2, f"error: cannot listen on {args.host}:{args.port} ({error.strerror})\n")
    host, port = server.server_address[:2]
    print(f"serving http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
