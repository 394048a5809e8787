package server

import "testing"

func TestSpares(t *testing.T) {
	var s spares[*int]
	if _, ok := s.take(); ok {
		t.Fatal("took from an empty stack")
	}
	a, b, c := new(int), new(int), new(int)
	s.put(a, 2)
	s.put(b, 2)
	s.put(c, 2) // over max: left to the collector
	if s.len() != 2 {
		t.Fatalf("kept %d, want 2", s.len())
	}
	if v, ok := s.take(); !ok || v != b {
		t.Fatalf("took %p, %v; want the last put, %p", v, ok, b)
	}
	// The stack keeps no reference to what it lent.
	if s.kept[:2][1] != nil {
		t.Fatal("the lent value's cell still points at it")
	}
	if v, ok := s.take(); !ok || v != a {
		t.Fatalf("took %p, %v; want %p", v, ok, a)
	}
	if _, ok := s.take(); ok || s.len() != 0 {
		t.Fatal("took from an emptied stack")
	}
}
