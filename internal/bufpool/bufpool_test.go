package bufpool

import (
	"sync"
	"testing"
)

func TestClasses(t *testing.T) {
	var p Pool
	for _, tt := range []struct{ n, cap int }{{0, 512}, {1, 512}, {512, 512}, {513, 1024}, {64 << 10, 64 << 10}, {(64 << 10) + 1, 128 << 10}, {MaxPooled, MaxPooled}} {
		b := p.Get(tt.n)
		if len(b.B) != tt.n || cap(b.B) != tt.cap || b.Refs() != 1 {
			t.Errorf("Get(%d): len %d cap %d refs %d, want cap %d", tt.n, len(b.B), cap(b.B), b.Refs(), tt.cap)
		}
		b.Release()
	}
	if b := p.Get(MaxPooled + 1); b.class != -1 || len(b.B) != MaxPooled+1 {
		t.Errorf("Get(MaxPooled+1): class %d len %d", b.class, len(b.B))
	}
}

// TestReleaseTwicePanics: one Release too many is a bug, never a silent
// reuse of bytes still in flight.
func TestReleaseTwicePanics(t *testing.T) {
	var p Pool
	b := p.Get(10)
	b.Retain()
	b.Release()
	b.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("a third Release of two references did not panic")
		}
	}()
	b.Release()
}

// TestNotReusedWhileReferenced: a buffer comes back from Get only after
// its last reference went, across goroutines (run with -race).
func TestNotReusedWhileReferenced(t *testing.T) {
	var p Pool
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				b := p.Get(1000)
				for j := range b.B {
					b.B[j] = byte(g)
				}
				b.Retain() // a second holder, as a retry keeps it
				done := make(chan struct{})
				go func() { // the bridge's reference
					defer close(done)
					for j := range b.B {
						if b.B[j] != byte(g) {
							t.Errorf("byte %d changed while referenced", j)
							return
						}
					}
					b.Release()
				}()
				<-done
				for j := range b.B {
					if b.B[j] != byte(g) {
						t.Errorf("byte %d changed while referenced", j)
						return
					}
				}
				b.Release()
			}
		}(g)
	}
	wg.Wait()
}

// TestOutgrownNotPooled: bytes appended past the class are not put back
// under that class.
func TestOutgrownNotPooled(t *testing.T) {
	var p Pool
	b := p.Get(500)
	b.B = append(b.B, make([]byte, 100)...) // now 600 > 512: moved
	b.Release()
	if c := p.Get(10); cap(c.B) != 512 {
		t.Fatalf("Get after an outgrown release: cap %d", cap(c.B))
	}
}

// TestWrap: a wrapped slice is released like a pooled one, and never
// enters the pool.
func TestWrap(t *testing.T) {
	var p Pool
	b := Wrap(make([]byte, 512))
	b.Retain()
	b.Release()
	b.Release()
	if b.Refs() != 0 {
		t.Fatalf("refs %d", b.Refs())
	}
	if c := p.Get(512); c == b {
		t.Fatal("a wrapped buffer came out of the pool")
	}
}
