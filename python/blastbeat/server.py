"""The WSGI server: one IO thread that owns the ZeroMQ sockets, and a pool
of worker threads that run the application.

Threads
-------
pyzmq sockets are not thread-safe, so only the IO thread (the one that
calls :meth:`Server.serve_forever`) touches them. It

- receives every message from every proxy and answers ``ping`` with
  ``pong`` at once (so a slow view never makes a proxy think the node
  died),
- starts a request on ``uwsgi`` (or ``headers``) and hands it to the
  worker pool, feeds ``body`` pieces to its ``wsgi.input``, adds
  ``credit`` to its allowance, and cancels it on ``end``,
- sends what the workers produced: a worker appends its messages to a
  queue (a :class:`collections.deque`) and wakes the IO thread through a
  pipe that the :class:`zmq.Poller` watches beside the sockets.

Several proxies
---------------
One ``DEALER`` per endpoint, all with the node's name as identity. A
request remembers the socket its head came from, and every message of its
reply goes out on that socket (sids are unique across proxies, like the
Go library's ``node/route.go``). Sessions are keyed by (socket, sid), so
one proxy's ``end`` can never touch another's session.

Responses
---------
The head goes as a ``headers`` message (``HTTP/1.1 <status>`` and the
application's fields; the proxy rewrites the status line for HTTP/2 and
adds ``Date`` and ``Connection``). The body is framed as follows:

- ``HEAD``, ``1xx``, ``204``, ``304``: no body (what the application
  yields is not sent, and its iterable is closed after the head);
- the application gave ``Content-Length``: ``body`` messages, at most that
  many bytes (more is dropped; fewer ends the connection with ``end``, as
  the client could not tell the response from a cut one). The first piece
  rides in the ``headers`` message (a PROTOCOL.md extension), so a small
  response is one message;
- otherwise: ``Transfer-Encoding: chunked`` is added and every piece is
  a ``chunk`` message, the last one empty. For an HTTP/1.0 client too:
  the proxy de-chunks it and closes the connection after the last chunk,
  and resets it on an ``end`` before it (a body delimited by the close
  alone would look whole to the client when it is cut short).

As in wsgiref and gunicorn, a response whose iterable is a list or tuple
of one bytestring, without Content-Length, gets one.

Credits
-------
The node answers ``pong`` with ``credits`` (unless ``credits=False``),
and never sends more body bytes on a session than its ``credit``
messages granted since the request head: a worker waits for credit, and
gives up (ending the response with ``end``) on the proxy's ``end`` or
after ``timeout`` seconds without any.

Cancellation
------------
The proxy's ``end`` (the client went away) cancels the request: the
request body not yet read is freed, a read of ``wsgi.input`` that would
wait (or wants what was freed) raises
:class:`~blastbeat.input.ClientDisconnected`, what the application
writes is dropped, and its iterable is closed at its next yield (its
``close()`` is always called, whatever happens).
"""

import collections
import logging
import os
import queue
import signal
import sys
import threading
import time

import zmq

from .input import ClientDisconnected, InputStream
from .uwsgi import UwsgiError, decode_environ

__all__ = ["Server", "FileWrapper", "environ_from_head"]

log = logging.getLogger("blastbeat")
access_log = logging.getLogger("blastbeat.access")

# The largest piece of a body sent in one message, credits or not: the
# proxy drops a node's connection past zmq-max-message, and closes a
# client that one message puts past max-pending-output (4 MiB).
_MAX_PIECE = 1 << 20

# The largest response head the proxy takes (protocol/response.go).
_MAX_HEAD = 64 << 10

# Body framing of a response.
_NONE, _LENGTH, _CHUNKED = range(3)

# Message types.
_PING, _PONG, _UWSGI, _HEADERS, _BODY = b"ping", b"pong", b"uwsgi", b"headers", b"body"
# Response fields an application may not set (PEP 3333: hop-by-hop):
# dropped. Connection stays: "close" asks the proxy to close the client's
# connection after the response.
_HOP_BY_HOP = frozenset(("transfer-encoding", "upgrade", "te", "trailer", "keep-alive", "proxy-connection"))

_CHUNK, _END, _CREDIT, _RETRY = b"chunk", b"end", b"credit", b"retry"

# Messages read from one socket before the others get their turn.
_BATCH = 256
# Body pieces at least this large are sent without a copy.
_ZEROCOPY = 64 * 1024
# Messages held for one proxy that does not take them (ZeroMQ's
# high-water mark reached); past it, the session of a new message ends.
_MAX_BACKLOG = 1 << 16

# At most one log line per this many seconds for failed sends.
_SEND_ERROR_LOG_EVERY = 60.0

