"""wsgi.input (blastbeat.input.InputStream): reads block until data, the
end of the body or a cancellation."""

import threading
import time
import unittest

from blastbeat.input import ClientDisconnected, InputStream


def later(delay, fn, *args):
    t = threading.Timer(delay, fn, args)
    t.start()
    return t


def in_order(*steps):
    """Run (delay, fn, *args) steps one after the other on one thread."""

    def go():
        for delay, fn, *args in steps:
            time.sleep(delay)
            fn(*args)

    t = threading.Thread(target=go)
    t.start()
    return t


class TestKnownLength(unittest.TestCase):
    def test_read_all_pieces(self):
        s = InputStream(10)
        s.feed(b"hello")
        s.feed(b" worl")
        self.assertTrue(s.complete)
        self.assertEqual(s.read(), b"hello worl")
        self.assertEqual(s.read(), b"")
        self.assertEqual(s.read(5), b"")

    def test_extra_bytes_dropped(self):
        s = InputStream(3)
        s.feed(b"abcdef")
        s.feed(b"ghi")
        self.assertEqual(s.read(), b"abc")
        self.assertEqual(s.received, 3)

    def test_no_body(self):
        s = InputStream(0)
        self.assertTrue(s.complete)
        self.assertEqual(s.read(), b"")
        self.assertEqual(s.readline(), b"")
        self.assertEqual(list(s), [])
        s.feed(b"ignored")
        self.assertEqual(s.read(), b"")

    def test_read_n_blocks_until_n(self):
        s = InputStream(8)
        s.feed(b"ab")
        later(0.05, s.feed, b"cdef")
        t0 = time.monotonic()
        self.assertEqual(s.read(4), b"abcd")
        self.assertGreater(time.monotonic() - t0, 0.02)
        later(0.02, s.feed, b"gh")
        self.assertEqual(s.read(100), b"efgh")  # fewer only at the end

    def test_read1(self):
        s = InputStream(6)
        s.feed(b"abc")
        self.assertEqual(s.read1(100), b"abc")
        later(0.02, s.feed, b"def")
        self.assertEqual(s.read1(2), b"de")
        self.assertEqual(s.read1(), b"f")
        self.assertEqual(s.read1(), b"")

    def test_readinto(self):
        s = InputStream(4)
        s.feed(b"wxyz")
        buf = bytearray(3)
        self.assertEqual(s.readinto(buf), 3)
        self.assertEqual(buf, b"wxy")

    def test_zero_size_reads_return_at_once(self):
        s = InputStream(10, timeout=0.05)
        self.assertEqual(s.read1(0), b"")
        self.assertEqual(s.readinto(bytearray(0)), 0)
        self.assertEqual(s.read(0), b"")
        s.feed(b"abc")
        self.assertEqual(s.read1(), b"abc")  # no error left behind

    def test_compaction_keeps_data(self):
        data = bytes(range(256)) * 2000  # 512 000 bytes
        s = InputStream(len(data))
        for i in range(0, len(data), 1000):
            s.feed(data[i : i + 1000])
        out = []
        while True:
            piece = s.read(7777)
            if not piece:
                break
            out.append(piece)
        self.assertEqual(b"".join(out), data)


class TestLines(unittest.TestCase):
    def test_readline_across_pieces(self):
        s = InputStream(None)
        s.feed(b"one\ntw")
        in_order((0.03, s.feed, b"o\nthree"), (0.03, s.finish))
        self.assertEqual(s.readline(), b"one\n")
        self.assertEqual(s.readline(), b"two\n")
        self.assertEqual(s.readline(), b"three")
        self.assertEqual(s.readline(), b"")

    def test_readline_size(self):
        s = InputStream(None)
        s.feed(b"abcdefgh\nij")
        s.finish()
        self.assertEqual(s.readline(3), b"abc")
        self.assertEqual(s.readline(100), b"defgh\n")
        self.assertEqual(s.readline(0), b"")
        self.assertEqual(s.readline(-1), b"ij")

    def test_readline_size_waits_for_size_not_more(self):
        s = InputStream(100)
        s.feed(b"abcd")
        self.assertEqual(s.readline(4), b"abcd")  # does not wait for a newline

    def test_readlines_and_iteration(self):
        s = InputStream(None)
        s.feed(b"a\nbb\nccc\n")
        s.feed(b"dddd")
        s.finish()
        self.assertEqual(s.readlines(4), [b"a\n", b"bb\n"])
        self.assertEqual(list(s), [b"ccc\n", b"dddd"])
        s2 = InputStream(6)
        s2.feed(b"x\ny\nz\n")
        self.assertEqual(s2.readlines(), [b"x\n", b"y\n", b"z\n"])


