package server

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
)

// The access log (access-log, access-log-format): one line per request,
// nginx's combined format with BlastBeat's fields after it, or JSON. Lines
// are formatted on the loop into the loop's own buffer and written by one
// goroutine, off every loop, at least every accessLogFlushEvery.

// Access log tuning, not worth a config key.
const (
	// accessLogFlushEvery bounds how long a line waits in memory.
	accessLogFlushEvery = 200 * time.Millisecond
	// accessLogKickBytes wakes the writer early when a loop's buffer
	// holds this much.
	accessLogKickBytes = 64 << 10
	// accessLogCloseWait bounds how long the shutdown waits for the
	// writer's last lines.
	accessLogCloseWait = 5 * time.Second
)

// accessEntry is what a request's line needs from its head, copied.
type accessEntry struct {
	remote, method, uri, proto, referer, agent string
}

func newAccessEntry(r *protocol.Request, proto string, ci *protocol.ConnInfo) *accessEntry {
	e := &accessEntry{remote: ci.RemoteIP(), method: string(r.Method), uri: string(r.URI), proto: proto}
	for _, h := range r.Headers {
		switch {
		case protocol.EqualFold(h.Name, "referer"):
			e.referer = string(h.Value)
		case protocol.EqualFold(h.Name, "user-agent"):
			e.agent = string(h.Value)
		}
	}
	return e
}

// accessLog is the writer.
type accessLog struct {
	json     bool
	maxBytes int    // per loop's buffer (access-log-buffer)
	path     string // "" for stderr
	bufs     []accessBuf
	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}

	out  io.Writer // the writer goroutine's
	file *os.File  // out when path is set; the writer goroutine's
	// torn: a failed write stopped inside a line (the writer
	// goroutine's); the next write starts with a newline, so that the
	// torn line's head does not swallow the next line.
	torn bool
	// dropped counts lines lost to a full buffer (counted by the loop
	// that drops them, at once: not when the writer, which may be what
	// is stuck, gets to it) or to a failed write.
	dropped atomic.Uint64

	mu   sync.Mutex // guards next: no I/O is done under it
	next *os.File   // Reopen's file, for the writer to switch to

	// Failed writes are logged (the writer goroutine's fields): the
	// first at once, then one line per accessLogErrorEvery with the
	// lines lost since, and the recovery.
	dest     string
	log      *slog.Logger // nil: not logged
	failing  bool
	failedAt time.Time
	lost     uint64 // lines lost since the last line logged
}

// accessLogErrorEvery bounds how often failed access log writes are
// logged while they go on failing.
const accessLogErrorEvery = time.Minute

// accessBuf is one loop's pending lines.
type accessBuf struct {
	mu sync.Mutex
	b  []byte
	_  [64]byte
}

// newAccessLog opens the log: "stderr", "stdout", or a file appended to.
// maxBytes bounds each loop's buffer (access-log-buffer): past it (the
// file is slower than the traffic) lines are dropped and counted.
func newAccessLog(dest, format string, loops, maxBytes int, stderr io.Writer, log *slog.Logger) (*accessLog, error) {
	a := &accessLog{json: format == "json", bufs: make([]accessBuf, loops), maxBytes: maxBytes, dest: dest, log: log,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	switch dest {
	case "stderr":
		a.out = stderr
	case "stdout":
		a.out = os.Stdout
	default:
		a.path = dest
		f, err := a.open()
		if err != nil {
			return nil, err
		}
		a.file, a.out = f, f
	}
	go a.run()
	return a, nil
}

func (a *accessLog) open() (*os.File, error) {
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("access-log: %w", err)
	}
	return f, nil
}

// Reopen reopens the file (logrotate's SIGUSR1); stderr stays. The
// writer goroutine switches to the new file before its next write and
// closes the old one: Reopen never waits for a write, which a slow or
// hung file system could hold up (and with it the signals' goroutine).
func (a *accessLog) Reopen() error {
	if a.path == "" {
		return nil
	}
	f, err := a.open()
	if err != nil {
		return err
	}
	a.mu.Lock()
	unused := a.next
	a.next = f
	a.mu.Unlock()
	if unused != nil {
		_ = unused.Close() // two reopens before the writer took the first
	}
	select {
	case a.kick <- struct{}{}:
	default:
	}
	return nil
}

// switchFile takes Reopen's file, if any; on the writer goroutine.
func (a *accessLog) switchFile() {
	a.mu.Lock()
	f := a.next
	a.next = nil
	a.mu.Unlock()
	if f != nil {
		old := a.file
		a.file, a.out, a.torn = f, f, false
		_ = old.Close()
	}
}

