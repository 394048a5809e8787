// Package node is a small Go library for writing BlastBeat backend nodes:
// it connects to one or more BlastBeat instances under the node's name
// (its ZeroMQ identity) and speaks PROTOCOL.md's [sid, type, body]
// messages.
//
// A node that calls EnableCredits also speaks the opt-in flow control
// (credit.go): the proxy then grants it response body bytes per session,
// and SendBody keeps within them.
//
// A Node is not safe for concurrent use: like the libzmq sockets under it,
// it belongs to one goroutine.
//
// Serve runs an ordinary net/http Handler as a node instead (see "Serving
// a net/http Handler" below): it does the sockets, pings, credits and the
// mapping between PROTOCOL.md's messages and *http.Request /
// http.ResponseWriter.
//
// # Several proxies
//
// BlastBeat scales out as N proxy instances side by side behind an L4
// (TCP) load balancer (HAProxy in mode tcp, IPVS, a cloud network load
// balancer) that spreads client connections over them. The proxies share
// nothing: a session lives, from its first byte to its `end`, in the
// proxy that accepted its connection, and its sid (16 random bytes) is
// unique across instances. So every node connects to every proxy, and
// each proxy pings it, balances over it and fails over from it on its
// own:
//
//	n, err := node.Dial("app1", "tcp://proxy-a:5000", "tcp://proxy-b:5000")
//	for {
//		m, err := n.Recv()      // from any proxy
//		...
//		n.Send(m.SID, typ, body) // back to the proxy m came from
//	}
//
// Dial keeps one DEALER socket per endpoint, all with the node's name, and
// Send puts each reply on the socket its session's messages came from (a
// single DEALER connected to several proxies would deal replies round
// robin, and a reply that reaches the wrong proxy is dropped there). See
// Send for the table that remembers which socket a session belongs to and
// how it stays bounded. Adding a proxy means restarting its nodes with
// one more endpoint; a proxy that is down only costs its own sessions
// (ZeroMQ reconnects in the background; the other proxies go on). With
// Dial and Recv that holds while the caller never waits on one socket
// (SetSendTimeout); Serve sees to it itself (below).
//
// # One name per process
//
// The node name is a routing identity: a proxy's ROUTER knows one
// connection per name, and a second process that connects under a name
// already in use takes the connection over (ZMQ_ROUTER_HANDOVER), so the
// first stops getting requests and its sessions in flight break. Run
// every process of an application under its own name and list each one in
// the virtual host, the same list in every proxy's config:
//
//	[blastbeat:app.example.com]
//	node = app1
//	node = app2
//	node = app3
//
// with `node.Dial("app2", endpoints...)` in the second process, and so on.
// Each proxy then spreads new sessions over the processes (fewest open
// sessions first) and skips the ones that stop answering its pings.
//
// # Serving a net/http Handler
//
// Serve runs any http.Handler (a ServeMux, a framework's router, an
// httputil.ReverseProxy) as a node, until its context is done:
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	err := node.Serve(ctx, node.ServeConfig{
//		Identity:  "app1",
//		Endpoints: []string{"tcp://proxy-a:5000", "tcp://proxy-b:5000"},
//		WebSocket: func(ws *node.WebSocket) { ... }, // optional
//	}, mux)
//
// Each request runs its handler on a goroutine of its own (at most
// ServeConfig.MaxConcurrent at once; up to ServeConfig.MaxWaiting more
// wait in order, and beyond those the node answers 503). One goroutine
// owns the sockets: it answers pings at once whatever the handlers and
// the proxies do, and the handlers hand it their output.
//
// That goroutine never waits on a socket. A proxy that is stuck, or dead
// or partitioned without the node knowing yet, takes what ZeroMQ's pipe
// to it holds (1000 messages) and then nothing; from then on what the
// node has for that proxy waits in the node, and the node goes on
// answering the other proxies' pings and serving their sessions: a proxy
// that takes nothing only costs its own sessions. Their writes wait (as
// for credit) and resume, in order, as soon as the proxy takes messages
// again; a session whose proxy took none of its messages for
// ServeConfig.SendTimeout (5 s) is ended, its writes failing with
// ErrSessionEnded. The node's messages outside a session (`end`,
// `retry`, its own 400 and 503 answers) wait for such a proxy too, in
// order, at most ServeConfig.SendBacklog (256) of them and for
// SendTimeout at most, and are then dropped (the count is logged); a
// pong it does not take at once is dropped (the proxy pings again).
//
// The *http.Request is what net/http's server would make of the same
// request, built from the uwsgi environ (or the raw head of a `format =
// headers` virtual host): Method, URL and RequestURI, Proto (HTTP/2.0
// for an HTTP/2 stream), Host, Header (from the HTTP_* vars,
// CONTENT_TYPE and CONTENT_LENGTH; the proxy joined repeated fields with
// ", "), ContentLength (-1 and TransferEncoding ["chunked"] for a body of
// unknown length), Close, RemoteAddr (REMOTE_ADDR:REMOTE_PORT), and a
// non-nil but empty TLS when the client came over HTTPS (the TLS session
// is the proxy's). RequestEnviron returns the environ itself. The Body
// streams as the proxy's `body` messages come (http.NoBody without a
// body); it holds at most ServeConfig.MaxBuffer unread bytes, since
// nothing in the protocol slows a proxy down: past that the request
// fails (ErrBufferFull; 413 if no response went out); past
// ServeConfig.MaxBufferTotal for all sessions together, the session
// holding the most fails so, and what it held is freed. A body the handler
// leaves unread is dropped as it arrives (past 256 KiB more of it the
// session is ended, closing the client's connection).
//
// The http.ResponseWriter sends the head as a `headers` message and:
//
//   - a response the handler writes whole (at most 32 KiB, no Flush) as
//     that one message, body included, with its Content-Length;
//   - with a Content-Length the handler set, `body` messages;
//   - else `chunk` messages and the final empty chunk; Flush (it
//     implements http.Flusher, and FlushError for
//     http.ResponseController) sends what was written so far;
//   - nothing in the body of a HEAD, 1xx, 204 or 304 response (Write
//     fails with http.ErrBodyNotAllowed for the statuses, as net/http's).
//
// WriteHeader with a 1xx code other than 101 (103 Early Hints) sends that
// head at once; the proxy passes it to HTTP/1.1 and HTTP/2 clients. A
// second final WriteHeader is logged and ignored. Content-Type is sniffed
// when the handler set none, as net/http does; hop-by-hop fields are
// dropped, and Connection: close makes the proxy close the client's
// connection after the response. Trailers are not sent (the protocol has
// none). Writes wait for credit: a handler writes at the pace of its
// client. Hijack (http.Hijacker, http.ResponseController) fails with
// ErrHijack: the client connection is the proxy's, and WebSocket sessions
// have their own callback. EnableFullDuplex succeeds (the body can always
// be read while the response is written); read and write deadlines are
// not supported (use the request's context).
//
// The request's context is cancelled when the client goes away (the
// proxy's `end`), when Serve's stop reaches ServeConfig.ShutdownTimeout
// (it lets requests in flight finish: watch the context given to Serve
// to see the stop begin), and when the handler returns; writes
// then fail with ErrSessionEnded. Besides SendTimeout (above), two
// timeouts end the sessions of a proxy that is gone, which sends no
// `end`: ServeConfig.IdleTimeout
// (5 minutes) a session that has waited that long on its proxy (for
// credit, for request body) and heard nothing from it since the wait
// began, and ServeConfig.ProxyTimeout (30 s) every session of a proxy
// that sent nothing, not even a ping, for that long (a proxy pings its
// nodes every few seconds however idle, so one that only pings keeps its
// sessions). Either way the handler's context is cancelled, its reads
// and writes fail with ErrSessionEnded, and nothing of the session stays
// in the node. A handler that panics is logged to
// ServeConfig.ErrorLog; its client gets a 500 when no head went out,
// else the session is ended (with HTTP/1.x the connection closes).
//
// A request that asks for a WebSocket (the proxy has already answered its
// handshake) goes to ServeConfig.WebSocket instead, or is ended at once
// when that is nil: WebSocket.Receive returns each client message (text
// or binary) and io.EOF once the client closed the session, Send sends
// one, Close ends the session with a close frame (1000), CloseWith with
// a code and reason of the node's (4001 "unauthorized"). Serve's own
// endings say why: its stop closes running WebSockets with 1001 (come
// back, to another node), a panicking callback with 1011, messages past
// MaxBuffer unreceived with 1009, a WebSocket without a callback with
// 1011. A Send whose
// context ends before its message went out drops the message (nothing of
// it stays queued): a timeout per message is how to drop messages to a
// client that reads too slowly.
//
// When ctx is done, Serve drains as net/http's Shutdown does: requests in
// flight finish (their contexts are not cancelled by the stop), requests
// whose handler had not started and new ones go back to the proxy with
// `retry` (another node of the virtual host serves them), WebSockets are
// closed with 1001; after ServeConfig.ShutdownTimeout what is left is cut
// (contexts cancelled, sessions ended). Then Serve closes its sockets and
// returns nil.
package node