# Send errors after which the socket takes nothing more (the context
# terminated, the socket closed).
_SOCKET_GONE = frozenset((zmq.ETERM, zmq.ENOTSOCK))

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class _Cancelled(Exception):
    """The request cannot go on: the proxy ended it, or it timed out."""


class FileWrapper(object):
    """``wsgi.file_wrapper``: iterates over a file in blocks."""

    def __init__(self, filelike, blksize=64 * 1024):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


def _status_ok(status):
    """A final status line (200 to 599: a 1xx is no final answer, the
    proxy would wait on for one), without control characters."""
    return (
        type(status) is str
        and len(status) >= 3
        and status[:3].isdigit()
        and 200 <= int(status[:3]) <= 599
        and (len(status) == 3 or status[3] == " ")
        and not _bad_value_char(status)
    )


def _bad_value_char(s):
    """Whether s has a character the proxy refuses in a field value:
    a control character other than tab, or DEL."""
    return any((c < " " and c != "\t") or c == "\x7f" for c in s)


def _check_headers(headers):
    if type(headers) is not list:
        raise TypeError("response headers must be a list, not %s" % type(headers).__name__)
    for h in headers:
        if type(h) is not tuple or len(h) != 2:
            raise TypeError("a response header must be a (name, value) tuple: %r" % (h,))
        name, value = h
        if type(name) is not str or type(value) is not str:
            raise TypeError("response header name and value must be str: %r" % (h,))
        if not name or not _TOKEN.issuperset(name):
            raise ValueError("invalid response header name %r" % name)
        if _bad_value_char(value):
            raise ValueError("response header %s has a control character in its value" % name)


