"""Review mends of blastbeat.server, without ZeroMQ: status and header
checks as strict as the proxy's, the environ of format = headers,
write() after the client left, no `end` after a whole response, the
unread body's count."""

import collections
import unittest

from blastbeat.input import ClientDisconnected, InputStream
from blastbeat.server import Request, _body_length, _check_headers, _is_websocket, _status_ok, environ_from_head
from blastbeat.uwsgi import decode_environ, encode


class FakeServer(object):
    """What a Request uses of its Server: the posts are recorded."""

    credits = False
    timeout = None
    threads = 1
    multiprocess = False
    node = b"n1"

    def __init__(self, app=None):
        self.app = app
        self.posts = []
        self.stats = collections.Counter()

    def _post(self, item):
        self.posts.append(item)

    def types(self):
        return [typ for _, typ, _ in self.posts if typ is not None]


def request(app, method="GET"):
    srv = FakeServer(app)
    req = Request(srv, 0, b"0123456789abcdef", {"REQUEST_METHOD": method, "SERVER_PROTOCOL": "HTTP/1.1"})
    return srv, req


class TestChecks(unittest.TestCase):
    def test_status(self):
        for ok in ("200 OK", "404 Not Found", "599 X", "204"):
            self.assertTrue(_status_ok(ok), ok)
        # A 1xx is no final answer (the proxy would wait on); control
        # characters are refused by the proxy.
        for bad in ("100 Continue", "103 Early Hints", "600 X", "20", "200 O\x1bK", "200\tOK", 200):
            self.assertFalse(_status_ok(bad), repr(bad))

    def test_header_values(self):
        _check_headers([("X-A", "a\tb"), ("Set-Cookie", "a=b; Path=/")])
        for bad in ("a\x1bb", "a\x7fb", "a\rb", "a\nb", "a\0b"):
            with self.assertRaises(ValueError):
                _check_headers([("Content-Disposition", bad)])

    def test_repeated_content_length(self):
        # format = headers passes the head as the client sent it: the
        # proxy accepts repeated Content-Length fields that agree.
        env = environ_from_head(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")
        self.assertEqual(_body_length(env), 5)
        self.assertEqual(_body_length({"CONTENT_LENGTH": "5, 5"}), 5)
        with self.assertRaises(ValueError):
            _body_length({"CONTENT_LENGTH": "5, 6"})

    def test_malformed_content_length(self):
        # latin-1 "\xb2" is "²": isdigit() is true, int() refuses it.
        self.assertEqual(_body_length({"CONTENT_LENGTH": ""}), 0)
        for bad in ("\xb2", "1\xb2", "1" * 4301, "1" * 19, "abc", "-1", "+1", "0x10"):
            with self.assertRaises(ValueError, msg=bad[:10]):
                _body_length({"CONTENT_LENGTH": bad})

    def test_websocket_token(self):
        self.assertTrue(_is_websocket({"HTTP_UPGRADE": "websocket"}))
        self.assertTrue(_is_websocket({"HTTP_UPGRADE": "h2c, WebSocket"}))
        self.assertFalse(_is_websocket({"HTTP_UPGRADE": "notwebsocket"}))
        self.assertFalse(_is_websocket({}))

    def test_upgrade_without_connection_upgrade_is_plain(self):
        # The proxy forwards it as a plain request and waits for a
        # response (protocol/request.go); in the uwsgi format it has no
        # HTTP_UPGRADE.
        env = environ_from_head(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        self.assertFalse(_is_websocket(env))
        self.assertNotIn("HTTP_UPGRADE", env)
        env = environ_from_head(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        self.assertTrue(_is_websocket(env))

    def test_raw_non_ascii_path(self):
        # PATH_INFO holds the path's bytes decoded as latin-1 (PEP 3333),
        # as the uwsgi format gives it.
        want = decode_environ(encode([("PATH_INFO", b"/caf\xc3\xa9")]))["PATH_INFO"]
        for head in (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /caf%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n"):
            self.assertEqual(environ_from_head(head)["PATH_INFO"], want)
        self.assertEqual(want, "/caf\xc3\xa9")

    def test_environ_skips_proxy_header(self):
        env = environ_from_head(b"GET / HTTP/1.1\r\nHost: x\r\nProxy: http://evil:1\r\n\r\n")
        self.assertNotIn("HTTP_PROXY", env)
        self.assertEqual(env["HTTP_HOST"], "x")


class TestResponses(unittest.TestCase):
    def test_write_after_client_gone_raises(self):
        # write() tells the application the client went away, as a
        # broken connection does with other servers.
        raised = []

        def app(environ, start_response):
            w = start_response("200 OK", [("Content-Type", "text/plain")])
            w(b"first")
            req.cancel()  # the proxy's `end`
            try:
                w(b"more")
            except ClientDisconnected:
                raised.append(True)
                raise
            return []

        srv, req = request(app)
        req.run()
        self.assertEqual(raised, [True])
        self.assertEqual(srv.types(), [b"headers", b"chunk"])  # "first" only

    def test_error_after_whole_response_sends_no_end(self):
        def app(environ, start_response):
            w = start_response("200 OK", [("Content-Length", "5")])
            w(b"hello")
            raise RuntimeError("after the body")

        srv, req = request(app)
        req.run()
        self.assertNotIn(b"end", srv.types())

    def test_content_length_compared_as_text(self):
        def app(environ, start_response):
            start_response("200 OK", [("Content-Length", "5"), ("Content-Length", "05")])
            return [b"hello"]

        srv, req = request(app)
        req.run()
        head = srv.posts[0][2]
        self.assertTrue(head.startswith(b"HTTP/1.1 500 "), head)

    def test_head_over_64k_is_500(self):
        def app(environ, start_response):
            start_response("200 OK", [("X-Big", "a" * (70 << 10))])
            return [b"x"]

        srv, req = request(app)
        req.run()
        head = srv.posts[0][2]
        self.assertTrue(head.startswith(b"HTTP/1.1 500 "), head[:40])


class TestBuffered(unittest.TestCase):
    def test_buffered_and_drop(self):
        s = InputStream(None)
        s.feed(b"abcdef")
        self.assertEqual(s.read(2), b"ab")
        self.assertEqual(s.buffered, 4)
        s.drop()
        self.assertEqual(s.buffered, 0)



class TestBacklogCap(unittest.TestCase):
    def test_full_backlog_ends_the_session(self):
        # Past the cap, the session of the message ends (its `end` goes
        # last) instead of a message dropped from the middle of a reply.
        import zmq

        from blastbeat import server as srvmod

        class Sock(object):
            def send_multipart(self, *a, **k):
                raise zmq.Again()

        class Poller(object):
            def modify(self, *a):
                pass

        s = srvmod.Server.__new__(srvmod.Server)
        s._backlog = [collections.deque([[b"old", b"chunk", b"x"]] * srvmod._MAX_BACKLOG)]
        s._socks = [Sock()]
        s._poller = Poller()
        s.stats = collections.Counter()
        _, req = request(None)
        s._sessions = {(0, b"sid1"): req}
        s._send(0, [b"sid1", b"chunk", b"data"])
        self.assertTrue(req.gone)
        self.assertEqual(s._backlog[0][-1], [b"sid1", b"end", b""])
        self.assertEqual(s._backlog[0][0], [b"old", b"chunk", b"x"])  # nothing dropped


class TestPieces(unittest.TestCase):
    def test_big_block_goes_in_pieces_without_credits(self):
        # Without credits a block went as one message: past
        # zmq-max-message the proxy drops the node's connection.
        big = b"x" * (3 << 20)

        def app(environ, start_response):
            start_response("200 OK", [("Content-Length", str(len(big)))])
            return [big]

        srv, req = request(app)
        req.run()
        sizes = [len(body) for _, typ, body in srv.posts if typ is not None]
        self.assertEqual(sum(sizes) - sizes[0] + len(srv.posts[0][2].split(b"\r\n\r\n", 1)[1]), len(big))
        self.assertTrue(all(n <= (1 << 20) + 200 for n in sizes), sizes)


if __name__ == "__main__":
    unittest.main()
