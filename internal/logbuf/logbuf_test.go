package logbuf

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"
)

// gate is a destination that blocks every write until opened, as a
// stderr pipe nobody reads does.
type gate struct {
	open    chan struct{}
	entered chan struct{}
	once    sync.Once
	mu      sync.Mutex
	got     bytes.Buffer
}

func newGate() *gate { return &gate{open: make(chan struct{}), entered: make(chan struct{})} }

func (g *gate) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.got.Write(p)
}

func (g *gate) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.got.String()
}

// TestWriteNeverWaits: while the destination takes nothing, Write returns
// at once; past the bound lines are dropped and counted; once the
// destination takes lines again, every kept line is written in order and
// the drops are reported (OnDropped) after them.
func TestWriteNeverWaits(t *testing.T) {
	g := newGate()
	w := New(g, 100)
	reported := make(chan uint64, 4)
	w.OnDropped = func(n uint64) {
		fmt.Fprintf(w, "dropped %d\n", n)
		reported <- n
	}
	fmt.Fprintf(w, "first\n")
	<-g.entered // the writer is stuck in out.Write with "first"
	done := make(chan struct{})
	go func() {
		for i := range 20 {
			fmt.Fprintf(w, "line %02d\n", i) // 8 bytes each: 12 fit in 100
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write waited for a destination that takes nothing")
	}
	if n := w.Dropped(); n != 8 {
		t.Fatalf("Dropped() = %d, want 8 (12 of 20 lines fit in 100 bytes)", n)
	}
	close(g.open)
	select {
	case n := <-reported:
		if n != 8 {
			t.Fatalf("OnDropped(%d), want 8", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the drops were never reported")
	}
	if !w.Close(10 * time.Second) {
		t.Fatal("Close timed out on a destination that takes lines")
	}
	var want bytes.Buffer
	want.WriteString("first\n")
	for i := range 12 {
		fmt.Fprintf(&want, "line %02d\n", i)
	}
	want.WriteString("dropped 8\n")
	if got := g.String(); got != want.String() {
		t.Fatalf("written:\n%s\nwant:\n%s", got, want.String())
	}
}

// TestCloseBounded: Close gives up on a destination that takes nothing.
func TestCloseBounded(t *testing.T) {
	g := newGate()
	w := New(g, 0)
	fmt.Fprintf(w, "stuck\n")
	<-g.entered
	if w.Close(50 * time.Millisecond) {
		t.Fatal("Close reported everything written while the destination took nothing")
	}
	close(g.open)
}

// TestDropReportAtClose: drops reported at the stop itself are written
// too (Close's last flush). Before, the report was appended after the
// last write and lost.
func TestDropReportAtClose(t *testing.T) {
	g := newGate()
	w := New(g, 20)
	w.OnDropped = func(n uint64) { fmt.Fprintf(w, "dropped %d\n", n) }
	fmt.Fprintf(w, "first\n")
	<-g.entered
	for i := range 10 {
		fmt.Fprintf(w, "line %02d\n", i)
	}
	close(g.open)
	if !w.Close(10 * time.Second) {
		t.Fatal("Close timed out")
	}
	if got := g.String(); !bytes.Contains([]byte(got), []byte("dropped ")) {
		t.Fatalf("written:\n%s\nno drop report", got)
	}
}
