"""``wsgi.input``: the request body, streamed as BlastBeat's ``body``
messages arrive.

The IO thread feeds the pieces (:meth:`InputStream.feed`); the worker
thread running the application reads them, blocking until enough data
or the end of the body is there. The end is known from the request:

- with ``CONTENT_LENGTH``, after that many bytes;
- with a body of unknown length (``Transfer-Encoding: chunked``, or an
  HTTP/2 request without content-length), at the empty ``body`` message
  the proxy sends after the last piece (:meth:`InputStream.finish`);
- with neither, there is no body: the stream is at its end at once.

So the stream always ends where the body ends, and the server sets
``wsgi.input_terminated``: an application may read until ``b""``.

When the client goes away (the proxy's ``end``) or no byte comes for
the server's timeout, a read that would have to wait raises
:class:`ClientDisconnected` (an ``OSError``); what was already received
can still be read, unless it was dropped (:meth:`InputStream.drop`, as
the server does on ``end``): then a read raises, never taking the
emptied buffer for the end of the body.
"""

import threading
import time

__all__ = ["ClientDisconnected", "InputStream"]

# Compact the buffer once this much of it was read (and at least half).
_COMPACT = 64 * 1024


class ClientDisconnected(OSError):
    """The client went away (or stopped sending) before the body ended."""


class InputStream(object):
    """A read-only binary file-like object over a request body that
    arrives in pieces from another thread.

    ``length`` is the body size in bytes, or ``None`` for a body that ends
    with :meth:`finish`. ``cond`` is the :class:`threading.Condition` the
    reader waits on (the server shares its request's); ``timeout`` bounds
    each wait for data, in seconds (``None``: no bound).
    """

    def __init__(self, length=0, cond=None, timeout=None):
        if length is not None and length < 0:
            raise ValueError("negative length")
        self._cond = cond if cond is not None else threading.Condition()
        self._length = length
        self._buf = bytearray()
        self._pos = 0  # first unread byte of _buf
        self._received = 0  # body bytes fed so far
        self._eof = length == 0  # every byte of the body is in _buf
        self._error = None  # raised by a read that would wait
        self._timeout = timeout
        self.closed = False

    # --- the IO thread's side -------------------------------------------------

    def feed(self, data):
        """Append a piece of the body. With a known length, bytes past it
        are dropped. Pieces after the end or after :meth:`cancel` are
        ignored."""
        with self._cond:
            if self._eof or self._error is not None:
                return
            if self._length is not None:
                data = data[: self._length - self._received]
            self._received += len(data)
            self._buf += data
            if self._length is not None and self._received >= self._length:
                self._eof = True
            self._cond.notify_all()

    def finish(self):
        """The body of unknown length ended (the empty ``body`` message).
        Ignored for a body of known length, which ends by itself."""
        with self._cond:
            if self._length is None:
                self._eof = True
                self._cond.notify_all()

    def cancel(self, error=None):
        """The client went away: a read that would wait raises ``error``
        (a :class:`ClientDisconnected` by default)."""
        with self._cond:
            if self._error is None and not self._eof:
                self._error = error or ClientDisconnected("the client went away before the end of the request body")
            self._cond.notify_all()

    def drop(self):
        """Free what was received and not read (the session ended). Unless
        the whole body was read already, a read then raises (a
        :class:`ClientDisconnected`, or the error :meth:`cancel` set):
        never the clean end of a body that was cut."""
        with self._cond:
            if self._avail() or not self._eof:
                self._eof = False  # its bytes are not all in _buf any more
                if self._error is None:
                    self._error = ClientDisconnected("the request body was dropped before it was read")
            del self._buf[:]
            self._pos = 0
            self._cond.notify_all()

    # --- state ------------------------------------------------------------------

    @property
    def buffered(self):
        """How many received body bytes wait unread (under the lock: a
        reader compacting the buffer moves both)."""
        with self._cond:
            return len(self._buf) - self._pos

    @property
    def received(self):
        """How many body bytes arrived so far."""
        return self._received

    @property
    def complete(self):
        """Whether the whole body arrived."""
        return self._eof

    def _avail(self):
        return len(self._buf) - self._pos

    def _wait(self):
        """Wait (holding the lock) for more data, the end or an error;
        raise when the body cannot go on."""
        if self._error is not None:
            raise self._error
        if self._timeout is None:
            self._cond.wait()
            return
        deadline = time.monotonic() + self._timeout
        before = (self._received, self._eof)
        while (self._received, self._eof) == before and self._error is None:
            left = deadline - time.monotonic()
            if left <= 0:
                self._error = ClientDisconnected("no request body byte for %gs" % self._timeout)
                raise self._error
            self._cond.wait(left)

    def _take(self, n):
        end = self._pos + n
        out = bytes(self._buf[self._pos : end])
        self._pos = end
        if self._pos >= _COMPACT and self._pos * 2 >= len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        return out

    # --- the file interface -----------------------------------------------------

    def readable(self):
        return True

    def read(self, size=-1):
        """Read ``size`` bytes, fewer only at the end of the body; with
        ``size`` negative or ``None``, read to the end."""
        with self._cond:
            if size is None or size < 0:
                while not self._eof:
                    self._wait()
                return self._take(self._avail())
            while self._avail() < size and not self._eof:
                self._wait()
            return self._take(min(size, self._avail()))

    def read1(self, size=-1):
        """Read what is there, up to ``size`` bytes, waiting only while
        nothing is (``b""`` at the end of the body)."""
        if size == 0:
            return b""
        with self._cond:
            while self._avail() == 0 and not self._eof:
                self._wait()
            n = self._avail()
            if size is not None and size >= 0:
                n = min(n, size)
            return self._take(n)

    def readinto(self, b):
        data = self.read1(len(b))
        b[: len(data)] = data
        return len(data)

    def readline(self, size=-1):
        """Read one line, with its ``b"\\n"``; at most ``size`` bytes when
        ``size`` is not negative."""
        limit = None if size is None or size < 0 else size
        with self._cond:
            scanned = self._pos
            while True:
                nl = self._buf.find(b"\n", scanned)
                if nl >= 0:
                    n = nl + 1 - self._pos
                    if limit is not None:
                        n = min(n, limit)
                    return self._take(n)
                if limit is not None and self._avail() >= limit:
                    return self._take(limit)
                if self._eof:
                    return self._take(self._avail())
                scanned = len(self._buf)
                self._wait()
                scanned = min(scanned, len(self._buf))
                scanned = max(scanned, self._pos)

    def readlines(self, hint=-1):
        """Read lines until the end, or until ``hint`` bytes were read
        when ``hint`` is positive."""
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
