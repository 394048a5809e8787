package node

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// The environ → *http.Request mapping and the request body reader, on
// their own.

func TestRequestFromEnviron(t *testing.T) {
	env := map[string]string{
		"REQUEST_METHOD":         "POST",
		"REQUEST_URI":            "/a%20b/c?x=1&y=%41",
		"PATH_INFO":              "/a b/c",
		"QUERY_STRING":           "x=1&y=%41",
		"SERVER_PROTOCOL":        "HTTP/1.1",
		"SCRIPT_NAME":            "",
		"SERVER_NAME":            "example.test",
		"SERVER_PORT":            "443",
		"REMOTE_ADDR":            "2001:db8::1",
		"REMOTE_PORT":            "51000",
		"HTTPS":                  "on",
		"UWSGI_SCHEME":           "https",
		"CONTENT_TYPE":           "text/plain",
		"CONTENT_LENGTH":         "42",
		"HTTP_HOST":              "example.test:443",
		"HTTP_X_FORWARDED_FOR":   "192.0.2.1, 192.0.2.2",
		"HTTP_COOKIE":            "a=1; b=2",
		"HTTP_ACCEPT_ENCODING":   "gzip",
		"HTTP_SEC_WEBSOCKET_KEY": "k",
	}
	r, err := requestFromEnviron(env)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("Method", r.Method, "POST")
	check("RequestURI", r.RequestURI, "/a%20b/c?x=1&y=%41")
	check("URL.Path", r.URL.Path, "/a b/c")
	check("URL.RawQuery", r.URL.RawQuery, "x=1&y=%41")
	check("URL.Host", r.URL.Host, "")
	check("query y", r.URL.Query().Get("y"), "A")
	check("Proto", r.Proto, "HTTP/1.1")
	check("ProtoMajor", r.ProtoMajor, 1)
	check("ProtoMinor", r.ProtoMinor, 1)
	check("Host", r.Host, "example.test:443")
	check("Host field", r.Header.Get("Host"), "")
	check("Content-Type", r.Header.Get("Content-Type"), "text/plain")
	check("Content-Length field", r.Header.Get("Content-Length"), "42")
	check("ContentLength", r.ContentLength, int64(42))
	check("X-Forwarded-For", r.Header.Get("X-Forwarded-For"), "192.0.2.1, 192.0.2.2")
	check("Cookie a", cookie(r, "a"), "1")
	check("Cookie b", cookie(r, "b"), "2")
	check("Accept-Encoding", r.Header.Get("Accept-Encoding"), "gzip")
	check("Sec-Websocket-Key", r.Header.Get("Sec-Websocket-Key"), "k")
	check("RemoteAddr", r.RemoteAddr, "[2001:db8::1]:51000")
	check("TLS", r.TLS != nil, true)
	check("Body", r.Body, http.NoBody)
	if len(r.Header) != 6 {
		t.Errorf("Header has %d fields: %v", len(r.Header), r.Header)
	}
}

