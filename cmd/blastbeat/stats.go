package main

import (
	"reflect"
	"strings"
	"unicode"

	"github.com/blastbeat/blastbeat/internal/logbuf"
	"github.com/blastbeat/blastbeat/server"
)

// statsSource is what /metrics reads: the server, and the log's buffer
// for the log lines it dropped (log_lines_dropped_total).
type statsSource struct {
	*server.Server
	logs *logbuf.Writer
}

func (s statsSource) LogDropped() uint64 { return s.logs.Dropped() }

// statsAttrs turns the counters into log attributes, snake_case keys
// (bad_message=3), the bridge's prefixed with bridge_; zero counters are
// left out. (/metrics has most of them live; the bridge's traffic counts
// only per node there.)
func statsAttrs(st server.StatsSnapshot) []any {
	var out []any
	add := func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := v.Field(i)
			var n int64
			switch f.Kind() {
			case reflect.Uint64:
				n = int64(f.Uint())
			case reflect.Int64, reflect.Int:
				n = f.Int()
			default:
				continue
			}
			if n != 0 {
				out = append(out, prefix+snake(t.Field(i).Name), n)
			}
		}
	}
	add("", reflect.ValueOf(st))
	add("bridge_", reflect.ValueOf(st.Bridge))
	return out
}

// snake turns BadMessage into bad_message and TLSHandshakes into
// tls_handshakes.
func snake(name string) string {
	var b strings.Builder
	r := []rune(name)
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
