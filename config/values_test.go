package config

import (
	"reflect"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "3", want: 3 * time.Second},
		{in: "0.5", want: 500 * time.Millisecond},
		{in: "0.1", want: 100 * time.Millisecond},
		{in: "0", want: 0},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "2s", want: 2 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "-1", wantErr: true},
		{in: "-2s", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "inf", wantErr: true},
		{in: "1e12", wantErr: true},
		{in: "3 s", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "16384", want: 16384},
		{in: "1k", want: 1024},
		{in: "16K", want: 16 << 10},
		{in: "4m", want: 4 << 20},
		{in: "4M", want: 4 << 20},
		{in: "1g", want: 1 << 30},
		{in: "2G", want: 2 << 30},
		{in: "8589934591G", want: 8589934591 << 30},
		{in: "8589934592G", wantErr: true},
		{in: "99999999999999999999", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "1.5m", wantErr: true},
		{in: "1kb", wantErr: true},
		{in: "k", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	tests := []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{in: "true", want: true},
		{in: "YES", want: true},
		{in: "on", want: true},
		{in: "1", want: true},
		{in: "false", want: false},
		{in: "No", want: false},
		{in: "off", want: false},
		{in: "0", want: false},
		{in: "2", wantErr: true},
		{in: "y", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseBool(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseBool(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseBind(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "0.0.0.0:8080", want: "0.0.0.0:8080"},
		{in: "[::1]:8080", want: "[::1]:8080"},
		{in: "[::]:443", want: "[::]:443"},
		{in: "fe80::1%eth0:8080", want: "[fe80::1%eth0]:8080"},
		{in: "[fe80::1%eth0]:8080", want: "[fe80::1%eth0]:8080"},
		{in: "::1:80", want: "[::1]:80"},
		{in: "localhost:80", want: "localhost:80"},
		{in: ":8080", want: ":8080"},
		{in: "0.0.0.0:08080", want: "0.0.0.0:8080"},
		{in: "0.0.0.0", wantErr: true},
		{in: "0.0.0.0:", wantErr: true},
		{in: "0.0.0.0:0", wantErr: true},
		{in: "0.0.0.0:-1", wantErr: true},
		{in: "0.0.0.0:65536", wantErr: true},
		{in: "0.0.0.0:http", wantErr: true},
		{in: "1.2.3.4%eth0:80", wantErr: true},
		{in: "[1.2.3.4]:80", wantErr: true},
		{in: "[::1]", wantErr: true},
		{in: "[::1]:", wantErr: true},
		{in: "gg::1:80", wantErr: true},
		{in: "bad host:80", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseBind(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseBind(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{in: "tcp://0.0.0.0:5000"},
		{in: "tcp://*:5000"},
		{in: "tcp://eth0:*"},
		{in: "tcp://[::1]:5000"},
		{in: "ipc:///tmp/bb.sock"},
		{in: "inproc://bb"},
		{in: "tcp://0.0.0.0", wantErr: true},
		{in: "tcp://:5000", wantErr: true},
		{in: "tcp://host:0", wantErr: true},
		{in: "tcp://", wantErr: true},
		{in: "ipc://", wantErr: true},
		{in: "inproc://a b", wantErr: true},
		{in: "TCP://host:1", wantErr: true},
		{in: "pgm://eth0;239.192.1.1:5555", wantErr: true},
		{in: "0.0.0.0:5000", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseEndpoint(tt.in)
			if (err != nil) != tt.wantErr || (err == nil && got != tt.in) {
				t.Errorf("parseEndpoint(%q) = %q, %v; want error %v", tt.in, got, err, tt.wantErr)
			}
		})
	}
}

func TestParseVHostName(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "localhost", want: "localhost"},
		{in: "LocalHost:8000", want: "localhost:8000"},
		{in: " secure.local ", want: "secure.local"},
		{in: "192.168.173.5:8081", want: "192.168.173.5:8081"},
		{in: "*", want: "*"},
		{in: "[::1]", want: "[::1]"},
		{in: "[::1]:8080", want: "[::1]:8080"},
		{in: "my_host-1.example", want: "my_host-1.example"},
		// The port as a Host header writes it (08080 never matched).
		{in: "a.test:08080", want: "a.test:8080"},
		{in: "[::1]:08080", want: "[::1]:8080"},
		{in: "", wantErr: true},
		{in: "host:", wantErr: true},
		{in: "host:0", wantErr: true},
		{in: "host:1:2", wantErr: true},
		{in: "::1", wantErr: true},
		{in: "[::1", wantErr: true},
		{in: "[::1]x", wantErr: true},
		{in: "[fe80::1%eth0]", wantErr: true},
		{in: "[1.2.3.4]", wantErr: true},
		{in: "*.example.com", wantErr: true},
		{in: "a..b", wantErr: true},
		{in: "bad host", wantErr: true},
		{in: "-", wantErr: true},
		{in: "-a.example", wantErr: true},
		{in: "a-.example", wantErr: true},
		{in: "a-b.example", want: "a-b.example"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseVHostName(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseVHostName(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseTokenList(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "chat", want: []string{"chat"}},
		{in: " chat , v2.chat,,x-y ", want: []string{"chat", "v2.chat", "x-y"}},
		{in: ",", wantErr: true},
		{in: "a b", wantErr: true},
		{in: "a;b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTokenList(tt.in)
			if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseTokenList(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestPlainValue(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{in: "x", want: "x"},
		{in: "x ; comment", want: "x"},
		{in: "x # comment ; more", want: "x"},
		{in: "a#b;c", want: "a#b;c"},
		{in: `"quoted"`, want: "quoted"},
		{in: `'single'`, want: "single"},
		{in: `""`, want: ""},
		{in: `"a"b"`, want: `"a"b"`},
		{in: `"` + ` ; c`, want: `"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := plainValue(tt.in); got != tt.want {
				t.Errorf("plainValue(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestParseAccessLogKeywords: off, stderr and stdout in any case are the
// keywords. Before, "Off" or "STDERR" named a file, made in the folder
// the proxy runs in (/ under systemd), as root.
func TestParseAccessLogKeywords(t *testing.T) {
	for in, want := range map[string]string{"off": "", "Off": "", "OFF": "", "stderr": "stderr", "STDERR": "stderr",
		"Stdout": "stdout", "/var/log/Access.log": "/var/log/Access.log", "Off.log": "Off.log"} {
		if got, err := parseAccessLog(in); err != nil || got != want {
			t.Errorf("parseAccessLog(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