func cookie(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

func TestRequestFromEnvironForms(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		// want
		proto        string
		major, minor int
		cl           int64
		te           []string
		host, path   string
		tls          bool
		err          bool
	}{
		{name: "HTTP/2", env: map[string]string{"REQUEST_METHOD": "GET", "REQUEST_URI": "/", "SERVER_PROTOCOL": "HTTP/2", "HTTP_HOST": "h"},
			proto: "HTTP/2.0", major: 2, host: "h", path: "/"},
		{name: "HTTP/1.0 without Host", env: map[string]string{"REQUEST_METHOD": "GET", "REQUEST_URI": "/x", "SERVER_PROTOCOL": "HTTP/1.0"},
			proto: "HTTP/1.0", major: 1, minor: 0, path: "/x"},
		{name: "chunked", env: map[string]string{"REQUEST_METHOD": "PUT", "REQUEST_URI": "/", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_TRANSFER_ENCODING": "chunked"},
			proto: "HTTP/1.1", major: 1, minor: 1, cl: -1, te: []string{"chunked"}, path: "/"},
		{name: "absolute form", env: map[string]string{"REQUEST_METHOD": "GET", "REQUEST_URI": "http://abs.test/p?q", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "abs.test"},
			proto: "HTTP/1.1", major: 1, minor: 1, host: "abs.test", path: "/p"},
		{name: "OPTIONS *", env: map[string]string{"REQUEST_METHOD": "OPTIONS", "REQUEST_URI": "*", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "h"},
			proto: "HTTP/1.1", major: 1, minor: 1, host: "h", path: "*"},
		{name: "no REQUEST_URI", env: map[string]string{"REQUEST_METHOD": "GET", "PATH_INFO": "/a b", "QUERY_STRING": "k=v", "SERVER_PROTOCOL": "HTTP/1.1"},
			proto: "HTTP/1.1", major: 1, minor: 1, path: "/a b"},
		{name: "HTTPS off", env: map[string]string{"REQUEST_METHOD": "GET", "REQUEST_URI": "/", "SERVER_PROTOCOL": "HTTP/1.1", "HTTPS": "off"},
			proto: "HTTP/1.1", major: 1, minor: 1, path: "/"},
		{name: "no method", env: map[string]string{"REQUEST_URI": "/"}, err: true},
		{name: "bad protocol", env: map[string]string{"REQUEST_METHOD": "GET", "REQUEST_URI": "/", "SERVER_PROTOCOL": "SPDY/3"}, err: true},
		{name: "bad length", env: map[string]string{"REQUEST_METHOD": "GET", "REQUEST_URI": "/", "CONTENT_LENGTH": "-1"}, err: true},
		{name: "bad coding", env: map[string]string{"REQUEST_METHOD": "GET", "REQUEST_URI": "/", "HTTP_TRANSFER_ENCODING": "gzip"}, err: true},
		{name: "bad target", env: map[string]string{"REQUEST_METHOD": "GET", "REQUEST_URI": "no-slash"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := requestFromEnviron(tc.env)
			if tc.err {
				if err == nil {
					t.Fatalf("no error; request %+v", r)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Proto != tc.proto || r.ProtoMajor != tc.major || r.ProtoMinor != tc.minor {
				t.Errorf("proto %s %d.%d, want %s %d.%d", r.Proto, r.ProtoMajor, r.ProtoMinor, tc.proto, tc.major, tc.minor)
			}
			if r.ContentLength != tc.cl || len(r.TransferEncoding) != len(tc.te) || r.Header.Get("Transfer-Encoding") != "" {
				t.Errorf("ContentLength %d, TransferEncoding %v, field %q", r.ContentLength, r.TransferEncoding, r.Header.Get("Transfer-Encoding"))
			}
			if r.Host != tc.host || r.URL.Path != tc.path {
				t.Errorf("Host %q, Path %q; want %q, %q", r.Host, r.URL.Path, tc.host, tc.path)
			}
			if (r.TLS != nil) != tc.tls {
				t.Errorf("TLS %v", r.TLS)
			}
			if r.RequestURI == "" {
				t.Errorf("no RequestURI")
			}
		})
	}
}

func TestRequestClose(t *testing.T) {
	for _, tc := range []struct {
		proto, connection string
		want              bool
	}{
		{"HTTP/1.1", "", false},
		{"HTTP/1.1", "close", true},
		{"HTTP/1.0", "", true},
		{"HTTP/1.0", "keep-alive", false},
		{"HTTP/2", "", false},
	} {
		env := map[string]string{"REQUEST_METHOD": "GET", "REQUEST_URI": "/", "SERVER_PROTOCOL": tc.proto}
		if tc.connection != "" {
			env["HTTP_CONNECTION"] = tc.connection
		}
		r, err := requestFromEnviron(env)
		if err != nil || r.Close != tc.want {
			t.Errorf("%s Connection %q: Close %v (%v), want %v", tc.proto, tc.connection, r.Close, err, tc.want)
		}
	}
}

func TestRequestFromHead(t *testing.T) {
	r, err := requestFromHead([]byte("POST /up?a=b HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "POST" || r.URL.RawQuery != "a=b" || r.Host != "h.test" || r.ContentLength != -1 ||
		len(r.TransferEncoding) != 1 || r.Header.Get("X-A") != "1" || r.Body != http.NoBody {
		t.Fatalf("request %+v", r)
	}
	if _, err := requestFromHead([]byte("garbage")); err == nil {
		t.Fatal("no error for a bad head")
	}
}

func TestIsWebSocket(t *testing.T) {
	for _, tc := range []struct {
		upgrade, connection string
		minor               int
		want                bool
	}{
		{"websocket", "Upgrade", 1, true},
		{"WebSocket", "keep-alive, upgrade", 1, true},
		{"websocket", "", 1, false}, // Upgrade alone is a plain request
		{"h2c", "Upgrade", 1, false},
		{"websocket", "Upgrade", 0, false}, // RFC 9110 §7.8: ignored in HTTP/1.0 (a format = headers head)
	} {
		h := http.Header{}
		h.Set("Upgrade", tc.upgrade)
		if tc.connection != "" {
			h.Set("Connection", tc.connection)
		}
		if got := isWebSocket(&http.Request{Header: h, ProtoMajor: 1, ProtoMinor: tc.minor}); got != tc.want {
			t.Errorf("Upgrade %q Connection %q HTTP/1.%d: %v, want %v", tc.upgrade, tc.connection, tc.minor, got, tc.want)
		}
	}
}

// read reads once and returns the data and error as strings.
func read(b *bodyReader, n int) (string, error) {
	p := make([]byte, n)
	k, err := b.Read(p)
	return string(p[:k]), err
}

func TestBodyReader(t *testing.T) {
	ctx := context.Background()

	t.Run("pieces then EOF", func(t *testing.T) {
		b := newBodyReader(ctx, 100, new(atomic.Int64))
		b.push([]byte("abc"), false)
		b.push([]byte("def"), true)
		if got, err := read(b, 4); got != "abcd" || err != nil {
			t.Fatalf("%q %v", got, err)
		}
		if got, err := read(b, 4); got != "ef" || err != io.EOF {
			t.Fatalf("%q %v, want the rest with io.EOF", got, err)
		}
		if got, err := read(b, 4); got != "" || err != io.EOF {
			t.Fatalf("%q %v", got, err)
		}
	})

	t.Run("blocks until data", func(t *testing.T) {
		b := newBodyReader(ctx, 100, new(atomic.Int64))
		got := make(chan string)
		go func() {
			data, err := io.ReadAll(b)
			if err != nil {
				got <- err.Error()
			}
			got <- string(data)
		}()
		b.push([]byte("x"), false)
		b.push([]byte("y"), false)
		b.push(nil, true) // the empty body of a chunked request
		if s := <-got; s != "xy" {
			t.Fatalf("read %q", s)
		}
	})

	t.Run("limit", func(t *testing.T) {
		b := newBodyReader(ctx, 4, new(atomic.Int64))
		if !b.push([]byte("0123456789"), false) {
			t.Fatal("one piece alone must fit")
		}
		if b.push([]byte("a"), false) {
			t.Fatal("push over the limit accepted")
		}
		read(b, 10)
		if !b.push([]byte("abcd"), false) || b.push([]byte("e"), false) {
			t.Fatal("limit not back after a read")
		}
	})

	t.Run("fail after data", func(t *testing.T) {
		b := newBodyReader(ctx, 100, new(atomic.Int64))
		b.push([]byte("part"), false)
		b.fail(ErrSessionEnded)
		b.fail(ErrBufferFull) // the first reason stays
		if got, err := read(b, 10); got != "part" || err != nil {
			t.Fatalf("%q %v: what arrived first is read", got, err)
		}
		if _, err := read(b, 10); !errors.Is(err, ErrSessionEnded) {
			t.Fatalf("%v, want ErrSessionEnded", err)
		}
	})

	t.Run("fail after the end", func(t *testing.T) {
		b := newBodyReader(ctx, 100, new(atomic.Int64))
		b.push([]byte("all"), true)
		b.fail(ErrSessionEnded) // a body that all arrived stays whole
		if data, err := io.ReadAll(b); string(data) != "all" || err != nil {
			t.Fatalf("%q %v", data, err)
		}
	})

	t.Run("close", func(t *testing.T) {
		b := newBodyReader(ctx, 100, new(atomic.Int64))
		b.push([]byte("data"), false)
		b.Close()
		if _, err := read(b, 10); err != http.ErrBodyReadAfterClose {
			t.Fatalf("%v", err)
		}
		if !b.push(make([]byte, 1000), false) {
			t.Fatal("push after Close must drop, not fail")
		}
	})

	t.Run("context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		b := newBodyReader(cctx, 100, new(atomic.Int64))
		cancel()
		if _, err := read(b, 10); !errors.Is(err, ErrSessionEnded) {
			t.Fatalf("%v, want ErrSessionEnded", err)
		}
	})
}
