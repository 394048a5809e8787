package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// system is one server setup under test. Each run starts a fresh instance
// from configs written into the run's own directory and stops it after.
type system struct {
	name    string // flag value, JSON key
	label   string // table heading
	proxy   string // what "proxy CPU" measures
	backend string // what "backend CPU" measures ("" = none)
	// missing returns why the system cannot run on this machine ("" = it can).
	missing func(e *env) string
	// skip returns why a scenario does not apply ("" = it does).
	skip  func(e *env, sc scenario) string
	start func(ctx context.Context, e *env, dir string, l launch) (*instance, error)
}

// launch is what one run asks of a system's start.
type launch struct {
	profile string // BlastBeat's -cpuprofile file ("" = none)
	tls     bool   // also serve HTTPS (and wss://) with e.pki's certificate
	h2      bool   // serve HTTP/2: h2c with prior knowledge, and h2 by ALPN when tls
	// inflight is how many requests the row keeps in flight at once
	// (connections × streams); nginx keeps that many idle upstream
	// connections, at least 64.
	inflight int
}

// instance is one started system.
type instance struct {
	httpURL     string // http://127.0.0.1:PORT
	wsURL       string // ws://127.0.0.1:PORT/ws
	httpsURL    string // https://127.0.0.1:PORT ("" unless launch.tls)
	wssURL      string // wss://127.0.0.1:PORT/ws ("" unless launch.tls)
	h2cURL      string // http://127.0.0.1:PORT serving h2c with prior knowledge ("" unless launch.h2)
	proxyPIDs   []int  // counted as the proxy (nginx: master and workers)
	backendPIDs []int  // counted as the backend
	procs       []*proc
	grace       time.Duration // SIGTERM → SIGKILL
}

// base is the URL the scenario's HTTP load goes to: https:// for the TLS
// rows.
func (in *instance) base(sc scenario) string {
	if sc.tls {
		return in.httpsURL
	}
	return in.httpURL
}

// h2 is the URL of the HTTP/2 rows: h2c with prior knowledge, or h2 by
// ALPN on the HTTPS listener.
func (in *instance) h2(sc scenario) string {
	if sc.tls {
		return in.httpsURL
	}
	return in.h2cURL
}

// ws is the scenario's WebSocket URL: wss:// for the TLS rows.
func (in *instance) ws(sc scenario) string {
	if sc.tls {
		return in.wssURL
	}
	return in.wsURL
}

// stop stops the processes in start order (proxy first, then backend)
// and kills any adopted worker left behind.
func (in *instance) stop(e *env) {
	for _, p := range in.procs {
		p.stop(in.grace)
	}
	e.reg.reap()
}

var allSystems = []system{
	{
		name:    "blastbeat",
		label:   "BlastBeat + Go node",
		proxy:   "blastbeat",
		backend: "node",
		missing: func(e *env) string {
			if _, err := os.Stat(e.blastbeat); err != nil {
				if e.opts.prebuilt != "" {
					return fmt.Sprintf("%s missing (run bench/prebuild.sh %s)", e.blastbeat, e.opts.prebuilt)
				}
				return fmt.Sprintf("%s missing (run `make build`)", e.rel(e.blastbeat))
			}
			return ""
		},
		skip:  func(*env, scenario) string { return "" },
		start: startBlastBeat,
	},
	{
		name:    "nginx-proxy",
		label:   "nginx proxy_pass → Go net/http",
		proxy:   "nginx",
		backend: "hello",
		missing: nginxMissing,
		skip:    nginxSkip,
		start: func(ctx context.Context, e *env, dir string, l launch) (*instance, error) {
			return startNginx(ctx, e, dir, true, l)
		},
	},
	{
		name:    "nginx-direct",
		label:   "nginx return 200 (ceiling)",
		proxy:   "nginx",
		missing: nginxMissing,
		skip: func(e *env, sc scenario) string {
			if sc.kind == kindWSEcho || sc.kind == kindWSIdle {
				return "nginx alone has no WebSocket echo"
			}
			return nginxSkip(e, sc)
		},
		start: func(ctx context.Context, e *env, dir string, l launch) (*instance, error) {
			return startNginx(ctx, e, dir, false, l)
		},
	},
	{
		name:    "mongrel2",
		label:   "Mongrel2 + Go handler",
		proxy:   "mongrel2",
		backend: "handler",
		missing: func(e *env) string {
			for _, b := range []string{"mongrel2", "m2sh"} {
				if _, err := exec.LookPath(b); err != nil {
					return b + " not installed (apt-get install -y mongrel2-core)"
				}
			}
			return ""
		},
		skip: func(_ *env, sc scenario) string {
			if sc.kind == kindH2 {
				return "Mongrel2 has no HTTP/2"
			}
			if sc.tls {
				return "the bench does not set up Mongrel2's TLS"
			}
			return ""
		},
		start: startMongrel2,
	},
}

