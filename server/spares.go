package server

// spares is a bounded stack of values one loop keeps for reuse: output
// and retry slices, request parsers, HTTP/2 stream records. It runs on
// its loop only, so it needs no lock, and it holds no reference to what
// it lent.
type spares[T any] struct {
	kept []T
}

// take pops a kept value; ok is false when none is kept.
func (s *spares[T]) take() (v T, ok bool) {
	k := len(s.kept)
	if k == 0 {
		return v, false
	}
	v = s.kept[k-1]
	var zero T
	s.kept[k-1] = zero
	s.kept = s.kept[:k-1]
	return v, true
}

// put keeps v unless max values are kept already (v is then left to the
// collector).
func (s *spares[T]) put(v T, max int) {
	if len(s.kept) < max {
		s.kept = append(s.kept, v)
	}
}

// len is how many values are kept.
func (s *spares[T]) len() int { return len(s.kept) }
