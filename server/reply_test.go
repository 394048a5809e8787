package server

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/zmqbridge"
)

const (
	getReq  = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
	postReq = "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc"
	okHead  = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
)

// uwsgiPacket encodes key/value pairs as a uwsgi packet.
func uwsgiPacket(t testing.TB, kv ...string) string {
	b, start := protocol.BeginUwsgi(nil)
	for i := 0; i+1 < len(kv); i += 2 {
		b = protocol.AppendUwsgiString(b, kv[i], kv[i+1])
	}
	b, err := protocol.FinishUwsgi(b, start)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sentNames is what the ring got, as "node:type" (":body=…" for bodies).
func sentNames(h *harness, ms []zmqbridge.Msg) []string {
	var out []string
	for _, m := range ms {
		name := h.s.rt.Load().nodes.Nodes()[m.Node].Name + ":" + m.Type
		if m.Type == "body" {
			name += "=" + string(m.Body)
		}
		out = append(out, name)
	}
	return out
}

// TestReplies drives one request through node replies and the failure
// branches of the reply state machine, checking what the client and the
// nodes get.
func TestReplies(t *testing.T) {
	later := func(d time.Duration) time.Time { return time.Now().Add(d) }
	tests := []struct {
		name       string
		req        string
		then       func(h *harness) // node replies, failures, sweeps
		wantStatus int              // the one final response; 0: none
		wantBody   string
		wantClosed bool
		wantSent   []string // every message to a node, in order
		check      func(t *testing.T, h *harness)
	}{
		{
			name: "content-length response keeps the connection",
			req:  getReq,
			then: func(h *harness) {
				h.reply("n1", "headers", okHead)
				h.reply("n1", "body", "hello")
			},
			wantStatus: 200, wantBody: "hello",
			wantSent: []string{"n1:headers"},
			check: func(t *testing.T, h *harness) {
				if h.c.phase != phIdle {
					t.Errorf("phase %d, want idle", h.c.phase)
				}
			},
		},
		{
			name:       "head and body in one message",
			req:        getReq,
			then:       func(h *harness) { h.reply("n1", "headers", okHead+"hello") },
			wantStatus: 200, wantBody: "hello",
			wantSent: []string{"n1:headers"},
		},
		{
			name: "uwsgi-format response",
			req:  getReq,
			then: func(h *harness) {
				h.reply("n1", "uwsgi", uwsgiPacket(h.t, "Status", "200 OK", "Content-Length", "2"))
				h.reply("n1", "body", "hi")
			},
			wantStatus: 200, wantBody: "hi",
			wantSent: []string{"n1:headers"},
		},
		{
			name: "chunk messages framed as chunked coding",
			req:  getReq,
			then: func(h *harness) {
				h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
				h.reply("n1", "chunk", "abc")
				h.reply("n1", "body", "de")
				h.reply("n1", "chunk", "")
			},
			wantStatus: 200, wantBody: "abcde",
			wantSent: []string{"n1:headers"},
		},
		{
			name: "response without length is delimited by the close",
			req:  getReq,
			then: func(h *harness) {
				h.reply("n1", "headers", "HTTP/1.1 200 OK\r\n\r\n")
				h.reply("n1", "body", "stream")
				h.reply("n1", "end", "")
			},
			wantStatus: 200, wantBody: "stream", wantClosed: true,
			wantSent: []string{"n1:headers", "n1:end"},
		},
		{
			name:       "end before any head is a 502",
			req:        getReq,
			then:       func(h *harness) { h.reply("n1", "end", "") },
			wantStatus: 502, wantClosed: true,
			wantSent: []string{"n1:headers", "n1:end"},
		},
		{
			name:       "malformed head is a 502",
			req:        getReq,
			then:       func(h *harness) { h.reply("n1", "headers", "HTTP/1.1 abc\r\n\r\n") },
			wantStatus: 502, wantClosed: true,
			wantSent: []string{"n1:headers", "n1:end"},
			check: func(t *testing.T, h *harness) {
				if got := h.s.stats.BadResponse.Load(); got != 1 {
					t.Errorf("BadResponse = %d, want 1", got)
				}
			},
		},
		{
			// Found by FuzzNodeReplies: the uwsgi conversion ran before
			// the phase check, so a bad packet after the response made
			// the proxy send a second, unsolicited 502 and close.
			name: "malformed uwsgi head after the response is ignored",
			req:  getReq,
			then: func(h *harness) {
				h.reply("n1", "headers", okHead+"hello")
				h.reply("n1", "uwsgi", "")
			},
			wantStatus: 200, wantBody: "hello",
			wantSent: []string{"n1:headers"},
			check: func(t *testing.T, h *harness) {
				if got := h.s.stats.Unexpected.Load(); got != 1 {
					t.Errorf("Unexpected = %d, want 1", got)
				}
			},
		},
		{
			name:       "head undeliverable, no other live node: 502",
			req:        getReq,
			then:       func(h *harness) { h.undeliverable("n1", "headers") },
			wantStatus: 502, wantClosed: true,
			wantSent: []string{"n1:headers", "n1:end"},
		},
		{
			name: "head undeliverable, another live node: resent there",
			req:  getReq,
			then: func(h *harness) {
				h.node("n2").Seen(h.s.now())
				h.undeliverable("n1", "headers")
				h.reply("n1", "headers", okHead+"wrong") // n1 left the session
				h.reply("n2", "headers", okHead+"hello")
			},
			wantStatus: 200, wantBody: "hello",
			wantSent: []string{"n1:headers", "n1:end", "n2:headers"},
			check: func(t *testing.T, h *harness) {
				if got := h.s.stats.Retries.Load(); got != 1 {
					t.Errorf("Retries = %d, want 1", got)
				}
				if got := h.s.stats.Unauthorized.Load(); got != 1 {
					t.Errorf("Unauthorized = %d, want 1", got)
				}
			},
		},
		{
			name: "request body undeliverable after the head: 502, not rerun",
			req:  postReq,
			then: func(h *harness) {
				h.node("n2").Seen(h.s.now())
				h.undeliverable("n1", "body")
			},
			wantStatus: 502, wantClosed: true,
			wantSent: []string{"n1:headers", "n1:body=abc", "n1:end"},
		},
		{
			name: "undeliverable while the response streams: closed mid-body",
			req:  getReq,
			then: func(h *harness) {
				h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel")
				h.undeliverable("n1", "credit")
			},
			wantStatus: 200, wantBody: "hel", wantClosed: true,
			wantSent: []string{"n1:headers", "n1:end"},
		},
		{
			name: "undeliverable of an earlier request is ignored",
			req:  getReq,
			then: func(h *harness) {
				m := zmqbridge.Msg{Node: h.node("n1").Index, SID: h.sid, Type: "headers", Tag: h.c.reqSeq - 1}
				h.s.handlers[0].Undeliverable(&m, nil)
				h.settle()
				h.reply("n1", "headers", okHead+"hello")
			},
			wantStatus: 200, wantBody: "hello",
			wantSent: []string{"n1:headers"},
		},
		{
			name:       "response timeout: 504 and end to the node",
			req:        getReq,
			then:       func(h *harness) { h.sweep(later(config.Defaults().Timeout + time.Second)) },
			wantStatus: 504, wantClosed: true,
			wantSent: []string{"n1:headers", "n1:end"},
			check: func(t *testing.T, h *harness) {
				if got := h.s.stats.Timeouts.Load(); got != 1 {
					t.Errorf("Timeouts = %d, want 1", got)
				}
			},
		},
		{
			name: "node dies before the head: 502",
			req:  getReq,
			then: func(h *harness) {
				h.node("n1").MarkDead()
				h.sweep(time.Now())
			},
			wantStatus: 502, wantClosed: true,
			wantSent: []string{"n1:headers", "n1:end"},
		},
		{
			name: "reply from a node not bound to the session is dropped",
			req:  getReq,
			then: func(h *harness) {
				h.reply("n2", "headers", okHead+"hello")
				h.reply("n2", "end", "")
			},
			wantSent: []string{"n1:headers"},
			check: func(t *testing.T, h *harness) {
				if got := h.s.stats.Unauthorized.Load(); got != 2 {
					t.Errorf("Unauthorized = %d, want 2", got)
				}
				if h.c.phase != phAwaitHead {
					t.Errorf("phase %d, want awaiting the head", h.c.phase)
				}
			},
		},
		{
			name: "full ring pauses reading, then sends in order",
			req:  "",
			then: func(h *harness) {
				h.ring.refuse = true
				h.client(postReq)
				if !h.fc.paused || h.fc.pauses != 1 {
					h.t.Errorf("paused %v after %d pauses, want paused once", h.fc.paused, h.fc.pauses)
				}
				if got := h.s.stats.RingFull.Load(); got != 1 {
					h.t.Errorf("RingFull = %d, want 1", got)
				}
				h.s.handlers[0].Room() // still full
				h.settle()
				h.ring.refuse = false
				h.s.handlers[0].Room()
				h.settle()
				if h.fc.paused {
					h.t.Errorf("still paused after the ring took everything")
				}
				h.reply("n1", "headers", okHead+"hello")
			},
			wantStatus: 200, wantBody: "hello",
			wantSent: []string{"n1:headers", "n1:body=abc"},
		},
		{
			name: "stuck node: messages wait, end of a closed session is kept",
			req:  "",
			then: func(h *harness) {
				h.ring.full[h.node("n1").Index] = true
				h.client(getReq)
				h.fc.closed = true // the client goes away
				h.settle()
				delete(h.ring.full, h.node("n1").Index)
				h.s.handlers[0].Room()
				h.settle()
			},
			wantClosed: true,
			wantSent:   []string{"n1:end"}, // the head was dropped
			check: func(t *testing.T, h *harness) {
				if l := h.s.loops[0]; len(l.orphans) != 0 || len(l.roomWait) != 0 {
					t.Errorf("loop still holds %d orphans, %d waiting conns", len(l.orphans), len(l.roomWait))
				}
			},
		},
		{
			name: "client over max-pending-output is closed",
			req:  getReq,
			then: func(h *harness) {
				h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
				h.fc.outbound = config.Defaults().MaxPendingOutput + 1
				h.reply("n1", "body", "hello")
			},
			wantStatus: 200, wantBody: "hello", wantClosed: true,
			wantSent: []string{"n1:headers", "n1:end"},
			check: func(t *testing.T, h *harness) {
				if got := h.s.stats.SlowClients.Load(); got != 1 {
					t.Errorf("SlowClients = %d, want 1", got)
				}
				if got := h.s.pendingTotal.Load(); got != 0 {
					t.Errorf("pendingTotal = %d after close, want 0", got)
				}
			},
		},
		{
			name: "stall: held output not read for stall-timeout",
			req:  getReq,
			then: func(h *harness) {
				h.fc.outbound = 100
				h.reply("n1", "headers", okHead+"hello")
				if !h.fc.closed {
					h.sweep(later(config.Defaults().StallTimeout / 2)) // not yet
					if h.fc.closed {
						h.t.Errorf("closed before stall-timeout")
					}
				}
				h.sweep(later(config.Defaults().StallTimeout + time.Second))
			},
			wantStatus: 200, wantBody: "hello", wantClosed: true,
			wantSent: []string{"n1:headers", "n1:end"},
			check: func(t *testing.T, h *harness) {
				if got := h.s.stats.SlowClients.Load(); got != 1 {
					t.Errorf("SlowClients = %d, want 1", got)
				}
			},
		},
		{
			name: "held output over half the cap pauses reading",
			req:  getReq,
			then: func(h *harness) {
				h.fc.outbound = config.Defaults().MaxPendingOutput/2 + 1
				h.reply("n1", "headers", okHead+"hello")
				if !h.fc.paused {
					h.t.Errorf("not paused with %d bytes held", h.fc.outbound)
				}
				h.fc.outbound = 0
				(*handler)(h.s).OnOutboundDrained(h.fc, 0)
				h.settle()
				if h.fc.paused {
					h.t.Errorf("still paused after the client drained")
				}
			},
			wantStatus: 200, wantBody: "hello",
			wantSent: []string{"n1:headers"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testOptions())
			h.t = t
			if tt.req != "" {
				h.client(tt.req)
			}
			tt.then(h)
			out := h.takeOut()
			rs, err := readResponses(out, h.fc.closed)
			if err != nil {
				t.Fatalf("client got invalid HTTP/1.1: %v\n%q", err, out)
			}
			rs = finals(rs)
			switch {
			case tt.wantStatus == 0 && len(rs) > 0:
				t.Errorf("client got %d responses, want none: %q", len(rs), out)
			case tt.wantStatus != 0 && len(rs) != 1:
				t.Fatalf("client got %d responses, want 1: %q", len(rs), out)
			case tt.wantStatus != 0:
				if rs[0].StatusCode != tt.wantStatus {
					t.Errorf("status %d, want %d", rs[0].StatusCode, tt.wantStatus)
				}
				if tt.wantStatus == 200 && string(rs[0].body) != tt.wantBody {
					t.Errorf("body %q, want %q", rs[0].body, tt.wantBody)
				}
			}
			if h.fc.closed != tt.wantClosed {
				t.Errorf("closed = %v, want %v", h.fc.closed, tt.wantClosed)
			}
			if got := sentNames(h, h.ring.take()); !slices.Equal(got, tt.wantSent) {
				t.Errorf("nodes got %q, want %q", got, tt.wantSent)
			}
			if tt.check != nil {
				tt.check(t, h)
			}
		})
	}
}

