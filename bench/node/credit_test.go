package main

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	bbnode "github.com/blastbeat/blastbeat/node"
)

// rig drives a node with -credits as the proxy would and audits every
// message it sends: a session may never have spent more credit
// (bbnode.Cost) than it was granted since its last request head.
type rig struct {
	t       *testing.T
	n       *node
	out     *[]sent
	audited int              // messages of out already charged
	granted map[string]int64 // sid → credit since the head
	spent   map[string]int64 // sid → cost sent since the head
	// slack is how far a session may overdraw: 0 unless a test sends a
	// WebSocket message larger than the window.
	slack int64
}

func newRig(t *testing.T) *rig {
	n, out := recorderWith(true)
	return &rig{t: t, n: n, out: out, granted: map[string]int64{}, spent: map[string]int64{}}
}

// deliver hands one message to the node, then audits what it sent.
func (r *rig) deliver(sid, typ string, body []byte) {
	r.t.Helper()
	if err := r.n.handle(msg(sid, typ, body)); err != nil {
		r.t.Fatalf("handle %s: %v", typ, err)
	}
	for _, m := range (*r.out)[r.audited:] {
		r.spent[m.sid] += bbnode.Cost(m.typ, []byte(m.body))
		if r.spent[m.sid] > r.granted[m.sid]+r.slack {
			r.t.Fatalf("session %q spent %d bytes of credit, granted %d (last: %s of %d bytes)",
				m.sid, r.spent[m.sid], r.granted[m.sid], m.typ, len(m.body))
		}
	}
	r.audited = len(*r.out)
}

// request sends a request head; the session's window starts over.
func (r *rig) request(sid string, kv ...string) {
	r.t.Helper()
	r.granted[sid], r.spent[sid] = 0, 0
	r.deliver(sid, "uwsgi", packet(kv...))
}

// grant sends a `credit` message.
func (r *rig) grant(sid string, k int64) {
	r.t.Helper()
	r.granted[sid] += k
	r.deliver(sid, "credit", []byte(strconv.FormatInt(k, 10)))
}

// since returns the messages sent from index i on.
func (r *rig) since(i int) []sent { return (*r.out)[i:] }

func TestCreditsPong(t *testing.T) {
	r := newRig(t)
	r.deliver("", "ping", nil)
	if got := r.since(0); len(got) != 1 || got[0] != (sent{"", "pong", "credits"}) {
		t.Fatalf("ping: got %+v", got)
	}
}

// TestCreditsHelloWaits: the 13 body bytes after the hello head cost
// credit, so the answer to `/` waits for the credit after the head.
func TestCreditsHelloWaits(t *testing.T) {
	r := newRig(t)
	r.request("s1", "PATH_INFO", "/")
	if len(*r.out) != 0 {
		t.Fatalf("answered before any credit: %+v", *r.out)
	}
	r.grant("s1", 256<<10)
	if got := r.since(0); len(got) != 1 || got[0].body != string(helloResponse) {
		t.Fatalf("after the credit: %+v", got)
	}
	// keep-alive: the next request's window starts over
	r.request("s1", "PATH_INFO", "/")
	if len(*r.out) != 1 {
		t.Fatalf("second request answered on the first one's credit: %+v", r.since(1))
	}
	r.grant("s1", 256<<10)
	if len(*r.out) != 2 {
		t.Fatalf("second request unanswered: %+v", *r.out)
	}
}

// TestCreditsStream serves /stream under many grant patterns: the head
// goes at once (free), the chunks within the grants, the empty chunk
// last, and the bytes add up to the whole stream.
func TestCreditsStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]int64, 200)
	for i := range random {
		random[i] = 1 + rng.Int64N(3000)
	}
	tests := []struct {
		name   string
		grants []int64 // repeated until the stream is done
	}{
		{name: "one byte", grants: []int64{1}},
		{name: "less than a chunk", grants: []int64{1000}},
		{name: "a chunk", grants: []int64{streamChunkSize}},
		{name: "chunk and a bit", grants: []int64{streamChunkSize + 1}},
		{name: "window", grants: []int64{256 << 10}},
		{name: "exactly the stream", grants: []int64{streamChunkSize * streamChunkCount}},
		{name: "random", grants: random},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			r.request("s1", "PATH_INFO", "/stream")
			if got := r.since(0); len(got) != 1 || got[0].body != string(streamHead) {
				t.Fatalf("before credit: %+v, want the head alone", got)
			}
			for i := 0; ; i++ {
				if last := (*r.out)[len(*r.out)-1]; last.typ == "chunk" && last.body == "" {
					break
				}
				if i > 20000 {
					t.Fatalf("stream not done after %d grants", i)
				}
				r.grant("s1", tt.grants[i%len(tt.grants)])
			}
			var body strings.Builder
			for _, m := range r.since(1) {
				if m.typ != "chunk" {
					t.Fatalf("stream message %s", m.typ)
				}
				body.WriteString(m.body)
			}
			if body.String() != strings.Repeat("x", streamChunkSize*streamChunkCount) {
				t.Fatalf("stream body: %d bytes", body.Len())
			}
			if s := r.n.sessions["s1"]; s == nil || s.head != len(s.queue) || s.queued != 0 {
				t.Fatalf("session after the stream: %+v", s)
			}
		})
	}
}

