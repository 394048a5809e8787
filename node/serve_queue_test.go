package node

import (
	"strconv"
	"testing"
)

// TestWaitingCompacted: requests that end while they wait for a handler
// slot (their clients left, or the proxy's timeout sent `end`) leave the
// queue, not only its count: with the handlers stuck for good, the queue
// stays bounded however many come and go. Before, each stayed in it,
// with its request, until a handler returned.
func TestWaitingCompacted(t *testing.T) {
	s := &server{cfg: ServeConfig{MaxConcurrent: 1, MaxWaiting: 1}, n: newNode(), sessions: map[string]*stream{}}
	for i := range 10000 {
		st := &stream{key: strconv.Itoa(i), cancel: func() {}}
		s.sessions[st.key] = st
		s.wait(st)
		s.kill(st)
	}
	if s.queued != 0 || len(s.waiting) > 100 {
		t.Fatalf("after 10000 requests ended while waiting: %d counted, %d held in the queue", s.queued, len(s.waiting))
	}
}
