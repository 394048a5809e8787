"""The Flask app of e2e/wsgi_test.go, served by python/blastbeat.

The routes down to /digest are compared byte for byte with what
Werkzeug's test client gets from the same app (expected.py); the others
drive the flow-control, slow-view, cancellation and two-proxy tests and
print what they did to stderr (the node's log, which the tests read).
"""

import hashlib
import os
import sys
import threading
import time

from flask import Flask, Response, jsonify, make_response, redirect, request

app = Flask(__name__)


def say(*args):
    print(*args, file=sys.stderr, flush=True)


def multi(d):
    return {k: d.getlist(k) for k in sorted(d.keys())}


@app.route("/query")
def query():
    return jsonify(path=request.path, args=multi(request.args))


@app.route("/form", methods=["POST"])
def form():
    return jsonify(form=multi(request.form))


@app.route("/upload", methods=["POST"])
def upload():
    f = request.files["file"]
    data = f.read()
    return jsonify(
        filename=f.filename,
        content_type=f.content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        form=multi(request.form),
    )


@app.route("/json", methods=["POST"])
def json_echo():
    data = request.get_json()
    return jsonify(got=data, keys=sorted(data))


@app.route("/redirect")
def go_elsewhere():
    return redirect("/query?a=redirected")


@app.route("/cookies")
def cookies():
    resp = make_response(jsonify(cookies=dict(sorted(request.cookies.items()))))
    resp.set_cookie("a", "1")
    resp.set_cookie("sess", "xyz", httponly=True, samesite="Lax")
    resp.set_cookie("theme", "dark", path="/cookies")
    return resp


@app.route("/stream")
def stream():
    def gen():
        for i in range(20):
            yield "line %d of a streamed response\n" % i

    return Response(gen(), mimetype="text/plain")


@app.route("/nocontent", methods=["DELETE"])
def nocontent():
    return "", 204


@app.route("/digest", methods=["POST"])
def digest():
    h = hashlib.sha256()
    n = 0
    while True:
        piece = request.stream.read(65536)
        if not piece:
            break
        h.update(piece)
        n += len(piece)
    return jsonify(size=n, sha256=h.hexdigest())


# --- beyond the comparison ---------------------------------------------------


@app.route("/hello")
def hello():
    return "hello"


_progress = {}
_lock = threading.Lock()


def _pattern(n):
    block = bytes((i * 31 + 7) % 251 for i in range(251))
    return (block * (n // 251 + 1))[:n]


@app.route("/big")
def big():
    """size bytes of the pattern, yielded in pieces, no Content-Length
    (chunked); /progress?key= says how much was yielded so far."""
    size = int(request.args["size"])
    piece = int(request.args.get("piece", 16384))
    key = request.args.get("key", "")
    data = _pattern(size)

    def gen():
        off = 0
        while off < size:
            with _lock:
                _progress[key] = off
            yield data[off : off + piece]
            off += piece
        with _lock:
            _progress[key] = size
        say("big %s yielded %d" % (key, size))

    return Response(gen(), mimetype="application/octet-stream")


@app.route("/progress")
def progress():
    with _lock:
        return str(_progress.get(request.args.get("key", ""), -1))


@app.route("/forever")
def forever():
    """Streams until the client goes away; close() says so."""
    key = request.args.get("key", "")

    def gen():
        n = 0
        try:
            say("forever %s started" % key)
            while True:
                yield b"x" * 16384
                n += 1
        finally:
            say("forever %s closed after %d pieces" % (key, n))

    return Response(gen(), mimetype="application/octet-stream")


@app.route("/uploadcancel", methods=["POST"])
def uploadcancel():
    key = request.args.get("key", "")
    n = 0
    try:
        say("uploadcancel %s reading" % key)
        while True:
            piece = request.stream.read(4096)
            if not piece:
                break
            n += len(piece)
    except Exception as e:
        say("uploadcancel %s input error after %d bytes: %s" % (key, n, type(e).__name__))
        raise
    say("uploadcancel %s read %d bytes" % (key, n))
    return str(n)


_released = {}


@app.route("/slow")
def slow():
    """A slow view: time.sleep until the file ?file= exists (at most 20 s)."""
    key = request.args.get("key", "")
    path = request.args["file"]
    say("slow %s started" % key)
    deadline = time.monotonic() + 20
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    say("slow %s done" % key)
    return "slow %s done" % key


@app.route("/echo", methods=["GET", "POST"])
def echo():
    """For the two-proxy test: what identifies this request."""
    body = request.get_data()
    return jsonify(
        token=request.args.get("token"),
        header=request.headers.get("X-Token"),
        size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
    )