func nginxMissing(e *env) string {
	if _, err := os.Stat(e.nginx); err != nil {
		return e.nginx + " not installed (apt-get install -y nginx-light)"
	}
	return ""
}

// nginxSkip: the HTTP/2 rows need nginx's http_v2 module.
func nginxSkip(e *env, sc scenario) string {
	if sc.kind == kindH2 && !e.nginxHTTP2 {
		return "this nginx is built without ngx_http_v2_module"
	}
	return ""
}

// waitReady polls GET url until it answers 200, a watched process exits,
// or timeout passes.
func waitReady(ctx context.Context, url string, timeout time.Duration, watch ...*proc) error {
	return pollGET(ctx, url, timeout, 50*time.Millisecond, watch, func(status int, _ []byte) string {
		if status == 200 {
			return ""
		}
		return fmt.Sprintf("%d %s", status, http.StatusText(status))
	}, "not ready")
}

// pollGET polls GET url every interval until done finds the answer good
// (returns ""), a watched process exits, or timeout passes; the error
// then says what, and done's last word on why not.
func pollGET(ctx context.Context, url string, timeout, interval time.Duration, watch []*proc, done func(status int, body []byte) (why string), what string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for {
		for _, p := range watch {
			if p.exited() {
				return fmt.Errorf("%s exited (%v): %s", p.name, p.err, strings.TrimSpace(p.logTail(600)))
			}
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if last = done(resp.StatusCode, body); last == "" {
				return nil
			}
		} else {
			last = err.Error()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %s after %s: %s", url, what, timeout, last)
		}
		time.Sleep(interval)
	}
}

// bbTLS is the HTTPS listener of a BlastBeat config.
type bbTLS struct {
	port      int // 0: none
	cert, key string
}

// maxNodes bounds -nodes.
const maxNodes = 64

// nodeNames names the bench's n nodes: "bench" alone, else bench1 … benchN.
func nodeNames(n int) []string {
	if n == 1 {
		return []string{"bench"}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench%d", i+1)
	}
	return names
}

