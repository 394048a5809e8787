package node_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// TestServeWebSocketSendTimeoutDrops: a Send whose ctx ends before its
// message went out leaves nothing queued: the "drop on slow consumer"
// pattern (a short timeout per event to a client that reads slowly)
// neither grows the session's queue nor sends the dropped messages
// later. Before, each stayed queued, a copy of it held, and went out once
// credit came.
func TestServeWebSocketSendTimeoutDrops(t *testing.T) {
	const dropped = 3
	results := make(chan error, dropped+2)
	s := startServe(t, node.ServeConfig{WebSocket: func(ws *node.WebSocket) {
		bg := ws.Context()
		results <- ws.Send(bg, bytes.Repeat([]byte("a"), 600), false) // fits the credit
		for range dropped {
			// 400 left of a 1000 window: this waits for a credit that
			// does not come in time.
			ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
			results <- ws.Send(ctx, bytes.Repeat([]byte("d"), 600), false)
			cancel()
		}
		results <- ws.Send(bg, []byte("last"), false)
		<-bg.Done()
	}}, http.NotFoundHandler())
	s.send(s.id, "w1", "uwsgi", get("/events", "HTTP_CONNECTION", "Upgrade", "HTTP_UPGRADE", "websocket"))
	s.send(s.id, "w1", "credit", "1000")
	if f := s.expectFrom("w1", "websocket"); len(f.body) != 600 {
		t.Fatalf("first message: %d bytes", len(f.body))
	}
	if err := <-results; err != nil {
		t.Fatalf("first Send: %v", err)
	}
	for i := range dropped {
		if err := <-results; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send %d past its ctx: %v, want context.DeadlineExceeded", i, err)
		}
	}
	// The client catches up: what comes is what was sent after the
	// timed-out ones, never those.
	s.send(s.id, "w1", "credit", "600")
	s.expect(frame{s.id, "w1", "websocket", "last"})
	if err := <-results; err != nil {
		t.Fatalf("Send after the dropped ones: %v", err)
	}
	s.send(s.id, "", "ping", "")
	s.expect(frame{s.id, "", "pong", node.CreditsFeature})
}

// TestServeWebSocketSendTimeoutRace: a Send whose ctx ends while the
// loop may be sending its message says what happened: nil when the
// message went out, ctx's error when it never will. Timeouts of 0 to
// 200µs race credit that comes back a round trip after each message.
func TestServeWebSocketSendTimeoutRace(t *testing.T) {
	const count = 300
	results := make(chan []error, 1)
	s := startServe(t, node.ServeConfig{WebSocket: func(ws *node.WebSocket) {
		bg := ws.Context()
		errs := make([]error, count)
		for i := range errs {
			msg := bytes.Repeat([]byte(" "), 600) // less than half the window is left after one
			copy(msg, strconv.Itoa(i))
			ctx, cancel := context.WithTimeout(bg, time.Duration(i%5)*50*time.Microsecond)
			errs[i] = ws.Send(ctx, msg, false)
			cancel()
		}
		results <- errs
		_ = ws.Send(bg, []byte("done"), false)
		<-bg.Done()
	}}, http.NotFoundHandler())
	s.send(s.id, "w1", "uwsgi", get("/events", "HTTP_CONNECTION", "Upgrade", "HTTP_UPGRADE", "websocket"))
	s.send(s.id, "w1", "credit", "1000")
	went := map[int]bool{}
	for {
		f := s.expectFrom("w1", "websocket")
		if f.body == "done" {
			break
		}
		i, err := strconv.Atoi(strings.Fields(f.body)[0])
		if err != nil || went[i] {
			t.Fatalf("message %q", short(f.body))
		}
		went[i] = true
		s.send(s.id, "w1", "credit", "600")
	}
	dropped := 0
	for i, err := range <-results {
		switch {
		case err == nil && !went[i]:
			t.Errorf("Send %d returned nil; its message never went out", i)
		case err != nil && went[i]:
			t.Errorf("Send %d returned %v; its message went out", i, err)
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			t.Errorf("Send %d: %v", i, err)
		case err != nil:
			dropped++
		}
	}
	t.Logf("%d of %d messages dropped", dropped, count)
}
