//go:build !race

package server

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
)

// TestRequestAllocs: a keep-alive request (head and body to the node, in
// pooled buffers) and its response (head rewritten into the loop's
// arena) allocate nothing, in both request formats, with a body, and
// with a chunked response.
func TestRequestAllocs(t *testing.T) {
	get := []byte("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: alloc-test\r\n\r\n")
	post := []byte("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + strings.Repeat("b", 3000))
	hello := []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!")
	headers, chunkT := []byte("headers"), []byte("chunk")
	streamHead := []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := []byte(strings.Repeat("x", 1024))
	for _, format := range []string{"headers", "uwsgi"} {
		t.Run(format, func(t *testing.T) {
			r := newAllocRig(t, format)
			r.expectRoundNoAllocs("GET", func() { r.client(get); r.reply(headers, hello) })
			r.expectRoundNoAllocs("POST", func() { r.client(post); r.reply(headers, hello) })
			// A 64 KiB POST read straight into a pooled read target
			// (readtarget.go), inside a gnet turn whose end gives the
			// target back: the body message carries the target itself.
			hd, el := (*handler)(r.s), r.fc.EventLoop()
			big := []byte("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n" + strings.Repeat("b", 60000))
			r.client(big) // the connection now reads its next head into a target
			r.reply(headers, hello)
			r.expectRoundNoAllocs("POST into a read target", func() {
				hd.OnTurnStart(el)
				tgt := hd.ReadTarget(r.fc)
				if len(tgt) < len(big) {
					t.Fatalf("read target of %d bytes for a %d-byte request", len(tgt), len(big))
				}
				r.client(tgt[:copy(tgt, big)])
				if r.ring.last != unsafe.Pointer(unsafe.SliceData(tgt)) {
					t.Fatal("the body was not sent in its read target")
				}
				r.reply(headers, hello)
				hd.OnTurnEnd(el)
			})
			for _, tc := range []struct {
				name   string
				chunks int
			}{
				{"chunked response", 16},
				// A burst over one arena chunk in one loop turn: the
				// chunks filled are reused after the flush, not left to
				// the collector.
				{"burst of 100 KiB", 100},
			} {
				chunks := make([][]byte, tc.chunks+1) // and the empty last one
				for i := range chunks[:tc.chunks] {
					chunks[i] = chunk
				}
				chunks[tc.chunks] = []byte{}
				r.expectRoundNoAllocs(tc.name, func() {
					r.client(get)
					r.reply(headers, streamHead)
					r.reply(chunkT, chunks...)
				})
			}
		})
	}
}

// TestWebSocketAllocs: a message each way on an open WebSocket allocates
// nothing: the node's is framed in the arena, the client's unmasked into
// a pooled buffer that its message to the node carries.
func TestWebSocketAllocs(t *testing.T) {
	r := newAllocRig(t, "headers")
	r.client([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	if c := r.fc.ctx.(*conn); c.m != (wsMachine{}) {
		t.Fatalf("not upgraded: machine %T", c.m)
	}
	msg := []byte("a message from the node")
	wsT := []byte("websocket")
	r.expectNoAllocs("node to client", len(msg)+2, func() { r.reply(wsT, msg) })
	payload := []byte("a message from the client")
	frame := append([]byte{0x81, 0x80 | byte(len(payload)), 1, 2, 3, 4}, payload...)
	ws.Cipher(frame[6:], [4]byte{1, 2, 3, 4}, 0)
	sent := r.ring.sent
	r.client(frame)
	if r.ring.sent != sent+1 {
		t.Fatalf("the client's message did not go to the node: %d sent", r.ring.sent-sent)
	}
	if allocs := testing.AllocsPerRun(200, func() { r.client(frame) }); allocs != 0 {
		t.Errorf("client to node: %.1f allocations per message, want 0", allocs)
	}
}

// TestConnectionAllocs: a connection per request (open, a request, its
// response, `Connection: close`, close) allocates its conn record only:
// its retry slice comes from the loop and goes back, and its `end` to
// the node is the loop's scratch message.
func TestConnectionAllocs(t *testing.T) {
	r := newAllocRig(t, "headers")
	hd := (*handler)(r.s)
	hd.OnClose(r.fc, nil)
	get := []byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	hello := []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!")
	ends := 0
	round := func() {
		if _, act := hd.OnOpen(r.fc); act != gnet.None {
			t.Fatalf("OnOpen: %v", act)
		}
		r.sid = r.fc.ctx.(*conn).sid
		r.client(get)
		r.reply([]byte("headers"), hello)
		sent := r.ring.sent
		hd.OnClose(r.fc, nil)
		ends += r.ring.sent - sent
	}
	before := r.fc.wrote
	for range 3 {
		round() // the loop's tables and spare slices grow to their size
	}
	if r.fc.wrote == before || ends != 3 {
		t.Fatalf("3 connections: %d bytes to the client, %d `end`s to the node", r.fc.wrote-before, ends)
	}
	if allocs := testing.AllocsPerRun(200, round); allocs > 1 {
		t.Errorf("%.1f allocations per connection, want 1 (its conn)", allocs)
	}
}

// TestPongFeaturesAllocs: reading a pong's features allocates nothing,
// whatever its size (a 64 MiB pong of tokens allocated about 1.3 GiB
// on the bridge goroutine before).
func TestPongFeaturesAllocs(t *testing.T) {
	body := []byte(strings.Repeat("a,", 1<<16) + "credits")
	if n := testing.AllocsPerRun(10, func() {
		_ = hasFeature(body, "credits")
		_ = featureValue(body, "instance")
	}); n != 0 {
		t.Fatalf("%v allocations per pong, want 0", n)
	}
}
