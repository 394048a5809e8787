"""The same routes as flask_app.py's compared ones, the Django way."""

import hashlib
import json

from django.http import (
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators.http import require_http_methods


def multi(d):
    return {k: d.getlist(k) for k in sorted(d.keys())}


@require_http_methods(["GET", "HEAD"])
def query(request):
    return JsonResponse({"path": request.path, "args": multi(request.GET)})


@require_http_methods(["POST"])
def form(request):
    return JsonResponse({"form": multi(request.POST)})


@require_http_methods(["POST"])
def upload(request):
    f = request.FILES["file"]
    data = f.read()
    return JsonResponse(
        {
            "filename": f.name,
            "content_type": f.content_type,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "form": multi(request.POST),
        }
    )


@require_http_methods(["POST"])
def json_echo(request):
    data = json.loads(request.body)
    return JsonResponse({"got": data, "keys": sorted(data)})


def go_elsewhere(request):
    return HttpResponseRedirect("/query?a=redirected")


def cookies(request):
    resp = JsonResponse({"cookies": dict(sorted(request.COOKIES.items()))})
    resp.set_cookie("a", "1")
    resp.set_cookie("sess", "xyz", httponly=True, samesite="Lax")
    resp.set_cookie("theme", "dark", path="/cookies")
    return resp


def stream(request):
    def gen():
        for i in range(20):
            yield "line %d of a streamed response\n" % i

    return StreamingHttpResponse(gen(), content_type="text/plain")


@require_http_methods(["DELETE"])
def nocontent(request):
    return HttpResponse(status=204)


@require_http_methods(["POST"])
def digest(request):
    # Django reads a body by CONTENT_LENGTH only; a chunked one (no
    # CONTENT_LENGTH) is read from wsgi.input, which the server ends
    # where the body ends (wsgi.input_terminated).
    meta = request.META
    if "CONTENT_LENGTH" not in meta and meta.get("wsgi.input_terminated"):
        stream = meta["wsgi.input"]
    else:
        stream = request
    h = hashlib.sha256()
    n = 0
    while True:
        piece = stream.read(65536)
        if not piece:
            break
        h.update(piece)
        n += len(piece)
    return JsonResponse({"size": n, "sha256": h.hexdigest()})