def environ_from_head(raw):
    """Build the CGI part of an environ from a raw HTTP request head (the
    proxy's ``format = headers``). The uwsgi format is better: it also
    carries REMOTE_ADDR, SERVER_PORT and the scheme."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise ValueError("bad request line %r" % lines[0][:100])
    method, target, proto = (p.decode("latin-1") for p in parts)
    path = target
    if "://" in path.split("?", 1)[0]:
        rest = path.split("://", 1)[1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    path, _, query = path.partition("?")
    from urllib.parse import unquote_to_bytes

    env = {
        "REQUEST_METHOD": method,
        "REQUEST_URI": target,
        # The path's bytes (a str unquote_to_bytes would encode as UTF-8).
        "PATH_INFO": unquote_to_bytes(path.encode("latin-1")).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": proto,
        "SCRIPT_NAME": "",
    }
    for line in lines[1:]:
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or "_" in name or name.strip().lower() == "proxy":
            continue  # "proxy": HTTP_PROXY would pose as the proxy setting (httpoxy)
        name, value = name.strip().upper().replace("-", "_"), value.strip()
        if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = name
        else:
            key = "HTTP_" + name
        if key in env:
            env[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            env[key] = value
    # Upgrade without "upgrade" in Connection, or in HTTP/1.0, is a plain
    # request to the proxy (protocol/request.go), which passes no
    # HTTP_UPGRADE then in the uwsgi format.
    if proto == "HTTP/1.0" or not any(t.strip().lower() == "upgrade" for t in env.get("HTTP_CONNECTION", "").split(",")):
        env.pop("HTTP_UPGRADE", None)
    host = env.get("HTTP_HOST", "")
    if host.startswith("["):
        name, _, port = host[1:].partition("]")
        port = port[1:]
    else:
        name, _, port = host.partition(":")
    env["SERVER_NAME"] = name
    env["SERVER_PORT"] = port or "80"
    return env


def _body_length(env):
    """The request body's length: an int, or None when it ends with an
    empty ``body`` message. Raises ValueError on a malformed
    ``CONTENT_LENGTH``."""
    cl = env.get("CONTENT_LENGTH")
    if cl:
        # "5, 5" (a repeated field, format = headers): one length, which
        # the proxy accepted only when every copy agrees (RFC 9110 §8.6).
        values = {v.strip() for v in cl.split(",")}
        if len(values) == 1:
            cl = values.pop()
            # isascii(): "²" (latin-1 b"\xb2") is a digit to isdigit(),
            # not to int().
            if cl.isascii() and cl.isdigit() and len(cl) <= 18:
                return int(cl)
        raise ValueError("invalid CONTENT_LENGTH %r" % cl[:40])
    if cl is not None:
        return 0
    if "chunked" in env.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    return 0


def _is_websocket(env):
    """Whether the request asks for a WebSocket: websocket is one of the
    tokens of Upgrade (whose repeated fields the environ joins)."""
    tokens = env.get("HTTP_UPGRADE", "").lower().split(",")
    return any(t.strip() == "websocket" for t in tokens)


class Request(object):
    """One request on one session, from its head to the end of its reply.

    The IO thread creates it and calls :meth:`add_credit` and
    :meth:`cancel`; a worker calls :meth:`run`."""

    def __init__(self, server, sock, sid, environ):
        self.server = server
        self.sock = sock
        self.sid = sid
        self.key = (sock, sid)
        self.environ = environ
        self.cond = threading.Condition(threading.Lock())
        # Set by the IO thread only: the proxy ended the session, or a
        # newer request replaced it. Its output is dropped.
        self.gone = False
        # The worker gave up (timeout, error after the head): it sent `end`.
        self.aborted = False
        self.credit = 0 if server.credits else None
        self.granted = 0
        self.credit_waits = 0
        self.input = InputStream(_body_length(environ), self.cond, server.timeout)
        self.status = None
        self.headers = None
        self.head_sent = False
        self.mode = _NONE
        self.remaining = 0  # body bytes left under Content-Length
        self.done = False  # every byte of the body went; nothing more to send
        self.started = False  # a worker took it (under cond): the stop lets it finish
        self.sent = 0  # body bytes sent

    # --- the IO thread's side -------------------------------------------------

    def add_credit(self, body):
        if self.credit is None:
            return
        if not body.isdigit() or len(body) > 18:
            self.server.stats["bad_credit"] += 1
            return
        with self.cond:
            self.credit += int(body)
            self.granted += int(body)
            self.cond.notify_all()

    def cancel(self):
        with self.cond:
            self.gone = True
            self.cond.notify_all()
        self.input.cancel()
        # Free the unread body now (a request still queued for a worker
        # would hold it until then); reads of it raise.
        self.input.drop()

    # --- the worker's side --------------------------------------------------------

    def _post(self, typ, body=b""):
        self.server._post((self, typ, body))

    def _take_credit(self, want):
        """Wait for credit and take up to ``want`` bytes of it."""
        if self.credit is None:
            return want
        with self.cond:
            if self.credit <= 0:
                self.credit_waits += 1
                deadline = None
                while self.credit <= 0:
                    if self.gone or self.aborted:
                        raise _Cancelled()
                    if self.server.timeout is None:
                        self.cond.wait()
                        continue
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self.server.timeout
                    elif now >= deadline:
                        log.warning(
                            "no credit for %gs on %s %s: ending the response",
                            self.server.timeout,
                            self.environ.get("REQUEST_METHOD"),
                            self.environ.get("REQUEST_URI"),
                        )
                        raise _Cancelled()
                    self.cond.wait(deadline - now)
            n = min(want, self.credit)
            self.credit -= n
            return n

    def _abort(self):
        """End the session (the response cannot be completed). Never after
        a complete response: on a kept-alive connection that `end` would
        apply to the client's next request (PROTOCOL.md)."""
        if not self.aborted and not self.gone and not self.done:
            self.aborted = True
            self._post(_END)

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called again without exc_info")
        if not _status_ok(status):
            raise ValueError("invalid status %r: want a str like '200 OK'" % (status,))
        _check_headers(headers)
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data):
        """The ``write()`` callable start_response returns."""
        if self.status is None:
            raise AssertionError("write() before start_response()")
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError("write() takes bytes, not %s" % type(data).__name__)
            data = bytes(data)
        if not data:
            return  # nothing to send, not even the head (PEP 3333)
        try:
            self._out(data)
        except _Cancelled:
            self._abort()
            # As a broken connection does with other servers: the
            # application learns the client is gone, and stops.
            raise ClientDisconnected("the client went away")

    def _out(self, data):
        """Send one non-empty block of the body (after the head)."""
        if self.gone or self.aborted:
            raise _Cancelled()
        if not self.head_sent:
            self._send_head(data)
        elif not self.done:
            self._send_body(data)

    def _send_head(self, first):
        status = self.status
        if status is None:
            raise AssertionError("the application returned without calling start_response()")
        code = int(status[:3])
        env = self.environ
        lines = ["HTTP/1.1 ", status if len(status) > 3 else status + " ", "\r\n"]
        cl = cl_text = None
        for name, value in self.headers:
            lname = name.lower()
            if lname == "content-length":
                v = value.strip()
                if not v.isdigit() or (cl is not None and v != cl_text):
                    raise ValueError("invalid Content-Length %r" % value)
                cl, cl_text = int(v), v
            elif lname in _HOP_BY_HOP:
                continue  # framing and the connection are the server's (hop-by-hop, PEP 3333), as gunicorn drops them
            lines += (name, ": ", value, "\r\n")
        if env.get("REQUEST_METHOD") == "HEAD" or code < 200 or code in (204, 304):
            mode = _NONE
        elif cl is not None:
            mode = _LENGTH
        else:
            # HTTP/1.0 too: the proxy de-chunks for the client (PROTOCOL.md).
            mode = _CHUNKED
            lines.append("Transfer-Encoding: chunked\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        if len(head) > _MAX_HEAD:
            raise ValueError("response head of %d bytes, over %d" % (len(head), _MAX_HEAD))
        self.mode = mode
        rest = b""
        if mode == _NONE:
            self.done = True
        elif mode == _LENGTH:
            self.remaining = cl
            first = first[:cl]
            if cl == 0:
                self.done = True
        if first and mode == _LENGTH:
            n = self._take_credit(min(len(first), _MAX_PIECE))
            head += first[:n]
            rest = first[n:]
            self._count(n)
        elif first and mode == _CHUNKED:
            rest = first
        self.head_sent = True
        self._post(_HEADERS, head)
        if rest:
            self._send_body(rest)

    def _count(self, n):
        self.sent += n
        if self.mode == _LENGTH:
            self.remaining -= n
            if self.remaining <= 0:
                self.done = True

    def _send_body(self, data):
        if self.mode == _NONE:
            return
        if self.mode == _LENGTH:
            if len(data) > self.remaining:
                data = data[: self.remaining]
        typ = _CHUNK if self.mode == _CHUNKED else _BODY
        if len(data) >= _ZEROCOPY:
            data = memoryview(data)
        off, size = 0, len(data)
        while off < size:
            if self.gone or self.aborted:
                raise _Cancelled()
            n = self._take_credit(min(size - off, _MAX_PIECE))
            piece = data[off : off + n] if (off or n < size) else data
            self._post(typ, piece)
            self._count(n)
            off += n

    def _finish(self):
        if not self.head_sent:
            self._send_head(b"")
        if self.mode == _CHUNKED:
            self._post(_CHUNK, b"")
        elif self.mode == _LENGTH and self.remaining > 0:
            log.warning(
                "%s %s: the application sent %d bytes of its Content-Length %d; closing the connection",
                self.environ.get("REQUEST_METHOD"),
                self.environ.get("REQUEST_URI"),
                self.sent,
                self.sent + self.remaining,
            )
            self._abort()

    def _error(self, exc_info):
        env = self.environ
        log.error(
            "error in the application on %s %s",
            env.get("REQUEST_METHOD"),
            env.get("REQUEST_URI"),
            exc_info=exc_info,
        )
        if self.gone or self.aborted:
            return
        if self.head_sent:
            if self.done:
                return  # the response is whole: an `end` now would cut the connection
            self._abort()
            return
        body = b"Internal Server Error\n"
        self.status = "500 Internal Server Error"
        self.headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        try:
            self._send_head(body)
            self._finish()
        except _Cancelled:
            self._abort()

    def _complete_environ(self):
        env = self.environ
        server = self.server
        env.setdefault("REQUEST_METHOD", "GET")
        env.setdefault("SCRIPT_NAME", "")
        env.setdefault("PATH_INFO", "")
        env.setdefault("QUERY_STRING", "")
        env.setdefault("SERVER_PROTOCOL", "HTTP/1.1")
        scheme = env.get("UWSGI_SCHEME")
        if scheme not in ("http", "https"):
            scheme = "https" if env.get("HTTPS", "").lower() in ("on", "1", "yes") else "http"
        env.setdefault("SERVER_NAME", "")
        if not env.get("SERVER_PORT"):
            env["SERVER_PORT"] = "443" if scheme == "https" else "80"
        env["wsgi.version"] = (1, 0)
        env["wsgi.url_scheme"] = scheme
        env["wsgi.input"] = self.input
        env["wsgi.errors"] = sys.stderr
        env["wsgi.multithread"] = server.threads > 1
        env["wsgi.multiprocess"] = server.multiprocess
        env["wsgi.run_once"] = False
        env["wsgi.input_terminated"] = True
        env["wsgi.file_wrapper"] = FileWrapper
        env["blastbeat.sid"] = self.sid
        env["blastbeat.node"] = server.node

    def run(self):
        """Run the application and send its reply."""
        with self.cond:
            if self.gone:
                return
            self.started = True
        self._complete_environ()
        result = None
        try:
            result = self.server.app(self.environ, self.start_response)
            if (
                type(result) in (list, tuple)
                and len(result) == 1
                and type(result[0]) is bytes
                and self.status is not None
                and not self.head_sent
                and not (self.status < "200" or self.status[:3] in ("204", "304"))
                and self.environ.get("REQUEST_METHOD") != "HEAD"
                and not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in self.headers)
            ):
                # As wsgiref and gunicorn: the whole body is known. Not
                # for HEAD: an app that strips the body there returns
                # [b""], and its length is not the GET's.
                self.headers = self.headers + [("Content-Length", str(len(result[0])))]
            for data in result:
                if data:
                    if type(data) is not bytes:
                        if not isinstance(data, (bytearray, memoryview)):
                            raise TypeError("the application yielded %s, not bytes" % type(data).__name__)
                        data = bytes(data)
                    self._out(data)
                if self.done or self.gone or self.aborted:
                    break
            if not (self.gone or self.aborted):
                self._finish()
        except _Cancelled:
            self._abort()
        except ClientDisconnected as e:
            log.info(
                "%s %s: %s", self.environ.get("REQUEST_METHOD"), self.environ.get("REQUEST_URI"), e
            )
            self._abort()
        except BaseException:  # SystemExit in a view too: answer, then go on
            self._error(sys.exc_info())
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.error("error closing the application's iterable", exc_info=True)
        self._log_done()

    def _log_done(self):
        env = self.environ
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                '%s "%s %s %s" %s %d',
                env.get("REMOTE_ADDR", "-"),
                env.get("REQUEST_METHOD"),
                env.get("REQUEST_URI", env.get("PATH_INFO")),
                env.get("SERVER_PROTOCOL"),
                (self.status or "-")[:3],
                self.sent,
            )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "done %s %s sid=%s status=%s sent=%d granted=%s credit_waits=%d%s",
                env.get("REQUEST_METHOD"),
                env.get("REQUEST_URI"),
                self.sid.hex(),
                (self.status or "-")[:3],
                self.sent,
                "-" if self.credit is None else self.granted,
                self.credit_waits,
                " cancelled" if self.gone else (" aborted" if self.aborted else ""),
            )


