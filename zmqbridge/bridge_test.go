package zmqbridge

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/internal/bufpool"
)

type delivered struct{ id, sid, typ, body string }

// recorder is a Handler that records what the bridge hands it.
type recorder struct {
	msgs        chan delivered
	mu          sync.Mutex
	unreachable map[int]int
	undeliv     int
}

func newRecorder() *recorder {
	return &recorder{msgs: make(chan delivered, 1024), unreachable: map[int]int{}}
}

func (r *recorder) Deliver(id, sid, typ, body []byte, _ *bufpool.Buf) {
	r.msgs <- delivered{string(id), string(sid), string(typ), string(body)}
}
func (r *recorder) Flush() {}
func (r *recorder) Undeliverable(*Msg, error) {
	r.mu.Lock()
	r.undeliv++
	r.mu.Unlock()
}
func (r *recorder) Unreachable(n int) bool {
	r.mu.Lock()
	r.unreachable[n]++
	r.mu.Unlock()
	return true
}
func (r *recorder) Paused() bool { return false }
func (r *recorder) Room()        {}

func freeEndpoint(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("tcp://%s", l.Addr())
}

// dialNode connects a node's DEALER named name to the bridge at ep; it
// is closed when the test ends.
func dialNode(t *testing.T, ep, name string) *zmq.Socket {
	t.Helper()
	return dialNodeWith(t, ep, name, nil)
}

// dialNodeWith is dialNode with set applied to the DEALER before it
// connects.
func dialNodeWith(t *testing.T, ep, name string, set func(*zmq.Socket)) *zmq.Socket {
	t.Helper()
	dealer, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dealer.Close() })
	dealer.SetIdentity(name)
	dealer.SetLinger(0)
	dealer.SetRcvtimeo(5 * time.Second)
	if set != nil {
		set(dealer)
	}
	if err := dealer.Connect(ep); err != nil {
		t.Fatal(err)
	}
	return dealer
}

// startWithNode starts a bridge that knows nodes n0 and n1, with n1
// connected; it stops when the test ends.
func startWithNode(t *testing.T) (*Bridge, *recorder, *zmq.Socket) {
	t.Helper()
	ep := freeEndpoint(t)
	rec := newRecorder()
	b, err := Start(Config{Endpoints: []string{ep}, Identities: []string{"n0", "n1"}, PingFreq: 50 * time.Millisecond}, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b, rec, dialNode(t, ep, "n1")
}

func TestBridgeRoundTrip(t *testing.T) {
	b, rec, dealer := startWithNode(t)
	// The bridge pings every node; n1 gets its ping once connected.
	msg, err := dealer.RecvMessage(0)
	if err != nil || len(msg) != 3 || msg[0] != "" || msg[1] != "ping" {
		t.Fatalf("first message %q, %v; want an empty-sid ping", msg, err)
	}
	if _, err := dealer.SendMessage("", "pong", ""); err != nil {
		t.Fatal(err)
	}
	if d := <-rec.msgs; d != (delivered{"n1", "", "pong", ""}) {
		t.Fatalf("delivered %+v", d)
	}
	var sid [16]byte
	sid[0] = 7
	if !b.TrySend(&Msg{Node: 1, SID: sid, Type: "uwsgi", Body: []byte("head")}) {
		t.Fatal("Send refused")
	}
	for {
		msg, err = dealer.RecvMessage(0)
		if err != nil {
			t.Fatal(err)
		}
		if msg[1] != "ping" {
			break
		}
	}
	if len(msg) != 3 || msg[0] != string(sid[:]) || msg[1] != "uwsgi" || msg[2] != "head" {
		t.Fatalf("node got %q", msg)
	}
	// A 2-frame message is dropped and counted, never delivered.
	dealer.SendMessage("x", "y")
	dealer.SendMessage(string(sid[:]), "body", "ok")
	for d := range rec.msgs {
		if d.typ == "pong" {
			continue
		}
		if d != (delivered{"n1", string(sid[:]), "body", "ok"}) {
			t.Fatalf("delivered %+v", d)
		}
		break
	}
	// The counter is added after the batch's deliveries: poll for it.
	for deadline := time.Now().Add(5 * time.Second); b.Stats().DroppedFrames != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("DroppedFrames = %d, want 1", b.Stats().DroppedFrames)
		}
	}
	// n0 never connected: a send to it is undeliverable at once.
	b.TrySend(&Msg{Node: 0, SID: sid, Type: "body"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec.mu.Lock()
		u, ur := rec.undeliv, rec.unreachable[0]
		rec.mu.Unlock()
		if u == 1 && ur > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("undeliverable %d, unreachable %d", u, ur)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStartFailsOnBadEndpoint(t *testing.T) {
	if _, err := Start(Config{Endpoints: []string{"bogus://x"}}, newRecorder()); err == nil {
		t.Fatal("Start accepted a bad endpoint")
	}
}

// TestAddIdentities: an identity added after the start (a reload) gets
// the next index, is pinged, and gets the messages sent to that index;
// past MaxNodes AddIdentities fails.
func TestAddIdentities(t *testing.T) {
	ep := freeEndpoint(t)
	rec := newRecorder()
	b, err := Start(Config{Endpoints: []string{ep}, Identities: []string{"n0"}, MaxNodes: 2, PingFreq: 50 * time.Millisecond}, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	if err := b.AddIdentities([]string{"late"}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddIdentities([]string{"one-too-many"}); err == nil {
		t.Fatal("AddIdentities beyond MaxNodes succeeded")
	}
	dealer := dialNode(t, ep, "late")
	parts, err := dealer.RecvMessage(0)
	if err != nil || len(parts) != 3 || parts[1] != "ping" {
		t.Fatalf("the added node was not pinged: %q %v", parts, err)
	}
	m := Msg{Node: 1, SID: [16]byte{1}, Type: "uwsgi", Body: []byte("head")}
	for !b.TrySend(&m) {
		time.Sleep(time.Millisecond)
	}
	for {
		parts, err := dealer.RecvMessage(0)
		if err != nil {
			t.Fatalf("the message for index 1 never came: %v", err)
		}
		if parts[1] == "uwsgi" {
			if parts[2] != "head" {
				t.Fatalf("got %q", parts)
			}
			return
		}
	}
}

// TestMaxMessage: a message from a node bigger than MaxMessage never
// reaches the handler (libzmq drops the peer before holding it); what the
// node sends after, reconnected, does.
func TestMaxMessage(t *testing.T) {
	ep := freeEndpoint(t)
	rec := newRecorder()
	b, err := Start(Config{Endpoints: []string{ep}, Identities: []string{"n1"}, MaxMessage: 64 << 10}, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	dealer := dialNode(t, ep, "n1")
	if _, err := dealer.SendMessage("", "body", strings.Repeat("x", 100<<10)); err != nil {
		t.Fatal(err)
	}
	// What follows on the dropped connection may be lost with it: the
	// pong is sent again until one arrives, through the reconnection.
	deadline := time.After(20 * time.Second)
	for {
		if _, err := dealer.SendMessage("", "pong", "after"); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-rec.msgs:
			if d.typ == "body" {
				t.Fatalf("a %d-byte message over MaxMessage was delivered", len(d.body))
			}
			if d.typ == "pong" && d.body == "after" {
				return
			}
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("nothing after the big message")
		}
	}
}