// TestCreditsSessionsApart: a session without credit waits alone; the
// others go on.
func TestCreditsSessionsApart(t *testing.T) {
	r := newRig(t)
	r.request("slow", "PATH_INFO", "/stream")
	r.request("fast", "PATH_INFO", "/stream")
	r.grant("fast", 256<<10)
	r.request("hello", "PATH_INFO", "/")
	r.grant("hello", 256<<10)
	count := map[string]int{}
	for _, m := range *r.out {
		count[m.sid]++
	}
	if count["slow"] != 1 || count["fast"] != streamChunkCount+2 || count["hello"] != 1 {
		t.Fatalf("messages per session: %v", count)
	}
	r.grant("slow", 256<<10)
	if count := len(r.since(streamChunkCount + 4)); count != streamChunkCount+1 {
		t.Fatalf("slow session after its credit: %d messages", count)
	}
}

// TestCreditsWebSocket: echoes go whole and in order, each when its
// credit is there; a queued echo is a copy (the receive batch is reused).
func TestCreditsWebSocket(t *testing.T) {
	r := newRig(t)
	r.request("w", "PATH_INFO", "/ws", "HTTP_UPGRADE", "websocket")
	r.grant("w", 10)
	r.deliver("w", "websocket", []byte("hello"))
	buf := []byte("world!")
	r.deliver("w", "websocket", buf)
	r.deliver("w", "websocket-binary", []byte{'x'})
	copy(buf, "XXXXXX") // the batch is gone
	if got := r.since(0); len(got) != 1 || got[0] != (sent{"w", "websocket", "hello"}) {
		t.Fatalf("with 10 bytes of credit: %+v", got)
	}
	r.grant("w", 6)
	want := []sent{{"w", "websocket", "world!"}, {"w", "websocket-binary", "x"}}
	if got := r.since(1); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("after more credit: %+v, want %+v", got, want)
	}
	if r.n.stats.waits.Load() != 2 {
		t.Errorf("waits = %d, want 2", r.n.stats.waits.Load())
	}
}

// TestCreditsWebSocketOverWindow: a message larger than the window goes
// once the whole window is back, alone.
func TestCreditsWebSocketOverWindow(t *testing.T) {
	r := newRig(t)
	r.slack = 50
	r.request("w", "PATH_INFO", "/ws", "HTTP_UPGRADE", "websocket")
	r.grant("w", 100)
	r.deliver("w", "websocket", bytes.Repeat([]byte("a"), 60))
	r.deliver("w", "websocket", bytes.Repeat([]byte("B"), 150))
	if len(*r.out) != 1 {
		t.Fatalf("the big message went with 40 of 100 bytes back: %d messages", len(*r.out))
	}
	r.grant("w", 60)
	if got := r.since(1); len(got) != 1 || len(got[0].body) != 150 {
		t.Fatalf("with the whole window back: %+v", got)
	}
	if s := r.n.sessions["w"]; s.credit != -50 {
		t.Fatalf("credit after the overdraft %d, want -50", s.credit)
	}
}

// TestCreditsResetOnHead: a new head voids what waited of the earlier
// response and the credit left over.
func TestCreditsResetOnHead(t *testing.T) {
	r := newRig(t)
	r.request("s1", "PATH_INFO", "/stream")
	r.grant("s1", 2000)
	n := len(*r.out)
	r.request("s1", "PATH_INFO", "/")
	if len(*r.out) != n {
		t.Fatalf("the new request was answered on the old credit: %+v", r.since(n))
	}
	r.grant("s1", 100)
	if got := r.since(n); len(got) != 1 || got[0].body != string(helloResponse) {
		t.Fatalf("after the new head: %+v, want the hello alone", got)
	}
	if s := r.n.sessions["s1"]; s.queued != 0 || s.head != len(s.queue) || s.credit != 87 {
		t.Fatalf("session: queued %d, queue %d..%d, credit %d", s.queued, s.head, len(s.queue), s.credit)
	}
}

