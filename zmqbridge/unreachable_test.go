package zmqbridge

import (
	"testing"
	"time"
)

// TestUnreachableBatchFailsTogether: the messages of one batch for a node
// that is not connected fail together at its first failure, and the
// others' message goes on. Before, each was sent again, with every
// message after it copied into the batch buffer, only to fail in turn:
// one failure (and one Unreachable) per message, quadratic copying while
// every other node waited.
func TestUnreachableBatchFailsTogether(t *testing.T) {
	b, rec, dealer := startWithNode(t) // n0 never connects; n1 does
	// n1 is connected once it got a ping.
	if msg, err := dealer.RecvMessage(0); err != nil || len(msg) != 3 || msg[1] != "ping" {
		t.Fatalf("first message %q, %v; want a ping", msg, err)
	}
	const n = 2000
	var sid [16]byte
	sid[0] = 9
	for i := 0; i < n; i++ {
		if !b.TrySendDeferred(&Msg{Node: 0, SID: sid, Type: "body", Body: []byte("for nobody")}) {
			t.Fatalf("message %d refused", i)
		}
	}
	if !b.TrySendDeferred(&Msg{Node: 1, SID: sid, Type: "body", Body: []byte("for n1")}) {
		t.Fatal("n1's message refused")
	}
	b.Kick()
	for got := time.Now().Add(10 * time.Second); ; {
		msg, err := dealer.RecvMessage(0)
		if err != nil || time.Now().After(got) {
			t.Fatalf("n1 never got its message: %v", err)
		}
		if len(msg) == 3 && msg[1] == "body" && msg[2] == "for n1" {
			break
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec.mu.Lock()
		u, ur := rec.undeliv, rec.unreachable[0]
		rec.mu.Unlock()
		if u == n {
			// A few batches, and pings to n0 meanwhile: far fewer than n.
			if ur > n/10 {
				t.Fatalf("%d Unreachable calls for %d messages in a few batches: each failed on its own", ur, n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("undeliverable %d of %d", u, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
