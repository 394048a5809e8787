//go:build !race

package tlsmem_test

import "testing"

// TestReadWriteAllocs: once warm, the server's Feed + Read + Write of a
// 16 KiB record allocates nothing of this package's (pooled buffers, a
// reused Out vector). crypto/tls itself allocates once per readFromUntil
// that must read (its &atLeastReader escapes through bytes.Buffer.ReadFrom,
// Go 1.26 crypto/tls/conn.go:837): once for the record and once for the
// probe that finds the transport empty. Any third allocation is ours.
func TestReadWriteAllocs(t *testing.T) {
	const tlsAllocs = 2
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			const runs = 100
			s := newServerOnly(t, v.version)
			s.refill(t, runs+2)
			s.op(t)
			if avg := testing.AllocsPerRun(runs, func() { s.op(t) }); avg > tlsAllocs {
				t.Errorf("%v allocations per Feed+Read+Write, want at most crypto/tls's %d", avg, tlsAllocs)
			}
		})
	}
}