class TestUnknownLength(unittest.TestCase):
    def test_ends_at_finish(self):
        s = InputStream(None)
        s.feed(b"chunk1")
        in_order((0.03, s.feed, b"chunk2"), (0.03, s.finish))
        self.assertEqual(s.read(), b"chunk1chunk2")
        self.assertTrue(s.complete)
        s.feed(b"after the end")
        self.assertEqual(s.read(), b"")

    def test_finish_ignored_with_length(self):
        s = InputStream(5)
        s.feed(b"ab")
        s.finish()
        self.assertFalse(s.complete)
        later(0.02, s.feed, b"cde")
        self.assertEqual(s.read(), b"abcde")


class TestCancel(unittest.TestCase):
    def test_cancel_wakes_a_blocked_read(self):
        s = InputStream(100)
        s.feed(b"partial")
        later(0.05, s.cancel)
        with self.assertRaises(ClientDisconnected):
            s.read()
        # what is there can still be read without waiting
        self.assertEqual(s.read(3), b"par")
        with self.assertRaises(ClientDisconnected):
            s.read(100)
        with self.assertRaises(ClientDisconnected):
            s.readline()
        self.assertTrue(issubclass(ClientDisconnected, OSError))

    def test_cancel_after_complete_is_harmless(self):
        s = InputStream(3)
        s.feed(b"abc")
        s.cancel()
        self.assertEqual(s.read(), b"abc")
        self.assertEqual(s.read(), b"")

    def test_feed_after_cancel_ignored(self):
        s = InputStream(None)
        s.cancel()
        s.feed(b"late")
        with self.assertRaises(ClientDisconnected):
            s.read1()

    def test_drop_of_unread_body_is_no_clean_end(self):
        # The whole body arrived, then was dropped unread (the session
        # ended): a read must not take the empty buffer for its end.
        s = InputStream(5)
        s.feed(b"abcde")
        s.cancel()
        s.drop()
        self.assertEqual(s.buffered, 0)
        for read in (s.read, s.read1, s.readline, lambda: s.read(1)):
            with self.assertRaises(ClientDisconnected):
                read()
        # Dropped after it was all read: the end is still clean.
        s2 = InputStream(3)
        s2.feed(b"abc")
        self.assertEqual(s2.read(), b"abc")
        s2.cancel()
        s2.drop()
        self.assertEqual(s2.read(), b"")

    def test_timeout(self):
        s = InputStream(10, timeout=0.05)
        s.feed(b"12345")
        t0 = time.monotonic()
        with self.assertRaises(ClientDisconnected):
            s.read()
        self.assertLess(time.monotonic() - t0, 2)
        # progress resets the clock
        s2 = InputStream(3, timeout=0.2)
        in_order(*[(0.05, s2.feed, b"x")] * 3)
        self.assertEqual(s2.read(), b"xxx")


class TestSharedCondition(unittest.TestCase):
    def test_uses_given_condition(self):
        cond = threading.Condition()
        s = InputStream(4, cond)
        got = []
        t = threading.Thread(target=lambda: got.append(s.read()))
        t.start()
        for piece in (b"a", b"bc", b"d"):
            time.sleep(0.01)
            s.feed(piece)
        t.join(5)
        self.assertEqual(got, [b"abcd"])


if __name__ == "__main__":
    unittest.main()
