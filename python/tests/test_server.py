"""The response side of blastbeat.server.Request, without sockets: a fake
server records the messages a request would send."""

import collections
import os
import sys
import threading
import time
import unittest

import zmq

from blastbeat import server as srv
from blastbeat import uwsgi
from blastbeat.input import ClientDisconnected


class FakeServer(object):
    def __init__(self, app, credits=True, timeout=5.0):
        self.app = app
        self.credits = credits
        self.timeout = timeout
        self.threads = 4
        self.multiprocess = False
        self.node = b"test"
        self.stats = collections.Counter()
        self.sent = []
        self.lock = threading.Lock()

    def _post(self, item):
        req, typ, body = item
        with self.lock:
            self.sent.append((typ, bytes(body)))


def environ(method="GET", proto="HTTP/1.1", **extra):
    env = {
        "REQUEST_METHOD": method,
        "REQUEST_URI": "/p?q",
        "PATH_INFO": "/p",
        "QUERY_STRING": "q",
        "SERVER_PROTOCOL": proto,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "example.test",
        "SERVER_PORT": "8080",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "5555",
        "UWSGI_SCHEME": "http",
    }
    env.update(extra)
    return env


def run(app, credit=b"1000000", **kw):
    env = kw.pop("env", None) or environ()
    fs = FakeServer(app, **kw)
    req = srv.Request(fs, 0, b"S" * 16, env)
    if credit:
        req.add_credit(credit)
    req.run()
    return fs.sent, req


def simple(status="200 OK", headers=None, body=(b"hello",)):
    def app(environ, start_response):
        start_response(status, list(headers if headers is not None else [("Content-Type", "text/plain")]))
        return list(body)

    return app


