package server

import (
	"strings"
	"testing"
	"time"
)

// TestRequestEndAfterRoom: a request whose last message (a bodiless
// head, or a Content-Length body's last piece) waited for room in the
// ring is finished once the ring takes it, without another byte from
// the client, who sent everything. Before, its end was never parsed:
// the kept-alive connection after the response was never idle (no idle
// timeout, a shutdown waited out its grace for it), and a body request
// whose node was slow got 408 "request body not received in time"
// instead of 504.
func TestRequestEndAfterRoom(t *testing.T) {
	for _, tc := range []struct{ name, head, body string }{
		{"bodiless head", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", ""},
		{"last body piece", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n", strings.Repeat("b", 10000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testOptions())
			if tc.body != "" {
				h.client(tc.head) // taken
			}
			h.ring.refuse = true
			if tc.body != "" {
				h.client(tc.body)
			} else {
				h.client(tc.head)
			}
			h.ring.refuse = false
			h.s.handlers[0].Room()
			h.settle()
			if h.c.reading {
				t.Fatal("the request is still being read after the ring took all of it")
			}
			if tc.name == "last body piece" {
				// The node is slow: the vhost timeout answers, not a 408.
				h.sweep(time.Now().Add(h.s.opts.Timeout + time.Minute))
				if out := string(h.takeOut()); !strings.HasPrefix(out, "HTTP/1.1 504") {
					t.Fatalf("a slow node after the whole body: %q, want 504", out)
				}
				return
			}
			h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			h.takeOut()
			if !h.c.idle() {
				t.Fatal("the connection is not idle after the response")
			}
		})
	}
}