// TestRetryMsgs checks the per-node order of the messages the ring
// refused: a stuck node's stay, in order, while the others go; a full
// ring stops the retry and keeps the rest in order.
func TestRetryMsgs(t *testing.T) {
	msg := func(node int, body string) zmqbridge.Msg {
		return zmqbridge.Msg{Node: node, Type: "body", Body: []byte(body)}
	}
	tests := []struct {
		name     string
		ring     *fakeRing
		msgs     []zmqbridge.Msg
		wantSent []string
		wantKept []string
	}{
		{
			name:     "all go",
			ring:     &fakeRing{},
			msgs:     []zmqbridge.Msg{msg(0, "a"), msg(1, "b"), msg(0, "c")},
			wantSent: []string{"0a", "1b", "0c"},
		},
		{
			name:     "stuck node keeps its own",
			ring:     &fakeRing{full: map[int]bool{0: true}},
			msgs:     []zmqbridge.Msg{msg(0, "a"), msg(1, "b"), msg(0, "c"), msg(1, "d")},
			wantSent: []string{"1b", "1d"},
			wantKept: []string{"0a", "0c"},
		},
		{
			name:     "full ring keeps everything",
			ring:     &fakeRing{refuse: true},
			msgs:     []zmqbridge.Msg{msg(0, "a"), msg(1, "b")},
			wantKept: []string{"0a", "1b"},
		},
	}
	names := func(ms []zmqbridge.Msg) []string {
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprint(m.Node)+string(m.Body))
		}
		return out
	}
	// A full ring makes the nodes of what stays stuck for the rest of the
	// round: a later retry (another connection's) must not overtake.
	t.Run("full ring marks its nodes stuck", func(t *testing.T) {
		stuck := []int{}
		retryMsgs(&fakeRing{refuse: true}, []zmqbridge.Msg{msg(0, "a"), msg(1, "b"), msg(0, "c")}, &stuck)
		if !slices.Equal(stuck, []int{0, 1}) {
			t.Errorf("stuck %v, want [0 1]", stuck)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept := retryMsgs(tt.ring, tt.msgs, new([]int))
			if got := names(tt.ring.take()); !slices.Equal(got, tt.wantSent) {
				t.Errorf("sent %q, want %q", got, tt.wantSent)
			}
			if got := names(kept); !slices.Equal(got, tt.wantKept) {
				t.Errorf("kept %q, want %q", got, tt.wantKept)
			}
		})
	}
}
