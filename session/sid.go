package session

import (
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
)

// SID is a 16-byte session id, shaped like a random UUID (version 4,
// RFC 9562 variant). Besides 92 random bits it carries the owning loop
// (6 bits, in byte 8 beside the variant) and the table slot (24 bits,
// bytes 9–11). Backends treat it as opaque.
type SID [16]byte

const (
	// MaxLoops is the number of event loops a sid can address.
	MaxLoops = 64
	// MaxSlots is the number of sessions one loop's table can hold.
	MaxSlots = 1 << 24
)

// Loop returns the index of the event loop that owns the session.
func (s *SID) Loop() int { return int(s[8] & 0x3f) }

// Slot returns the session's slot in its loop's table.
func (s *SID) Slot() int { return int(s[9])<<16 | int(s[10])<<8 | int(s[11]) }

// String returns the sid in UUID text form, for logs.
func (s SID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], s[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], s[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], s[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], s[8:10])
	b[23] = '-'
	hex.Encode(b[24:], s[10:])
	return string(b[:])
}

// ParseSID checks that b has a sid's length and UUID shape and returns it.
// It does not say whether the session exists.
func ParseSID(b []byte) (SID, bool) {
	var s SID
	if len(b) != len(s) || b[6]&0xf0 != 0x40 || b[8]&0xc0 != 0x80 {
		return s, false
	}
	copy(s[:], b)
	return s, true
}

// sidSource makes sids for one loop. It is owned by that loop.
type sidSource struct {
	loop uint8
	rng  *rand.ChaCha8
}

func newSIDSource(loop int) sidSource {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails on Linux (getrandom)
	return sidSource{loop: uint8(loop), rng: rand.NewChaCha8(seed)}
}

func (src *sidSource) make(slot int) SID {
	var s SID
	binary.LittleEndian.PutUint64(s[0:8], src.rng.Uint64())
	binary.LittleEndian.PutUint32(s[12:16], uint32(src.rng.Uint64()))
	s[6] = 0x40 | s[6]&0x0f
	s[8] = 0x80 | src.loop&0x3f
	s[9], s[10], s[11] = byte(slot>>16), byte(slot>>8), byte(slot)
	return s
}
