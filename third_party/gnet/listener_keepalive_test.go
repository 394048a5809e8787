// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build linux

package gnet

import (
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBlastBeatKeepAliveKeepsListenError: with TCPKeepAlive set, a
// listener that cannot bind reports the bind's error (patch 15); before,
// setting keep-alive on the closed descriptor replaced it ("bad file
// descriptor"), or cleared it if the number was reused.
func TestBlastBeatKeepAliveKeepsListenError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	opts := &Options{TCPKeepAlive: 30 * time.Second}
	ln, err := initListener("tcp", busy.Addr().String(), opts)
	if err == nil {
		ln.close()
		t.Fatal("listening on a port in use succeeded")
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error %q, want the bind's (address already in use)", err)
	}
	// And keep-alive is set on a listener that opened.
	ln, err = initListener("tcp", "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.close()
	if on, err := unix.GetsockoptInt(ln.fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE); err != nil || on != 1 {
		t.Fatalf("SO_KEEPALIVE on the listener: %d, %v; want 1", on, err)
	}
	if idle, err := unix.GetsockoptInt(ln.fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); err != nil || idle != 30 {
		t.Fatalf("TCP_KEEPIDLE on the listener: %d, %v; want 30", idle, err)
	}
}
