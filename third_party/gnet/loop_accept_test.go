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

// bbLoopEcho echoes every read and counts connections per loop.
type bbLoopEcho struct {
	BuiltinEventEngine
	booted chan Engine
	mu     sync.Mutex
	loops  map[EventLoop]int
}

func (e *bbLoopEcho) OnBoot(eng Engine) Action { e.booted <- eng; return None }

func (e *bbLoopEcho) OnOpen(c Conn) ([]byte, Action) {
	e.mu.Lock()
	e.loops[c.EventLoop()]++
	e.mu.Unlock()
	return nil, None
}

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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	sock := filepath.Join(t.TempDir(), "s.sock")
	h := &bbLoopEcho{booted: make(chan Engine, 1), loops: map[EventLoop]int{}}
	done := make(chan error, 1)
	go func() {
		done <- Run(h, "tcp://"+addr, WithMulticore(true), WithNumEventLoop(loops), WithLoopAccept(true))
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

	// listenerFDs returns each loop's descriptor for the address, checking
	// that each is a different one, polled exclusively by that loop only.
	listenerFDs := func(address string) []int {
		t.Helper()
		var fds []int
		var mu sync.Mutex
		eng.eng.eventLoops.iterate(func(_ int, el *eventloop) bool {
			err := el.runTask(func() error {
				for fd, ln := range el.listeners {
					if ln.address == address {
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
	listenerFDs(addr)

	for i := 0; i < 60; i++ {
		if err := bbEchoOnce("tcp", addr, fmt.Sprintf("tcp %d\n", i)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}

	// A unix listener added at run time: one socket, every loop polls it.
	if err := eng.AddListener("unix://" + sock); err != nil {
		t.Fatal(err)
	}
	listenerFDs(sock)
	for i := 0; i < 10; i++ {
		if err := bbEchoOnce("unix", sock, fmt.Sprintf("unix %d\n", i)); err != nil {
			t.Fatalf("unix connection %d: %v", i, err)
		}
	}
	if err := eng.CloseListener("unix://" + sock); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		t.Fatal("the closed unix listener still accepts")
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
