package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/config"
)

// Example configurations of the original project, verbatim.
const (
	readmeBasic = `[blastbeat]
bind = 0.0.0.0:8080
zmq = tcp://0.0.0.0:5000

[blastbeat:localhost:8000]
node = foobar1
`
	readmeVHostBind = `[blastbeat]
bind = 0.0.0.0:8080
zmq = tcp://0.0.0.0:5000

[blastbeat:localhost:8000]
node = foobar1

[blastbeat:secure.local]
node = foobar2
bind = 0.0.0.0:8181
`
	readmeSSL = `[blastbeat]
bind = 0.0.0.0:8080
zmq = tcp://0.0.0.0:5000

[blastbeat:localhost:8000]
node = foobar1

[blastbeat:secure.local]
node = foobar2
bind-ssl = 0.0.0.0:443
certificate = foo.pem
key = foo.key
`
	// examples/sharedcanvas/sharedcanvas.ini
	sharedCanvas = `[blastbeat]
zmq = tcp://0.0.0.0:5000
bind = 0.0.0.0:9090

[blastbeat:localhost:9090]
node = sharedcanvas
`
	// blastbeat.ini as shipped before the sessions/alias/cache keys.
	shippedIni = `[blastbeat]
bind = 0.0.0.0:8080
;bind = 192.168.173.5:8081
bind = 0.0.0.0:8082
bind = 0.0.0.0:8083
bind = fe80::a00:27ff:fe13:11ac%eth0:8085

zmq = tcp://192.168.173.5:5000

ping-freq = 3
uid = www-data
gid = 1000
max-hops = 17

daemon = 1

[blastbeat:quantal64.local:8443]
bind-ssl = 192.168.173.5:8443
certificate = quantal.crt
key = quantal.key
node = FOOBAR1

[blastbeat:quantal64.local:8080]
node = FOOBAR1

[blastbeat:192.168.173.5:8081]
certificate = quantal.crt
key = quantal.key
node = FOOBAR1
bind-ssl = 192.168.173.5:8081
;bind = 0.0.0.0:8084

[blastbeat:localhost]
node = FOOBAR1
`
)

// want returns the defaults for file "test.ini" changed by mod.
func want(mod func(o *config.Options)) config.Options {
	o := config.Defaults()
	o.File = "test.ini"
	mod(&o)
	return o
}

// vhost returns a VHost with the default format.
func vhost(name string, line int, nodes ...string) config.VHost {
	return config.VHost{Name: name, Nodes: nodes, Format: "uwsgi", HTTPSRedirect: true, Line: line}
}