// blastbeatINI is the bench's BlastBeat config, with the catch-all
// virtual host served by nodes; extra lines go to the [blastbeat] section. With t.port, the catch-all virtual host is also
// served on a bind-ssl listener; a virtual host with listeners of its own
// is served only on them, so it names the plain one too. With statsPort
// the stats listener (/metrics) is on it.
func blastbeatINI(port, zmqPort, statsPort int, extra []string, t bbTLS, nodes []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[blastbeat]\nbind = 127.0.0.1:%d\nzmq = tcp://127.0.0.1:%d\nping-freq = 3\n", port, zmqPort)
	if statsPort != 0 {
		fmt.Fprintf(&b, "stats = 127.0.0.1:%d\n", statsPort)
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n[blastbeat:*]\n")
	for _, n := range nodes {
		b.WriteString("node = " + n + "\n")
	}
	if t.port != 0 {
		fmt.Fprintf(&b, "bind = 127.0.0.1:%d\nbind-ssl = 127.0.0.1:%d\ncertificate = %s\nkey = %s\n", port, t.port, t.cert, t.key)
	}
	return b.String()
}

func startBlastBeat(ctx context.Context, e *env, dir string, l launch) (*instance, error) {
	port, err := e.freePort()
	if err != nil {
		return nil, err
	}
	zport, err := e.freePort()
	if err != nil {
		return nil, err
	}
	var t bbTLS
	if l.tls {
		if t.port, err = e.freePort(); err != nil {
			return nil, err
		}
		t.cert, t.key = e.pki.cert, e.pki.key
	}
	// With several nodes, the stats listener tells when all are up.
	sport := 0
	if e.opts.nodes > 1 {
		if sport, err = e.freePort(); err != nil {
			return nil, err
		}
	}
	ini := filepath.Join(dir, "blastbeat.ini")
	if err := os.WriteFile(ini, []byte(blastbeatINI(port, zport, sport, e.opts.bbSet, t, nodeNames(e.opts.nodes))), 0o644); err != nil {
		return nil, err
	}
	argv := []string{e.blastbeat}
	if l.profile != "" {
		argv = append(argv, "-cpuprofile", l.profile)
	}
	argv = append(argv, ini)
	bb, err := e.reg.start(procSpec{name: "blastbeat", argv: argv, dir: dir, logDir: dir})
	if err != nil {
		return nil, err
	}
	in := &instance{
		httpURL: fmt.Sprintf("http://127.0.0.1:%d", port),
		wsURL:   fmt.Sprintf("ws://127.0.0.1:%d/ws", port),
		h2cURL:  fmt.Sprintf("http://127.0.0.1:%d", port), // HTTP/2 is on by default (key http2): h2c by prior knowledge on the same port
		procs:   []*proc{bb},
		grace:   10 * time.Second, // it writes the CPU profile on the way out
	}
	if t.port != 0 {
		in.httpsURL = fmt.Sprintf("https://127.0.0.1:%d", t.port)
		in.wssURL = fmt.Sprintf("wss://127.0.0.1:%d/ws", t.port)
	}
	in.proxyPIDs = []int{bb.pid()}
	for _, name := range nodeNames(e.opts.nodes) {
		node, err := e.reg.start(procSpec{name: "node", argv: []string{e.bins.node, "-zmq", fmt.Sprintf("tcp://127.0.0.1:%d", zport), "-name", name}, logDir: dir})
		if err != nil {
			in.stop(e)
			return nil, err
		}
		in.procs = append(in.procs, node)
		in.backendPIDs = append(in.backendPIDs, node.pid())
	}
	if err := waitReady(ctx, in.httpURL+"/", 15*time.Second, in.procs...); err != nil {
		in.stop(e)
		return nil, err
	}
	if sport != 0 {
		// One answer says one node is up; the run waits for them all
		// (with zmq-bridges, zmq-rebalance may have a node reconnect a
		// few times first), or it would measure fewer nodes than asked.
		metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", sport)
		if err := waitNodesUp(ctx, metrics, nodeNames(e.opts.nodes), 15*time.Second, in.procs...); err != nil {
			in.stop(e)
			return nil, err
		}
	}
	return in, nil
}

// waitNodesUp polls BlastBeat's /metrics at url until blastbeat_node_up
// is 1 for every one of names, a watched process exits, or timeout
// passes.
func waitNodesUp(ctx context.Context, url string, names []string, timeout time.Duration, watch ...*proc) error {
	return pollGET(ctx, url, timeout, 20*time.Millisecond, watch, func(_ int, body []byte) string {
		if down := nodesDown(string(body), names); len(down) > 0 {
			return "nodes " + strings.Join(down, ", ") + " not up"
		}
		return ""
	}, "shows not every node up")
}

// nodesDown returns those of names whose blastbeat_node_up is not 1 in
// the /metrics text m.
func nodesDown(m string, names []string) []string {
	var down []string
	for _, n := range names {
		if !strings.Contains(m, "\nblastbeat_node_up{node=\""+n+"\"} 1\n") {
			down = append(down, n)
		}
	}
	return down
}

// nginxConfig is what nginxConf needs.
type nginxConfig struct {
	dir          string // prefix: pid, logs, temp paths
	port         int
	upstreamPort int  // 0: answer directly (return 200)
	keepalive    int  // idle upstream connections each worker keeps (0: 64)
	sslPort      int  // 0: no HTTPS listener
	h2cPort      int  // 0: no h2c listener (HTTP/2 with prior knowledge, `listen … http2`)
	http2        bool // the HTTPS listener also offers h2 by ALPN (`listen … ssl http2`)
	cert, key    string
	workers      int
	nofile       int    // worker_rlimit_nofile
	user         string // "" when not running as root
	tempModules  []string
}

// nginxConf renders the bench's nginx.conf: proxy_pass to the hello server
// with upstream keep-alive, or `return 200` directly. Access logs are off
// and the per-connection request cap is lifted on both sides, so nginx is
// not penalised by defaults a benchmark would trip over. With sslPort the
// same server also listens with `ssl`: TLS 1.2 and 1.3 (nginx before
// 1.23.4, Debian 12's 1.22 among them, offers no TLS 1.3 by default, and
// BlastBeat negotiates 1.3), otherwise nginx's TLS defaults (session
// tickets on, no shared session cache). For the HTTP/2 rows, h2cPort is a
// listener of its own (nginx before 1.25.1 serves only HTTP/2 on a plain
// `http2` listener, and the readiness check speaks HTTP/1.1 to port), and
// http2 adds h2 to the HTTPS listener's ALPN. keepalive_requests also
// bounds the requests of an HTTP/2 connection (nginx 1.19.7 and later):
// at its default, 1000, nginx would end every h2load connection with a
// GOAWAY, and h2load does not reconnect. The upstream keeps as many idle
// connections as the row has requests in flight (keepalive, at least 64):
// with fewer, the HTTP/2 rows' 1,000 concurrent streams would make nginx
// open and close a backend connection for most requests.
func nginxConf(c nginxConfig) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	if c.user != "" {
		w("user %s;", c.user)
	}
	w("worker_processes %d;", c.workers)
	w("worker_rlimit_nofile %d;", c.nofile)
	w("pid %s/nginx.pid;", c.dir)
	w("error_log %s/error.log warn;", c.dir)
	w("events {\n    worker_connections %d;\n}", c.nofile-100)
	w("http {")
	w("    access_log off;")
	w("    default_type text/plain;")
	w("    keepalive_requests 1000000;")
	w("    keepalive_timeout 75s;")
	w("    client_body_buffer_size 128k;")
	w("    client_body_temp_path %s/client_body;", c.dir)
	w("    proxy_temp_path %s/proxy_temp;", c.dir)
	for _, m := range c.tempModules {
		w("    %s_temp_path %s/%s_temp;", m, c.dir, m)
	}
	if c.upstreamPort != 0 {
		w("    upstream hello {\n        server 127.0.0.1:%d;\n        keepalive %d;\n        keepalive_requests 1000000;\n    }", c.upstreamPort, max(64, c.keepalive))
	}
	w("    server {")
	w("        listen 127.0.0.1:%d reuseport backlog=4096;", c.port)
	if c.h2cPort != 0 {
		w("        listen 127.0.0.1:%d http2 reuseport backlog=4096;", c.h2cPort)
	}
	if c.sslPort != 0 {
		h2 := ""
		if c.http2 {
			h2 = " http2"
		}
		w("        listen 127.0.0.1:%d ssl%s reuseport backlog=4096;", c.sslPort, h2)
		w("        ssl_certificate %s;", c.cert)
		w("        ssl_certificate_key %s;", c.key)
		w("        ssl_protocols TLSv1.2 TLSv1.3;")
	}
	if c.upstreamPort != 0 {
		w("        location / {")
		w("            proxy_pass http://hello;")
		w("            proxy_http_version 1.1;")
		w("            proxy_set_header Connection \"\";")
		w("        }")
		w("        location = /ws {")
		w("            proxy_pass http://hello;")
		w("            proxy_http_version 1.1;")
		w("            proxy_set_header Upgrade $http_upgrade;")
		w("            proxy_set_header Connection \"upgrade\";")
		w("            proxy_read_timeout 1h;")
		w("            proxy_send_timeout 1h;")
		w("        }")
	} else {
		w("        location = / {\n            return 200 \"Hello, World!\";\n        }")
		w("        location = /post {\n            return 200 \"Hello, World!\";\n        }")
		w("        location = /stream {\n            root %s/www;\n        }", c.dir)
	}
	w("    }")
	w("}")
	return b.String()
}

