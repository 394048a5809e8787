package server

import (
	"strings"
	"testing"
)

// TestPongFeatures: a pong body's tokens, separated by spaces or commas,
// are found as before; only its first maxPongScan bytes are read, and an
// instance token too long to keep is ignored.
func TestPongFeatures(t *testing.T) {
	for _, tc := range []struct {
		body     string
		credits  bool
		instance string
	}{
		{"", false, ""},
		{"credits", true, ""},
		{"credits instance=abc", true, "abc"},
		{" ,credits,, instance=x1 ", true, "x1"},
		{"instance=abc,credits", true, "abc"},
		{"credit", false, ""},
		{"xcredits instances=9", false, ""},
		{"instance=", false, ""},
		{strings.Repeat("a,", maxPongScan) + "credits instance=late", false, ""},
	} {
		if got := hasFeature([]byte(tc.body), "credits"); got != tc.credits {
			t.Errorf("hasFeature(%.40q, credits) = %v, want %v", tc.body, got, tc.credits)
		}
		if got := string(featureValue([]byte(tc.body), "instance")); got != tc.instance {
			t.Errorf("featureValue(%.40q, instance) = %q, want %q", tc.body, got, tc.instance)
		}
	}
}

// TestPongLongInstanceIgnored: an instance token over maxInstanceToken is
// not kept (nor logged in full), so it cannot end the node's sessions as
// a new process would.
func TestPongLongInstanceIgnored(t *testing.T) {
	h := newHarness(t, testOptions())
	n := h.node("n1")
	h.s.instanceSeen(n, []byte("instance=first"), h.s.now())
	h.s.instanceSeen(n, []byte("instance="+strings.Repeat("z", maxInstanceToken+1)), h.s.now())
	if got := h.s.instances[n.Index].last; got != "first" {
		t.Fatalf("instance kept %.40q, want first (the long token ignored)", got)
	}
}

// TestPongDraining: a pong saying "draining" keeps the node's new
// sessions away while another node is live (it would answer each with
// retry); its next pong without it brings them back.
func TestPongDraining(t *testing.T) {
	h := newHarness(t, testOptions())
	n1, n2 := h.node("n1"), h.node("n2")
	n2.Seen(h.s.now())
	n2.Bind() // n1 has the fewest sessions
	h.reply("n1", "pong", "credits draining instance=a1")
	if !n1.Draining() {
		t.Fatal("a pong saying draining was not recorded")
	}
	vh := h.s.rt.Load().router.VHosts()[0]
	if n := vh.Pick(h.s.now(), h.s.deadAfter, nil); n != n2 {
		t.Fatalf("picked %v, want n2 (n1 drains)", n.Name)
	}
	h.reply("n1", "pong", "credits instance=a2")
	if n1.Draining() {
		t.Fatal("a pong without draining left the node draining")
	}
}
