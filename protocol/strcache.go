package protocol

// StringCache turns short byte slices into strings, giving back the same
// string for the same bytes while it holds it: an HPACK encoder takes
// strings, and the values a node's responses carry (content-type, a
// content-length, the date) repeat from one response to the next, so a
// cached one costs a map lookup instead of an allocation. Strings are
// immutable: one handed out stays valid (an encoder's dynamic table may
// keep it) after the cache forgets it. Not safe for concurrent use; the
// zero value is ready.
type StringCache struct {
	m map[string]string
}

// The cache's bounds: values longer than StringCacheMaxLen are converted
// each time (a long value rarely repeats), and a cache holding
// StringCacheEntries strings starts afresh, so that values which never
// repeat (an ETag per response) cost at most that many strings.
const (
	StringCacheEntries = 256
	StringCacheMaxLen  = 128
)

// String returns b as a string. A nil cache converts each time.
func (c *StringCache) String(b []byte) string {
	if c == nil || len(b) > StringCacheMaxLen {
		return string(b)
	}
	if s, ok := c.m[string(b)]; ok { // no allocation for the lookup
		return s
	}
	if c.m == nil || len(c.m) >= StringCacheEntries {
		c.m = make(map[string]string, StringCacheEntries)
	}
	s := string(b)
	c.m[s] = s
	return s
}

// Len is the number of strings held.
func (c *StringCache) Len() int { return len(c.m) }