func startNginx(ctx context.Context, e *env, dir string, proxy bool, l launch) (*instance, error) {
	port, err := e.freePort()
	if err != nil {
		return nil, err
	}
	in := &instance{grace: 5 * time.Second}
	var hello *proc
	c := nginxConfig{dir: dir, port: port, workers: e.cores, nofile: e.nofile, user: e.nginxUser, tempModules: e.nginxTempModules, http2: l.h2, keepalive: l.inflight}
	if l.h2 {
		if c.h2cPort, err = e.freePort(); err != nil {
			return nil, err
		}
		in.h2cURL = fmt.Sprintf("http://127.0.0.1:%d", c.h2cPort)
	}
	if l.tls {
		if c.sslPort, err = e.freePort(); err != nil {
			return nil, err
		}
		c.cert, c.key = e.pki.cert, e.pki.key
		in.httpsURL = fmt.Sprintf("https://127.0.0.1:%d", c.sslPort)
		in.wssURL = fmt.Sprintf("wss://127.0.0.1:%d/ws", c.sslPort)
	}
	if proxy {
		hport, err := e.freePort()
		if err != nil {
			return nil, err
		}
		hello, err = e.reg.start(procSpec{name: "hello", argv: []string{e.bins.hello, "-addr", fmt.Sprintf("127.0.0.1:%d", hport)}, logDir: dir})
		if err != nil {
			return nil, err
		}
		if err := waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/", hport), 10*time.Second, hello); err != nil {
			hello.stop(time.Second)
			return nil, err
		}
		c.upstreamPort = hport
		in.backendPIDs = []int{hello.pid()}
	} else {
		www := filepath.Join(dir, "www")
		if err := os.MkdirAll(www, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(www, "stream"), streamBody, 0o644); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(c)), 0o644); err != nil {
		return nil, err
	}
	ng, err := e.reg.start(procSpec{name: "nginx", argv: []string{e.nginx, "-c", conf, "-p", dir, "-g", "daemon off;"}, logDir: dir})
	if err != nil {
		if hello != nil {
			hello.stop(time.Second)
		}
		return nil, err
	}
	in.procs = []*proc{ng}
	if hello != nil {
		in.procs = append(in.procs, hello)
	}
	in.httpURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	in.wsURL = fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	if err := waitReady(ctx, in.httpURL+"/", 10*time.Second, ng); err != nil {
		in.stop(e)
		return nil, err
	}
	// The workers do the work; record them so CPU and RSS count them and
	// so none outlives its master.
	workers := childrenOf(ng.pid())
	for _, pid := range workers {
		e.reg.adopt(pid, "nginx")
	}
	if len(workers) != e.cores {
		in.stop(e)
		return nil, fmt.Errorf("nginx started %d workers, want %d", len(workers), e.cores)
	}
	in.proxyPIDs = append([]int{ng.pid()}, workers...)
	return in, nil
}

