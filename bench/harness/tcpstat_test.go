package main

import (
	"strings"
	"testing"
)

func TestParsePassiveOpens(t *testing.T) {
	const snmp = `Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 123
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs
Tcp: 1 200 120000 -1 15014377 14817205 197000 2150023 0 622266178
Udp: InDatagrams NoPorts
Udp: 5 6
`
	got, err := parsePassiveOpens(snmp)
	if err != nil || got != 14817205 {
		t.Fatalf("parsePassiveOpens = %d, %v; want 14817205", got, err)
	}
	if _, err := parsePassiveOpens("Udp: InDatagrams\nUdp: 5\n"); err == nil {
		t.Fatal("no Tcp lines: no error")
	}
	if _, err := passiveOpens(); err != nil {
		t.Fatalf("this machine's /proc/net/snmp: %v", err)
	}
}

func TestClosesPerRequest(t *testing.T) {
	if ok, _ := closesPerRequest(98000, 100000); !ok {
		t.Fatal("a new connection per request: flagged")
	}
	ok, w := closesPerRequest(64, 100000)
	if ok || !strings.Contains(w, "connections reused: 64 new TCP connections for 100000 requests") {
		t.Fatalf("64 connections for 100,000 requests: %v %q", ok, w)
	}
	if !asksClose(scenario{headers: []string{"Connection: close"}}) || asksClose(scenario{}) {
		t.Fatal("asksClose")
	}
}
