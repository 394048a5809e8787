"""WebSocket client scenarios against BlastBeat, with Debian's python3-websockets.

Usage: ws_client.py ws://HOST:PORT

Every scenario connects to ws://HOST:PORT/py/<scenario> (the Go test finds
the session at the echo node by that path) and prints one line:
"PASS <scenario>" or "FAIL <scenario>: <why>". The exit status is 0 when
every scenario passed.
"""

import asyncio
import sys

import websockets

BASE = sys.argv[1].rstrip("/")
MIB = 1 << 20
TIMEOUT = 10


def connect(name, **kw):
    # max_size=None: the 1 MiB echo must not trip the client's own limit.
    return websockets.connect(BASE + "/py/" + name, max_size=None, open_timeout=TIMEOUT, **kw)


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


async def expect_closed(ws, code):
    """Read until the proxy closes; the close code it sent must be code."""
    try:
        while True:
            msg = await recv(ws)
            raise AssertionError("got a message %r instead of close %d" % (msg[:40], code))
    except websockets.exceptions.ConnectionClosed:
        pass
    await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
    if ws.close_code != code:
        raise AssertionError("close code %r (reason %r), want %d" % (ws.close_code, ws.close_reason, code))


async def text():
    async with connect("text") as ws:
        for msg in ["hello from python", "", "héllo ✓ 🎉", "x" * 70000]:
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


async def too_big():
    async with connect("too_big") as ws:
        try:
            await ws.send(b"y" * (MIB + 1))
        except websockets.exceptions.ConnectionClosed:
            pass
        await expect_closed(ws, 1009)


async def fragmented():
    async with connect("fragmented") as ws:
        await ws.send(["frag", "mented ", "", "text ✓"])
        got = await recv(ws)
        if got != "fragmented text ✓":
            raise AssertionError("echo %r" % got)
        await ws.send([b"\x01\x02", b"\x03"])
        got = await recv(ws)
        if got != b"\x01\x02\x03":
            raise AssertionError("binary echo %r" % got)


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


async def node_end():
    async with connect("node_end") as ws:
        await ws.send("node-end")
        await expect_closed(ws, 1000)


async def subprotocol():
    async with connect("subprotocol", subprotocols=["superchat", "chat"]) as ws:
        if ws.subprotocol != "superchat":
            raise AssertionError("subprotocol %r, want superchat" % ws.subprotocol)
    async with connect("subprotocol_none", subprotocols=["v9.example"]) as ws:
        if ws.subprotocol is not None:
            raise AssertionError("subprotocol %r, want none" % ws.subprotocol)


async def main():
    failed = 0
    for fn in [text, binary, mib, too_big, fragmented, ping, close, node_end, subprotocol]:
        try:
            await asyncio.wait_for(fn(), 3 * TIMEOUT)
            print("PASS", fn.__name__, flush=True)
        except Exception as e:  # report every scenario, then fail
            failed += 1
            print("FAIL %s: %s: %s" % (fn.__name__, type(e).__name__, e), flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(1 if asyncio.run(main()) else 0)