// nginxUser picks the user nginx workers run as when the harness is root:
// www-data (Debian's) or nobody.
func nginxUser() string {
	if os.Geteuid() != 0 {
		return ""
	}
	for _, ug := range [][2]string{{"www-data", "www-data"}, {"nobody", "nogroup"}} {
		if _, err := user.Lookup(ug[0]); err != nil {
			continue
		}
		if _, err := user.LookupGroup(ug[1]); err != nil {
			continue
		}
		return ug[0] + " " + ug[1]
	}
	return "root"
}

// nginxHasHTTP2 reports whether this nginx has ngx_http_v2_module
// (Debian's nginx-light and nginx-full both do).
func nginxHasHTTP2(nginx string) bool {
	out, _ := exec.Command(nginx, "-V").CombinedOutput()
	return strings.Contains(string(out), "--with-http_v2_module")
}

// nginxTempModules lists the modules built into this nginx that need a
// temp path (so none defaults to /var/lib/nginx).
func nginxTempModules(nginx string) []string {
	out, _ := exec.Command(nginx, "-V").CombinedOutput()
	var mods []string
	for _, m := range []string{"fastcgi", "uwsgi", "scgi"} {
		if !strings.Contains(string(out), "--without-http_"+m+"_module") {
			mods = append(mods, m)
		}
	}
	return mods
}