// write formats one line into loop i's buffer. Runs on the loop.
func (a *accessLog) write(i int, ex *exchange, node *session.Node, sid session.SID, d time.Duration, t time.Time) {
	e := ex.entry
	vhost, nodeName := "-", "-"
	if ex.vhost != nil {
		vhost = ex.vhost.Name
	}
	if node != nil {
		nodeName = node.Name
	}
	var sidHex [32]byte
	hex.Encode(sidHex[:], sid[:])
	buf := &a.bufs[i]
	buf.mu.Lock()
	if len(buf.b) > a.maxBytes {
		buf.mu.Unlock()
		a.dropped.Add(1)
		return
	}
	b := buf.b
	if a.json {
		line, _ := json.Marshal(accessJSON{Time: t.UTC().Format(time.RFC3339Nano), Remote: e.remote,
			Method: e.method, URI: e.uri, Proto: e.proto, Status: ex.status, Bytes: ex.bytes,
			Referer: e.referer, Agent: e.agent, VHost: vhost, Node: nodeName, SID: string(sidHex[:]),
			DurationMS: float64(d.Microseconds()) / 1000})
		b = append(append(b, line...), '\n')
	} else {
		b = append(b, e.remote...)
		b = append(b, " - - ["...)
		b = t.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
		b = append(b, "] \""...)
		b = appendLogString(b, e.method)
		b = append(b, ' ')
		b = appendLogString(b, e.uri)
		b = append(b, ' ')
		b = appendLogString(b, e.proto)
		b = append(b, "\" "...)
		b = strconv.AppendInt(b, int64(ex.status), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, ex.bytes, 10)
		b = append(b, " \""...)
		b = appendLogString(b, orDash(e.referer))
		b = append(b, "\" \""...)
		b = appendLogString(b, orDash(e.agent))
		b = append(b, "\" vhost="...)
		b = appendLogString(b, vhost)
		b = append(b, " node="...)
		b = appendLogString(b, nodeName)
		b = append(b, " sid="...)
		b = append(b, sidHex[:]...)
		b = append(b, " rt="...)
		b = strconv.AppendFloat(b, d.Seconds(), 'f', 6, 64)
		b = append(b, '\n')
	}
	buf.b = b
	kick := len(b) > accessLogKickBytes
	buf.mu.Unlock()
	if kick {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

type accessJSON struct {
	Time       string  `json:"time"`
	Remote     string  `json:"remote"`
	Method     string  `json:"method"`
	URI        string  `json:"uri"`
	Proto      string  `json:"proto"`
	Status     int     `json:"status"`
	Bytes      int64   `json:"bytes"`
	Referer    string  `json:"referer,omitempty"`
	Agent      string  `json:"user_agent,omitempty"`
	VHost      string  `json:"vhost"`
	Node       string  `json:"node"`
	SID        string  `json:"sid"`
	DurationMS float64 `json:"duration_ms"`
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendLogString appends s with '"', '\\' and control bytes escaped as
// nginx does (\xHH), so a line cannot be forged by a client.
func appendLogString(b []byte, s string) []byte {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c >= 0x7f {
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// run writes the loops' lines until Close.
func (a *accessLog) run() {
	defer close(a.done)
	t := time.NewTicker(accessLogFlushEvery)
	defer t.Stop()
	var spare []byte
	for {
		select {
		case <-a.stop:
			a.flush(&spare)
			return
		case <-t.C:
		case <-a.kick:
		}
		a.flush(&spare)
	}
}

// flush swaps out each loop's buffer and writes it.
func (a *accessLog) flush(spare *[]byte) {
	a.switchFile()
	for i := range a.bufs {
		buf := &a.bufs[i]
		buf.mu.Lock()
		b := buf.b
		buf.b = (*spare)[:0]
		buf.mu.Unlock()
		if len(b) > 0 {
			a.writeLines(b)
		}
		if cap(b) > accessLogKickBytes*4 {
			b = nil // a burst's buffer is not kept
		}
		*spare = b
	}
}

// writeLines writes whole lines. A full disk, an I/O error: the lines
// not written count as dropped (access_log_dropped_total), and a line
// the failed write tore is ended before the next write.
func (a *accessLog) writeLines(b []byte) {
	lost, err := a.writeOut(b)
	a.report(lost, err, time.Now())
}

// writeOut writes b and returns the lines it lost.
func (a *accessLog) writeOut(b []byte) (lost uint64, err error) {
	if a.torn {
		if _, err := a.out.Write([]byte{'\n'}); err != nil {
			lost = uint64(bytes.Count(b, []byte{'\n'}))
			a.dropped.Add(lost)
			return lost, err
		}
		a.torn = false
	}
	n, err := a.out.Write(b)
	if err == nil {
		return 0, nil
	}
	n = min(max(n, 0), len(b))
	lost = uint64(bytes.Count(b[n:], []byte{'\n'}))
	a.dropped.Add(lost)
	a.torn = n > 0 && b[n-1] != '\n'
	return lost, err
}

// report logs a failed write (the first of a run at once, then at most
// one line per accessLogErrorEvery, with the lines lost since) and the
// first write that works again.
func (a *accessLog) report(lost uint64, err error, now time.Time) {
	if a.log == nil {
		return
	}
	if err == nil {
		if a.failing {
			a.log.Info("access log: writing again", "access-log", a.dest, "lines-lost", a.lost)
			a.failing, a.lost = false, 0
		}
		return
	}
	a.lost += lost
	if a.failing && now.Sub(a.failedAt) < accessLogErrorEvery {
		return
	}
	a.log.Error("access log: write failed, lines dropped (access_log_dropped_total)", "access-log", a.dest, "err", err, "lines-lost", a.lost)
	a.failing, a.failedAt, a.lost = true, now, 0
}

// Close writes what is left and closes the file. It waits for the
// writer at most accessLogCloseWait: a write that a hung file system
// holds up must not hold up the shutdown (the file is then left to the
// process's exit).
func (a *accessLog) Close() {
	close(a.stop)
	select {
	case <-a.done:
	case <-time.After(accessLogCloseWait):
		return
	}
	a.switchFile()
	if a.file != nil {
		_ = a.file.Close()
	}
}

// ReopenLogs reopens the access log file (SIGUSR1, after logrotate moved
// it). Safe from any goroutine.
func (s *Server) ReopenLogs() error {
	if s.alog == nil {
		return nil
	}
	return s.alog.Reopen()
}
