package zmqbridge

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestRingFIFOAndFull(t *testing.T) {
	r := NewRing(5) // rounds up to 8
	for i := 0; i < 8; i++ {
		if !r.Push(&Msg{Node: i}) {
			t.Fatalf("push %d refused", i)
		}
	}
	if r.Push(&Msg{Node: 99}) {
		t.Fatal("push into a full ring accepted")
	}
	var m Msg
	for i := 0; i < 8; i++ {
		if !r.Pop(&m) || m.Node != i {
			t.Fatalf("pop %d: got %v", i, m.Node)
		}
	}
	if r.Pop(&m) || !r.Empty() {
		t.Fatal("empty ring popped")
	}
}

func TestRingManyProducers(t *testing.T) {
	const producers, each = 4, 20000
	r := NewRing(64)
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				m := Msg{Node: p, Body: []byte{byte(i), byte(i >> 8), byte(i >> 16)}}
				if !pushWait(r, &m, 10*time.Second) {
					t.Errorf("producer %d stuck at %d", p, i)
					return
				}
			}
		}(p)
	}
	next := make([]int, producers)
	var m Msg
	for got := 0; got < producers*each; {
		if !r.Pop(&m) {
			runtime.Gosched()
			continue
		}
		i := int(m.Body[0]) | int(m.Body[1])<<8 | int(m.Body[2])<<16
		if i != next[m.Node] {
			t.Fatalf("producer %d: got %d, want %d (per-producer order lost)", m.Node, i, next[m.Node])
		}
		next[m.Node]++
		got++
	}
	wg.Wait()
}

func BenchmarkRingPushPop(b *testing.B) {
	r := NewRing(1024)
	m := Msg{Node: 1, Type: "body"}
	var out Msg
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Push(&m)
		r.Pop(&out)
	}
}

// BenchmarkChannelSendRecv is the buffered-channel alternative the ring
// replaces, for comparison.
func BenchmarkChannelSendRecv(b *testing.B) {
	ch := make(chan Msg, 1024)
	m := Msg{Node: 1, Type: "body"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ch <- m
		<-ch
	}
}

func BenchmarkRingContended(b *testing.B) {
	r := NewRing(1 << 14)
	done := make(chan struct{})
	go func() {
		var m Msg
		for {
			select {
			case <-done:
				return
			default:
			}
			if !r.Pop(&m) {
				runtime.Gosched()
			}
		}
	}()
	b.RunParallel(func(pb *testing.PB) {
		m := Msg{Node: 1}
		for pb.Next() {
			pushWait(r, &m, time.Minute)
		}
	})
	close(done)
}

func BenchmarkChannelContended(b *testing.B) {
	ch := make(chan Msg, 1<<14)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
			}
		}
	}()
	b.RunParallel(func(pb *testing.PB) {
		m := Msg{Node: 1}
		for pb.Next() {
			ch <- m
		}
	})
	close(done)
}

// pushWait retries Push until it succeeds or wait passes.
func pushWait(r *Ring, m *Msg, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for !r.Push(m) {
		if time.Now().After(deadline) {
			return false
		}
		runtime.Gosched()
	}
	return true
}
