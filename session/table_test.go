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