class TestFraming(unittest.TestCase):
    def test_content_length_one_message(self):
        sent, _ = run(simple(headers=[("Content-Type", "text/plain"), ("Content-Length", "5")]))
        self.assertEqual(sent, [(b"headers", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")])

    def test_single_item_list_gets_content_length(self):
        sent, _ = run(simple())
        self.assertEqual(sent, [(b"headers", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")])

    def test_head_stripped_body_gets_no_content_length(self):
        # A framework that strips HEAD's body returns [b""]: a
        # Content-Length: 0 would be a false length of the GET's body.
        sent, _ = run(simple(body=(b"",)), env=environ(method="HEAD"))
        self.assertEqual(len(sent), 1, sent)
        self.assertNotIn(b"Content-Length", sent[0][1])

    def test_generator_is_chunked(self):
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b""
            yield b"a"
            yield b"bc"

        sent, _ = run(app)
        self.assertEqual(
            sent,
            [
                (b"headers", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"),
                (b"chunk", b"a"),
                (b"chunk", b"bc"),
                (b"chunk", b""),
            ],
        )

    def test_http10_is_chunked(self):
        # The proxy de-chunks for an HTTP/1.0 client (PROTOCOL.md): the
        # client sees a close-delimited body.
        def app(environ, start_response):
            start_response("200 OK", [])
            yield b"a"
            yield b"b"

        sent, _ = run(app, env=environ(proto="HTTP/1.0"))
        self.assertEqual(
            sent,
            [
                (b"headers", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
                (b"chunk", b"a"),
                (b"chunk", b"b"),
                (b"chunk", b""),
            ],
        )

    def test_http10_cut_body_is_not_a_clean_close(self):
        # An `end` before the last chunk makes the proxy reset an HTTP/1.0
        # client's connection; under a close-delimited head it would close
        # it cleanly, and the client would take the cut body as whole.
        def app(environ, start_response):
            start_response("200 OK", [])
            yield b"a"
            raise RuntimeError("mid-body")

        with self.assertLogs("blastbeat", "ERROR"):
            sent, _ = run(app, env=environ(proto="HTTP/1.0"))
        self.assertEqual(
            sent,
            [
                (b"headers", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
                (b"chunk", b"a"),
                (b"end", b""),
            ],
        )

    def test_head_and_bodyless_statuses(self):
        for method, status in (("HEAD", "200 OK"), ("GET", "204 No Content"), ("GET", "304 Not Modified")):
            with self.subTest(method=method, status=status):
                closed = []

                def app(environ, start_response):
                    start_response(status, [("Content-Length", "3")] if method == "HEAD" else [])

                    def gen():
                        try:
                            yield b"abc"
                            yield b"never"
                        finally:
                            closed.append(True)

                    return gen()

                sent, _ = run(app, env=environ(method=method))
                self.assertEqual(len(sent), 1, sent)
                self.assertEqual(sent[0][0], b"headers")
                self.assertTrue(sent[0][1].endswith(b"\r\n\r\n"))
                self.assertNotIn(b"Transfer-Encoding", sent[0][1])
                self.assertEqual(closed, [True])

    def test_empty_body_chunked(self):
        def app(environ, start_response):
            start_response("200 OK", [])
            return iter([])

        sent, _ = run(app)
        self.assertEqual(sent, [(b"headers", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), (b"chunk", b"")])

    def test_more_than_content_length_is_cut(self):
        def app(environ, start_response):
            start_response("200 OK", [("Content-Length", "4")])
            yield b"ab"
            yield b"cdef"
            yield b"gh"

        sent, _ = run(app)
        self.assertEqual(sent, [(b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"), (b"body", b"cd")])

    def test_less_than_content_length_ends_the_connection(self):
        def app(environ, start_response):
            start_response("200 OK", [("Content-Length", "10")])
            return iter([b"abc"])

        with self.assertLogs("blastbeat", "WARNING"):
            sent, _ = run(app)
        self.assertEqual(sent[-1], (b"end", b""))

    def test_app_transfer_encoding_dropped(self):
        sent, _ = run(simple(headers=[("Transfer-Encoding", "chunked"), ("Content-Length", "5")]))
        self.assertEqual(sent, [(b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")])

    def test_no_end_after_a_whole_response(self):
        # A write()-style app sends its whole Content-Length body, then
        # reading its input finds the client gone: no `end` (on a kept-alive
        # connection it would apply to the client's next request).
        def app(environ, start_response):
            write = start_response("200 OK", [("Content-Length", "2")])
            write(b"ok")
            raise ClientDisconnected("client gone while reading the body")

        with self.assertLogs("blastbeat", "INFO"):
            sent, _ = run(app)
        self.assertEqual(sent, [(b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")])

    def test_app_hop_by_hop_dropped(self):
        # An app's Upgrade: h2c (or TE, Trailer, Keep-Alive) would reach
        # the client; Connection: close stays (it asks for a close).
        hop = [("Upgrade", "h2c"), ("TE", "trailers"), ("Trailer", "X"), ("Keep-Alive", "5"), ("Proxy-Connection", "x")]
        sent, _ = run(simple(headers=hop + [("Connection", "close"), ("Content-Length", "5")]))
        self.assertEqual(sent, [(b"headers", b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello")])

    def test_repeated_headers_kept(self):
        sent, _ = run(simple(headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Content-Length", "5")]))
        self.assertIn(b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n", sent[0][1])


class TestStartResponse(unittest.TestCase):
    def test_write_callable(self):
        def app(environ, start_response):
            write = start_response("200 OK", [("Content-Length", "6")])
            write(b"ab")
            write(b"")
            write(b"cd")
            return [b"ef"]

        sent, _ = run(app)
        self.assertEqual(
            sent,
            [(b"headers", b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab"), (b"body", b"cd"), (b"body", b"ef")],
        )

    def test_exc_info_before_head_replaces_status(self):
        def app(environ, start_response):
            start_response("200 OK", [("X-A", "1")])
            try:
                raise ValueError("boom")
            except ValueError:
                start_response("500 Oops", [("Content-Length", "4")], sys.exc_info())
            return [b"oops"]

        sent, _ = run(app)
        self.assertEqual(sent, [(b"headers", b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops")])

    def test_exc_info_after_head_reraises_and_aborts(self):
        def app(environ, start_response):
            write = start_response("200 OK", [])
            write(b"started")
            try:
                raise KeyError("late")
            except KeyError:
                start_response("500 Oops", [], sys.exc_info())
            return []

        with self.assertLogs("blastbeat", "ERROR"):
            sent, _ = run(app)
        self.assertEqual(sent[-1], (b"end", b""))
        self.assertEqual(sent[1], (b"chunk", b"started"))

    def test_second_call_without_exc_info(self):
        def app(environ, start_response):
            start_response("200 OK", [])
            start_response("200 OK", [])
            return [b""]

        with self.assertLogs("blastbeat", "ERROR"):
            sent, _ = run(app)
        self.assertTrue(sent[0][1].startswith(b"HTTP/1.1 500 "))

    def test_error_before_head_is_500(self):
        def app(environ, start_response):
            raise RuntimeError("x")

        with self.assertLogs("blastbeat", "ERROR"):
            sent, _ = run(app)
        self.assertEqual(len(sent), 1)
        self.assertTrue(sent[0][1].startswith(b"HTTP/1.1 500 Internal Server Error\r\n"))
        self.assertTrue(sent[0][1].endswith(b"\r\n\r\nInternal Server Error\n"))

    def test_bad_headers(self):
        for headers in ([("X", "a\r\nInjected: 1")], [("Bad Name", "v")], [("X", 1)], (("X", "y"),)):
            with self.subTest(headers=headers):

                def app(environ, start_response):
                    start_response("200 OK", headers)
                    return [b"x"]

                with self.assertLogs("blastbeat", "ERROR"):
                    sent, _ = run(app)
                self.assertTrue(sent[0][1].startswith(b"HTTP/1.1 500 "))

    def test_str_body_is_an_error(self):
        def app(environ, start_response):
            start_response("200 OK", [])
            return ["text"]

        with self.assertLogs("blastbeat", "ERROR"):
            sent, _ = run(app)
        self.assertTrue(sent[0][1].startswith(b"HTTP/1.1 500 "))

    def test_close_always_called(self):
        closed = []

        class Body(object):
            def __iter__(self):
                yield b"a"
                raise RuntimeError("mid-body")

            def close(self):
                closed.append(True)

        def app(environ, start_response):
            start_response("200 OK", [])
            return Body()

        with self.assertLogs("blastbeat", "ERROR"):
            sent, _ = run(app)
        self.assertEqual(closed, [True])
        self.assertEqual(sent[-1], (b"end", b""))


class TestEnviron(unittest.TestCase):
    def test_wsgi_keys(self):
        seen = {}

        def app(environ, start_response):
            seen.update(environ)
            start_response("200 OK", [])
            return [b""]

        run(app, env=environ(UWSGI_SCHEME="https", HTTPS="on", CONTENT_LENGTH="0"))
        self.assertEqual(seen["wsgi.version"], (1, 0))
        self.assertEqual(seen["wsgi.url_scheme"], "https")
        self.assertTrue(seen["wsgi.input_terminated"])
        self.assertTrue(seen["wsgi.multithread"])
        self.assertFalse(seen["wsgi.multiprocess"])
        self.assertFalse(seen["wsgi.run_once"])
        self.assertIs(seen["wsgi.errors"], sys.stderr)
        self.assertEqual(seen["wsgi.input"].read(), b"")
        for k in ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL"):
            self.assertIsInstance(seen[k], str)

    def test_body_length_rules(self):
        self.assertEqual(srv._body_length({"CONTENT_LENGTH": "12"}), 12)
        self.assertIsNone(srv._body_length({"HTTP_TRANSFER_ENCODING": "chunked"}))
        self.assertEqual(srv._body_length({}), 0)

    def test_headers_format(self):
        env = srv.environ_from_head(
            b"POST /a%20b?x=1 HTTP/1.1\r\nHost: h.test:81\r\nContent-Length: 3\r\nX-A: 1\r\nX-A: 2\r\nCookie: a=1\r\nCookie: b=2\r\nX_Bad: no\r\n\r\n"
        )
        self.assertEqual(env["PATH_INFO"], "/a b")
        self.assertEqual(env["QUERY_STRING"], "x=1")
        self.assertEqual(env["CONTENT_LENGTH"], "3")
        self.assertEqual(env["HTTP_X_A"], "1, 2")
        self.assertEqual(env["HTTP_COOKIE"], "a=1; b=2")
        self.assertEqual((env["SERVER_NAME"], env["SERVER_PORT"]), ("h.test", "81"))
        self.assertNotIn("HTTP_X_BAD", env)

    def test_headers_format_upgrade(self):
        # Upgrade counts only when Connection lists it, and never in
        # HTTP/1.0 (RFC 9110 §7.8), as the proxy's uwsgi environ has it.
        head = b"GET / HTTP/1.%d\r\nHost: h\r\nUpgrade: websocket\r\nConnection: %s\r\n\r\n"
        self.assertEqual(srv.environ_from_head(head % (1, b"Upgrade"))["HTTP_UPGRADE"], "websocket")
        self.assertNotIn("HTTP_UPGRADE", srv.environ_from_head(head % (1, b"keep-alive")))
        self.assertNotIn("HTTP_UPGRADE", srv.environ_from_head(head % (0, b"Upgrade")))


class TestCredits(unittest.TestCase):
    def test_never_more_than_granted(self):
        body = bytes(range(256)) * 40  # 10 240 bytes

        def app(environ, start_response):
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]

        fs = FakeServer(app)
        req = srv.Request(fs, 0, b"S" * 16, environ())
        req.add_credit(b"1000")
        t = threading.Thread(target=req.run)
        t.start()
        granted = 1000
        while t.is_alive():
            with fs.lock:
                spent = sum(len(b) - (b.index(b"\r\n\r\n") + 4 if typ == b"headers" else 0) for typ, b in fs.sent)
            self.assertLessEqual(spent, granted)
            if spent == granted:
                req.add_credit(b"3000")
                granted += 3000
            time.sleep(0.001)
        t.join()
        out = b"".join(b for typ, b in fs.sent)
        self.assertTrue(out.endswith(body))
        self.assertGreater(req.credit_waits, 0)
        self.assertEqual(req.sent, len(body))

    def test_end_cancels_a_wait_for_credit(self):
        closed = []

        def app(environ, start_response):
            start_response("200 OK", [])

            def gen():
                try:
                    while True:
                        yield b"x" * 100
                finally:
                    closed.append(True)

            return gen()

        fs = FakeServer(app)
        req = srv.Request(fs, 0, b"S" * 16, environ())
        req.add_credit(b"250")
        t = threading.Thread(target=req.run)
        t.start()
        deadline = time.monotonic() + 5
        while req.credit_waits == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        req.cancel()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertEqual(closed, [True])
        self.assertEqual(req.sent, 250)

    def test_credit_timeout_ends_the_response(self):
        def app(environ, start_response):
            start_response("200 OK", [])
            return iter([b"a" * 10, b"b" * 10])

        with self.assertLogs("blastbeat", "WARNING"):
            sent, req = run(app, credit=b"15", timeout=0.05)
        self.assertEqual(sent[-1], (b"end", b""))
        self.assertEqual(req.sent, 15)

    def test_credits_off(self):
        sent, _ = run(simple(body=(b"x" * 100000,)), credit=None, credits=False)
        self.assertEqual(len(sent), 1)

    def test_bad_credit_ignored(self):
        fs = FakeServer(simple())
        req = srv.Request(fs, 0, b"S" * 16, environ())
        for bad in (b"", b"-5", b"12a", b"1" * 19):
            req.add_credit(bad)
        self.assertEqual(req.credit, 0)
        self.assertEqual(fs.stats["bad_credit"], 4)


class TestCancelInput(unittest.TestCase):
    def test_end_makes_a_blocked_read_raise(self):
        errors = []

        def app(environ, start_response):
            try:
                environ["wsgi.input"].read()
            except ClientDisconnected as e:
                errors.append(e)
                raise
            start_response("200 OK", [])
            return [b""]

        fs = FakeServer(app)
        req = srv.Request(fs, 0, b"S" * 16, environ(CONTENT_LENGTH="100"))
        t = threading.Thread(target=req.run)
        t.start()
        req.input.feed(b"part")
        time.sleep(0.02)
        req.cancel()
        t.join(5)
        self.assertEqual(len(errors), 1)
        self.assertEqual(fs.sent, [])


def io_server(**kw):
    """A Server whose IO thread's handlers are called by hand: no socket;
    what it would send is recorded."""
    s = srv.Server(None, b"test", ["inproc://unused"], **kw)
    sent = []
    s._send = lambda i, frames: sent.append(frames)
    return s, sent


def uwsgi_head(**env):
    return uwsgi.encode([("REQUEST_METHOD", "POST"), ("SERVER_PROTOCOL", "HTTP/1.1")] + sorted(env.items()))


class TestIOThread(unittest.TestCase):
    def server(self, **kw):
        s, sent = io_server(**kw)
        self.addCleanup(os.close, s._wake_r)
        self.addCleanup(os.close, s._wake_w)
        return s, sent

    def test_end_frees_a_queued_body(self):
        # A request still waiting for a worker held its body until then.
        s, sent = self.server()
        s._on_message(0, [b"sid1", b"uwsgi", uwsgi_head(CONTENT_LENGTH="100")])
        req = s._work.get_nowait()
        s._on_message(0, [b"sid1", b"body", b"x" * 60])
        self.assertEqual(req.input.buffered, 60)
        s._on_message(0, [b"sid1", b"end", b""])
        self.assertEqual(req.input.buffered, 0)
        with self.assertRaises(ClientDisconnected):
            req.input.read(10)
        self.assertEqual(sent, [])

    def test_overflow_on_the_last_piece_is_no_clean_end(self):
        # The last piece completes the body and puts it over max_buffer:
        # the body is dropped, and the application must not read b"" as
        # its whole (empty) rest.
        s, sent = self.server(max_buffer=50)
        s._on_message(0, [b"sid1", b"uwsgi", uwsgi_head(CONTENT_LENGTH="100")])
        req = s._work.get_nowait()
        s._on_message(0, [b"sid1", b"body", b"x" * 40])
        with self.assertLogs("blastbeat", "WARNING"):
            s._on_message(0, [b"sid1", b"body", b"y" * 60])
        self.assertEqual(sent, [[b"sid1", b"end", b""]])
        self.assertEqual(req.input.buffered, 0)
        with self.assertRaises(ClientDisconnected):
            req.input.read()

    def test_total_buffer_ends_the_largest_holder(self):
        # Three requests within max_buffer each; together past
        # max_buffer_total: the one holding the most ends, the others go on.
        s, sent = self.server(max_buffer=1000, max_buffer_total=250)
        reqs = {}
        for sid in (b"a", b"b", b"c"):
            s._on_message(0, [sid, b"uwsgi", uwsgi_head(CONTENT_LENGTH="500")])
            reqs[sid] = s._work.get_nowait()
        s._on_message(0, [b"a", b"body", b"x" * 100])
        s._on_message(0, [b"b", b"body", b"x" * 120])
        self.assertEqual(sent, [])
        with self.assertLogs("blastbeat", "WARNING") as logs:
            s._on_message(0, [b"c", b"body", b"x" * 40])
        self.assertIn("max_buffer_total 250", logs.output[0])
        self.assertEqual(sent, [[b"b", b"end", b""]])
        self.assertEqual(reqs[b"b"].input.buffered, 0)
        with self.assertRaises(ClientDisconnected):
            reqs[b"b"].input.read()
        self.assertEqual(sorted(k[1] for k in s._sessions), [b"a", b"c"])
        self.assertEqual(s.stats["body_overflow_total"], 1)
        # What a worker read no longer counts: a's 100 bytes read, then
        # 200 more fit (140 held in all before the recount, 240 after).
        self.assertEqual(reqs[b"a"].input.read(100), b"x" * 100)
        s._on_message(0, [b"a", b"body", b"y" * 200])
        self.assertEqual(sent, [[b"b", b"end", b""]])
        self.assertEqual(s._held, 240)

    def test_total_buffer_spares_a_whole_response(self):
        # The largest holder's response went whole (the app answered
        # without reading the upload): its body is dropped, and no `end`
        # goes out, which would apply to the client's next request.
        s, sent = self.server(max_buffer=1000, max_buffer_total=250)
        s._on_message(0, [b"a", b"uwsgi", uwsgi_head(CONTENT_LENGTH="500")])
        done = s._work.get_nowait()
        s._on_message(0, [b"b", b"uwsgi", uwsgi_head(CONTENT_LENGTH="500")])
        live = s._work.get_nowait()
        s._on_message(0, [b"a", b"body", b"x" * 200])
        done.done = True
        s._on_message(0, [b"b", b"body", b"x" * 100])
        self.assertEqual(sent, [])
        self.assertEqual(done.input.buffered, 0)
        self.assertEqual(live.input.buffered, 100)
        self.assertEqual(sorted(k[1] for k in s._sessions), [b"a", b"b"])
        s._on_message(0, [b"a", b"body", b"x" * 200])  # dropped on arrival
        self.assertEqual(done.input.buffered, 0)
        # The same for max_buffer.
        s._on_message(0, [b"c", b"uwsgi", uwsgi_head(CONTENT_LENGTH="5000")])
        big = s._work.get_nowait()
        big.done = True
        with self.assertLogs("blastbeat", "WARNING") as logs:
            s._on_message(0, [b"c", b"body", b"x" * 1001])
        self.assertIn("dropping the rest", logs.output[0])
        self.assertEqual(sent, [])
        self.assertEqual(big.input.buffered, 0)

    def test_total_buffer_off(self):
        s, sent = self.server(max_buffer=None, max_buffer_total=None)
        s._on_message(0, [b"a", b"uwsgi", uwsgi_head(CONTENT_LENGTH="1000")])
        s._on_message(0, [b"a", b"body", b"x" * 1000])
        self.assertEqual(sent, [])

    def test_a_failed_send_cancels_its_session_only(self):
        # A ZeroMQ error other than EAGAIN used to escape the IO thread and
        # stop the node: now the message's session is cancelled and ended,
        # its queued messages dropped, and the rest goes on.
        class Sock(object):
            def __init__(self):
                self.sent = []
                self.errno = zmq.EFAULT

            def send_multipart(self, frames, flags=0, copy=True):
                if frames[1] == b"body":
                    raise zmq.ZMQError(self.errno)
                self.sent.append(frames)

        class Poller(object):
            def modify(self, sock, flags):
                pass

        s = srv.Server(None, b"test", ["inproc://unused"])
        self.addCleanup(os.close, s._wake_r)
        self.addCleanup(os.close, s._wake_w)
        sock = Sock()
        s._socks = [sock]
        s._backlog = [collections.deque()]
        s._on_message(0, [b"sid1", b"uwsgi", uwsgi_head()])
        req = s._work.get_nowait()
        with self.assertLogs("blastbeat", "ERROR"):
            s._send(0, [b"sid1", b"body", b"piece"])
        self.assertTrue(req.gone)
        self.assertEqual(s._sessions, {})
        self.assertEqual(s.stats["send_error"], 1)
        s._send(0, [b"", b"pong", b"x"])
        self.assertEqual(sock.sent, [[b"sid1", b"end", b""], [b"", b"pong", b"x"]])
        # From the backlog: the failed piece's session loses its later
        # messages (a gap inside a response) and gets its end; another's
        # go out.
        s._poller = Poller()
        s._on_message(0, [b"sid2", b"uwsgi", uwsgi_head()])
        sock.sent = []
        s._backlog[0].extend([[b"sid2", b"body", b"a"], [b"sid3", b"chunk", b"c"], [b"sid2", b"chunk", b"b"]])
        with self.assertNoLogs("blastbeat", "ERROR"):  # a minute since the first line has not passed
            s._flush_backlog(0)
        self.assertEqual(sock.sent, [[b"sid3", b"chunk", b"c"], [b"sid2", b"end", b""]])
        self.assertEqual(s.stats["send_error"], 2)
        # A socket gone (the context terminated) stops the IO thread as
        # before: every later send would fail too.
        sock.errno = zmq.ETERM
        with self.assertRaises(zmq.ZMQError):
            s._send(0, [b"sid4", b"body", b"x"])

    def test_malformed_content_length_ends_the_session(self):
        # "\xb2" is "²" in latin-1: isdigit() but not int(); 4301 digits
        # are over int()'s limit. Neither may kill the IO thread.
        for cl in (b"\xb2", b"1\xb2", b"1" * 4301, b"1" * 19, b"abc", b"-1", b"5, 6"):
            with self.subTest(cl=cl[:10]):
                s, sent = self.server()
                with self.assertLogs("blastbeat", "WARNING"):
                    s._on_message(0, [b"sid1", b"uwsgi", uwsgi_head(CONTENT_LENGTH=cl)])
                self.assertEqual(sent, [[b"sid1", b"end", b""]])
                self.assertTrue(s._work.empty())
                self.assertEqual(s._sessions, {})

    def test_a_failing_message_does_not_stop_the_io_thread(self):
        class Sock(object):
            def __init__(self, msgs):
                self.msgs = list(msgs)

            def recv_multipart(self, flags=0):
                if not self.msgs:
                    raise zmq.Again()
                return self.msgs.pop(0)

        def boom(*args):
            raise RuntimeError("boom")

        s, sent = self.server()
        s._on_head = boom
        with self.assertLogs("blastbeat", "ERROR"):
            s._read(0, Sock([[b"sid1", b"uwsgi", b""], [b"", b"ping", b""]]))
        self.assertEqual(sent, [[b"", b"pong", s._pong]])
        self.assertEqual(s.stats["message_error"], 1)


if __name__ == "__main__":
    unittest.main()