func TestParseExamples(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want config.Options
	}{
		{
			name: "readme basic",
			src:  readmeBasic,
			want: want(func(o *config.Options) {
				o.Binds = []config.Bind{{Addr: "0.0.0.0:8080", Line: 2}}
				o.ZMQ = []string{"tcp://0.0.0.0:5000"}
				o.VHosts = []config.VHost{vhost("localhost:8000", 5, "foobar1")}
			}),
		},
		{
			name: "readme vhost bind",
			src:  readmeVHostBind,
			want: want(func(o *config.Options) {
				o.Binds = []config.Bind{{Addr: "0.0.0.0:8080", Line: 2}}
				o.ZMQ = []string{"tcp://0.0.0.0:5000"}
				secure := vhost("secure.local", 8, "foobar2")
				secure.Binds = []config.Bind{{Addr: "0.0.0.0:8181", Line: 10}}
				o.VHosts = []config.VHost{vhost("localhost:8000", 5, "foobar1"), secure}
			}),
		},
		{
			name: "readme ssl",
			src:  readmeSSL,
			want: want(func(o *config.Options) {
				o.Binds = []config.Bind{{Addr: "0.0.0.0:8080", Line: 2}}
				o.ZMQ = []string{"tcp://0.0.0.0:5000"}
				secure := vhost("secure.local", 8, "foobar2")
				secure.BindSSL = []config.Bind{{Addr: "0.0.0.0:443", Line: 10}}
				secure.Certificate, secure.Key = "foo.pem", "foo.key"
				o.VHosts = []config.VHost{vhost("localhost:8000", 5, "foobar1"), secure}
			}),
		},
		{
			name: "sharedcanvas",
			src:  sharedCanvas,
			want: want(func(o *config.Options) {
				o.Binds = []config.Bind{{Addr: "0.0.0.0:9090", Line: 3}}
				o.ZMQ = []string{"tcp://0.0.0.0:5000"}
				o.VHosts = []config.VHost{vhost("localhost:9090", 5, "sharedcanvas")}
			}),
		},
		{
			name: "shipped blastbeat.ini",
			src:  shippedIni,
			want: want(func(o *config.Options) {
				o.Binds = []config.Bind{
					{Addr: "0.0.0.0:8080", Line: 2},
					{Addr: "0.0.0.0:8082", Line: 4},
					{Addr: "0.0.0.0:8083", Line: 5},
					{Addr: "[fe80::a00:27ff:fe13:11ac%eth0]:8085", Line: 6},
				}
				o.ZMQ = []string{"tcp://192.168.173.5:5000"}
				o.PingFreq = 3 * time.Second
				o.UID, o.GID = "www-data", "1000"
				o.MaxHops = 17
				o.Daemon = true
				q8443 := vhost("quantal64.local:8443", 17, "FOOBAR1")
				q8443.BindSSL = []config.Bind{{Addr: "192.168.173.5:8443", Line: 18}}
				q8443.Certificate, q8443.Key = "quantal.crt", "quantal.key"
				ip := vhost("192.168.173.5:8081", 26, "FOOBAR1")
				ip.Certificate, ip.Key = "quantal.crt", "quantal.key"
				ip.BindSSL = []config.Bind{{Addr: "192.168.173.5:8081", Line: 30}}
				o.VHosts = []config.VHost{
					q8443,
					vhost("quantal64.local:8080", 23, "FOOBAR1"),
					ip,
					vhost("localhost", 33, "FOOBAR1"),
				}
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse("test.ini", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Parse:\n got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	wantDefaults := config.Options{
		PingFreq:                3 * time.Second,
		MaxHops:                 10,
		Timeout:                 60 * time.Second,
		MaxConnections:          100000,
		MaxHeaderSize:           16384,
		MaxURI:                  8192,
		MaxBody:                 1 << 30,
		MaxWebSocketMessage:     1 << 20,
		WebSocketMessageTimeout: 60 * time.Second,
		MaxPendingOutput:        4 << 20,
		MaxPendingOutputTotal:   256 << 20,
		CreditWindow:            256 << 10,
		MaxReadAhead:            1 << 20,
		TLSHandshakeTimeout:     10 * time.Second,
		TLSHandshakeIdleTimeout: 2 * time.Second,
		MaxTLSHandshakes:        1024,
		MaxClientHello:          16 << 10,
		HTTP2:                   true,
		AccessLogFormat:         "combined",
		AccessLogBuffer:         16 << 20,
		NodeReadAhead:           1 << 20,
		MaxNodes:                4096,
		StatsMaxConnections:     64,
		StatsIdleTimeout:        30 * time.Second,
		HTTP2MaxStreams:         100,
		HTTP2MaxResets:          200,
		HTTP2MaxControlFrames:   2000,
		HTTP2HeaderTableSize:    4096,
		HTTP2MaxHeaderBlock:     64 << 10,
		HTTP2StreamWindow:       512 << 10,
		HTTP2ConnectionWindow:   4 << 20,
		RetryBuffer:             1 << 20,
		HeaderTimeout:           10 * time.Second,
		IdleTimeout:             120 * time.Second,
		TCPKeepAlive:            2 * time.Minute,
		ShutdownGrace:           10 * time.Second,
		Workers:                 0,
		RingSize:                65536,
		LogFormat:               "text",
		LogLevel:                "info",
		LogBuffer:               1 << 20,
		StallTimeout:            60 * time.Second,
		LingeringTimeout:        2 * time.Second,
		LingeringTime:           30 * time.Second,
		SendTimeout:             5 * time.Second,
		ResponseIdleTimeout:     5 * time.Minute,
		ZMQHWM:                  256,
		ZMQRcvHWM:               128,
		ZMQMaxMessage:           64 << 20,
		ZMQQueueBytes:           2 << 20,
		ZMQIOThreads:            1,
		ZMQBridges:              1,
		ZMQRebalance:            32,
	}
	if got := config.Defaults(); !reflect.DeepEqual(got, wantDefaults) {
		t.Errorf("Defaults:\n got %+v\nwant %+v", got, wantDefaults)
	}
}

func TestParseEveryKey(t *testing.T) {
	const src = `# every key, none at its default
[blastbeat]
bind = 127.0.0.1:8080
bind = [::1]:8080
zmq = tcp://*:5000
zmq = ipc:///run/bb.sock
zmq = inproc://bb
ping-freq = 0.5
max-hops = 0
timeout = 90s
uid = 33
gid = www-data
daemon = yes
certificate = /etc/bb/cert.pem
key = /etc/bb/key.pem
max-connections = 5000
max-header-size = 32k
max-uri = 4096
max-body = 2g
max-websocket-message = 64K
max-pending-output = 8m
max-pending-output-total = 64m
credit-window = 128k
max-read-ahead = 64k
http2-stream-window = 65535
max-client-hello = 8k
http2-connection-window = 2m
retry-buffer = 0
header-timeout = 2.5
idle-timeout = 0
tcp-keepalive = 0
shutdown-grace = 1m
shutdown-delay = 5s
workers = 4
ring-size = 1024
log-format = JSON
log-level = debug
stats-max-connections = 8
stats-idle-timeout = 5s
access-log-buffer = 256k
node-read-ahead = 4m
response-idle-timeout = 0

[blastbeat:Example.COM:8443]
node = n1
node = n2
node = n1
bind = 0.0.0.0:8081
bind-ssl = 0.0.0.0:8443
bind-ssl = [::]:8443
certificate = ex.pem
key = ex.key
format = headers
websocket-protocols = chat, superchat,,v2.bb
timeout = 250ms
response-idle-timeout = 30m
max-body = 10M

[blastbeat:*]
node = fallback
`
	wantOpts := config.Options{
		File:                    "test.ini",
		Binds:                   []config.Bind{{Addr: "127.0.0.1:8080", Line: 3}, {Addr: "[::1]:8080", Line: 4}},
		ZMQ:                     []string{"tcp://*:5000", "ipc:///run/bb.sock", "inproc://bb"},
		PingFreq:                500 * time.Millisecond,
		MaxHops:                 0,
		Timeout:                 90 * time.Second,
		UID:                     "33",
		GID:                     "www-data",
		Daemon:                  true,
		Certificate:             "/etc/bb/cert.pem",
		Key:                     "/etc/bb/key.pem",
		MaxConnections:          5000,
		MaxHeaderSize:           32 << 10,
		MaxURI:                  4096,
		MaxBody:                 2 << 30,
		MaxWebSocketMessage:     64 << 10,
		WebSocketMessageTimeout: 60 * time.Second,
		MaxPendingOutput:        8 << 20,
		MaxPendingOutputTotal:   64 << 20,
		CreditWindow:            128 << 10,
		MaxReadAhead:            64 << 10,
		TLSHandshakeTimeout:     10 * time.Second,
		TLSHandshakeIdleTimeout: 2 * time.Second,
		MaxTLSHandshakes:        1024,
		MaxClientHello:          8 << 10,
		HTTP2:                   true,
		AccessLogFormat:         "combined",
		AccessLogBuffer:         256 << 10,
		NodeReadAhead:           4 << 20,
		MaxNodes:                4096,
		StatsMaxConnections:     8,
		StatsIdleTimeout:        5 * time.Second,
		HTTP2MaxStreams:         100,
		HTTP2MaxResets:          200,
		HTTP2MaxControlFrames:   2000,
		HTTP2HeaderTableSize:    4096,
		HTTP2MaxHeaderBlock:     64 << 10,
		HTTP2StreamWindow:       65535,
		HTTP2ConnectionWindow:   2 << 20,
		RetryBuffer:             0,
		HeaderTimeout:           2500 * time.Millisecond,
		IdleTimeout:             0,
		TCPKeepAlive:            0,
		ShutdownGrace:           time.Minute,
		ShutdownDelay:           5 * time.Second,
		Workers:                 4,
		RingSize:                1024,
		LogFormat:               "json",
		LogLevel:                "debug",
		LogBuffer:               1 << 20,
		StallTimeout:            60 * time.Second,
		LingeringTimeout:        2 * time.Second,
		LingeringTime:           30 * time.Second,
		SendTimeout:             5 * time.Second,
		ResponseIdleTimeout:     0,
		ZMQHWM:                  256,
		ZMQRcvHWM:               128,
		ZMQMaxMessage:           64 << 20,
		ZMQQueueBytes:           2 << 20,
		ZMQIOThreads:            1,
		ZMQBridges:              1,
		ZMQRebalance:            32,
		VHosts: []config.VHost{
			{
				Name:                "example.com:8443",
				Nodes:               []string{"n1", "n2"},
				Binds:               []config.Bind{{Addr: "0.0.0.0:8081", Line: 48}},
				BindSSL:             []config.Bind{{Addr: "0.0.0.0:8443", Line: 49}, {Addr: "[::]:8443", Line: 50}},
				Certificate:         "ex.pem",
				Key:                 "ex.key",
				Format:              "headers",
				WebSocketProtocols:  []string{"chat", "superchat", "v2.bb"},
				Timeout:             250 * time.Millisecond,
				ResponseIdleTimeout: 30 * time.Minute,
				MaxBody:             10 << 20,
				HTTPSRedirect:       true,
				Line:                44,
			},
			vhost("*", 59, "fallback"),
		},
	}
	got, err := config.Parse("test.ini", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !reflect.DeepEqual(*got, wantOpts) {
		t.Errorf("Parse:\n got %+v\nwant %+v", *got, wantOpts)
	}
}

// TestParseLayout checks line numbers and values through comments, blank
// lines, CRLF line ends, inline comments, quotes and repeated values.
func TestParseLayout(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		wantBinds []config.Bind
		wantNodes []string
	}{
		{
			name: "comments and blank lines",
			src: "; head\n# more\n\n[blastbeat] ; main\n  bind = 0.0.0.0:1 ; first\n\n#bind = 0.0.0.0:9\n" +
				"bind=0.0.0.0:2\nzmq = inproc://x\n[blastbeat:a]\nnode = x # the node\n",
			wantBinds: []config.Bind{{Addr: "0.0.0.0:1", Line: 5}, {Addr: "0.0.0.0:2", Line: 8}},
			wantNodes: []string{"x"},
		},
		{
			name:      "crlf and bom",
			src:       "\xEF\xBB\xBF[blastbeat]\r\nbind = 0.0.0.0:1\r\n\r\nbind = 0.0.0.0:2\r\nzmq = inproc://x\r\n[blastbeat:a]\r\nnode = x",
			wantBinds: []config.Bind{{Addr: "0.0.0.0:1", Line: 2}, {Addr: "0.0.0.0:2", Line: 4}},
			wantNodes: []string{"x"},
		},
		{
			name:      "identical repeated values keep their lines",
			src:       "[blastbeat]\nbind = 0.0.0.0:1\nzmq = inproc://x\nbind = 0.0.0.0:1\n[blastbeat:a]\nnode = \"quoted\"\n",
			wantBinds: []config.Bind{{Addr: "0.0.0.0:1", Line: 2}, {Addr: "0.0.0.0:1", Line: 4}},
			wantNodes: []string{"quoted"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse("test.ini", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got.Binds, tt.wantBinds) {
				t.Errorf("Binds = %+v, want %+v", got.Binds, tt.wantBinds)
			}
			if !reflect.DeepEqual(got.VHosts[0].Nodes, tt.wantNodes) {
				t.Errorf("Nodes = %q, want %q", got.VHosts[0].Nodes, tt.wantNodes)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const head = "[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\n" // lines 1-3
	const tail = "[blastbeat:localhost]\nnode = foo\n"
	tests := []struct {
		name    string
		src     string
		line    int
		section string
		key     string
		kind    error
		msg     string // substring of the message
	}{
		{name: "unknown key", src: head + "sesions = 100\n" + tail, line: 4, section: "blastbeat", key: "sesions", kind: config.ErrUnknownKey},
		{name: "unknown vhost key", src: head + tail + "aliases = x:80\n", line: 6, section: "blastbeat:localhost", key: "aliases", kind: config.ErrUnknownKey},
		{name: "bad alias", src: head + tail + "alias = bad host\n", line: 6, section: "blastbeat:localhost", key: "alias", kind: config.ErrBadValue},
		{name: "main-only key in vhost", src: head + tail + "zmq = inproc://x\n", line: 6, section: "blastbeat:localhost", key: "zmq", kind: config.ErrUnknownKey},
		{name: "keys are case sensitive", src: head + "Bind = 0.0.0.0:1\n" + tail, line: 4, key: "Bind", kind: config.ErrUnknownKey},
		{name: "unknown section", src: head + "\n[uwsgi]\nfoo = 1\n" + tail, line: 5, section: "uwsgi", kind: config.ErrUnknownSection},
		{name: "default section", src: head + "[DEFAULT]\n" + tail, line: 4, section: "DEFAULT", kind: config.ErrUnknownSection},
		{name: "empty vhost name", src: head + "[blastbeat:]\nnode = x\n", line: 4, section: "blastbeat:", kind: config.ErrBadValue, msg: "virtual host"},
		{name: "bad vhost name", src: head + "[blastbeat:bad host]\nnode = x\n", line: 4, kind: config.ErrBadValue, msg: "bad host"},
		{name: "node name not UTF-8", src: head + tail + "node = caf\xe9\n", line: 6, section: "blastbeat:localhost", key: "node", kind: config.ErrBadValue, msg: "not UTF-8"},
		{name: "vhost label starts with a hyphen", src: head + "[blastbeat:-]\nnode = x\n", line: 4, kind: config.ErrBadValue, msg: `"-"`},
		{name: "duration over a year", src: head + "timeout = 1e10\n" + tail, line: 4, section: "blastbeat", key: "timeout", kind: config.ErrBadValue, msg: "more than a year"},
		{name: "duration over a year, with a unit", src: head + "idle-timeout = 9000h\n" + tail, line: 4, section: "blastbeat", key: "idle-timeout", kind: config.ErrBadValue, msg: "more than a year"},
		{name: "stats-max-connections 0", src: head + "stats-max-connections = 0\n" + tail, line: 4, section: "blastbeat", key: "stats-max-connections", kind: config.ErrBadValue},
		{name: "bad vhost port", src: head + "[blastbeat:host:http]\nnode = x\n", line: 4, kind: config.ErrBadValue, msg: `"host:http"`},
		{name: "duplicate vhost", src: head + tail + "[blastbeat:LocalHost]\nnode = y\n", line: 6, section: "blastbeat:LocalHost", kind: config.ErrDuplicate, msg: "line 4"},
		{name: "duplicate main section", src: head + tail + "[blastbeat]\n", line: 6, section: "blastbeat", kind: config.ErrDuplicate, msg: "line 1"},
		{name: "repeated key", src: head + "ping-freq = 1\n\nping-freq = 2\n" + tail, line: 6, key: "ping-freq", kind: config.ErrRepeated, msg: "line 4"},
		// Found by review: each of these was accepted, or blamed on the
		// key that kept its default, at the section's header.
		{name: "ping-freq too short", src: head + "ping-freq = 1ms\n" + tail, line: 4, section: "blastbeat", key: "ping-freq", kind: config.ErrBadValue, msg: "at least 100ms"},
		{name: "lingering-timeout past lingering-time", src: head + "\nlingering-timeout = 60\n" + tail, line: 5, section: "blastbeat", key: "lingering-timeout", kind: config.ErrBadValue, msg: "must not exceed lingering-time"},
		{name: "lingering-time under lingering-timeout", src: head + "lingering-time = 1\n" + tail, line: 4, section: "blastbeat", key: "lingering-time", kind: config.ErrBadValue, msg: "must not exceed lingering-time"},
		{name: "http2-stream-window past half of max-read-ahead", src: head + "max-read-ahead = 1m\nhttp2-stream-window = 768k\n" + tail, line: 5, section: "blastbeat", key: "http2-stream-window", kind: config.ErrBadValue, msg: "must not exceed half of max-read-ahead"},
		{name: "max-client-hello past 64k", src: head + "max-client-hello = 128k\n" + tail, line: 4, section: "blastbeat", key: "max-client-hello", kind: config.ErrBadValue, msg: "must be from 4K to 64K"},
		{name: "max-client-hello under 4k", src: head + "max-client-hello = 2k\n" + tail, line: 4, section: "blastbeat", key: "max-client-hello", kind: config.ErrBadValue, msg: "must be from 4K to 64K"},
		{name: "http2-stream-window under 65535", src: head + "http2-stream-window = 16k\n" + tail, line: 4, section: "blastbeat", key: "http2-stream-window", kind: config.ErrBadValue, msg: "must be from 65535"},
		{name: "http2-connection-window past 2^31-1", src: head + "http2-connection-window = 2g\n" + tail, line: 4, section: "blastbeat", key: "http2-connection-window", kind: config.ErrBadValue, msg: "must be from 65535"},
		{name: "max-pending-output past the total", src: head + "\nmax-pending-output = 512m\n" + tail, line: 5, section: "blastbeat", key: "max-pending-output", kind: config.ErrBadValue, msg: "must not exceed max-pending-output-total"},
		{name: "workers past the loops a sid addresses", src: head + "workers = 65\n" + tail, line: 4, section: "blastbeat", key: "workers", kind: config.ErrBadValue, msg: "to 64"},
		{name: "alias *", src: head + tail + "alias = *\n", line: 6, section: "blastbeat:localhost", key: "alias", kind: config.ErrBadValue, msg: "[blastbeat:*]"},
		{name: "repeated vhost key", src: head + tail + "format = uwsgi\nformat = headers\n", line: 7, key: "format", kind: config.ErrRepeated},
		{name: "empty value", src: head + "bind =\n" + tail, line: 4, key: "bind", kind: config.ErrBadValue, msg: "empty"},
		{name: "empty quoted value", src: head + "uid = \"\"\n" + tail, line: 4, key: "uid", kind: config.ErrBadValue, msg: "empty"},
		{name: "not a duration", src: head + "ping-freq = soon\n" + tail, line: 4, key: "ping-freq", kind: config.ErrBadValue, msg: `"soon"`},
		{name: "negative duration", src: head + "timeout = -1\n" + tail, line: 4, key: "timeout", kind: config.ErrBadValue, msg: "negative"},
		{name: "not an integer", src: head + "max-hops = many\n" + tail, line: 4, key: "max-hops", kind: config.ErrBadValue},
		{name: "not a size", src: head + "max-body = 1t\n" + tail, line: 4, key: "max-body", kind: config.ErrBadValue},
		{name: "size overflow", src: head + "max-body = 9999999999999g\n" + tail, line: 4, key: "max-body", kind: config.ErrBadValue, msg: "too large"},
		{name: "not a boolean", src: head + "daemon = maybe\n" + tail, line: 4, key: "daemon", kind: config.ErrBadValue},
		{name: "bad log level", src: head + "log-level = verbose\n" + tail, line: 4, key: "log-level", kind: config.ErrBadValue},
		{name: "bad log format", src: head + "log-format = xml\n" + tail, line: 4, key: "log-format", kind: config.ErrBadValue},
		{name: "stats on a public address", src: head + "stats = 0.0.0.0:9090\n" + tail, line: 4, key: "stats", kind: config.ErrBadValue},
		{name: "stats without a port", src: head + "stats = 127.0.0.1\n" + tail, line: 4, key: "stats", kind: config.ErrBadValue},
		{name: "no read-ahead from nodes", src: head + "zmq-rcv-hwm = 0\n" + tail, line: 4, key: "zmq-rcv-hwm", kind: config.ErrBadValue},
		{name: "no libzmq I/O thread", src: head + "zmq-io-threads = 0\n" + tail, line: 4, key: "zmq-io-threads", kind: config.ErrBadValue},
		{name: "too many libzmq I/O threads", src: head + "zmq-io-threads = 65\n" + tail, line: 4, key: "zmq-io-threads", kind: config.ErrBadValue},
		{name: "busy poll too long", src: head + "zmq-busy-poll = 20ms\n" + tail, line: 4, key: "zmq-busy-poll", kind: config.ErrBadValue},
		{name: "shutdown delay too long", src: head + "shutdown-delay = 11m\n" + tail, line: 4, key: "shutdown-delay", kind: config.ErrBadValue},
		{name: "shutdown delay negative", src: head + "shutdown-delay = -1s\n" + tail, line: 4, key: "shutdown-delay", kind: config.ErrBadValue},
		{name: "busy poll not a duration", src: head + "zmq-busy-poll = soon\n" + tail, line: 4, key: "zmq-busy-poll", kind: config.ErrBadValue},
		{name: "no bridge", src: head + "zmq-bridges = 0\n" + tail, line: 4, key: "zmq-bridges", kind: config.ErrBadValue},
		{name: "too many bridges", src: head + "zmq-bridges = 17\n" + tail, line: 4, key: "zmq-bridges", kind: config.ErrBadValue},
		{name: "rebalance negative", src: head + "zmq-rebalance = -1\n" + tail, line: 4, key: "zmq-rebalance", kind: config.ErrBadValue},
		{name: "rebalance too many", src: head + "zmq-rebalance = 1001\n" + tail, line: 4, key: "zmq-rebalance", kind: config.ErrBadValue},
		{name: "keepalive over Linux's most", src: head + "tcp-keepalive = 32768\n" + tail, line: 4, key: "tcp-keepalive", kind: config.ErrBadValue},
		{name: "keepalive in milliseconds", src: head + "tcp-keepalive = 1500ms\n" + tail, line: 4, key: "tcp-keepalive", kind: config.ErrBadValue},
		{name: "tiny access-log buffer", src: head + "access-log-buffer = 1k\n" + tail, line: 4, key: "access-log-buffer", kind: config.ErrBadValue},
		{name: "tiny node read-ahead", src: head + "node-read-ahead = 0\n" + tail, line: 4, key: "node-read-ahead", kind: config.ErrBadValue},
		{name: "bad access log format", src: head + "access-log-format = common\n" + tail, line: 4, key: "access-log-format", kind: config.ErrBadValue},
		{name: "bad format", src: head + tail + "format = json\n", line: 6, key: "format", kind: config.ErrBadValue},
		{name: "bad websocket protocol", src: head + tail + "websocket-protocols = chat, super chat\n", line: 6, key: "websocket-protocols", kind: config.ErrBadValue},
		{name: "bind without port", src: head + "bind = 0.0.0.0\n" + tail, line: 4, key: "bind", kind: config.ErrBadValue},
		{name: "bind port zero", src: head + "bind = 0.0.0.0:0\n" + tail, line: 4, key: "bind", kind: config.ErrBadValue, msg: "port"},
		{name: "bind port too big", src: head + "bind = 0.0.0.0:65536\n" + tail, line: 4, key: "bind", kind: config.ErrBadValue, msg: "port"},
		{name: "bind bad host", src: head + "bind = no/such:80\n" + tail, line: 4, key: "bind", kind: config.ErrBadValue},
		{name: "bind bad brackets", src: head + "bind = [::1]8080\n" + tail, line: 4, key: "bind", kind: config.ErrBadValue},
		{name: "vhost bind-ssl bad", src: head + tail + "bind-ssl = :443x\n", line: 6, key: "bind-ssl", kind: config.ErrBadValue},
		{name: "bad endpoint scheme", src: head + "zmq = http://0.0.0.0:5000\n" + tail, line: 4, key: "zmq", kind: config.ErrBadValue, msg: "tcp://"},
		{name: "tcp endpoint without port", src: head + "zmq = tcp://0.0.0.0\n" + tail, line: 4, key: "zmq", kind: config.ErrBadValue},
		{name: "empty ipc endpoint", src: head + "zmq = ipc://\n" + tail, line: 4, key: "zmq", kind: config.ErrBadValue},
		{name: "node too long", src: head + tail + "node = " + strings.Repeat("n", 256) + "\n", line: 6, key: "node", kind: config.ErrBadValue, msg: "255"},
		{name: "missing bind", src: "[blastbeat]\nzmq = tcp://0.0.0.0:5000\n" + tail, line: 1, section: "blastbeat", key: "bind", kind: config.ErrMissing},
		{name: "missing zmq", src: "\n[blastbeat]\nbind = 0.0.0.0:80\n" + tail, line: 2, section: "blastbeat", key: "zmq", kind: config.ErrMissing},
		{name: "missing vhost", src: head, kind: config.ErrMissing, msg: "[blastbeat:HOST]"},
		{name: "missing main section", src: tail, kind: config.ErrMissing, msg: "[blastbeat]"},
		{name: "missing node", src: head + "[blastbeat:a]\nbind = 0.0.0.0:81\n", line: 4, section: "blastbeat:a", key: "node", kind: config.ErrMissing},
		{name: "ping-freq zero", src: head + "ping-freq = 0\n" + tail, line: 4, key: "ping-freq", kind: config.ErrBadValue},
		{name: "timeout zero", src: head + "timeout = 0s\n" + tail, line: 4, key: "timeout", kind: config.ErrBadValue},
		{name: "max-hops negative", src: head + "max-hops = -1\n" + tail, line: 4, key: "max-hops", kind: config.ErrBadValue},
		{name: "max-header-size too small", src: head + "max-uri = 100\nmax-header-size = 255\n" + tail, line: 5, key: "max-header-size", kind: config.ErrBadValue, msg: "256"},
		{name: "max-uri above max-header-size", src: head + "max-uri = 8k\nmax-header-size = 4k\n" + tail, line: 4, key: "max-uri", kind: config.ErrBadValue, msg: "max-header-size"},
		{name: "max-header-size below default max-uri", src: head + "max-header-size = 4k\n" + tail, line: 4, key: "max-header-size", kind: config.ErrBadValue, msg: "max-uri"},
		{name: "ring-size not a power of two", src: head + "ring-size = 3000\n" + tail, line: 4, key: "ring-size", kind: config.ErrBadValue, msg: "power of two"},
		{name: "ring-size too small", src: head + "ring-size = 512\n" + tail, line: 4, key: "ring-size", kind: config.ErrBadValue},
		{name: "line without equals", src: head + "bind 0.0.0.0:80\n" + tail, line: 4, kind: config.ErrSyntax},
		{name: "colon is not a delimiter", src: head + "uid: www\n" + tail, line: 4, kind: config.ErrSyntax},
		{name: "unclosed section", src: head + "[blastbeat:x\n", line: 4, kind: config.ErrSyntax},
		{name: "key outside section", src: "bind = 0.0.0.0:1\n" + head + tail, line: 1, key: "bind", kind: config.ErrSyntax},
		{name: "multi-line value", src: head + "uid = \"\"\"www\ndata\"\"\"\n" + tail, line: 4, key: "uid", kind: config.ErrSyntax},
		{name: "quoted key", src: head + "\"uid\" = www\n" + tail, line: 4, kind: config.ErrSyntax},
		{name: "missing key name", src: head + " = www\n" + tail, line: 4, kind: config.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := config.Parse("bad.ini", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", opts)
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is not a *config.Error", err, err)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %q is not %v", err, tt.kind)
			}
			if ce.File != "bad.ini" || ce.Line != tt.line || ce.Key != tt.key {
				t.Errorf("error at %s:%d key %q, want bad.ini:%d key %q (%v)", ce.File, ce.Line, ce.Key, tt.line, tt.key, err)
			}
			if tt.section != "" && ce.Section != tt.section {
				t.Errorf("Section = %q, want %q", ce.Section, tt.section)
			}
			msg := err.Error()
			wantPrefix := "bad.ini: "
			if tt.line > 0 {
				wantPrefix = "bad.ini:" + strconv.Itoa(tt.line) + ": "
			}
			for _, sub := range []string{wantPrefix, tt.key, tt.msg} {
				if !strings.Contains(msg, sub) {
					t.Errorf("message %q does not contain %q", msg, sub)
				}
			}
		})
	}
}

func TestParseBindSSLNeedsCertificate(t *testing.T) {
	tests := []struct {
		name, src, key string
		line           int
	}{
		{name: "no certificate", src: "[blastbeat]\nzmq = inproc://x\n[blastbeat:a]\nnode = n\nbind-ssl = 0.0.0.0:443\nkey = k.pem\n", key: "certificate", line: 5},
		{name: "no key", src: "[blastbeat]\nzmq = inproc://x\n[blastbeat:a]\nnode = n\nbind-ssl = 0.0.0.0:443\ncertificate = c.pem\n", key: "key", line: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("tls.ini", []byte(tt.src))
			if err == nil {
				t.Fatal("parsed")
			}
			if want := "tls.ini:" + strconv.Itoa(tt.line) + ": "; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q, want %q… naming %s", err, want, tt.key)
			}
		})
	}
	// The [blastbeat] defaults fill a virtual host's certificate and key.
	o, err := config.Parse("tls.ini", []byte("[blastbeat]\nzmq = inproc://x\ncertificate = d.pem\nkey = d.key\n[blastbeat:a]\nnode = n\nbind-ssl = 0.0.0.0:443\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v := o.VHosts[0]; v.Certificate != "d.pem" || v.Key != "d.key" {
		t.Errorf("vhost certificate %q key %q, want the defaults", v.Certificate, v.Key)
	}
}

func TestParseVHostBindsSatisfyBind(t *testing.T) {
	tests := []struct {
		name string
		src  string
	}{
		{name: "bind", src: "[blastbeat]\nzmq = inproc://x\n[blastbeat:a]\nnode = n\nbind = 0.0.0.0:80\n"},
		{name: "bind-ssl", src: "[blastbeat]\nzmq = inproc://x\ncertificate = c.pem\nkey = c.key\n[blastbeat:a]\nnode = n\nbind-ssl = 0.0.0.0:443\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := config.Parse("test.ini", []byte(tt.src)); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "blastbeat.ini")
	if err := os.WriteFile(good, []byte(readmeBasic), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.ini")
	if err := os.WriteFile(bad, []byte(readmeBasic+"bogus = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr error
		wantMsg string
	}{
		{name: "ok", path: good},
		{name: "bad key", path: bad, wantErr: config.ErrUnknownKey, wantMsg: bad + ":7: [blastbeat:localhost:8000] bogus: unknown key"},
		{name: "missing file", path: filepath.Join(dir, "nope.ini"), wantErr: fs.ErrNotExist, wantMsg: filepath.Join(dir, "nope.ini") + ": "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := config.Load(tt.path)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if opts.File != tt.path {
					t.Errorf("File = %q, want %q", opts.File, tt.path)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Load error %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

// TestOriginalLaterKeys loads the keys the original added late: alias
// (kept), sessions and cache (accepted, reported as ignored).
func TestOriginalLaterKeys(t *testing.T) {
	src := "[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\nsessions = 1000\n\n" +
		"[blastbeat:localhost:8080]\nnode = foobar1\nalias = example.com\nalias = WWW.example.com:8080\nsessions = 100\ncache = 17\n"
	o, err := config.Parse("later.ini", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := o.VHosts[0].Aliases; len(got) != 2 || got[0] != "example.com" || got[1] != "www.example.com:8080" {
		t.Fatalf("Aliases = %q", got)
	}
	want := []config.Ignored{
		{Section: "blastbeat", Key: "sessions", Line: 4},
		{Section: "blastbeat:localhost:8080", Key: "sessions", Line: 10},
		{Section: "blastbeat:localhost:8080", Key: "cache", Line: 11},
	}
	if len(o.Ignored) != len(want) {
		t.Fatalf("Ignored = %+v", o.Ignored)
	}
	for i := range want {
		if o.Ignored[i] != want[i] {
			t.Fatalf("Ignored[%d] = %+v, want %+v", i, o.Ignored[i], want[i])
		}
	}
}

func TestBridgeKeys(t *testing.T) {
	base := "[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\n"
	o, err := config.Parse("b.ini", []byte(base+"send-timeout = 1.5\nzmq-hwm = 64\nzmq-rcv-hwm = 32\nzmq-io-threads = 4\nzmq-bridges = 2\nzmq-busy-poll = 100us\nzmq-rebalance = 0\n\n[blastbeat:*]\nnode = a\n"))
	if err != nil {
		t.Fatal(err)
	}
	if o.SendTimeout != 1500*time.Millisecond || o.ZMQHWM != 64 || o.ZMQRcvHWM != 32 || o.ZMQIOThreads != 4 || o.ZMQBridges != 2 || o.ZMQBusyPoll != 100*time.Microsecond || o.ZMQRebalance != 0 {
		t.Fatalf("send-timeout %v zmq-hwm %d zmq-rcv-hwm %d zmq-io-threads %d zmq-bridges %d zmq-busy-poll %v zmq-rebalance %d", o.SendTimeout, o.ZMQHWM, o.ZMQRcvHWM, o.ZMQIOThreads, o.ZMQBridges, o.ZMQBusyPoll, o.ZMQRebalance)
	}
	_, err = config.Parse("b.ini", []byte(base+"zmq-hwm = 0\n\n[blastbeat:*]\nnode = a\n"))
	if err == nil || !strings.Contains(err.Error(), "b.ini:4") || !strings.Contains(err.Error(), "zmq-hwm") {
		t.Fatalf("zmq-hwm = 0: %v", err)
	}
}

// errAt is one error expected from Parse: its line and kind.
type errAt struct {
	line int
	kind error
}

// TestParseReportsEveryError checks that Parse goes on past an error and
// reports each one, in line order, without follow-on errors.
func TestParseReportsEveryError(t *testing.T) {
	const head = "[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\n" // lines 1-3
	const tail = "[blastbeat:localhost]\nnode = foo\n"
	tests := []struct {
		name string
		src  string
		want []errAt
	}{
		{
			name: "bad keys and values in every section",
			src: head + "bogus = 1\nping-freq = soon\nring-size = 3000\n" + // 4-6
				tail + "format = json\nformat = uwsgi\n" + // 7-8, 9-10
				"[blastbeat:*]\nnode =\nwebsocket-protocols = a b\n", // 11-13
			want: []errAt{{4, config.ErrUnknownKey}, {5, config.ErrBadValue}, {6, config.ErrBadValue},
				{9, config.ErrBadValue}, {10, config.ErrRepeated}, {12, config.ErrBadValue}, {13, config.ErrBadValue}},
		},
		{
			name: "syntax errors do not stop the scan",
			src:  head + "bind 0.0.0.0:80\n\"uid\" = x\n = y\n" + tail + "bogus = 2\n", // 4-6, 7-8, 9
			want: []errAt{{4, config.ErrSyntax}, {5, config.ErrSyntax}, {6, config.ErrSyntax}, {9, config.ErrUnknownKey}},
		},
		{
			name: "keys outside any section",
			src:  "bind = 0.0.0.0:1\nzmq = inproc://x\n" + head + tail,
			want: []errAt{{1, config.ErrSyntax}, {2, config.ErrSyntax}},
		},
		{
			name: "unreadable header drops its keys, nothing reported missing",
			src:  head + "[blastbeat:x\nnode = a\nbogus = 1\nnot a key\n", // 4-7
			want: []errAt{{4, config.ErrSyntax}, {7, config.ErrSyntax}},
		},
		{
			name: "text after a header keeps the section",
			src:  "[blastbeat] junk\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\nbogus = 1\n" + tail,
			want: []errAt{{1, config.ErrSyntax}, {4, config.ErrUnknownKey}},
		},
		{
			name: "keys of an unknown section are not reported",
			src:  head + "[uwsgi]\nsocket = x\n" + tail + "bogus = 1\n", // 4-5, 6-7, 8
			want: []errAt{{4, config.ErrUnknownSection}, {8, config.ErrUnknownKey}},
		},
		{
			name: "keys of a duplicate section are not applied twice",
			src:  head + tail + "[blastbeat]\nbind = 0.0.0.0:1\nping-freq = 0\n" + "[blastbeat:LOCALHOST]\nnode = bar\n", // 4-5, 6-8, 9-10
			want: []errAt{{6, config.ErrDuplicate}, {9, config.ErrDuplicate}},
		},
		{
			name: "a bad bind is not also a missing bind",
			src:  "[blastbeat]\nbind = 0.0.0.0:0\nzmq = ftp://x\n" + tail,
			want: []errAt{{2, config.ErrBadValue}, {3, config.ErrBadValue}},
		},
		{
			name: "an empty node is not also a missing node",
			src:  head + "[blastbeat:a]\nnode =\n[blastbeat:b]\nbind-ssl = 0.0.0.0:443\nnode = n\ncertificate =\n", // 4-5, 6-9
			want: []errAt{{5, config.ErrBadValue}, {7, config.ErrMissing}, {9, config.ErrBadValue}},
		},
		{
			name: "everything missing at once",
			src:  "[blastbeat]\nmax-hops = -1\n[blastbeat:a]\nbind-ssl = 0.0.0.0:443\n",
			want: []errAt{{1, config.ErrMissing}, {2, config.ErrBadValue}, {3, config.ErrMissing}, {4, config.ErrMissing}, {4, config.ErrMissing}},
		},
		{
			name: "a multi-line value stops the scan",
			src:  head + "bogus = 1\nuid = \"\"\"www\ndata\"\"\"\nbogus2 = 2\n" + tail,
			want: []errAt{{5, config.ErrSyntax}},
		},
		{
			name: "utf-16 stops at once",
			src:  "\xFF\xFE[\x00b\x00",
			want: []errAt{{1, config.ErrSyntax}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := config.Parse("bad.ini", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", opts)
			}
			var got []errAt
			for _, e := range leaves(err) {
				ce, ok := e.(*config.Error)
				if !ok {
					t.Fatalf("error %T %v is not a *config.Error", e, e)
				}
				if ce.File != "bad.ini" {
					t.Errorf("error %v names file %q", ce, ce.File)
				}
				got = append(got, errAt{ce.Line, ce.Unwrap()})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors at %v, want %v:\n%v", got, tt.want, err)
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != len(tt.want) {
				t.Errorf("message has %d lines, want %d:\n%v", len(lines), len(tt.want), err)
			}
			// errors.As finds the first; errors.Is matches every kind.
			var first *config.Error
			if !errors.As(err, &first) || first.Line != tt.want[0].line {
				t.Errorf("errors.As found %v, want the error at line %d", first, tt.want[0].line)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w.kind) {
					t.Errorf("errors.Is(err, %v) = false", w.kind)
				}
			}
		})
	}
}

// TestParseErrorCap checks that a file that is not an .ini gives a
// bounded report: the first errors in the file, and a count of the rest.
func TestParseErrorCap(t *testing.T) {
	src := strings.Repeat("garbage\n", 1000)
	_, err := config.Parse("bin.ini", []byte(src))
	errs := leaves(err)
	if len(errs) != 51 {
		t.Fatalf("%d errors, want 50 and a summary", len(errs))
	}
	// 1000 lines and the two missing sections (line 0) come first.
	for i, e := range errs[:50] {
		if want := max(0, i-1); e.(*config.Error).Line != want {
			t.Errorf("error %d: %v, want line %d", i, e, want)
		}
	}
	if last := errs[50].Error(); last != "bin.ini: and 952 more errors" {
		t.Errorf("last error %q", last)
	}
}

// TestParseDuplicateHosts checks that a Host name (virtual host or alias)
// served by two virtual hosts is an error at its second occurrence.
func TestParseDuplicateHosts(t *testing.T) {
	const head = "[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\n" // lines 1-3
	tests := []struct {
		name    string
		vhosts  string // from line 4
		line    int    // 0: no error
		section string
		key     string
		msg     string
	}{
		{
			name:    "alias names an earlier virtual host",
			vhosts:  "[blastbeat:a.test]\nnode = n\n[blastbeat:b.test]\nnode = n\nalias = a.test\n",
			line:    8,
			section: "blastbeat:b.test",
			key:     "alias",
			msg:     `duplicate host name "a.test": first defined at line 4 ([blastbeat:a.test])`,
		},
		{
			name:    "virtual host named by an earlier alias",
			vhosts:  "[blastbeat:a.test]\nnode = n\nalias = www.test\n[blastbeat:WWW.test]\nnode = n\n",
			line:    7,
			section: "blastbeat:WWW.test",
			msg:     `duplicate host name "www.test": first defined at line 6 (alias in [blastbeat:a.test])`,
		},
		{
			name:    "alias in two virtual hosts, any case",
			vhosts:  "[blastbeat:a.test]\nnode = n\nalias = Shared.Test:8080\n[blastbeat:b.test]\nnode = n\nalias = shared.test:8080\n",
			line:    9,
			section: "blastbeat:b.test",
			key:     "alias",
			msg:     "first defined at line 6 (alias in [blastbeat:a.test])",
		},
		{
			name:    "two virtual hosts",
			vhosts:  "[blastbeat:a.test:8000]\nnode = n\n[blastbeat:A.Test:8000]\nnode = m\n",
			line:    6,
			section: "blastbeat:A.Test:8000",
			msg:     "first defined at line 4 ([blastbeat:a.test:8000])",
		},
		{
			name:    "catch-all twice",
			vhosts:  "[blastbeat:*]\nnode = n\n[blastbeat:a.test]\nnode = n\n[blastbeat:*]\nnode = m\n",
			line:    8,
			section: "blastbeat:*",
			msg:     `"*": first defined at line 4`,
		},
		{
			name:   "host and host:port are different names",
			vhosts: "[blastbeat:a.test]\nnode = n\n[blastbeat:a.test:80]\nnode = n\nalias = b.test:8080\n[blastbeat:b.test]\nnode = n\n",
		},
		{
			name:   "a virtual host's own name and a repeated alias are dropped",
			vhosts: "[blastbeat:a.test]\nnode = n\nalias = A.test\nalias = b.test\nalias = B.TEST\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := config.Parse("dup.ini", []byte(head+tt.vhosts))
			if tt.line == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if a := opts.VHosts[0].Aliases; len(a) > 1 {
					t.Errorf("Aliases = %q", a)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) || len(leaves(err)) != 1 {
				t.Fatalf("Parse error %v, want one *config.Error", err)
			}
			if !errors.Is(err, config.ErrDuplicate) || ce.Line != tt.line || ce.Section != tt.section || ce.Key != tt.key {
				t.Errorf("error %q at line %d [%s] %q, want ErrDuplicate at line %d [%s] %q", err, ce.Line, ce.Section, ce.Key, tt.line, tt.section, tt.key)
			}
			if !strings.HasPrefix(err.Error(), "dup.ini:"+strconv.Itoa(tt.line)+": ["+tt.section+"] ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q, want dup.ini:%d: [%s] … %s", err, tt.line, tt.section, tt.msg)
			}
		})
	}
}

// TestHTTP2StreamWindowDefault: unset, http2-stream-window keeps within
// half of max-read-ahead (and at least HTTP/2's 65535), so that a config
// that lowered max-read-ahead before the key existed stays valid.
func TestHTTP2StreamWindowDefault(t *testing.T) {
	for readAhead, want := range map[string]int{"": 512 << 10, "64k": 65535, "512k": 256 << 10, "4m": 512 << 10} {
		src := "[blastbeat]\nbind = 0.0.0.0:8080\nzmq = tcp://0.0.0.0:5000\n"
		if readAhead != "" {
			src += "max-read-ahead = " + readAhead + "\n"
		}
		o, err := config.Parse("t.ini", []byte(src+"[blastbeat:*]\nnode = n\n"))
		if err != nil {
			t.Fatalf("max-read-ahead %q: %v", readAhead, err)
		}
		if o.HTTP2StreamWindow != want {
			t.Errorf("max-read-ahead %q: http2-stream-window %d, want %d", readAhead, o.HTTP2StreamWindow, want)
		}
	}
}
