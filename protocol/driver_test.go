package protocol_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/blastbeat/blastbeat/protocol"
)

// parsedReq is what the driver records of one request: the head as
// strings (copied out before the buffer moves on), the de-chunked body and
// whether EvEnd was seen.
type parsedReq struct {
	Method, URI, Path, Query, Host string
	Minor                          int
	Headers                        []string // "Name: Value"
	ContentLength                  int64
	Chunked, KeepAlive, Expect100  bool
	Upgrade                        string
	HeadLen                        int
	Body                           string
	Ended                          bool
}

// driveResult is everything one byte stream produced.
type driveResult struct {
	Reqs []parsedReq
	Err  error
}

func (r driveResult) String() string {
	var b strings.Builder
	for i, q := range r.Reqs {
		fmt.Fprintf(&b, "req %d: %+v\n", i, q)
	}
	fmt.Fprintf(&b, "err: %v", r.Err)
	return b.String()
}

// drive feeds the chunks to p the way the server does: the bytes the
// parser has not consumed are kept, each chunk is appended to them, and
// Feed is called until it answers EvNeedMore. Every buffer that was given
// to Feed is overwritten before the next chunk arrives, so a parser that
// kept a reference into an old buffer shows up as a wrong result.
//
// It also checks the Feed contract: n never exceeds the buffer, nothing is
// consumed while a head is incomplete, EvBody pieces are non-empty
// sub-slices of buf, and EvBody/EvEnd only come after EvHead.
func drive(tb testing.TB, p *protocol.RequestParser, chunks ...[]byte) driveResult {
	tb.Helper()
	var res driveResult
	var pending []byte
	total := 0
	for _, c := range chunks {
		total += len(c)
	}
	calls := 0
	inReq := false // between EvHead and EvEnd
	for _, c := range chunks {
		buf := make([]byte, 0, len(pending)+len(c))
		buf = append(buf, pending...)
		buf = append(buf, c...)
		clear(pending[:cap(pending)]) // poison the previous buffer
		pending = buf
		for {
			calls++
			if calls > 4*total+16 {
				tb.Fatalf("Feed loops without progress after %d calls", calls)
			}
			wasInHead := p.InHead()
			n, ev, data, err := p.Feed(pending)
			if n < 0 || n > len(pending) {
				tb.Fatalf("Feed consumed %d of %d bytes", n, len(pending))
			}
			if err != nil {
				var pe *protocol.Error
				if !errors.As(err, &pe) {
					tb.Fatalf("Feed error %T %v is not a *protocol.Error", err, err)
				}
				res.Err = err
				return res
			}
			switch ev {
			case protocol.EvNeedMore:
				if wasInHead && n != 0 && p.InHead() {
					tb.Fatalf("Feed consumed %d bytes of an incomplete head", n)
				}
			case protocol.EvHead:
				if inReq {
					tb.Fatalf("EvHead inside a request")
				}
				r := p.Request()
				if r.HeadLen != n {
					tb.Fatalf("HeadLen %d, consumed %d", r.HeadLen, n)
				}
				res.Reqs = append(res.Reqs, copyReq(r))
				inReq = true
			case protocol.EvBody:
				if !inReq {
					tb.Fatalf("EvBody outside a request")
				}
				if len(data) == 0 {
					tb.Fatalf("empty EvBody")
				}
				off := cap(pending) - cap(data)
				if off < 0 || off+len(data) > n || &pending[off] != &data[0] {
					tb.Fatalf("EvBody data is not inside the consumed bytes")
				}
				res.Reqs[len(res.Reqs)-1].Body += string(data)
			case protocol.EvEnd:
				if !inReq {
					tb.Fatalf("EvEnd outside a request")
				}
				res.Reqs[len(res.Reqs)-1].Ended = true
				inReq = false
			default:
				tb.Fatalf("unknown event %d", ev)
			}
			pending = pending[n:]
			if ev == protocol.EvNeedMore {
				break
			}
		}
	}
	return res
}

func copyReq(r *protocol.Request) parsedReq {
	q := parsedReq{
		Method:        string(r.Method),
		URI:           string(r.URI),
		Path:          string(r.Path),
		Query:         string(r.Query),
		Host:          string(r.Host),
		Minor:         r.Minor,
		ContentLength: r.ContentLength,
		Chunked:       r.Chunked,
		KeepAlive:     r.KeepAlive,
		Expect100:     r.Expect100,
		Upgrade:       string(r.Upgrade),
		HeadLen:       r.HeadLen,
	}
	for _, h := range r.Headers {
		q.Headers = append(q.Headers, string(h.Name)+": "+string(h.Value))
	}
	return q
}

// driveString parses s whole with a fresh parser.
func driveString(tb testing.TB, lim protocol.Limits, s string) driveResult {
	tb.Helper()
	return drive(tb, protocol.NewRequestParser(lim), []byte(s))
}

// checkSplits feeds s cut at every index and one byte at a time, and
// requires each run to produce exactly what feeding it whole produced.
func checkSplits(t *testing.T, lim protocol.Limits, s string) {
	t.Helper()
	want := driveString(t, lim, s)
	in := []byte(s)
	for i := 0; i <= len(in); i++ {
		got := drive(t, protocol.NewRequestParser(lim), in[:i], in[i:])
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("split at %d:\n%v\nwhole:\n%v", i, got, want)
		}
	}
	bytewise := make([][]byte, len(in))
	for i := range in {
		bytewise[i] = in[i : i+1]
	}
	got := drive(t, protocol.NewRequestParser(lim), bytewise...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("one byte at a time:\n%v\nwhole:\n%v", got, want)
	}
}

// checkPrefixes requires every proper prefix of the valid stream s to
// parse without error, to end with EvNeedMore (which drive guarantees)
// and to end fewer requests than s.
func checkPrefixes(t *testing.T, lim protocol.Limits, s string) {
	t.Helper()
	whole := driveString(t, lim, s)
	for i := 0; i < len(s); i++ {
		got := driveString(t, lim, s[:i])
		if got.Err != nil {
			t.Fatalf("prefix %q: %v", s[:i], got.Err)
		}
		ended := 0
		for _, r := range got.Reqs {
			if r.Ended {
				ended++
			}
		}
		if ended >= len(whole.Reqs) {
			t.Fatalf("prefix %q ended all %d requests", s[:i], ended)
		}
	}
}
