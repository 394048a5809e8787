package node_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/node"
)

// stub is the proxy's side of the wire: a ROUTER bound on a free
// loopback port, driven by the test goroutine.
type stub struct {
	t    *testing.T
	sock *zmq.Socket
	ep   string
}

// stubTimeout bounds every wait of these tests: a missing message fails
// the test instead of hanging it.
const stubTimeout = 5 * time.Second

func startStub(t *testing.T) *stub {
	t.Helper()
	sock, err := zmq.NewSocket(zmq.ROUTER)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	if err := errors.Join(sock.SetLinger(0), sock.SetRouterMandatory(1), sock.SetRcvtimeo(stubTimeout),
		sock.Bind("tcp://127.0.0.1:*")); err != nil {
		t.Fatal(err)
	}
	ep, err := sock.GetLastEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	return &stub{t: t, sock: sock, ep: ep}
}

// dial connects a node with identity to the stub; the node's receives
// time out after stubTimeout.
func (s *stub) dial(identity string) *node.Node {
	s.t.Helper()
	n, err := node.Dial(identity, s.ep)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { n.Close() })
	if err := n.Socket().SetRcvtimeo(stubTimeout); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// send routes [sid, typ, body] to the node id, retrying while the node's
// connection is not up yet (ROUTER_MANDATORY says EHOSTUNREACH).
func (s *stub) send(id, sid, typ, body string) {
	s.t.Helper()
	deadline := time.Now().Add(stubTimeout)
	for {
		_, err := s.sock.SendMessage(id, sid, typ, body)
		if err == nil {
			return
		}
		if zmq.AsErrno(err) != zmq.Errno(syscall.EHOSTUNREACH) || time.Now().After(deadline) {
			s.t.Fatalf("stub: send %s to %s: %v", typ, id, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// frame is one message the stub received, as strings.
type frame struct{ id, sid, typ, body string }

func (s *stub) recv() frame {
	s.t.Helper()
	parts, err := s.sock.RecvMessage(0)
	if err != nil {
		s.t.Fatalf("stub: no message from the node within %v: %v", stubTimeout, err)
	}
	if len(parts) != 4 {
		s.t.Fatalf("stub: %d frames, want 4: %q", len(parts), parts)
	}
	return frame{parts[0], parts[1], parts[2], parts[3]}
}

// expect receives one message and checks it.
func (s *stub) expect(want frame) {
	s.t.Helper()
	got := s.recv()
	if got.typ == "pong" {
		// Every pong names the node's instance (a random token): checked
		// apart (TestPongInstance), left out here.
		got.body = withoutInstance(got.body)
	}
	if got != want {
		s.t.Fatalf("stub got %s %q %q (%d bytes), want %s %q %q (%d bytes)",
			got.typ, got.sid, short(got.body), len(got.body), want.typ, want.sid, short(want.body), len(want.body))
	}
}

// withoutInstance drops the instance=TOKEN feature from a pong body.
func withoutInstance(body string) string {
	var keep []string
	for _, f := range strings.Fields(body) {
		if !strings.HasPrefix(f, "instance=") {
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, " ")
}

func short(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// recvType has the node receive one message and checks its type and sid.
func recvType(t *testing.T, n *node.Node, sid, typ string) node.Message {
	t.Helper()
	m, err := n.Recv()
	if err != nil {
		t.Fatalf("node: Recv (want %s): %v", typ, err)
	}
	if m.Type != typ || string(m.SID) != sid {
		t.Fatalf("node: got %s for %q, want %s for %q", m.Type, m.SID, typ, sid)
	}
	return m
}

// wantCredit checks the node's allowance of sid.
func wantCredit(t *testing.T, n *node.Node, sid string, want int64) {
	t.Helper()
	if got := n.Credit([]byte(sid)); got != want {
		t.Fatalf("Credit(%q) = %d, want %d", sid, got, want)
	}
}

// sendBody calls SendBody and checks what it sent and its error.
func sendBody(t *testing.T, n *node.Node, sid, typ string, body []byte, wantSent int, wantErr error) {
	t.Helper()
	sent, err := n.SendBody([]byte(sid), typ, body)
	if sent != wantSent || !errors.Is(err, wantErr) {
		t.Fatalf("SendBody(%q, %s, %d bytes) = %d, %v; want %d, %v", sid, typ, len(body), sent, err, wantSent, wantErr)
	}
}

// head is a request head in uwsgi form (its content does not matter here).
const head = "\x00\x00\x00\x00"

func TestPongWithoutCredits(t *testing.T) {
	s := startStub(t)
	n := s.dial("legacy")
	s.send("legacy", "", "ping", "")
	s.send("legacy", "s1", "uwsgi", head)
	recvType(t, n, "s1", "uwsgi")
	s.expect(frame{"legacy", "", "pong", ""})
	// Nothing limits a legacy node: SendBody is Send.
	wantCredit(t, n, "s1", math.MaxInt64)
	sendBody(t, n, "s1", "body", []byte("hello"), 5, nil)
	s.expect(frame{"legacy", "s1", "body", "hello"})
	if n.CreditsEnabled() {
		t.Fatal("CreditsEnabled without EnableCredits")
	}
}

func TestPongWithCredits(t *testing.T) {
	s := startStub(t)
	n := s.dial("flow")
	n.EnableCredits()
	if !n.CreditsEnabled() {
		t.Fatal("CreditsEnabled false after EnableCredits")
	}
	s.send("flow", "", "ping", "")
	s.send("flow", "s1", "uwsgi", head)
	recvType(t, n, "s1", "uwsgi")
	s.expect(frame{"flow", "", "pong", node.CreditsFeature})
	if node.CreditsFeature != "credits" {
		t.Fatalf("feature token %q", node.CreditsFeature)
	}
}

// TestCreditAccounting walks one response through its window: the head
// starts at zero, credit adds, body and chunk split at the allowance,
// heads and the final empty chunk are free.
func TestCreditAccounting(t *testing.T) {
	s := startStub(t)
	n := s.dial("acc")
	n.EnableCredits()
	s.send("acc", "s1", "uwsgi", head)
	s.send("acc", "s1", "credit", "100")
	recvType(t, n, "s1", "uwsgi")
	wantCredit(t, n, "s1", 0)
	sendBody(t, n, "s1", "body", []byte("x"), 0, node.ErrNoCredit) // before the first credit
	if m := recvType(t, n, "s1", "credit"); string(m.Body) != "100" {
		t.Fatalf("credit body %q", m.Body)
	}
	wantCredit(t, n, "s1", 100)

	hd := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	if err := n.Send([]byte("s1"), "headers", []byte(hd)); err != nil {
		t.Fatal(err)
	}
	wantCredit(t, n, "s1", 100) // a head is free
	body := bytes.Repeat([]byte("0123456789"), 20)
	sendBody(t, n, "s1", "chunk", body[:60], 60, nil)
	wantCredit(t, n, "s1", 40)
	sendBody(t, n, "s1", "chunk", body[60:130], 40, node.ErrNoCredit)
	wantCredit(t, n, "s1", 0)
	sendBody(t, n, "s1", "chunk", body[100:130], 0, node.ErrNoCredit)

	s.send("acc", "s1", "credit", "25")
	recvType(t, n, "s1", "credit")
	wantCredit(t, n, "s1", 25)
	sendBody(t, n, "s1", "chunk", body[100:130], 25, node.ErrNoCredit)
	s.send("acc", "s1", "credit", "1000")
	recvType(t, n, "s1", "credit")
	sendBody(t, n, "s1", "chunk", body[125:130], 5, nil)
	wantCredit(t, n, "s1", 995)
	sendBody(t, n, "s1", "chunk", nil, 0, nil) // the end of the response
	wantCredit(t, n, "s1", 995)

	s.expect(frame{"acc", "s1", "headers", hd})
	s.expect(frame{"acc", "s1", "chunk", string(body[:60])})
	s.expect(frame{"acc", "s1", "chunk", string(body[60:100])})
	s.expect(frame{"acc", "s1", "chunk", string(body[100:125])})
	s.expect(frame{"acc", "s1", "chunk", string(body[125:130])})
	s.expect(frame{"acc", "s1", "chunk", ""})
}

// TestCreditResetOnHead: a new request head on a keep-alive sid voids
// what the earlier response left; only the credit after it counts.
func TestCreditResetOnHead(t *testing.T) {
	for _, typ := range []string{"uwsgi", "headers"} {
		t.Run(typ, func(t *testing.T) {
			s := startStub(t)
			n := s.dial("reset")
			n.EnableCredits()
			s.send("reset", "s1", typ, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			s.send("reset", "s1", "credit", "300")
			recvType(t, n, "s1", typ)
			recvType(t, n, "s1", "credit")
			sendBody(t, n, "s1", "body", make([]byte, 100), 100, nil)
			wantCredit(t, n, "s1", 200)

			s.send("reset", "s1", typ, "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
			s.send("reset", "s1", "credit", "50")
			recvType(t, n, "s1", typ)
			wantCredit(t, n, "s1", 0)
			sendBody(t, n, "s1", "body", make([]byte, 10), 0, node.ErrNoCredit)
			recvType(t, n, "s1", "credit")
			wantCredit(t, n, "s1", 50)
		})
	}
}

// TestCreditSessionsApart: one session's credit is not another's.
func TestCreditSessionsApart(t *testing.T) {
	s := startStub(t)
	n := s.dial("apart")
	n.EnableCredits()
	s.send("apart", "a", "uwsgi", head)
	s.send("apart", "b", "uwsgi", head)
	s.send("apart", "a", "credit", "10")
	for _, want := range []string{"a", "b", "a"} {
		if m, err := n.Recv(); err != nil || string(m.SID) != want {
			t.Fatalf("Recv: %q %s %v", m.SID, m.Type, err)
		}
	}
	wantCredit(t, n, "a", 10)
	wantCredit(t, n, "b", 0)
	sendBody(t, n, "b", "body", []byte("x"), 0, node.ErrNoCredit)
}

// TestCreditEnd: `end` from the proxy, or the node's own, forgets the
// session; a credit for a sid without a head is not kept.
func TestCreditEnd(t *testing.T) {
	s := startStub(t)
	n := s.dial("end")
	n.EnableCredits()
	s.send("end", "s1", "uwsgi", head)
	s.send("end", "s1", "credit", "100")
	s.send("end", "s1", "end", "")
	s.send("end", "s1", "credit", "100") // late: ignored
	s.send("end", "s2", "uwsgi", head)
	s.send("end", "s2", "credit", "100")
	for _, typ := range []string{"uwsgi", "credit", "end", "credit", "uwsgi", "credit"} {
		m, err := n.Recv()
		if err != nil || m.Type != typ {
			t.Fatalf("Recv: %s %v, want %s", m.Type, err, typ)
		}
	}
	wantCredit(t, n, "s1", 0)
	wantCredit(t, n, "s2", 100)
	if err := n.Send([]byte("s2"), "end", nil); err != nil {
		t.Fatal(err)
	}
	wantCredit(t, n, "s2", 0)
	s.expect(frame{"end", "s2", "end", ""})
}

// TestCreditSendCharges: Send charges what Cost says, even past the
// allowance (an overdraft SendBody then refuses to add to).
func TestCreditSendCharges(t *testing.T) {
	s := startStub(t)
	n := s.dial("charge")
	n.EnableCredits()
	s.send("charge", "s1", "uwsgi", head)
	s.send("charge", "s1", "credit", "20")
	recvType(t, n, "s1", "uwsgi")
	recvType(t, n, "s1", "credit")
	steps := []struct {
		typ, body string
		want      int64
	}{
		{typ: "headers", body: "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!", want: 7},
		{typ: "retry", body: "", want: 7},
		{typ: "body", body: "0123456789", want: -3},
	}
	for _, st := range steps {
		if err := n.Send([]byte("s1"), st.typ, []byte(st.body)); err != nil {
			t.Fatal(err)
		}
		wantCredit(t, n, "s1", st.want)
	}
	sendBody(t, n, "s1", "body", []byte("x"), 0, node.ErrNoCredit)
	sendBody(t, n, "s1", "chunk", nil, 0, nil) // an empty chunk still goes
}

// TestCreditWebSocket: a WebSocket message goes whole or waits; one
// larger than the window goes alone once the whole window is back.
func TestCreditWebSocket(t *testing.T) {
	s := startStub(t)
	n := s.dial("ws")
	n.EnableCredits()
	s.send("ws", "w", "uwsgi", head)
	s.send("ws", "w", "credit", "100")
	recvType(t, n, "w", "uwsgi")
	recvType(t, n, "w", "credit")
	msg := bytes.Repeat([]byte("m"), 60)
	big := bytes.Repeat([]byte("B"), 150)
	sendBody(t, n, "w", "websocket", msg, 60, nil)
	sendBody(t, n, "w", "websocket-binary", msg, 0, node.ErrNoCredit) // 40 left
	sendBody(t, n, "w", "websocket", big, 0, node.ErrNoCredit)
	s.send("ws", "w", "credit", "60")
	recvType(t, n, "w", "credit")
	wantCredit(t, n, "w", 100)
	sendBody(t, n, "w", "websocket-binary", msg, 60, nil)
	sendBody(t, n, "w", "websocket", big, 0, node.ErrNoCredit) // 40 left of 100
	s.send("ws", "w", "credit", "60")
	recvType(t, n, "w", "credit")
	sendBody(t, n, "w", "websocket", big, 150, nil) // the whole window is back
	wantCredit(t, n, "w", -50)
	sendBody(t, n, "w", "websocket", []byte{}, 0, nil)
	sendBody(t, n, "w", "websocket", []byte("x"), 0, node.ErrNoCredit)

	s.expect(frame{"ws", "w", "websocket", string(msg)})
	s.expect(frame{"ws", "w", "websocket-binary", string(msg)})
	s.expect(frame{"ws", "w", "websocket", string(big)})
	s.expect(frame{"ws", "w", "websocket", ""})
}

func TestSendBodyNotBody(t *testing.T) {
	s := startStub(t)
	n := s.dial("nb")
	for _, typ := range []string{"headers", "uwsgi", "end", "retry", "pong"} {
		if _, err := n.SendBody([]byte("s"), typ, nil); !errors.Is(err, node.ErrNotBody) {
			t.Errorf("SendBody(%s): %v, want ErrNotBody", typ, err)
		}
	}
}

// TestBadCredit: a malformed credit comes back with ErrBadCredit and
// changes nothing; the node goes on.
func TestBadCredit(t *testing.T) {
	s := startStub(t)
	n := s.dial("bad")
	n.EnableCredits()
	s.send("bad", "s1", "uwsgi", head)
	s.send("bad", "s1", "credit", "12x")
	s.send("bad", "s1", "credit", "7")
	recvType(t, n, "s1", "uwsgi")
	m, err := n.Recv()
	if !errors.Is(err, node.ErrBadCredit) || m.Type != "credit" || string(m.Body) != "12x" {
		t.Fatalf("bad credit: %s %q %v", m.Type, m.Body, err)
	}
	wantCredit(t, n, "s1", 0)
	recvType(t, n, "s1", "credit")
	wantCredit(t, n, "s1", 7)
}

// TestCreditSaturates: credit never wraps round.
func TestCreditSaturates(t *testing.T) {
	s := startStub(t)
	n := s.dial("sat")
	n.EnableCredits()
	s.send("sat", "s1", "uwsgi", head)
	s.send("sat", "s1", "credit", "999999999999999999")
	s.send("sat", "s1", "credit", "999999999999999999")
	s.send("sat", "s1", "credit", "999999999999999999")
	s.send("sat", "s1", "credit", "999999999999999999")
	recvType(t, n, "s1", "uwsgi")
	for range 4 {
		recvType(t, n, "s1", "credit")
	}
	wantCredit(t, n, "s1", 3999999999999999996)
	for range 6 {
		s.send("sat", "s1", "credit", "999999999999999999")
		recvType(t, n, "s1", "credit")
	}
	wantCredit(t, n, "s1", math.MaxInt64)
}

func TestParseCredit(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{in: "1", want: 1, ok: true},
		{in: "262144", want: 262144, ok: true},
		{in: "007", want: 7, ok: true},
		{in: "999999999999999999", want: 999999999999999999, ok: true},
		{in: "", ok: false},
		{in: "0", ok: false},
		{in: "000", ok: false},
		{in: "-5", ok: false},
		{in: "+5", ok: false},
		{in: " 5", ok: false},
		{in: "5\n", ok: false},
		{in: "1e6", ok: false},
		{in: "1000000000000000000", ok: false}, // 19 digits
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, ok := node.ParseCredit([]byte(tt.in))
			if ok != tt.ok || (ok && got != tt.want) {
				t.Fatalf("ParseCredit(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestCost(t *testing.T) {
	uw := func(vars string, trailing string) string {
		return "\x00" + string([]byte{byte(len(vars)), byte(len(vars) >> 8)}) + "\x00" + vars + trailing
	}
	status := "\x06\x00Status\x06\x00200 OK"
	tests := []struct {
		name, typ, body string
		want            int64
	}{
		{name: "body", typ: "body", body: "hello", want: 5},
		{name: "chunk", typ: "chunk", body: "hello!", want: 6},
		{name: "empty chunk", typ: "chunk", body: "", want: 0},
		{name: "websocket", typ: "websocket", body: "hi", want: 2},
		{name: "websocket-binary", typ: "websocket-binary", body: "\x00\x01\x02", want: 3},
		{name: "head", typ: "headers", body: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", want: 0},
		{name: "head and body", typ: "headers", body: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", want: 5},
		{name: "bare LF head and body", typ: "headers", body: "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", want: 5},
		{name: "body holding a blank line", typ: "headers", body: "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n\r\n\r\nab", want: 6},
		{name: "head without its empty line", typ: "headers", body: "HTTP/1.1 204 No Content\r\nX: y\r\n", want: 0},
		{name: "malformed head", typ: "headers", body: "junk\r\n\r\nbody", want: 0},
		{name: "uwsgi head", typ: "uwsgi", body: uw(status, ""), want: 0},
		{name: "uwsgi head and bytes", typ: "uwsgi", body: uw(status, "abc"), want: 3},
		{name: "short uwsgi", typ: "uwsgi", body: "\x00\x01", want: 0},
		{name: "end", typ: "end", body: "", want: 0},
		{name: "retry", typ: "retry", body: "", want: 0},
		{name: "pong", typ: "pong", body: "credits", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := node.Cost(tt.typ, []byte(tt.body)); got != tt.want {
				t.Fatalf("Cost(%s, %q) = %d, want %d", tt.typ, tt.body, got, tt.want)
			}
		})
	}
}

// TestCreditWebSocketOverdraft: a WebSocket message that does not fit
// what is left goes anyway while more than half the window is left (the
// proxy grants more only below half: waiting would wait forever), and
// waits once half or less is left.
func TestCreditWebSocketOverdraft(t *testing.T) {
	s := startStub(t)
	n := s.dial("ws")
	n.EnableCredits()
	s.send("ws", "s1", "uwsgi", head)
	s.send("ws", "s1", "credit", "100")
	recvType(t, n, "s1", "uwsgi")
	recvType(t, n, "s1", "credit")
	sendBody(t, n, "s1", "websocket", bytes.Repeat([]byte("a"), 30), 30, nil) // 70 left
	sendBody(t, n, "s1", "websocket", bytes.Repeat([]byte("b"), 90), 90, nil) // 70 > 50: overdraft
	wantCredit(t, n, "s1", -20)
	sendBody(t, n, "s1", "websocket", []byte("c"), 0, node.ErrNoCredit)
	s.expect(frame{"ws", "s1", "websocket", strings.Repeat("a", 30)})
	s.expect(frame{"ws", "s1", "websocket", strings.Repeat("b", 90)})
}

// TestPongInstance: a node's pongs name a token of its process, the same
// on every pong, and another for another Node.
func TestPongInstance(t *testing.T) {
	s := startStub(t)
	a, b := s.dial("inst"), s.dial("inst2")
	bodies := map[string]string{}
	for _, n := range []*node.Node{a, b} {
		body := string(n.PongBody())
		if !strings.HasPrefix(body, "instance=") || len(body) != len("instance=")+16 {
			t.Fatalf("pong body %q", body)
		}
		if string(n.PongBody()) != body {
			t.Fatalf("the token changed")
		}
		bodies[body] = body
	}
	if len(bodies) != 2 {
		t.Fatalf("two nodes, one token: %v", bodies)
	}
	a.EnableCredits()
	if !strings.HasPrefix(string(a.PongBody()), "credits instance=") {
		t.Fatalf("with credits: %q", a.PongBody())
	}
}
