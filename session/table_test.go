package session

import "testing"

func TestTableAddGetRemove(t *testing.T) {
	tb := NewTable[string](2, 3)
	a, err := tb.Add("a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := tb.Add("b")
	c, _ := tb.Add("c")
	if _, err := tb.Add("d"); err != ErrTableFull {
		t.Fatalf("4th Add: %v, want ErrTableFull", err)
	}
	for sid, want := range map[SID]string{a: "a", b: "b", c: "c"} {
		if got, ok := tb.Get(&sid); !ok || got != want {
			t.Fatalf("Get(%s) = %q %v, want %q", sid, got, ok, want)
		}
	}
	tb.Remove(&b)
	if _, ok := tb.Get(&b); ok {
		t.Fatal("removed sid still found")
	}
	d, err := tb.Add("d")
	if err != nil {
		t.Fatal(err)
	}
	if d.Slot() != b.Slot() {
		t.Fatalf("slot not reused: %d vs %d", d.Slot(), b.Slot())
	}
	// The old sid of a reused slot must not find the new session.
	if _, ok := tb.Get(&b); ok {
		t.Fatal("stale sid found the slot's new session")
	}
	tb.Remove(&b) // unknown: no effect
	if tb.Len() != 3 {
		t.Fatalf("Len = %d, want 3", tb.Len())
	}
	n := 0
	tb.Range(func(*SID, string) bool { n++; return true })
	if n != 3 {
		t.Fatalf("Range saw %d, want 3", n)
	}
	var forged SID = a
	forged[9], forged[10], forged[11] = 0xff, 0xff, 0xff
	if _, ok := tb.Get(&forged); ok {
		t.Fatal("forged slot found")
	}
}

// TestTableChunks: sessions across several chunks are found, ranged and
// removed, and a full table of more than one chunk refuses the next.
func TestTableChunks(t *testing.T) {
	const n = 3*chunkLen + 7
	tb := NewTable[int](1, n)
	sids := make([]SID, n)
	for i := range sids {
		sid, err := tb.Add(i)
		if err != nil {
			t.Fatalf("Add %d: %v", i, err)
		}
		sids[i] = sid
	}
	if _, err := tb.Add(-1); err != ErrTableFull {
		t.Fatalf("Add past the limit: %v", err)
	}
	for i := range sids {
		if v, ok := tb.Get(&sids[i]); !ok || v != i {
			t.Fatalf("Get %d: %d %v", i, v, ok)
		}
	}
	for i := 0; i < n; i += 2 {
		tb.Remove(&sids[i])
	}
	seen := 0
	tb.Range(func(sid *SID, v int) bool {
		if v%2 == 0 || *sid != sids[v] {
			t.Fatalf("Range gave %d under %s", v, sid)
		}
		seen++
		return true
	})
	if want := n / 2; seen != want || tb.Len() != want {
		t.Fatalf("Range saw %d, Len %d; want %d", seen, tb.Len(), want)
	}
}
