package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPickScenarios(t *testing.T) {
	id := func(s scenario) string { return s.id }
	tests := []struct {
		list    string
		want    []string
		wantErr string
	}{
		{list: "ws-echo,get-c64", want: []string{"get-c64", "ws-echo"}},
		{list: "tls*", want: []string{"tls", "tls-new", "tls-close", "tls-ws-idle"}},
		{list: "tls-*, tls", want: []string{"tls", "tls-new", "tls-close", "tls-ws-idle"}},
		{list: "*ws-idle", want: []string{"ws-idle", "tls-ws-idle"}},
		{list: "get-c64,nope", wantErr: `unknown ["nope"]`},
		{list: "h2*", want: []string{"h2c", "h2-tls"}},
		{list: "*tls", want: []string{"tls", "h2-tls"}},
		{list: "h3*", wantErr: `unknown ["h3*"]`},
		{list: "[", wantErr: "pattern"},
		{list: " , ", wantErr: "empty selection"},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			got, err := pick(tt.list, allScenarios, id)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("pick(%q) = %v, %v; want error containing %q", tt.list, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("pick(%q) = %v, %v; want %v", tt.list, got, err, tt.want)
			}
		})
	}
}

func TestParseFlagsQuick(t *testing.T) {
	o, err := parseFlags([]string{"-quick", "-scenarios", "tls*"})
	if err != nil {
		t.Fatal(err)
	}
	if o.rounds != 1 || o.idleConns != 2000 || o.wssIdleConns != 2000 || len(o.scenarios) != 4 {
		t.Errorf("quick: rounds %d, idle %d, wss idle %d, scenarios %v", o.rounds, o.idleConns, o.wssIdleConns, o.scenarios)
	}
	o, err = parseFlags([]string{"-quick", "-wss-idle-conns", "3000"})
	if err != nil || o.wssIdleConns != 3000 {
		t.Errorf("-wss-idle-conns 3000 with -quick: %d, %v", o.wssIdleConns, err)
	}
	if _, err := parseFlags([]string{"-wss-idle-conns", "0"}); err == nil {
		t.Error("-wss-idle-conns 0 accepted")
	}
}

func TestParseFlagsPrebuilt(t *testing.T) {
	o, err := parseFlags([]string{"-prebuilt", "/opt/bb", "-scenarios", "h2*"})
	if err != nil {
		t.Fatal(err)
	}
	if o.prebuilt != "/opt/bb" || o.blastbeat != "" || !slices.Equal(o.scenarios, []string{"h2c", "h2-tls"}) {
		t.Errorf("prebuilt %q, blastbeat %q, scenarios %v", o.prebuilt, o.blastbeat, o.scenarios)
	}
}

func TestPrebuiltHelpers(t *testing.T) {
	dir := t.TempDir()
	e := &env{opts: options{prebuilt: dir}}
	err := e.prebuiltHelpers()
	if err == nil || !strings.Contains(err.Error(), "lacks node, hello, wsload, tlsload, m2handler") {
		t.Fatalf("empty dir: %v", err)
	}
	for _, name := range []string{"node", "hello", "wsload", "tlsload", "m2handler"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.prebuiltHelpers(); err == nil || !strings.Contains(err.Error(), "lacks hello ") {
		t.Fatalf("hello not executable: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, "hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.prebuiltHelpers(); err != nil {
		t.Fatal(err)
	}
	if e.bins.node != filepath.Join(dir, "node") || e.bins.m2handler != filepath.Join(dir, "m2handler") {
		t.Errorf("bins: %+v", e.bins)
	}
}

func TestParseFlagsNodes(t *testing.T) {
	o, err := parseFlags([]string{"-nodes", "4", "-blastbeat-set", "zmq-io-threads = 4"})
	if err != nil || o.nodes != 4 || !slices.Equal(o.bbSet, []string{"zmq-io-threads = 4"}) {
		t.Errorf("-nodes 4: nodes %d, set %q, %v", o.nodes, o.bbSet, err)
	}
	if o, err := parseFlags(nil); err != nil || o.nodes != 1 {
		t.Errorf("default: nodes %d, %v; want 1", o.nodes, err)
	}
	for _, n := range []string{"0", "65"} {
		if _, err := parseFlags([]string{"-nodes", n}); err == nil {
			t.Errorf("-nodes %s accepted", n)
		}
	}
}
