package node_test

import (
	"cmp"
	"context"
	"errors"
	"log"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// startServeOn runs Serve with cfg and h against the stubs, one endpoint
// each, and waits for the node's announcement on each. It returns one
// served per stub (sharing the log and the stop).
func startServeOn(t *testing.T, cfg node.ServeConfig, h http.Handler, stubs ...*stub) []*served {
	t.Helper()
	cfg.Identity = "srv"
	cfg.Endpoints = nil
	for _, s := range stubs {
		cfg.Endpoints = append(cfg.Endpoints, s.ep)
	}
	logs := &syncBuf{}
	cfg.ErrorLog = log.New(logs, "", 0)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- node.Serve(ctx, cfg, h) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-errc:
			case <-time.After(stubTimeout + cmp.Or(cfg.ShutdownTimeout, node.DefaultShutdownTimeout)):
				serveErr = errors.New("Serve did not return")
			}
		})
		return serveErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("node log:\n%s", logs.String())
		}
	})
	pong := node.CreditsFeature
	if cfg.DisableCredits {
		pong = ""
	}
	var out []*served
	for _, s := range stubs {
		s.expect(frame{"srv", "", "pong", pong})
		out = append(out, &served{stub: s, id: "srv", log: logs, stop: stop})
	}
	return out
}

// TestServeProxyGone: the sessions of a proxy that sends nothing, not
// even a ping, for ProxyTimeout are ended (a WebSocket callback's Receive
// returns, a handler's context is cancelled), while those of a proxy that
// only pings go on. Before, nothing noticed a proxy gone: such sessions
// waited for good.
func TestServeProxyGone(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ended := make(chan string, 4)
	ss := startServeOn(t, node.ServeConfig{ProxyTimeout: timeout, IdleTimeout: -1, WebSocket: func(ws *node.WebSocket) {
		for {
			msg, binary, err := ws.Receive(context.Background())
			if err != nil {
				if !errors.Is(err, node.ErrSessionEnded) {
					t.Errorf("Receive of %s: %v, want ErrSessionEnded", ws.Request().URL.Path, err)
				}
				ended <- ws.Request().URL.Path
				return
			}
			if err := ws.Send(context.Background(), msg, binary); err != nil {
				t.Errorf("Send: %v", err)
			}
		}
	}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // an event stream with nothing to say
		ended <- r.URL.Path
	}), startStub(t), startStub(t))
	a, b := ss[0], ss[1]
	ws := func(path string) string { return get(path, "HTTP_CONNECTION", "Upgrade", "HTTP_UPGRADE", "websocket") }
	a.request("wa", ws("/a-ws"))
	a.request("ha", get("/a-events"))
	a.expectFrom("ha", "headers")
	b.request("wb", ws("/b-ws"))
	b.send(b.id, "wb", "websocket", "hello")
	b.expect(frame{b.id, "wb", "websocket", "hello"})

	// a falls silent; b pings (every timeout/10) and answers nothing else.
	got := map[string]bool{}
	pinged, deadline := time.Now().Add(4*timeout), time.Now().Add(stubTimeout)
	for len(got) < 2 || time.Now().Before(pinged) {
		select {
		case p := <-ended:
			got[p] = true
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ended %v within %v of a's silence, want /a-ws and /a-events (ProxyTimeout %v)", got, stubTimeout, timeout)
		}
		b.send(b.id, "", "ping", "")
		b.expect(frame{b.id, "", "pong", node.CreditsFeature})
		time.Sleep(timeout / 10)
	}
	if !got["/a-ws"] || !got["/a-events"] || len(got) != 2 {
		t.Fatalf("ended %v, want /a-ws and /a-events only", got)
	}
	// b's session, only pinged for several ProxyTimeouts, goes on.
	b.send(b.id, "wb", "websocket", "still there")
	b.expect(frame{b.id, "wb", "websocket", "still there"})
	if l := a.log.String(); !strings.Contains(l, "ProxyTimeout") {
		t.Errorf("no log line for the proxy gone: %q", l)
	}
	// Nothing was sent to a for its sessions (it is gone): its next
	// message is a pong.
	a.send(a.id, "", "ping", "")
	a.expect(frame{a.id, "", "pong", node.CreditsFeature})
}
