package main

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// TestPprofLoopbackOnly: -pprof refuses an address that is not loopback
// (before, -pprof :6060 served the process's memory to the network).
func TestPprofLoopbackOnly(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if ln, err := servePprof("0.0.0.0:0", log); err == nil || !strings.Contains(err.Error(), "loopback") {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("-pprof 0.0.0.0:0: %v, want a loopback error", err)
	}
	ln, err := servePprof("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
