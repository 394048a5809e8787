package main

import (
	"strings"
	"testing"

	"github.com/blastbeat/blastbeat/config"
)

func TestBlastBeatINI(t *testing.T) {
	tests := []struct {
		name    string
		tls     bbTLS
		want    []string
		wantNot []string
	}{
		{
			name:    "plain",
			want:    []string{"[blastbeat]\nbind = 127.0.0.1:20001\nzmq = tcp://127.0.0.1:20002\n", "max-connections = 20000\n", "[blastbeat:*]\nnode = bench\n"},
			wantNot: []string{"bind-ssl", "certificate"},
		},
		{
			name: "tls",
			tls:  bbTLS{port: 20003, cert: "/tmp/x/bench.pem", key: "/tmp/x/bench.key"},
			// The catch-all has a listener of its own, so it names the
			// plain one too.
			want: []string{"[blastbeat:*]\nnode = bench\nbind = 127.0.0.1:20001\nbind-ssl = 127.0.0.1:20003\ncertificate = /tmp/x/bench.pem\nkey = /tmp/x/bench.key\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ini := blastbeatINI(20001, 20002, []string{"max-connections = 20000"}, tt.tls)
			for _, w := range tt.want {
				if !strings.Contains(ini, w) {
					t.Errorf("config lacks %q:\n%s", w, ini)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(ini, w) {
					t.Errorf("config has %q:\n%s", w, ini)
				}
			}
			// BlastBeat's own loader accepts it (certificate files are
			// read at start, not here).
			o, err := config.Parse("blastbeat.ini", []byte(ini))
			if err != nil {
				t.Fatalf("config.Parse: %v\n%s", err, ini)
			}
			if tt.tls.port != 0 && (len(o.VHosts) != 1 || len(o.VHosts[0].BindSSL) != 1 || o.VHosts[0].Certificate != tt.tls.cert) {
				t.Errorf("parsed vhosts: %+v", o.VHosts)
			}
		})
	}
}

func TestNginxConfTLS(t *testing.T) {
	base := nginxConfig{dir: "/tmp/run", port: 20001, upstreamPort: 20002, workers: 2, nofile: 20000}
	plain := nginxConf(base)
	if strings.Contains(plain, " ssl") {
		t.Errorf("plain config has ssl:\n%s", plain)
	}
	c := base
	c.sslPort, c.cert, c.key = 20003, "/tmp/pki/bench.pem", "/tmp/pki/bench.key"
	conf := nginxConf(c)
	for _, w := range []string{
		"        listen 127.0.0.1:20001 backlog=4096;\n        listen 127.0.0.1:20003 ssl backlog=4096;\n",
		"        ssl_certificate /tmp/pki/bench.pem;\n        ssl_certificate_key /tmp/pki/bench.key;\n        ssl_protocols TLSv1.2 TLSv1.3;\n",
		"        location = /ws {\n            proxy_pass http://hello;",
	} {
		if !strings.Contains(conf, w) {
			t.Errorf("config lacks %q:\n%s", w, conf)
		}
	}
}
