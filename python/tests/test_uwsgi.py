"""The uwsgi packet codec (blastbeat.uwsgi)."""

import struct
import unittest

from blastbeat import uwsgi


def packet(pairs, rest=b"", mod1=0, mod2=0):
    """An independent encoder: struct, the spec's layout."""
    body = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs)
    return struct.pack("<BHB", mod1, len(body), mod2) + body + rest


class TestDecode(unittest.TestCase):
    def test_proxy_environ(self):
        pairs = [
            (b"REQUEST_METHOD", b"GET"),
            (b"REQUEST_URI", b"/caf%C3%A9?q=1"),
            (b"PATH_INFO", "/café".encode("utf-8")),
            (b"QUERY_STRING", b"q=1"),
            (b"SERVER_PROTOCOL", b"HTTP/1.1"),
            (b"SCRIPT_NAME", b""),
            (b"HTTP_COOKIE", b"a=1; b=2"),
        ]
        pkt = packet(pairs)
        got, rest = uwsgi.split(pkt)
        self.assertEqual(got, pairs)
        self.assertEqual(rest, b"")
        env = uwsgi.decode_environ(pkt)
        # PEP 3333: bytes as latin-1 code points, nothing lost.
        self.assertEqual(env["PATH_INFO"], "/caf\xc3\xa9")
        self.assertEqual(env["PATH_INFO"].encode("latin-1").decode("utf-8"), "/café")
        self.assertEqual(env["SCRIPT_NAME"], "")
        self.assertEqual(uwsgi.decode(pkt)[b"HTTP_COOKIE"], b"a=1; b=2")

    def test_every_byte_value(self):
        val = bytes(range(256))
        env = uwsgi.decode_environ(packet([(b"K", val), (bytes(range(128, 256)), b"")]))
        self.assertEqual(env["K"].encode("latin-1"), val)
        self.assertEqual(env[bytes(range(128, 256)).decode("latin-1")], "")

    def test_decode_environ_agrees_with_split(self):
        pairs = [(bytes([65 + i % 26]) * (i % 7 + 1), bytes(range(i % 256)) * 3) for i in range(300)]
        pkt = uwsgi.encode(pairs[:40], rest=b"trailing body")
        want = {k.decode("latin-1"): v.decode("latin-1") for k, v in uwsgi.split(pkt)[0]}
        self.assertEqual(uwsgi.decode_environ(pkt), want)

    def test_empty_and_rest(self):
        self.assertEqual(uwsgi.split(packet([])), ([], b""))
        pairs, rest = uwsgi.split(packet([(b"Status", b"200 OK")], rest=b"body bytes"))
        self.assertEqual(pairs, [(b"Status", b"200 OK")])
        self.assertEqual(rest, b"body bytes")

    def test_repeated_key(self):
        pkt = packet([(b"Set-Cookie", b"a=1"), (b"Set-Cookie", b"b=2")])
        self.assertEqual(uwsgi.split(pkt)[0], [(b"Set-Cookie", b"a=1"), (b"Set-Cookie", b"b=2")])
        self.assertEqual(uwsgi.decode(pkt)[b"Set-Cookie"], b"b=2")

    def test_large_values(self):
        big = b"x" * 65000
        pkt = packet([(b"HTTP_X", big)])
        self.assertEqual(uwsgi.decode(pkt)[b"HTTP_X"], big)

    def test_malformed(self):
        good = packet([(b"KEY", b"value"), (b"K2", b"v2")])
        bad = [
            b"",
            b"\x00\x01",
            good[:3],
            # datasize larger than what follows
            good[:-1],
            # a key length that runs past datasize
            packet([])[:1] + struct.pack("<H", 3) + b"\x00" + struct.pack("<H", 10) + b"a",
            # a value length cut in half
            struct.pack("<BHB", 0, 5, 0) + struct.pack("<H", 2) + b"ab" + b"\x01",
            # a value that runs past datasize (into the rest)
            struct.pack("<BHB", 0, 6, 0) + struct.pack("<H", 1) + b"a" + struct.pack("<H", 9) + b"b" + b"rest....",
        ]
        for pkt in bad:
            with self.subTest(pkt=pkt):
                with self.assertRaises(uwsgi.UwsgiError):
                    uwsgi.split(pkt)
                with self.assertRaises(uwsgi.UwsgiError):
                    uwsgi.decode_environ(pkt)
        # A UwsgiError is a ValueError.
        self.assertTrue(issubclass(uwsgi.UwsgiError, ValueError))


class TestEncode(unittest.TestCase):
    def test_matches_independent_encoder(self):
        pairs = [(b"Status", b"200 OK"), (b"Content-Type", b"text/plain"), (b"Set-Cookie", b"a=1"), (b"Set-Cookie", b"b=2")]
        self.assertEqual(uwsgi.encode(pairs), packet(pairs))
        self.assertEqual(uwsgi.encode(pairs, 5, 7, rest=b"xyz"), packet(pairs, b"xyz", 5, 7))

    def test_str_is_latin1(self):
        self.assertEqual(uwsgi.encode([("PATH_INFO", "/caf\xe9")]), packet([(b"PATH_INFO", b"/caf\xe9")]))

    def test_round_trip(self):
        pairs = [(bytes([i]) * (i + 1), bytes(range(i))) for i in range(1, 200, 7)]
        self.assertEqual(uwsgi.split(uwsgi.encode(pairs, rest=b"r")), (pairs, b"r"))

    def test_limits(self):
        with self.assertRaises(uwsgi.UwsgiError):
            uwsgi.encode([(b"K", b"x" * 65536)])
        with self.assertRaises(uwsgi.UwsgiError):
            uwsgi.encode([(b"K", b"x" * 40000), (b"L", b"y" * 40000)])
        # exactly the largest datasize
        n = uwsgi.MAX_DATASIZE - 2 - 1 - 2
        pkt = uwsgi.encode([(b"K", b"v" * n)])
        self.assertEqual(len(pkt), 4 + uwsgi.MAX_DATASIZE)
        self.assertEqual(uwsgi.decode(pkt)[b"K"], b"v" * n)


if __name__ == "__main__":
    unittest.main()
