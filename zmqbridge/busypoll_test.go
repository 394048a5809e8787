package zmqbridge

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestBusyPoll: with Config.BusyPoll the bridge polls for work after each
// burst of sessions' messages (not after pings and pongs) instead of
// sleeping at once, messages go both ways as without it, and once the
// work stops it sleeps (no thread left spinning on an idle proxy). Stop
// ends it from either state.
func TestBusyPoll(t *testing.T) {
	ep := freeEndpoint(t)
	rec := newRecorder()
	b, err := Start(Config{Endpoints: []string{ep}, Identities: []string{"n1"}, PingFreq: time.Hour, BusyPoll: 2 * time.Millisecond}, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	dealer := dialNode(t, ep, "n1")
	if msg, err := dealer.RecvMessage(0); err != nil || msg[1] != "ping" {
		t.Fatalf("first message %q, %v; want a ping", msg, err)
	}
	// A ping and its pong are no traffic to poll after.
	if _, err := dealer.SendMessage("", "pong", ""); err != nil {
		t.Fatal(err)
	}
	if d := <-rec.msgs; d.typ != "pong" {
		t.Fatalf("delivered %+v, want the pong", d)
	}
	if st := b.Stats(); st.BusyPollWork+st.BusyPollIdle != 0 {
		n := st.BusyPollWork + st.BusyPollIdle
		t.Fatalf("%d polls after a ping and a pong alone, want 0", n)
	}
	for i := range 50 {
		var sid [16]byte
		sid[0] = byte(i + 1)
		body := fmt.Sprint("req ", i)
		if !b.TrySend(&Msg{Node: 0, SID: sid, Type: "body", Body: []byte(body)}) {
			t.Fatalf("round %d: TrySend refused", i)
		}
		msg, err := dealer.RecvMessage(0)
		for err == nil && msg[1] == "ping" {
			msg, err = dealer.RecvMessage(0)
		}
		if err != nil || msg[0] != string(sid[:]) || msg[2] != body {
			t.Fatalf("round %d: node got %q, %v", i, msg, err)
		}
		if _, err := dealer.SendMessage(string(sid[:]), "body", "re "+body); err != nil {
			t.Fatal(err)
		}
		if d := <-rec.msgs; d != (delivered{"n1", string(sid[:]), "body", "re " + body}) {
			t.Fatalf("round %d: delivered %+v", i, d)
		}
	}
	if st := b.Stats(); st.BusyPollWork+st.BusyPollIdle == 0 {
		t.Fatal("no poll counted after 50 round trips")
	}
	// Idle now: the bridge stops polling and sleeps.
	for deadline := time.Now().Add(5 * time.Second); !b.sleeping.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the bridge did not go to sleep once idle")
		}
	}
}

// TestBusyPollCountersGrow: the poll counters only grow, however a read
// falls against a poll in progress (found by review: an "idle" count
// derived from polls started minus polls that found work went down when
// a poll counted as started found work, which Prometheus takes for a
// counter reset).
func TestBusyPollCountersGrow(t *testing.T) {
	ep := freeEndpoint(t)
	b, err := Start(Config{Endpoints: []string{ep}, Identities: []string{"n1"}, PingFreq: time.Hour, BusyPoll: 5 * time.Millisecond}, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	dealer := dialNode(t, ep, "n1")
	if _, err := dealer.RecvMessage(0); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() { // a message every 2 ms: polls end both ways
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			var sid [16]byte
			sid[0] = byte(i)
			b.TrySend(&Msg{Node: 0, SID: sid, Type: "body", Body: []byte("x")})
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var last Stats
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
		st := b.Stats()
		if st.BusyPollWork < last.BusyPollWork || st.BusyPollIdle < last.BusyPollIdle {
			stop.Store(true)
			t.Fatalf("a counter went down: work %d -> %d, idle %d -> %d", last.BusyPollWork, st.BusyPollWork, last.BusyPollIdle, st.BusyPollIdle)
		}
		last = st
	}
	stop.Store(true)
	<-done
}
