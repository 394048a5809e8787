package node

import (
	"log"
	"strings"
	"testing"
	"time"
)

// TestProxyGoneForgets: sweepProxies ends the sessions of a proxy silent
// for ProxyTimeout, those whose handler returned before their request
// body was all in included, and the Node drops the credit and routes of
// every session of that proxy, also those Serve no longer keeps (an idle
// keep-alive connection). Before, all of them stayed for good: only an
// `end` dropped them. The other proxy, which keeps speaking, loses
// nothing.
func TestProxyGoneForgets(t *testing.T) {
	n := newNode()
	n.EnableCredits()
	n.recvd = make([]uint64, 2)
	n.routes = newRoutes(DefaultMaxSessions)
	t0 := time.Now()
	var logs strings.Builder
	cfg := ServeConfig{ProxyTimeout: time.Second, Endpoints: []string{"tcp://a:1", "tcp://b:1"}, ErrorLog: log.New(&logs, "", 0)}
	s := &server{cfg: cfg, n: n, sessions: map[string]*stream{},
		proxies: []proxyState{{heard: t0}, {heard: t0}}, out: make([]outQueue, 2)}
	add := func(sid string, sock int) *stream {
		st := &stream{sid: []byte(sid), key: sid, sock: sock, cancel: func() {}, started: true, exited: true, bodyLeft: 5}
		s.sessions[sid] = st
		n.credits[sid] = &allowance{left: 100, sock: sock}
		n.routes.put(st.sid, sock)
		return st
	}
	upload := add("upload", 0)
	other := add("other", 1)
	add("idle", 0)
	delete(s.sessions, "idle") // complete: Serve keeps nothing of it

	s.now = t0.Add(time.Second / 2)
	n.recvd[1]++
	s.sweepProxies()
	n.recvd[1]++ // proxy 1 pings on; proxy 0 says nothing
	s.now = t0.Add(2 * time.Second)
	s.sweepProxies()

	if !upload.dead || s.sessions["upload"] != nil {
		t.Error("the silent proxy's session is kept")
	}
	if !strings.Contains(logs.String(), "proxy tcp://a:1 sent nothing") {
		t.Errorf("log %q", logs.String())
	}
	for _, sid := range []string{"upload", "idle"} {
		if n.credits[sid] != nil {
			t.Errorf("the silent proxy's %s keeps its credit", sid)
		}
		if _, ok := n.routes.get([]byte(sid)); ok {
			t.Errorf("the silent proxy's %s keeps its route", sid)
		}
	}
	if other.dead || s.sessions["other"] == nil || n.credits["other"] == nil {
		t.Error("the speaking proxy's session was ended")
	}
	if _, ok := n.routes.get([]byte("other")); !ok {
		t.Error("the speaking proxy's session lost its route")
	}
}

// TestForgetDropsCredit: a session Serve forgets (its handler returned,
// its response went, its body is in) takes its credit with it, so that a
// proxy that never sends its `end` (it restarted) leaves nothing behind;
// a request that supersedes one not started keeps its own.
func TestForgetDropsCredit(t *testing.T) {
	n := newNode()
	n.EnableCredits()
	s := &server{n: n, sessions: map[string]*stream{}}
	st := &stream{sid: []byte("s1"), key: "s1", cancel: func() {}, started: true, exited: true}
	s.sessions["s1"] = st
	n.credits["s1"] = &allowance{left: 100}
	s.maybeForget(st)
	if s.sessions["s1"] != nil || n.credits["s1"] != nil {
		t.Fatalf("a complete session: kept %v, credit %v", s.sessions["s1"], n.credits["s1"])
	}

	old := &stream{sid: []byte("s2"), key: "s2", cancel: func() {}}
	s.sessions["s2"] = old
	n.credits["s2"] = &allowance{} // the next head's, as Recv reset it
	s.supersede(old)
	if n.credits["s2"] == nil {
		t.Fatal("superseding a request not started dropped the new request's credit")
	}
}