// TestCreditsPost: /post answers after the body, within its credit.
func TestCreditsPost(t *testing.T) {
	r := newRig(t)
	r.request("s1", "PATH_INFO", "/post", "CONTENT_LENGTH", "10")
	r.grant("s1", 256<<10)
	r.deliver("s1", "body", []byte("12345"))
	if len(*r.out) != 0 {
		t.Fatalf("replied before the whole body: %+v", *r.out)
	}
	r.deliver("s1", "body", []byte("67890"))
	if got := r.since(0); len(got) != 1 || got[0].body != string(helloResponse) {
		t.Fatalf("post: %+v", got)
	}
	r.deliver("s1", "body", []byte("late")) // no body awaited any more
	if len(*r.out) != 1 {
		t.Fatalf("a stray body was answered: %+v", *r.out)
	}
}

// TestCreditsEnd: `end` forgets the session and what waited; a credit
// after it is dropped.
func TestCreditsEnd(t *testing.T) {
	r := newRig(t)
	r.request("s1", "PATH_INFO", "/stream")
	r.deliver("s1", "end", nil)
	if len(r.n.sessions) != 0 {
		t.Fatalf("end kept the session: %v", r.n.sessions)
	}
	r.grant("s1", 1000)
	if len(*r.out) != 1 || r.n.stats.dropped.Load() != 1 || len(r.n.sessions) != 0 {
		t.Fatalf("late credit: out %+v, dropped %d, sessions %d", *r.out, r.n.stats.dropped.Load(), len(r.n.sessions))
	}
}

// TestCreditsQueueBound: a WebSocket client that sends but never gives
// credit back is ended once its session holds maxQueued bytes.
func TestCreditsQueueBound(t *testing.T) {
	r := newRig(t)
	r.request("w", "PATH_INFO", "/ws", "HTTP_UPGRADE", "websocket")
	piece := make([]byte, 64<<10)
	for i := 0; i < maxQueued/len(piece); i++ {
		r.deliver("w", "websocket-binary", piece)
	}
	if len(*r.out) != 0 {
		t.Fatalf("sent %d messages without credit", len(*r.out))
	}
	r.deliver("w", "websocket-binary", piece)
	if got := r.since(0); len(got) != 1 || got[0] != (sent{"w", "end", ""}) {
		t.Fatalf("over the bound: %+v, want end", got)
	}
	if len(r.n.sessions) != 0 || r.n.stats.overflows.Load() != 1 {
		t.Fatalf("sessions %d, overflows %d", len(r.n.sessions), r.n.stats.overflows.Load())
	}
	r.deliver("w", "websocket", []byte("after")) // the session is gone: no echo
	if len(*r.out) != 1 {
		t.Fatalf("echoed into an ended session: %+v", r.since(1))
	}
}

func TestCreditsBadCredit(t *testing.T) {
	r := newRig(t)
	r.request("s1", "PATH_INFO", "/")
	for _, bad := range []string{"", "0", "-1", "12x", "1000000000000000000"} {
		r.deliver("s1", "credit", []byte(bad))
	}
	if len(*r.out) != 0 || r.n.stats.dropped.Load() != 5 || r.n.stats.credits.Load() != 0 {
		t.Fatalf("bad credits: out %+v, dropped %d, credits %d", *r.out, r.n.stats.dropped.Load(), r.n.stats.credits.Load())
	}
}

// TestNoCreditsIgnoresCredit: a node without -credits answers at once,
// pongs empty, and drops a `credit` it never asked for.
func TestNoCreditsIgnoresCredit(t *testing.T) {
	n, out := recorder()
	_ = n.handle(msg("s1", "uwsgi", packet("PATH_INFO", "/stream")))
	_ = n.handle(msg("s1", "credit", []byte("100")))
	if len(*out) != streamChunkCount+2 || n.stats.dropped.Load() != 1 || len(n.sessions) != 0 {
		t.Fatalf("legacy: %d messages, dropped %d, sessions %d", len(*out), n.stats.dropped.Load(), len(n.sessions))
	}
}
