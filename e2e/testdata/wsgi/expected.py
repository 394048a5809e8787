#!/usr/bin/python3
"""The requests of e2e/wsgi_test.go's comparison tests, and what each app
answers to them through its framework's test client, as JSON on stdout:

    {"flask": [CASE, ...], "django": [CASE, ...]}

Each CASE is the request (name, method, path, headers, the body as
base64 or as a pattern size, whether it goes chunked or with
Expect: 100-continue) and the response: status, headers (in order, as the
application gave them to start_response) and body (base64).

- Flask: Werkzeug's test client machinery (werkzeug.test.EnvironBuilder
  and run_wsgi_app, which keep the raw status and header list).
- Django: django.test.client.RequestFactory builds the environ, and the
  project's WSGI handler answers it.

A request sent chunked has no CONTENT_LENGTH, HTTP_TRANSFER_ENCODING
chunked and wsgi.input_terminated, as behind the server. The body of a
HEAD, 1xx, 204 or 304 response is dropped, as a server does (RFC 9110;
Django's own test Client does the same in conditional_content_removal).
"""

import base64
import io
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

HOST = "wsgi.test"


def pattern(n):
    """The upload pattern (e2e/wsgi_test.go's wPattern makes the same)."""
    block = bytes((i * 31 + 7) % 251 for i in range(251))
    return (block * (n // 251 + 1))[:n]


BOUNDARY = "----blastbeat-e2e-boundary-7d1c"


def multipart():
    parts = [
        b"--" + BOUNDARY.encode() + b"\r\n"
        b'Content-Disposition: form-data; name="title"\r\n\r\n'
        b"caf\xc3\xa9 upload\r\n",
        b"--" + BOUNDARY.encode() + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="data.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + pattern(70000) + b"\r\n",
        b"--" + BOUNDARY.encode() + b"--\r\n",
    ]
    return b"".join(parts)


def cases():
    form = "application/x-www-form-urlencoded"
    return [
        dict(name="query", method="GET", path="/query?a=1&b=x%20y&b=z&c=%C3%A9"),
        dict(name="form", method="POST", path="/form", headers=[["Content-Type", form]],
             body=b"a=1&b=hello+world&b=again&c=%C3%A9"),
        dict(name="multipart", method="POST", path="/upload",
             headers=[["Content-Type", "multipart/form-data; boundary=" + BOUNDARY]], body=multipart()),
        dict(name="json", method="POST", path="/json", headers=[["Content-Type", "application/json"]],
             body=json.dumps({"x": [1, 2, 3], "s": "caf\u00e9", "n": None}).encode()),
        dict(name="redirect", method="GET", path="/redirect"),
        dict(name="cookies", method="GET", path="/cookies", headers=[["Cookie", "a=0; zz=last"]]),
        dict(name="stream", method="GET", path="/stream"),
        dict(name="not-found", method="GET", path="/no/such/page"),
        dict(name="method-not-allowed", method="DELETE", path="/query"),
        dict(name="head", method="HEAD", path="/query?a=1"),
        dict(name="no-content", method="DELETE", path="/nocontent"),
        dict(name="chunked-upload", method="POST", path="/digest",
             headers=[["Content-Type", "application/octet-stream"]], pattern=300001, chunked=True),
        dict(name="expect-100-continue", method="POST", path="/digest",
             headers=[["Content-Type", "application/octet-stream"]], pattern=100003, expect=True),
        dict(name="upload-5mb", method="POST", path="/digest",
             headers=[["Content-Type", "application/octet-stream"]], pattern=5 * 1024 * 1024),
    ]


def body_of(case):
    if "pattern" in case:
        return pattern(case["pattern"])
    return case.get("body")


def finish(case, status, headers, body):
    code = int(status[:3])
    if case["method"] == "HEAD" or code < 200 or code in (204, 304):
        body = b""
    out = {k: v for k, v in case.items() if k != "body"}
    out.setdefault("headers", [])
    if case.get("body") is not None:
        out["body_b64"] = base64.b64encode(case["body"]).decode()
    out["want"] = {
        "status": status,
        "headers": [[k, v] for k, v in headers],
        "body_b64": base64.b64encode(body).decode(),
    }
    return out


def run_flask(case):
    from flask_app import app
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    body = body_of(case)
    b = EnvironBuilder(
        path=case["path"],
        method=case["method"],
        headers=case.get("headers", []),
        data=body,
        base_url="http://" + HOST,
    )
    try:
        env = b.get_environ()
    finally:
        b.close()
    if case.get("chunked"):
        del env["CONTENT_LENGTH"]
        env["HTTP_TRANSFER_ENCODING"] = "chunked"
        env["wsgi.input_terminated"] = True
    if case.get("expect"):
        env["HTTP_EXPECT"] = "100-continue"
    app_iter, status, headers = run_wsgi_app(app, env, buffered=True)
    return finish(case, status, headers.to_wsgi_list(), b"".join(app_iter))


def run_django(case):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djproject.settings")
    from django.test.client import RequestFactory

    from djproject.wsgi import application

    class EnvironFactory(RequestFactory):
        """Returns the environ RequestFactory builds, not a request."""

        def request(self, **request):
            return self._base_environ(**request)

    body = body_of(case)
    headers = case.get("headers", [])
    content_type = "application/octet-stream"
    extra = {"HTTP_HOST": HOST}
    for k, v in headers:
        if k.lower() == "content-type":
            content_type = v
        else:
            extra["HTTP_" + k.upper().replace("-", "_")] = v
    if case.get("expect"):
        extra["HTTP_EXPECT"] = "100-continue"
    if case.get("chunked"):
        extra.update({
            "CONTENT_TYPE": content_type,
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
        })
        body = b""
    env = EnvironFactory().generic(case["method"], case["path"], data=body or b"",
                                   content_type=content_type, **extra)
    got = {}

    def start_response(status, headers, exc_info=None):
        got["status"], got["headers"] = status, headers

    result = application(env, start_response)
    try:
        out = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return finish(case, got["status"], got["headers"], out)


def main():
    which = sys.argv[1:] or ["flask", "django"]
    out = {}
    for name in which:
        run = run_flask if name == "flask" else run_django
        out[name] = [run(c) for c in cases()]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
