package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/internal/testcert"
)

// readmeTLS is the original README's HTTPS example with the given
// certificate and key files (relative to the config file).
func readmeTLS(cert, key string) string {
	return "[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\n\n[blastbeat:localhost:8000]\nnode = foobar1\n\n" +
		"[blastbeat:secure.local]\nnode = foobar2\nbind-ssl = 0.0.0.0:443\ncertificate = " + cert + "\nkey = " + key + "\n"
}

func TestCheckAndVersion(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []testcert.Leaf{
		{Name: "foo", DNSNames: []string{"secure.local"}},
		{Name: "other", DNSNames: []string{"other.local"}},
		{Name: "old", DNSNames: []string{"secure.local"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)},
	} {
		if _, _, err := ca.Issue(l); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{name: "version", args: []string{"-version"}, code: 0, out: "blastbeat " + version},
		{name: "shipped example", args: []string{"-t", "../../examples/blastbeat.ini"}, code: 0, out: "configuration ok"},
		{name: "original README HTTPS example", args: []string{"-t", write("tls.ini", readmeTLS("foo.pem", "foo.key"))},
			code: 0, out: "configuration ok"},
		{name: "missing certificate", args: []string{"-t", write("nocert.ini", readmeTLS("nope.pem", "foo.key"))},
			code: 1, out: "nocert.ini:10: [blastbeat:secure.local] bind-ssl 0.0.0.0:443: certificate " + filepath.Join(dir, "nope.pem")},
		{name: "key of another certificate", args: []string{"-t", write("mismatch.ini", readmeTLS("foo.pem", "other.key"))},
			code: 1, out: "do not match"},
		{name: "expired certificate", args: []string{"-t", write("expired.ini", readmeTLS("old.pem", "old.key"))},
			code: 1, out: "expired"},
		{name: "not PEM", args: []string{"-t", write("notpem.ini", readmeTLS("tls.ini", "foo.key"))},
			code: 1, out: "no PEM block"},
		{name: "error names file and line", args: []string{"-t", write("bad.ini",
			"[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\nbogus = 1\n\n[blastbeat:*]\nnode = a\n")},
			code: 1, out: "bad.ini:4"},
		{name: "missing file", args: []string{"-t", filepath.Join(dir, "nope.ini")}, code: 1, out: "nope.ini"},
		{name: "no file", args: nil, code: 2, out: "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := run(tt.args, &out); code != tt.code || !strings.Contains(out.String(), tt.out) {
				t.Fatalf("run(%q) = %d, %q; want %d and %q", tt.args, code, out.String(), tt.code, tt.out)
			}
		})
	}
}
