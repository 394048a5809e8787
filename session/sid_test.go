package session

import (
	"testing"
)

func TestSIDEncodesLoopAndSlot(t *testing.T) {
	tests := []struct {
		name string
		loop int
		slot int
	}{
		{name: "zero", loop: 0, slot: 0},
		{name: "mid", loop: 7, slot: 12345},
		{name: "max", loop: MaxLoops - 1, slot: MaxSlots - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSIDSource(tt.loop)
			s := src.make(tt.slot)
			if s.Loop() != tt.loop || s.Slot() != tt.slot {
				t.Fatalf("sid %s: loop %d slot %d, want %d %d", s, s.Loop(), s.Slot(), tt.loop, tt.slot)
			}
			if _, ok := ParseSID(s[:]); !ok {
				t.Fatalf("ParseSID refused %s", s)
			}
			if s[6]>>4 != 4 || s[8]>>6 != 2 {
				t.Fatalf("%s is not UUID-v4 shaped", s)
			}
		})
	}
}

func TestSIDsAreUnique(t *testing.T) {
	src := newSIDSource(3)
	seen := make(map[SID]bool)
	for i := 0; i < 100000; i++ {
		s := src.make(i % 10) // same slots reused: randomness keeps them apart
		if seen[s] {
			t.Fatalf("duplicate sid %s after %d", s, i)
		}
		seen[s] = true
	}
}

func TestParseSIDRejects(t *testing.T) {
	src := newSIDSource(1)
	good := src.make(1)
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "empty", b: nil},
		{name: "short", b: good[:15]},
		{name: "long", b: append(good[:], 0)},
		{name: "version", b: func() []byte { b := good; b[6] = 0x10; return b[:] }()},
		{name: "variant", b: func() []byte { b := good; b[8] = 0x00; return b[:] }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := ParseSID(tt.b); ok {
				t.Fatalf("ParseSID(%x) accepted", tt.b)
			}
		})
	}
}
