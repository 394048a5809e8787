package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckAndVersion(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{name: "version", args: []string{"-version"}, code: 0, out: "blastbeat " + version},
		{name: "shipped example", args: []string{"-t", "../../examples/blastbeat.ini"}, code: 0, out: "configuration ok"},
		{name: "original README example with TLS keys", args: []string{"-t", write("tls.ini",
			"[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\n\n[blastbeat:localhost:8000]\nnode = foobar1\n\n"+
				"[blastbeat:secure.local]\nnode = foobar2\nbind-ssl = 0.0.0.0:443\ncertificate = foo.pem\nkey = foo.key\n")},
			code: 0, out: "configuration ok"},
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
