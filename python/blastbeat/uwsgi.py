"""The uwsgi packet, as BlastBeat sends a request head (docs/PROTOCOL.md).

A packet is ``modifier1 (u8)``, ``datasize (u16, little-endian)``,
``modifier2 (u8)``, then ``datasize`` bytes of vars, each ``keylen (u16
LE), key, vallen (u16 LE), value``. ``datasize`` counts the vars only;
bytes after them (a response packet may carry the start of its body) are
returned by :func:`split`.

Keys and values are bytes on the wire. :func:`decode_environ` turns them
into the native strings PEP 3333 asks for: every byte decoded as
ISO-8859-1 (latin-1), so that no byte is lost and ``PATH_INFO`` keeps the
percent-decoded bytes of the request target.
"""

__all__ = ["UwsgiError", "MAX_DATASIZE", "encode", "split", "decode", "decode_environ"]

#: The largest datasize a packet can declare (it is a u16).
MAX_DATASIZE = 0xFFFF


class UwsgiError(ValueError):
    """A packet whose lengths do not add up, or vars too large to encode."""


def _u16(n):
    return bytes((n & 0xFF, n >> 8))


def encode(pairs, modifier1=0, modifier2=0, rest=b""):
    """Return the packet of ``pairs`` (an iterable of (key, value), each
    ``bytes`` or ``str``; a ``str`` is encoded as latin-1), followed by
    ``rest``. A name may repeat. Raises :class:`UwsgiError` when a key or
    value is over 65535 bytes or the vars are over :data:`MAX_DATASIZE`."""
    out = bytearray(4)
    for key, val in pairs:
        if isinstance(key, str):
            key = key.encode("latin-1")
        if isinstance(val, str):
            val = val.encode("latin-1")
        if len(key) > 0xFFFF or len(val) > 0xFFFF:
            raise UwsgiError("uwsgi var over 65535 bytes")
        out += _u16(len(key))
        out += key
        out += _u16(len(val))
        out += val
    size = len(out) - 4
    if size > MAX_DATASIZE:
        raise UwsgiError("uwsgi vars of %d bytes, over %d" % (size, MAX_DATASIZE))
    out[0] = modifier1 & 0xFF
    out[1] = size & 0xFF
    out[2] = size >> 8
    out[3] = modifier2 & 0xFF
    out += rest
    return bytes(out)


def split(packet):
    """Return ``(pairs, rest)``: the list of (key, value) ``bytes`` pairs
    in packet order, and the bytes after the vars. Raises
    :class:`UwsgiError` on a truncated or inconsistent packet."""
    n = len(packet)
    if n < 4:
        raise UwsgiError("uwsgi packet shorter than its 4-byte header")
    end = 4 + (packet[1] | (packet[2] << 8))
    if end > n:
        raise UwsgiError("uwsgi datasize %d over the %d bytes that follow" % (end - 4, n - 4))
    mv = memoryview(packet)
    pairs = []
    i = 4
    while i < end:
        if i + 2 > end:
            raise UwsgiError("uwsgi key length cut at offset %d" % i)
        klen = packet[i] | (packet[i + 1] << 8)
        i += 2
        kend = i + klen
        if kend + 2 > end:
            raise UwsgiError("uwsgi key or value length cut at offset %d" % i)
        key = bytes(mv[i:kend])
        vlen = packet[kend] | (packet[kend + 1] << 8)
        i = kend + 2
        vend = i + vlen
        if vend > end:
            raise UwsgiError("uwsgi value of %r runs past datasize" % key)
        pairs.append((key, bytes(mv[i:vend])))
        i = vend
    return pairs, bytes(mv[end:])


def decode(packet):
    """Return the vars of ``packet`` as a dict of ``bytes`` to ``bytes``
    (a repeated key keeps its last value); bytes after the vars are
    ignored."""
    return dict(split(packet)[0])


def decode_environ(packet):
    """Return the vars of ``packet`` as a dict of native strings, each
    byte decoded as latin-1 (PEP 3333). A repeated key keeps its last
    value; bytes after the vars are ignored."""
    n = len(packet)
    if n < 4:
        raise UwsgiError("uwsgi packet shorter than its 4-byte header")
    end = 4 + (packet[1] | (packet[2] << 8))
    if end > n:
        raise UwsgiError("uwsgi datasize %d over the %d bytes that follow" % (end - 4, n - 4))
    # latin-1 maps byte i to code point i: offsets into the bytes are
    # offsets into the text, so the packet is decoded once and sliced.
    text = packet[:end].decode("latin-1")
    env = {}
    i = 4
    while i < end:
        kstart = i + 2
        if kstart > end:
            raise UwsgiError("uwsgi key length cut at offset %d" % i)
        kend = kstart + (packet[i] | (packet[i + 1] << 8))
        vstart = kend + 2
        if vstart > end:
            raise UwsgiError("uwsgi key or value length cut at offset %d" % kstart)
        i = vstart + (packet[kend] | (packet[kend + 1] << 8))
        if i > end:
            raise UwsgiError("uwsgi value of %r runs past datasize" % text[kstart:kend])
        env[text[kstart:kend]] = text[vstart:i]
    return env
