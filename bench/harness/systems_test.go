package main

import (
	"os/exec"
	"slices"
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
			ini := blastbeatINI(20001, 20002, 0, []string{"max-connections = 20000"}, tt.tls, nodeNames(1))
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
		"        listen 127.0.0.1:20001 reuseport backlog=4096;\n        listen 127.0.0.1:20003 ssl reuseport backlog=4096;\n",
		"        ssl_certificate /tmp/pki/bench.pem;\n        ssl_certificate_key /tmp/pki/bench.key;\n        ssl_protocols TLSv1.2 TLSv1.3;\n",
		"        location = /ws {\n            proxy_pass http://hello;",
	} {
		if !strings.Contains(conf, w) {
			t.Errorf("config lacks %q:\n%s", w, conf)
		}
	}
}

func TestNginxConfHTTP2(t *testing.T) {
	c := nginxConfig{dir: "/tmp/run", port: 20001, upstreamPort: 20002, workers: 2, nofile: 20000,
		h2cPort: 20004, http2: true, sslPort: 20003, cert: "/tmp/pki/bench.pem", key: "/tmp/pki/bench.key", keepalive: 1000}
	conf := nginxConf(c)
	if !strings.Contains(conf, "        keepalive 1000;\n") {
		t.Errorf("upstream keepalive is not 1000:\n%s", conf)
	}
	// The plain port stays HTTP/1.1 (the readiness check); h2c gets one
	// of its own; the HTTPS one offers h2 by ALPN.
	want := "        listen 127.0.0.1:20001 reuseport backlog=4096;\n" +
		"        listen 127.0.0.1:20004 http2 reuseport backlog=4096;\n" +
		"        listen 127.0.0.1:20003 ssl http2 reuseport backlog=4096;\n"
	if !strings.Contains(conf, want) {
		t.Errorf("config lacks %q:\n%s", want, conf)
	}
	// HTTP/2 connections are bounded by keepalive_requests too.
	if !strings.Contains(conf, "    keepalive_requests 1000000;\n") {
		t.Errorf("config lacks keepalive_requests:\n%s", conf)
	}
	c.http2, c.h2cPort, c.keepalive = false, 0, 0
	if conf := nginxConf(c); strings.Contains(conf, "http2") || !strings.Contains(conf, "        keepalive 64;\n") {
		t.Errorf("HTTP/1 config has http2 or no keepalive 64:\n%s", conf)
	}
}

func TestSkipHTTP2(t *testing.T) {
	e := &env{}
	for _, id := range []string{"h2c", "h2-tls"} {
		sc := scenarioByID(id)
		if why := systemByName("mongrel2").skip(e, sc); why != "Mongrel2 has no HTTP/2" {
			t.Errorf("mongrel2 %s: %q", id, why)
		}
		for _, sys := range []string{"nginx-proxy", "nginx-direct"} {
			if why := systemByName(sys).skip(e, sc); !strings.Contains(why, "ngx_http_v2_module") {
				t.Errorf("%s %s without the v2 module: %q", sys, id, why)
			}
		}
		if why := systemByName("blastbeat").skip(e, sc); why != "" {
			t.Errorf("blastbeat %s: %q", id, why)
		}
	}
	e.nginxHTTP2 = true
	if why := systemByName("nginx-proxy").skip(e, scenarioByID("h2c")); why != "" {
		t.Errorf("nginx-proxy h2c with the v2 module: %q", why)
	}
	if why := (&env{}).noTool(scenarioByID("h2c")); !strings.Contains(why, "h2load not installed") {
		t.Errorf("no h2load: %q", why)
	}
	if why := (&env{h2load: "/usr/bin/h2load"}).noTool(scenarioByID("h2c")); why != "" {
		t.Errorf("h2load installed: %q", why)
	}
}

// TestBlastBeatININodes: with several bench nodes the catch-all lists
// them all, and BlastBeat's loader takes them as that vhost's nodes.
func TestBlastBeatININodes(t *testing.T) {
	ini := blastbeatINI(20001, 20002, 20004, []string{"zmq-io-threads = 3"}, bbTLS{}, nodeNames(3))
	o, err := config.Parse("blastbeat.ini", []byte(ini))
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, ini)
	}
	want := []string{"bench1", "bench2", "bench3"}
	if len(o.VHosts) != 1 || !slices.Equal(o.VHosts[0].Nodes, want) || o.ZMQIOThreads != 3 || o.Stats != "127.0.0.1:20004" {
		t.Errorf("vhosts %+v, zmq-io-threads %d, stats %q; want one with nodes %q, 3, 127.0.0.1:20004", o.VHosts, o.ZMQIOThreads, o.Stats, want)
	}
	// The run waits for every node up in /metrics.
	m := "# HELP …\nblastbeat_node_up{node=\"bench1\"} 1\nblastbeat_node_up{node=\"bench2\"} 0\nblastbeat_node_up{node=\"bench3\"} 1\n"
	if down := nodesDown(m, want); !slices.Equal(down, []string{"bench2"}) {
		t.Errorf("nodesDown = %q, want [bench2]", down)
	}
	if got := nodeNames(1); !slices.Equal(got, []string{"bench"}) {
		t.Errorf("nodeNames(1) = %q, want [bench]", got)
	}
}

func TestFindNginx(t *testing.T) {
	onPath := func(string) (string, error) { return "/opt/carried/bin/nginx", nil }
	if got := findNginx(onPath); got != "/opt/carried/bin/nginx" {
		t.Errorf("nginx on PATH: got %q", got)
	}
	missing := func(string) (string, error) { return "", exec.ErrNotFound }
	if got := findNginx(missing); got != "/usr/sbin/nginx" {
		t.Errorf("nginx not on PATH: got %q, want /usr/sbin/nginx", got)
	}
}