// mongrel2Conf renders the m2sh config: one handler for every path, the
// tnetstring protocol, no daemonizing, and a content_length limit that
// lets the 64 KiB POST through in one request message.
func mongrel2Conf(port, sendPort, recvPort int) string {
	return fmt.Sprintf(`bench = Handler(send_spec='tcp://127.0.0.1:%d',
                send_ident='a5d7d1a4-7d2b-4d8a-9f7f-3f5c8b1e0c11',
                recv_spec='tcp://127.0.0.1:%d', recv_ident='',
                protocol='tnetstring')

main = Server(
    uuid="f400bf85-4538-4f7a-8908-67e313d515c2",
    access_log="/logs/access.log",
    error_log="/logs/error.log",
    chroot="./",
    default_host="localhost",
    name="main",
    pid_file="/run/mongrel2.pid",
    port=%d,
    bind_addr="127.0.0.1",
    hosts = [
        Host(name="localhost", matching="(.*)", routes={'/': bench})
    ]
)

settings = {"zeromq.threads": 1, "server.daemonize": 0, "limits.content_length": 1048576}

servers = [main]
`, sendPort, recvPort, port)
}

const mongrel2UUID = "f400bf85-4538-4f7a-8908-67e313d515c2"

func startMongrel2(ctx context.Context, e *env, dir string, _ launch) (*instance, error) {
	var ports [3]int
	for i := range ports {
		p, err := e.freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	port, sendPort, recvPort := ports[0], ports[1], ports[2]
	for _, d := range []string{"run", "logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "mongrel2.conf"), []byte(mongrel2Conf(port, sendPort, recvPort)), 0o644); err != nil {
		return nil, err
	}
	load := exec.CommandContext(ctx, "m2sh", "load", "-config", "mongrel2.conf", "-db", "config.sqlite")
	load.Dir = dir
	if out, err := load.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("m2sh load: %v: %s", err, tail(string(out), 400))
	}
	handler, err := e.reg.start(procSpec{name: "handler", argv: []string{e.bins.m2handler,
		"-pull", fmt.Sprintf("tcp://127.0.0.1:%d", sendPort),
		"-pub", fmt.Sprintf("tcp://127.0.0.1:%d", recvPort)}, logDir: dir})
	if err != nil {
		return nil, err
	}
	m2, err := e.reg.start(procSpec{name: "mongrel2", argv: []string{"mongrel2", "config.sqlite", mongrel2UUID},
		dir: dir, logDir: dir, env: []string{"LOGNAME=root"}})
	if err != nil {
		handler.stop(time.Second)
		return nil, err
	}
	in := &instance{
		httpURL:     fmt.Sprintf("http://127.0.0.1:%d", port),
		wsURL:       fmt.Sprintf("ws://127.0.0.1:%d/ws", port),
		proxyPIDs:   []int{m2.pid()},
		backendPIDs: []int{handler.pid()},
		procs:       []*proc{m2, handler},
		grace:       3 * time.Second,
	}
	if err := waitReady(ctx, in.httpURL+"/", 10*time.Second, m2, handler); err != nil {
		in.stop(e)
		return nil, err
	}
	return in, nil
}

// nofileLimit returns the hard RLIMIT_NOFILE children can rise to.
func nofileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Max > 1<<20 {
		return 1 << 20
	}
	return int(rl.Max)
}
