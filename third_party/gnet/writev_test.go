// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

package gnet

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// bbManyPieces answers any read with one Writev of many small pieces.
type bbManyPieces struct {
	BuiltinEventEngine
	booted chan Engine
	pieces [][]byte
}

func (e *bbManyPieces) OnBoot(eng Engine) Action { e.booted <- eng; return None }

func (e *bbManyPieces) OnTraffic(c Conn) Action {
	_, _ = c.Next(-1)
	_, _ = c.Writev(e.pieces)
	return None
}

// TestBlastBeatWritevManyPieces (patch 14): a Writev of more pieces than
// one writev(2) takes (IOV_MAX, 1024) reaches the peer whole, in order,
// in either I/O mode. Before, the syscall failed with EINVAL and the
// connection was closed.
func TestBlastBeatWritevManyPieces(t *testing.T) {
	for _, et := range []bool{false, true} {
		t.Run(map[bool]string{false: "level", true: "edge"}[et], func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			h := &bbManyPieces{booted: make(chan Engine, 1)}
			var want []byte
			for i := 0; i < 3000; i++ {
				p := []byte{byte(i), byte(i >> 8), 'x', 'y'}
				h.pieces = append(h.pieces, p)
				want = append(want, p...)
			}
			done := make(chan error, 1)
			go func() { done <- Run(h, "tcp://"+addr, WithMulticore(false), WithEdgeTriggeredIO(et)) }()
			var eng Engine
			select {
			case eng = <-h.booted:
			case err := <-done:
				t.Fatalf("engine did not start: %v", err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = eng.Stop(ctx)
				<-done
			}()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("go")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("reading %d bytes in %d pieces: %v", len(want), len(h.pieces), err)
			}
			if string(got) != string(want) {
				t.Fatal("the pieces arrived out of order or changed")
			}
		})
	}
}
