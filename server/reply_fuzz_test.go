package server

import (
	"slices"
	"testing"
	"time"
)

// fuzzHeads are well-formed response heads a fuzz op can pick, since
// random bytes rarely parse as one.
var fuzzHeads = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
}

var fuzzTypes = []string{"headers", "uwsgi", "body", "chunk", "end", "retry", "websocket", "credit"}

// FuzzNodeReplies feeds a sequence of node messages, send failures, ring
// stalls and sweeps to a connection with one or two pipelined GETs in
// flight; then both nodes die and a sweep runs, so every request must be
// answered or the connection closed. Whatever the client got must parse
// as HTTP/1.1 responses, at most one final response per request, all of
// them when the connection stays open; nothing may panic.
//
// Each op is three bytes and a body: op, what (a head index, a time or
// an output size), body length, body. op&0x0f picks the action (15: the
// client sends one more GET), op&0x80 the node n2.
func FuzzNodeReplies(f *testing.F) {
	hello := func(op byte) []byte { return []byte{op, 0, 5, 'h', 'e', 'l', 'l', 'o'} }
	seq := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	f.Add(uint8(0), hello(10))                                                              // head and body
	f.Add(uint8(1), seq([]byte{10, 1, 0, 3, 0, 3, 'a', 'b', 'c', 3, 0, 0}, hello(10)))      // chunked, then the pipelined one
	f.Add(uint8(0), []byte{4, 0, 0})                                                        // end before the head
	f.Add(uint8(0), seq([]byte{8, 0, 0}, hello(0x8a)))                                      // head lost, no other node
	f.Add(uint8(1), seq([]byte{0x8b, 0, 0, 8, 0, 0}, hello(0x8a), hello(10)))               // failover to n2
	f.Add(uint8(0), []byte{10, 2, 0, 2, 0, 4, 'a', 'b', 'c', 'd', 13, 200, 0, 14, 61, 0})   // close-delimited, stall
	f.Add(uint8(1), seq([]byte{12, 0, 0, 10, 4, 0}, hello(10), []byte{12, 0, 0, 15, 0, 0})) // full ring, 1xx, one more GET
	f.Add(uint8(0), []byte{10, 0, 0, 2, 0, 2, 'h', 'e', 9, 0, 0, 14, 90, 0})                // body lost mid-response, timeout sweep
	f.Fuzz(func(t *testing.T, reqs uint8, ops []byte) {
		h := newHarness(t, testOptions())
		nreq := 1 + int(reqs%2)
		for range nreq {
			h.fc.in = append(h.fc.in, getReq...)
		}
		h.client("")
		start := time.Now()
		for len(ops) >= 3 {
			op, what, n := ops[0], ops[1], int(ops[2])
			ops = ops[3:]
			n = min(n, len(ops))
			body := string(ops[:n])
			ops = ops[n:]
			node := "n1"
			if op&0x80 != 0 {
				node = "n2"
			}
			switch a := int(op & 0x0f); {
			case a < len(fuzzTypes):
				h.reply(node, fuzzTypes[a], body)
			case a == 8:
				h.undeliverable(node, "headers")
			case a == 9:
				h.undeliverable(node, "body")
			case a == 10:
				h.reply(node, "headers", fuzzHeads[int(what)%len(fuzzHeads)]+body)
			case a == 11:
				h.node(node).Seen(h.s.now())
			case a == 12:
				h.ring.refuse = !h.ring.refuse
				h.s.handlers[0].Room()
				h.settle()
			case a == 13:
				h.fc.outbound = int(what) << 16
				(*handler)(h.s).OnOutboundDrained(h.fc, 0)
				h.settle()
			case a == 14:
				h.sweep(start.Add(time.Duration(what) * time.Second))
			default:
				if !h.fc.closed {
					nreq++
				}
				h.client(getReq)
			}
		}
		// The end: the ring takes everything, both nodes die, the client
		// reads all it was sent.
		h.ring.refuse = false
		h.s.handlers[0].Room()
		h.settle()
		h.node("n1").MarkDead()
		h.node("n2").MarkDead()
		h.fc.outbound = 0
		for range 3 {
			h.sweep(time.Now())
		}

		out := h.takeOut()
		rs, err := readResponses(out, h.fc.closed)
		if err != nil {
			t.Fatalf("client got invalid HTTP/1.1: %v\n%q", err, out)
		}
		fin := finals(rs)
		switch {
		case len(fin) > nreq:
			t.Fatalf("%d final responses to %d requests:\n%q", len(fin), nreq, out)
		case !h.fc.closed && len(fin) != nreq:
			t.Fatalf("open connection, %d final responses to %d requests:\n%q", len(fin), nreq, out)
		}
		for _, r := range rs {
			if r.StatusCode == 101 {
				t.Fatalf("101 sent to a client that asked for no upgrade:\n%q", out)
			}
		}
	})
}
