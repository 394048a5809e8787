"""wss:// client scenarios against BlastBeat, with Debian's python3-websockets.

Usage: tls_ws_client.py wss://NAME:PORT CA_FILE CONNECT_HOST

Every scenario connects to wss://NAME:PORT/py/<scenario>, opening the TCP
connection to CONNECT_HOST:PORT; NAME is still the TLS server name, the
name the certificate is verified for (against CA_FILE only) and the Host
header. It prints one line per scenario, "PASS <scenario>" or
"FAIL <scenario>: <why>"; the exit status is 0 when every scenario passed.
"""

import asyncio
import ssl
import sys
import urllib.parse

import websockets

BASE = sys.argv[1].rstrip("/")
CA_FILE = sys.argv[2]
CONNECT_HOST = sys.argv[3]
PORT = urllib.parse.urlsplit(BASE).port
MIB = 1 << 20
TIMEOUT = 10


def context():
    ctx = ssl.create_default_context(cafile=CA_FILE)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def connect(name, **kw):
    # max_size=None: the 1 MiB echo must not trip the client's own limit.
    return websockets.connect(BASE + "/py/" + name, ssl=context(), host=CONNECT_HOST, port=PORT,
                              max_size=None, open_timeout=TIMEOUT, **kw)


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


async def text():
    async with connect("text") as ws:
        if ws.transport.get_extra_info("ssl_object") is None:
            raise AssertionError("the connection is not TLS")
        for msg in ["hello over wss", "", "héllo ✓ 🎉", "x" * 70000]:
            await ws.send(msg)
            got = await recv(ws)
            if got != msg:
                raise AssertionError("echo %r, want %r" % (got[:40], msg[:40]))


async def binary():
    async with connect("binary") as ws:
        for msg in [bytes(range(256)) * 4, b"", b"\x00\xff" * 40000]:
            await ws.send(msg)
            got = await recv(ws)
            if not isinstance(got, bytes) or got != msg:
                raise AssertionError("echo %r..., want %d bytes of binary" % (got[:20], len(msg)))


async def mib():
    async with connect("mib") as ws:
        msg = bytes(i % 251 for i in range(MIB))
        await ws.send(msg)
        got = await recv(ws)
        if got != msg:
            raise AssertionError("1 MiB echo differs (%d bytes back)" % len(got))


async def ping():
    async with connect("ping") as ws:
        for data in [b"py-ping", b"", bytes(125)]:
            waiter = await ws.ping(data)
            await asyncio.wait_for(waiter, TIMEOUT)
        await ws.send("after pings")
        if await recv(ws) != "after pings":
            raise AssertionError("no echo after the pings")


async def close():
    ws = await connect("close")
    await ws.send("before close")
    await recv(ws)
    await asyncio.wait_for(ws.close(1000, "bye"), TIMEOUT)
    if ws.close_code != 1000:
        raise AssertionError("close code %r, want 1000" % ws.close_code)


async def main():
    failed = 0
    for fn in [text, binary, mib, ping, close]:
        try:
            await asyncio.wait_for(fn(), 3 * TIMEOUT)
            print("PASS", fn.__name__, flush=True)
        except Exception as e:  # report every scenario, then fail
            failed += 1
            print("FAIL %s: %s: %s" % (fn.__name__, type(e).__name__, e), flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(1 if asyncio.run(main()) else 0)
