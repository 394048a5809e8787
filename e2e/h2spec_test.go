package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// h2specBinary is the conformance tester `make test` installs (pinned in
// the Makefile) and names in $H2SPEC.
func h2specBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("H2SPEC")
	if bin == "" {
		bin, _ = filepath.Abs("../bin/h2spec")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("SKIP: no h2spec (run `make tools`, or `make test` which does): %v", err)
	}
	return bin
}

var h2specSummary = regexp.MustCompile(`(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`)

// runH2spec runs every h2spec case against addr and returns the names of
// the failed ones.
func runH2spec(t *testing.T, bin string, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, append(args, "-o", "5")...).CombinedOutput()
	m := h2specSummary.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("h2spec printed no summary:\n%s", bTail(string(out), 3000))
	}
	total, _ := strconv.Atoi(m[1])
	failedN, _ := strconv.Atoi(m[4])
	t.Logf("h2spec %s: %s", strings.Join(args, " "), m[0])
	if total < 145 {
		t.Errorf("h2spec ran %d cases, want all 145", total)
	}
	// The failures are listed again after the run, one "× N: name" each.
	var failed []string
	if i := strings.LastIndex(string(out), "Failures:"); i >= 0 {
		for _, line := range strings.Split(string(out)[i:], "\n") {
			if l := strings.TrimSpace(line); strings.HasPrefix(l, "×") {
				failed = append(failed, l)
			}
		}
	}
	if len(failed) != failedN {
		t.Logf("output:\n%s", bTail(string(out), 4000))
	}
	return failed
}

// TestHTTP2Spec runs h2spec against h2 over TLS (every case must pass)
// and h2c with prior knowledge on a plain listener.
func TestHTTP2Spec(t *testing.T) {
	bin := h2specBinary(t)
	s := tsStart(t, "http2 = on\n", "", nil)

	failed := runH2spec(t, bin, "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-t", "-k")
	for _, f := range failed {
		t.Errorf("h2 over TLS: %s", f)
	}

	// h2c: the plain listener serves HTTP/1.1 too; bytes that are
	// neither the preface nor an HTTP/1.x request line (h2spec's "3.5 2")
	// are closed without an answer (protocol.ErrNotHTTP).
	_, port, _ := strings.Cut(s.p.Addr, ":")
	failed = runH2spec(t, bin, "-h", "127.0.0.1", "-p", port)
	for _, f := range failed {
		t.Errorf("h2c: %s", f)
	}
}
