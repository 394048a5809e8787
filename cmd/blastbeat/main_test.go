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

// writeFile writes src to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testCA makes a CA in dir and issues the leaves foo, other (for another
// name) and old (expired) from it.
func testCA(t *testing.T, dir string) {
	t.Helper()
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
}

// TestOutputStreams checks where each kind of output goes: what was asked
// for to stdout, usage mistakes to stderr with status 2.
func TestOutputStreams(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring; "" for nothing written
		stderr string // substring; "" for nothing written
	}{
		{name: "-h", args: []string{"-h"}, code: 0, stdout: "usage: blastbeat [flags] FILE.ini"},
		{name: "-help", args: []string{"-help"}, code: 0, stdout: "-version"},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: "check the configuration file"},
		{name: "-h after other flags", args: []string{"-t", "-h", "x.ini"}, code: 0, stdout: "usage"},
		{name: "-version", args: []string{"-version"}, code: 0, stdout: "blastbeat " + version + "\n"},
		{name: "--version", args: []string{"--version"}, code: 0, stdout: "blastbeat " + version + "\n"},
		{name: "bad flag", args: []string{"-bogus"}, code: 2, stderr: "flag provided but not defined: -bogus\nusage:"},
		{name: "bad flag value", args: []string{"-t=maybe", "x.ini"}, code: 2, stderr: "usage:"},
		{name: "no file", args: nil, code: 2, stderr: "usage: blastbeat [flags] FILE.ini"},
		{name: "two files", args: []string{"a.ini", "b.ini"}, code: 2, stderr: "usage:"},
		{name: "-ini and a file", args: []string{"-ini", "a.ini", "b.ini"}, code: 2, stderr: "usage:"},
		{name: "-ini empty", args: []string{"-ini", ""}, code: 2, stderr: "usage:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("run(%q) = %d, want %d", tt.args, code, tt.code)
			}
			for _, s := range []struct {
				name      string
				got, want string
			}{{"stdout", stdout.String(), tt.stdout}, {"stderr", stderr.String(), tt.stderr}} {
				if s.want == "" && s.got != "" || !strings.Contains(s.got, s.want) {
					t.Errorf("%s = %q, want %q", s.name, s.got, s.want)
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	testCA(t, dir)
	write := func(name, src string) string { return writeFile(t, dir, name, src) }
	tests := []struct {
		name string
		args []string
		code int
		want []string // the lines of stderr, each a substring, in order
	}{
		{name: "shipped example", args: []string{"-t", "../../examples/blastbeat.ini"}, code: 0, want: []string{"configuration ok"}},
		{name: "--ini, as the uWSGI Emperor's emperor-wrapper runs it", args: []string{"-t", "--ini", "../../examples/blastbeat.ini"}, code: 0,
			want: []string{"configuration ok"}},
		{name: "original README HTTPS example", args: []string{"-t", write("tls.ini", readmeTLS("foo.pem", "foo.key"))},
			code: 0, want: []string{"configuration ok"}},
		{name: "missing certificate", args: []string{"-t", write("nocert.ini", readmeTLS("nope.pem", "foo.key"))},
			code: 1, want: []string{"blastbeat: " + dir + "/nocert.ini:10: [blastbeat:secure.local] bind-ssl 0.0.0.0:443: certificate " + filepath.Join(dir, "nope.pem")}},
		{name: "key of another certificate", args: []string{"-t", write("mismatch.ini", readmeTLS("foo.pem", "other.key"))},
			code: 1, want: []string{"do not match"}},
		{name: "expired certificate", args: []string{"-t", write("expired.ini", readmeTLS("old.pem", "old.key"))},
			code: 1, want: []string{"expired"}},
		{name: "not PEM", args: []string{"-t", write("notpem.ini", readmeTLS("tls.ini", "foo.key"))},
			code: 1, want: []string{"no PEM block"}},
		{name: "every bad certificate", args: []string{"-t", write("certs.ini", readmeTLS("old.pem", "old.key")+
			"\n[blastbeat:a.local]\nnode = n\nbind-ssl = 0.0.0.0:8443\nbind-ssl = 0.0.0.0:9443\ncertificate = foo.pem\nkey = other.key\n"+ // 14-19
			"[blastbeat:b.local]\nnode = n\nbind-ssl = 0.0.0.0:8443\ncertificate = nope.pem\nkey = foo.key\n")}, // 20-24
			code: 1, want: []string{
				"certs.ini:10: [blastbeat:secure.local] bind-ssl 0.0.0.0:443: ", "certs.ini:16: [blastbeat:a.local] bind-ssl 0.0.0.0:8443: ",
				"certs.ini:22: [blastbeat:b.local] bind-ssl 0.0.0.0:8443: "}},
		{name: "error names file and line", args: []string{"-t", write("bad.ini",
			"[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\nbogus = 1\n\n[blastbeat:*]\nnode = a\n")},
			code: 1, want: []string{"bad.ini:4: [blastbeat] bogus: unknown key"}},
		{name: "every configuration error, one a line", args: []string{"-t", write("many.ini",
			"[blastbeat]\nbind = 0.0.0.0:0\nzmq = tcp://0.0.0.0:5000\nbogus = 1\n\n[blastbeat:*]\nnode =\nnot a key\n")},
			code: 1, want: []string{"blastbeat: " + dir + "/many.ini:2: [blastbeat] bind: bad value", "many.ini:4: [blastbeat] bogus: unknown key",
				"many.ini:7: [blastbeat:*] node: bad value: empty value", "many.ini:8: syntax error"}},
		{name: "duplicate host name", args: []string{"-t", write("dup.ini",
			"[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\n[blastbeat:a.test]\nnode = n\n[blastbeat:b.test]\nnode = n\nalias = A.test\n")},
			code: 1, want: []string{`dup.ini:8: [blastbeat:b.test] alias: duplicate host name "a.test": first defined at line 4 ([blastbeat:a.test])`}},
		{name: "emperor-heartbeat too short", args: []string{"-t", write("heartbeat.ini",
			"[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\nemperor-heartbeat = 1ms\n[blastbeat:*]\nnode = a\n")},
			code: 1, want: []string{"heartbeat.ini:4: [blastbeat] emperor-heartbeat: bad value: must be 0 (off) or at least 10ms"}},
		{name: "emperor-heartbeat", args: []string{"-t", write("heartbeat-ok.ini",
			"[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\nemperor-heartbeat = 5\n[blastbeat:*]\nnode = a\n")},
			code: 0, want: []string{"configuration ok"}},
		{name: "missing file", args: []string{"-t", filepath.Join(dir, "nope.ini")}, code: 1, want: []string{"nope.ini"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			ok := code == tt.code && stdout.Len() == 0 && len(lines) == len(tt.want)
			for i := 0; ok && i < len(lines); i++ {
				ok = strings.HasPrefix(lines[i], "blastbeat: ") && strings.Contains(lines[i], tt.want[i])
			}
			if !ok {
				t.Fatalf("run(%q) = %d, stdout %q, stderr:\n%s\nwant %d and the lines %q", tt.args, code, stdout.String(), stderr.String(), tt.code, tt.want)
			}
		})
	}
}
