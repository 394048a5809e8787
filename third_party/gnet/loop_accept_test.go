// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

//go:build linux

package gnet

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// bbLoopEcho echoes every read.
type bbLoopEcho struct {
	BuiltinEventEngine
	booted chan Engine
}

func (e *bbLoopEcho) OnBoot(eng Engine) Action { e.booted <- eng; return None }

func (e *bbLoopEcho) OnTraffic(c Conn) Action {
	b, _ := c.Next(-1)
	_, _ = c.Write(b)
	return None
}

// bbEchoOnce dials network addr, writes a line and reads it back.
func bbEchoOnce(network, addr, msg string) error {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != msg {
		return fmt.Errorf("echo %q, %v; want %q", got, err, msg)
	}
	return nil
}

// bbEpollEvents returns, for each epoll instance of this process that
// polls descriptor fd, the event mask it polls it with (/proc fdinfo).
func bbEpollEvents(t *testing.T, fd int) []uint64 {
	t.Helper()
	infos, err := filepath.Glob("/proc/self/fdinfo/*")
	if err != nil {
		t.Fatal(err)
	}
	var masks []uint64
	for _, name := range infos {
		b, err := os.ReadFile(name)
		if err != nil {
			continue // closed meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[0] == "tfd:" && f[1] == strconv.Itoa(fd) && f[2] == "events:" {
				m, err := strconv.ParseUint(f[3], 16, 64)
				if err != nil {
					t.Fatalf("%s: %q: %v", name, line, err)
				}
				masks = append(masks, m)
			}
		}
	}
	return masks
}

// TestBlastBeatLoopAccept (patch 11): with WithLoopAccept every loop
// polls one listening socket per address (a duplicate each, with
// EPOLLEXCLUSIVE) and accepts for itself; there is no main reactor. A
// listener added at run time is shared the same way, and closing it, or
// StopAccepting, closes every duplicate: the kernel refuses connections.
func TestBlastBeatLoopAccept(t *testing.T) {
	const loops = 3
	sock := filepath.Join(t.TempDir(), "s.sock")
	h := &bbLoopEcho{booted: make(chan Engine, 1)}
	done := make(chan error, 1)
	go func() {
		done <- Run(h, "tcp://127.0.0.1:0", WithMulticore(true), WithNumEventLoop(loops), WithLoopAccept(true))
	}()
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
	<-eng.eng.started // OnBoot runs before the loops exist
	if eng.eng.ingress != nil {
		t.Fatal("a main reactor runs with WithLoopAccept")
	}
	var addr string
	for _, ln := range eng.eng.listeners {
		addr = bbBoundAddr(t, ln.fd).String() // the port the kernel chose
	}

	// polledFDs returns the loops' descriptors for the address.
	polledFDs := func(address string) []int {
		t.Helper()
		var fds []int
		var mu sync.Mutex
		eng.eng.eventLoops.iterate(func(_ int, el *eventloop) bool {
			err := el.runTask(func() error {
				for fd, ln := range el.listeners {
					if ln.address == address && ln.fd >= 0 {
						mu.Lock()
						fds = append(fds, fd)
						mu.Unlock()
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return true
		})
		return fds
	}
	// listenerFDs returns each loop's descriptor for the address, checking
	// that each is a different one, polled exclusively by that loop only.
	listenerFDs := func(address string) []int {
		t.Helper()
		fds := polledFDs(address)
		if len(fds) != loops {
			t.Fatalf("%s: %d loops poll it, want %d (%v)", address, len(fds), loops, fds)
		}
		seen := map[int]bool{}
		for _, fd := range fds {
			if seen[fd] {
				t.Fatalf("%s: descriptor %d shared by two loops (%v)", address, fd, fds)
			}
			seen[fd] = true
			masks := bbEpollEvents(t, fd)
			if len(masks) != 1 || masks[0]&unix.EPOLLEXCLUSIVE == 0 || masks[0]&unix.EPOLLIN == 0 {
				t.Fatalf("%s: descriptor %d polled with %x, want one EPOLLIN|EPOLLEXCLUSIVE", address, fd, masks)
			}
		}
		return fds
	}
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("listening on %q", addr)
	}
	listenerFDs("127.0.0.1:0")

	for i := 0; i < 60; i++ {
		if err := bbEchoOnce("tcp", addr, fmt.Sprintf("tcp %d\n", i)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}

	// A unix listener added at run time: one socket, every loop polls it.
	if err := eng.AddListener("unix://" + sock); err != nil {
		t.Fatal(err)
	}
	unixFDs := listenerFDs(sock)
	for i := 0; i < 10; i++ {
		if err := bbEchoOnce("unix", sock, fmt.Sprintf("unix %d\n", i)); err != nil {
			t.Fatalf("unix connection %d: %v", i, err)
		}
	}
	if err := eng.CloseListener("unix://" + sock); err != nil {
		t.Fatal(err)
	}
	// Every loop let go of its descriptor (the socket file, which the
	// first one removes, says nothing of the others).
	if fds := polledFDs(sock); len(fds) != 0 {
		t.Fatalf("loops still hold %v after CloseListener", fds)
	}
	for _, fd := range unixFDs {
		if m := bbEpollEvents(t, fd); len(m) != 0 {
			t.Fatalf("descriptor %d of the closed listener still polled (%x)", fd, m)
		}
	}

	if err := eng.StopAccepting(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // refused: every duplicate is closed
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("connections still accepted after StopAccepting")
		}
		time.Sleep(10 * time.Millisecond) // StopAccepting queues the closes
	}
}

// bbBoundAddr is the address an IPv4 listening socket is bound to.
func bbBoundAddr(t *testing.T, fd int) *net.TCPAddr {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		t.Fatalf("bound to %T", sa)
	}
	return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
}