class Server(object):
    """A WSGI server for BlastBeat.

    ``app`` is the WSGI application; ``node`` the node name (the DEALER
    identity virtual hosts list); ``endpoints`` the proxies' ZeroMQ
    endpoints, one DEALER each. ``threads`` workers run the application.
    ``timeout`` (seconds, or None) bounds each wait of a worker for request
    body or for credit. ``credits`` makes the node speak credits (turn it
    off only for a proxy that predates them: it would never grant any).
    ``max_buffer`` (bytes, or None for no limit) bounds the request body a
    request holds unread (the application reads slower than the client
    sends, or the request still waits for a worker): past it the session
    ends (the client gets 502 if no response began). ``max_buffer_total``
    (bytes, or None) bounds what all requests together hold unread: past
    it the session holding the most ends, until the rest fits (without it,
    ``threads`` slow readers and every queued upload could each hold
    ``max_buffer``).
    """

    def __init__(
        self,
        app,
        node,
        endpoints,
        threads=8,
        timeout=120.0,
        credits=True,
        multiprocess=False,
        graceful_timeout=10.0,
        context=None,
        max_buffer=64 << 20,
        max_buffer_total=256 << 20,
    ):
        if isinstance(node, str):
            node = node.encode()
        if not node:
            raise ValueError("a node name is required")
        endpoints = list(endpoints)
        if not endpoints:
            raise ValueError("at least one endpoint is required")
        for i, ep in enumerate(endpoints):
            if ep in endpoints[:i]:
                raise ValueError("endpoint %s given twice" % ep)
        if threads < 1:
            raise ValueError("threads must be at least 1")
        for name, v in (("max_buffer", max_buffer), ("max_buffer_total", max_buffer_total)):
            if v is not None and v < 0:
                raise ValueError("%s must be None or 0 or more, not %r" % (name, v))
        self.app = app
        self.node = node
        self.endpoints = endpoints
        self.threads = threads
        self.timeout = timeout
        self.credits = credits
        self.multiprocess = multiprocess
        self.graceful_timeout = graceful_timeout
        self.max_buffer = max_buffer
        self.max_buffer_total = max_buffer_total
        # An upper bound of the body bytes all sessions hold unread: what
        # was fed, less what the last count found read (workers read
        # without telling the IO thread; counted again only past the cap).
        self._held = 0
        self._send_error_logged = -_SEND_ERROR_LOG_EVERY  # monotonic time of the last send-error line
        self.stats = collections.Counter()
        self._ctx = context or zmq.Context.instance()
        # Pongs name this process (a random token), so the proxy can log
        # two processes that share one node name (PROTOCOL.md, pong).
        self._pong = (b"credits " if credits else b"") + b"instance=" + os.urandom(8).hex().encode()
        self._out = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._wake_pending = False
        self._wake_lock = threading.Lock()
        self._work = queue.SimpleQueue()
        self._sessions = {}
        self._inflight = 0
        self._draining = None  # deadline once stop() was called
        self._drain_begun = False  # the IO thread sent the queued requests back
        self._stop_now = False
        self._socks = []
        self._backlog = []
        self._poller = None
        self._workers = []

    # --- thread-safe control ----------------------------------------------------

    def _wake(self):
        # Under the lock the stop closes the pipe with: a worker still
        # running after it must not write into a descriptor number that
        # something else took since.
        # Not blocking: stop() may run in a signal handler on the IO
        # thread, while it holds the lock to close the pipe.
        if not self._wake_lock.acquire(blocking=False):
            return  # the pipe is being closed: nothing to wake
        try:
            if self._wake_w >= 0:
                os.write(self._wake_w, b"\0")
        except (BlockingIOError, BrokenPipeError):
            pass  # full (the IO thread wakes anyway), or its reader closed
        finally:
            self._wake_lock.release()

    def _post(self, item):
        """Queue a message for the IO thread (any thread)."""
        self._out.append(item)
        if not self._wake_pending:
            self._wake_pending = True
            self._wake()

    def stop(self, graceful=True):
        """Stop serving (any thread, or a signal handler). Graceful: new
        requests are sent back to the proxy with ``retry`` (it tries
        another node) while those in flight finish, for at most
        ``graceful_timeout`` seconds; a second call stops at once."""
        if graceful and self._draining is None:
            self._draining = time.monotonic() + self.graceful_timeout
        else:
            self._stop_now = True
        self._wake()

    def install_signal_handlers(self):
        """Stop gracefully on SIGTERM and SIGINT, at once on the second
        (call from the main thread)."""

        def on_signal(signum, frame):
            log.info("signal %d: stopping", signum)
            self.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    # --- the IO thread -----------------------------------------------------------

    def serve_forever(self):
        ctx = self._ctx
        poller = zmq.Poller()
        for ep in self.endpoints:
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.IDENTITY, self.node)
            s.setsockopt(zmq.LINGER, 2000)
            s.setsockopt(zmq.SNDHWM, 10000)
            s.setsockopt(zmq.RCVHWM, 10000)
            s.connect(ep)
            self._socks.append(s)
            self._backlog.append(collections.deque())
            poller.register(s, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        self._poller = poller
        # Announce the node at once with an unsolicited pong (any message
        # marks a node alive, and a pong carries its features): the proxy
        # routes to it without waiting for its first ping. ZeroMQ sends it
        # as soon as the connection is up.
        for i in range(len(self._socks)):
            self._send(i, [b"", _PONG, self._pong])
        for i in range(self.threads):
            t = threading.Thread(target=self._worker, name="blastbeat-worker-%d" % i, daemon=True)
            t.start()
            self._workers.append(t)
        log.info(
            "node %s connected to %s; %d worker threads; credits %s",
            self.node.decode("latin-1"),
            ", ".join(self.endpoints),
            self.threads,
            "on" if self.credits else "off",
        )
        socks = self._socks
        try:
            while not self._stop_now:
                timeout = 1000
                if self._draining is not None:
                    if not self._drain_begun:
                        self._drain_begun = True
                        self._send_back_queued()
                    if self._inflight == 0:
                        break
                    if time.monotonic() >= self._draining:
                        self._end_running()
                        break
                    timeout = 100
                events = poller.poll(timeout)
                for sock, ev in events:
                    if sock == self._wake_r:
                        self._drain_wake()
                        continue
                    i = socks.index(sock)
                    if ev & zmq.POLLOUT:
                        self._flush_backlog(i)
                    if ev & zmq.POLLIN:
                        self._read(i, sock)
                self._flush()
        finally:
            for _ in self._workers:
                self._work.put(None)
            self._flush()
            for s in socks:
                s.close(linger=2000 if not self._stop_now else 0)
            with self._wake_lock:
                os.close(self._wake_w)
                self._wake_w = -1
            os.close(self._wake_r)
            log.info("node %s stopped; counters: %s", self.node.decode("latin-1"), dict(self.stats) or "none")

    def _send_back_queued(self):
        """At the graceful stop: requests still waiting for a worker go back
        to the proxy (``retry``: another node of the virtual host serves
        them, with the body the proxy kept); only those a worker started
        finish here. Left queued, they ran after the sockets closed, or
        not at all, and the proxy failed them over only once it found the
        node dead (a POST could run twice). First every proxy hears that
        the node drains (a pong with "draining", as every later one): it
        would otherwise prefer this node, the one with the fewest
        sessions, for each new session, and each would come back."""
        self._pong += b" draining"
        for i in range(len(self._socks)):
            self._send(i, [b"", _PONG, self._pong])
        n = 0
        for key, req in list(self._sessions.items()):
            with req.cond:
                if req.started or req.gone:
                    continue
                req.gone = True
                req.cond.notify_all()
            req.input.cancel()
            req.input.drop()
            del self._sessions[key]
            self._send(req.sock, [req.sid, _RETRY, b""])
            n += 1
        if n:
            self.stats["retried_at_stop"] += n
            log.info("stopping: %d queued request(s) sent back to the proxy (retry)", n)

    def _end_running(self):
        """At the graceful stop's deadline: the requests still running are
        ended (``end``), so that their clients are not left waiting; never
        one whose response went whole (PROTOCOL.md: `end` would apply to the
        client's next request), nor one whose last pieces wait in the
        outgoing queue (sent first)."""
        self._flush()
        for key, req in list(self._sessions.items()):
            if req.done:
                continue  # whole: what it posted goes out with the last flush
            req.cancel()
            del self._sessions[key]
            self._send(req.sock, [req.sid, _END, b""])

    def _drain_wake(self):
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        self._wake_pending = False

    def _read(self, i, sock):
        for _ in range(_BATCH):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                self._on_message(i, frames)
            except Exception:
                # One bad message must not stop the IO thread (and with it
                # every session and the pongs).
                self.stats["message_error"] += 1
                log.error("error handling a message from %s", self.endpoints[i], exc_info=True)

    def _send(self, i, frames):
        backlog = self._backlog[i]
        if not backlog:
            try:
                self._socks[i].send_multipart(frames, zmq.NOBLOCK, copy=len(frames[2]) < _ZEROCOPY)
                return
            except zmq.Again:
                self._poller.modify(self._socks[i], zmq.POLLIN | zmq.POLLOUT)
            except zmq.ZMQError as e:
                if e.errno in _SOCKET_GONE:
                    raise  # every later send fails too: the node stops, its supervisor restarts it
                self._send_failed(i, frames, e)
                return
        if len(backlog) >= _MAX_BACKLOG and frames[1] not in (_END, _PONG, _RETRY):
            # The proxy takes nothing (its loops lag, or it is gone): a
            # message dropped from the middle of a response would corrupt
            # it, so the session this one belongs to ends instead (its
            # `end` goes past the cap), and what it sends is dropped.
            self.stats["ended_backlog"] += 1
            req = self._sessions.pop((i, frames[0]), None)
            if req is not None:
                req.cancel()
            frames = [frames[0], _END, b""]
        backlog.append(frames)

    def _send_failed(self, i, frames, err):
        """One message could not be sent (not a full queue, not a socket
        gone: those raise): it is lost, so the session it belongs to
        cannot go on (a piece missing from the middle of a response would
        corrupt it). Its messages still queued are dropped, it is
        cancelled (its worker stops at its next write) and ended. The IO
        thread, every other session and the pongs go on."""
        self.stats["send_error"] += 1
        now = time.monotonic()
        if now - self._send_error_logged >= _SEND_ERROR_LOG_EVERY:
            # The first of a run at once, then one line per interval: a
            # run of them cannot flood the log.
            self._send_error_logged = now
            log.error(
                "sending %s to %s failed (%d so far): %s",
                frames[1].decode("latin-1"),
                self.endpoints[i],
                self.stats["send_error"],
                err,
            )
        sid, typ = frames[0], frames[1]
        if typ in (_PONG, _END, _RETRY):
            return  # no session goes on after it
        req = self._sessions.pop((i, sid), None)
        if req is not None:
            req.cancel()
        backlog = self._backlog[i]
        keep = [f for f in backlog if f[0] != sid]
        if len(keep) != len(backlog):
            backlog.clear()
            backlog.extend(keep)
        self._send(i, [sid, _END, b""])

    def _flush_backlog(self, i):
        backlog = self._backlog[i]
        sock = self._socks[i]
        while backlog:
            frames = backlog[0]
            try:
                sock.send_multipart(frames, zmq.NOBLOCK, copy=len(frames[2]) < _ZEROCOPY)
            except zmq.Again:
                return
            except zmq.ZMQError as e:
                if e.errno in _SOCKET_GONE:
                    raise
                backlog.popleft()
                self._send_failed(i, frames, e)
                continue
            backlog.popleft()
        self._poller.modify(sock, zmq.POLLIN)

    def _flush(self):
        out = self._out
        sessions = self._sessions
        while out:
            req, typ, body = out.popleft()
            if typ is None:  # the worker is done with req
                if sessions.get(req.key) is req:
                    del sessions[req.key]
                self._inflight -= 1
                continue
            if req.gone:
                continue
            if typ == _END and sessions.get(req.key) is req:
                del sessions[req.key]
            self._send(req.sock, [req.sid, typ, body])

    def _on_message(self, i, frames):
        if len(frames) != 3:
            self.stats["bad_message"] += 1
            return
        sid, typ, body = frames
        if typ == _BODY:
            req = self._sessions.get((i, sid))
            if req is not None:
                if body:
                    req.input.feed(body)
                    if self.max_buffer and req.input.buffered > self.max_buffer:
                        self._overflow(i, sid, req)
                    elif self.max_buffer_total:
                        self._held += len(body)
                        if self._held > self.max_buffer_total:
                            self._keep_total()
                else:
                    req.input.finish()
        elif typ == _CREDIT:
            req = self._sessions.get((i, sid))
            if req is not None:
                req.add_credit(body)
        elif typ == _PING:
            self._send(i, [sid, _PONG, self._pong])
            if log.isEnabledFor(logging.DEBUG):
                log.debug("ping from %s answered", self.endpoints[i])
        elif typ == _UWSGI or typ == _HEADERS:
            self._on_head(i, sid, typ, body)
        elif typ == _END:
            req = self._sessions.pop((i, sid), None)
            if req is not None:
                req.cancel()
        elif typ == b"websocket" or typ == b"websocket-binary":
            self.stats["websocket_dropped"] += 1
        else:
            self.stats["unknown_type"] += 1

    def _overflow(self, i, sid, req):
        """Shed a request whose unread body outgrew max_buffer (_shed)."""
        log.warning(
            "%s %s: more than %d bytes of request body unread; %s",
            req.environ.get("REQUEST_METHOD"),
            req.environ.get("REQUEST_URI"),
            self.max_buffer,
            "dropping the rest (the response went whole)" if req.done else "ending the session",
        )
        self.stats["body_overflow"] += 1
        self._shed((i, sid), req)

    def _shed(self, key, req):
        """Free the request body req holds unread (reads of it raise, even
        if it was complete), and end its session, unless its response went
        whole: an `end` then would apply to the client's next request
        (PROTOCOL.md); the body still arriving is dropped instead."""
        if req.done:
            req.input.cancel()
            req.input.drop()
            return
        del self._sessions[key]
        req.cancel()
        self._send(req.sock, [req.sid, _END, b""])

    def _keep_total(self):
        """All sessions together hold more unread request body than
        max_buffer_total: count it, and shed what the sessions holding the
        most hold until the rest fits (like the Go library's
        MaxBufferTotal; a request answered already first: its body is
        dropped, and no session ends). While the true total stays near the
        cap, each body message recounts every session: bounded by the
        sessions, and only under that pressure. An ended session's client gets 502 if no
        response began (the worker, not this thread, owns the response)."""
        holders = [(req.input.buffered, key, req) for key, req in self._sessions.items()]
        total = sum(h[0] for h in holders)
        if total > self.max_buffer_total:
            holders.sort(key=lambda h: (h[2].done, h[0]), reverse=True)
            for held, key, req in holders:
                if total <= self.max_buffer_total or held == 0:
                    continue
                if req.done:
                    self._shed(key, req)
                    total -= held
                    continue
                log.warning(
                    "%s %s: %d bytes of request body unread across requests, over max_buffer_total %d;"
                    " ending the session holding the most (%d)",
                    req.environ.get("REQUEST_METHOD"),
                    req.environ.get("REQUEST_URI"),
                    total,
                    self.max_buffer_total,
                    held,
                )
                self.stats["body_overflow_total"] += 1
                self._shed(key, req)
                total -= held
        self._held = total

    def _on_head(self, i, sid, typ, body):
        key = (i, sid)
        old = self._sessions.pop(key, None)
        if old is not None:
            old.cancel()  # its reply ended; nothing more of it may go out
        try:
            env = decode_environ(body) if typ == _UWSGI else environ_from_head(body)
            _body_length(env)  # a malformed CONTENT_LENGTH is a bad head
        except (UwsgiError, ValueError) as e:
            log.warning("bad request head from %s: %s", self.endpoints[i], e)
            self._send(i, [sid, _END, b""])
            return
        if _is_websocket(env):
            # WSGI has no WebSocket: the proxy already answered the
            # handshake; `end` closes it (code 1000).
            log.info("closing a WebSocket session (WSGI cannot serve it): %s", env.get("REQUEST_URI"))
            self._send(i, [sid, _END, b""])
            return
        if self._draining is not None:
            self._send(i, [sid, _RETRY, b""])
            if log.isEnabledFor(logging.DEBUG):
                log.debug("request %s %s sent back (retry): the node stops", env.get("REQUEST_METHOD"), env.get("REQUEST_URI"))
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "request %s %s sid=%s from %s",
                env.get("REQUEST_METHOD"),
                env.get("REQUEST_URI"),
                sid.hex(),
                self.endpoints[i],
            )
        req = Request(self, i, sid, env)
        self._sessions[key] = req
        self._inflight += 1
        self._work.put(req)

    # --- workers ---------------------------------------------------------------

    def _worker(self):
        work = self._work
        while True:
            req = work.get()
            if req is None:
                return
            try:
                req.run()
            except BaseException:
                log.critical("worker error", exc_info=True)
            finally:
                self._post((req, None, None))
