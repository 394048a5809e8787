package session

import (
	"testing"
	"time"
)

func TestRouterMatch(t *testing.T) {
	reg := NewRegistry([]string{"n1"}, time.Second)
	a := &VHost{Name: "a.test"}
	b := &VHost{Name: "b.test:8000"}
	v6 := &VHost{Name: "[::1]:8080"}
	all := &VHost{Name: "*"}
	withCatchAll := NewRouter([]*VHost{a, b, v6, all}, reg)
	without := NewRouter([]*VHost{a, b}, reg)
	tests := []struct {
		name string
		r    *Router
		host string
		want *VHost
	}{
		{name: "exact", r: without, host: "a.test", want: a},
		{name: "case", r: without, host: "A.Test", want: a},
		{name: "port falls back to name", r: without, host: "a.test:9999", want: a},
		{name: "name with port", r: without, host: "B.TEST:8000", want: b},
		{name: "port required", r: without, host: "b.test", want: nil},
		{name: "unknown", r: without, host: "c.test", want: nil},
		{name: "catch-all", r: withCatchAll, host: "c.test", want: all},
		{name: "ipv6", r: withCatchAll, host: "[::1]:8080", want: v6},
		{name: "empty", r: without, host: "", want: nil},
		// The fully qualified form (RFC 1034): before, it missed (a 404,
		// or the catch-all) while TLS's SNI took it for a.test.
		{name: "trailing dot", r: without, host: "a.test.", want: a},
		{name: "trailing dot and port", r: without, host: "B.test.:8000", want: b},
		{name: "trailing dot, port falls back", r: without, host: "a.test.:9999", want: a},
		{name: "a dot alone", r: without, host: ".", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Match([]byte(tt.host)); got != tt.want {
				t.Fatalf("Match(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

func TestPickFewestSessionsRoundRobinTies(t *testing.T) {
	reg := NewRegistry([]string{"a", "b", "c"}, time.Second)
	now := time.Now().UnixNano()
	for _, n := range reg.Nodes() {
		n.Seen(now)
	}
	v := &VHost{Name: "x", Nodes: reg.Nodes()}
	counts := map[string]int{}
	for i := 0; i < 300; i++ {
		n := v.Pick(now, time.Second, nil)
		counts[n.Name]++
	}
	for _, name := range []string{"a", "b", "c"} {
		if counts[name] != 100 {
			t.Fatalf("ties not round robin: %v", counts)
		}
	}
	a, b := reg.Lookup([]byte("a")), reg.Lookup([]byte("b"))
	a.Bind()
	b.Bind()
	for i := 0; i < 10; i++ {
		if n := v.Pick(now, time.Second, nil); n.Name != "c" {
			t.Fatalf("picked %s, want the least loaded c", n.Name)
		}
	}
	reg.Lookup([]byte("c")).MarkDead()
	if n := v.Pick(now, time.Second, nil); n == nil || n.Name == "c" {
		t.Fatalf("picked dead node %v", n)
	}
	if n := v.Pick(now+int64(2*time.Second), time.Second, nil); n != nil {
		t.Fatalf("picked %s though every node is silent", n.Name)
	}
	if n := v.Pick(now, time.Second, a); n == a {
		t.Fatal("except not honoured")
	}
}

func TestRouterAliases(t *testing.T) {
	reg := NewRegistry([]string{"n1"}, time.Second)
	a := &VHost{Name: "a.test", Aliases: []string{"www.a.test", "b.test"}}
	b := &VHost{Name: "b.test"}
	r := NewRouter([]*VHost{a, b}, reg)
	if r.Match([]byte("WWW.a.test:80")) != a {
		t.Fatal("alias not matched")
	}
	if r.Match([]byte("b.test")) != b {
		t.Fatal("an alias took another vhost's own name")
	}
}

// TestPickSkipsDraining: a node whose pongs say it drains gets no new
// session while another is live, though it has the fewest sessions (it
// would answer each with retry); when it is the only one live, it does.
func TestPickSkipsDraining(t *testing.T) {
	reg := NewRegistry([]string{"a", "b"}, time.Second)
	now := time.Now().UnixNano()
	a, b := reg.Lookup([]byte("a")), reg.Lookup([]byte("b"))
	a.Seen(now)
	b.Seen(now)
	b.Bind()
	b.Bind()
	a.SetDraining(true)
	v := &VHost{Name: "x", Nodes: reg.Nodes()}
	for i := 0; i < 10; i++ {
		if n := v.Pick(now, time.Second, nil); n != b {
			t.Fatalf("picked %v, want b (a drains)", n.Name)
		}
	}
	b.MarkDead()
	if n := v.Pick(now, time.Second, nil); n != a {
		t.Fatalf("picked %v with only the draining a live, want a", n)
	}
	a.SetDraining(false)
	b.Seen(now)
	if n := v.Pick(now, time.Second, nil); n != a {
		t.Fatalf("picked %v, want a (no longer draining, fewest sessions)", n.Name)
	}
}
