package server

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"

	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
	"github.com/blastbeat/blastbeat/zmqbridge"
)

// replyType is a backend→proxy message type.
type replyType uint8

const (
	rHeaders replyType = iota + 1
	rUwsgi
	rBody
	rChunk
	rEnd
	rWebSocket
	rWebSocketBinary
	rRetry
	rUndeliverable // synthetic: the bridge could not send to the node
)

// reply is one message for a session of a loop.
type reply struct {
	typ  replyType
	node *session.Node
	sid  session.SID
	body []byte
	// buf is the bridge's receive buffer body lies in, of which the reply
	// holds a reference (nil: body is not pooled). The loop gives it back
	// once the output that may point into it went to the transports.
	buf *bufpool.Buf
	// rUndeliverable only: the request the lost message belonged to, and
	// whether it was the request head (else the node has the head).
	tag      uint32
	headLost bool
}

// loop is BlastBeat's state beside one gnet event loop.
type loop struct {
	// Immutable.
	s       *Server
	idx     int
	metrics *loopMetrics

	el       atomic.Pointer[gnet.EventLoop] // set when the loop's first conn opens
	wantRoom atomic.Bool                    // conns of this loop wait for ring room
	// swept is the coarse clock at the loop's last sweep (or when it got
	// its event loop): Server.Stalled reads it.
	swept atomic.Int64

	// Shared with the bridge goroutine, guarded by mu (a leaf lock).
	mu        sync.Mutex
	inbox     []reply
	scheduled bool // a drain runnable is queued

	// Owned by the loop goroutine.
	table         *session.Table[*conn]
	spare         []reply // the drained inbox, reused
	dirty         []*conn // conns with output queued in this drain
	spareDirty    []*conn
	resume        []*conn // conns with pipelined requests to parse after flush
	parsers       spares[*protocol.RequestParser]
	roomWait      []*conn              // conns with messages the ring refused
	tlsScratch    []byte               // plaintext of one OnTraffic (tlsTransport)
	handshakes    int                  // TLS handshakes running on this loop
	hsWait        []*conn              // TLS conns waiting for a handshake slot
	hsEvict       int                  // silent handshakes this sweep may close: one per live waiter
	orphans       []zmqbridge.Msg      // `end`s of closed conns the ring refused
	orphanN       []int32              // orphans by node index (orphanFor)
	msg           zmqbridge.Msg        // conn.sendTo's scratch message
	endMsg        zmqbridge.Msg        // OnClose's scratch `end`
	retrySlices   spares[[]retryPiece] // closed conns' retry slices, for new ones
	inTurn        bool                 // between gnet's OnTurnStart and OnTurnEnd
	turnClock     int64                // unix ns, read at the turn's first clock(); 0: not yet
	kick          bool                 // messages queued in this turn: wake the bridge at its end
	arena         []byte               // output the proxy writes itself (arena.go)
	arenaFull     [][]byte             // arena chunks filled this turn
	arenaFree     [][]byte             // arena chunks to reuse
	held          []*bufpool.Buf       // receive buffers replies of this turn lie in
	readBufs      []*bufpool.Buf       // this turn's read targets (readtarget.go)
	bodyAcc       []byte               // small body pieces httpTraffic joins (flushBody)
	badTextLogged int64                // when a node's invalid UTF-8 text was last logged (badNodeText)
	rbuf          *bufpool.Buf         // the target of the read in progress, for rbufFor
	rbufFor       *conn
	outSlices     spares[[][]byte]     // conn.out slices for reuse (outSlice)
	h2Strings     protocol.StringCache // HTTP/2 response field values (HPACK)
	h2Closed      []*h2Stream          // streams closed this turn (h2pool.go)
	h2Free        spares[*h2Stream]    // and those reusable
	flushing      int                  // flush's nesting depth
	drainFn       gnet.RunnableFunc
	retryFn       gnet.RunnableFunc
}

func newLoop(s *Server, idx, limit int) *loop {
	l := &loop{s: s, idx: idx, table: session.NewTable[*conn](idx, limit),
		metrics: &loopMetrics{}}
	l.drainFn = func(context.Context) error { l.drain(); return nil }
	l.retryFn = func(context.Context) error { l.retryRoom(); return nil }
	return l
}

func (l *loop) setEventLoop(el gnet.EventLoop) {
	l.swept.Store(l.s.now())
	l.el.Store(&el)
}

// execute runs fn on the loop. Safe from any goroutine.
func (l *loop) execute(fn func()) (queued bool) {
	if el := l.el.Load(); el != nil {
		return (*el).Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			fn()
			return nil
		})) == nil
	}
	return false
}

// postBatch appends a batch of replies under one lock; it reports
// whether the loop must be woken.
func (l *loop) postBatch(rs []reply) bool {
	l.mu.Lock()
	l.inbox = append(l.inbox, rs...)
	wake := !l.scheduled
	l.scheduled = true
	l.mu.Unlock()
	return wake
}

// wake schedules a drain; called by the bridge goroutine after post.
func (l *loop) wake() {
	if el := l.el.Load(); el != nil && (*el).Execute(context.Background(), l.drainFn) == nil {
		return
	}
	// No gnet loop yet (so no session can exist here), or the engine is
	// shutting down: drop what was posted, and give its bytes back.
	l.mu.Lock()
	var bytes int64
	for i := range l.inbox {
		bytes += inboxCost(l.inbox[i].body)
		l.inbox[i].buf.Release() // the receive buffer's reference (nil-safe)
	}
	clear(l.inbox)
	l.inbox, l.scheduled = l.inbox[:0], false
	l.mu.Unlock()
	l.s.inboxed.Add(-bytes)
	l.s.stats.Stale.Add(1)
}

// drain applies every queued reply, then flushes each touched connection
// with one write.
func (l *loop) drain() {
	l.turnClock = 0 // replies drained in one turn may come long after its start
	l.mu.Lock()
	batch := l.inbox
	l.inbox, l.spare = l.spare[:0], nil
	l.scheduled = false
	l.mu.Unlock()
	var bytes int64
	// As one flush: a flush reached from inside apply must not recycle
	// the arena (a piece may be between arenaRoom and used) nor give back
	// the receive buffers of the replies still to apply.
	l.flushing++
	for i := range batch {
		r := &batch[i]
		bytes += inboxCost(r.body)
		if c, ok := l.table.Get(&r.sid); ok {
			c.apply(r)
		} else {
			l.s.stats.Stale.Add(1)
		}
		l.hold(r.buf)
		batch[i] = reply{}
	}
	l.spare = batch[:0]
	l.s.inboxed.Add(-bytes)
	l.flushing--
	l.flush()
}

// hold keeps a reply's receive buffer until the output queued this turn
// was written: a body may be queued by reference (conn.queue). The
// replies of one bridge batch share a buffer, so the reference of a
// reply whose buffer is held already is given back at once.
func (l *loop) hold(b *bufpool.Buf) {
	switch k := len(l.held); {
	case b == nil:
	case k > 0 && l.held[k-1] == b:
		b.Release()
	default:
		l.held = append(l.held, b)
	}
}

// releaseHeld gives back the receive buffers held (see hold): every
// byte queued went to its transport, which copied what it did not write.
func (l *loop) releaseHeld() {
	for i, b := range l.held {
		b.Release()
		l.held[i] = nil
	}
	l.held = l.held[:0]
}

// markDirty queues c for the flush at the end of this loop turn.
func (l *loop) markDirty(c *conn) {
	if !c.dirty {
		c.dirty = true
		l.dirty = append(l.dirty, c)
	}
}

// flush writes every dirty connection's queued output.
func (l *loop) flush() {
	l.flushing++
	// Detach the list: a write error closes a conn synchronously, and its
	// OnClose may drain and flush again (re-entrantly) before we return.
	for len(l.dirty) > 0 {
		dirty := l.dirty
		l.dirty, l.spareDirty = l.spareDirty[:0], nil
		for i, c := range dirty {
			dirty[i] = nil
			c.dirty = false
			c.flush()
		}
		l.spareDirty = dirty[:0]
	}
	for k := len(l.resume); k > 0; k = len(l.resume) {
		c := l.resume[k-1]
		l.resume[k-1] = nil
		l.resume = l.resume[:k-1]
		if !c.closed {
			c.onTraffic()
		}
	}
	if l.flushing--; l.flushing == 0 && len(l.dirty) == 0 {
		// Every queued byte went to its transport: the arena is free, and
		// so are the receive buffers replies pointed into.
		l.recycleArena()
		l.releaseHeld()
		l.recycleH2Streams()
	}
}

// outSlice lends a connection the slice its output is queued in until
// the flush; putOutSlice takes it back.
func (l *loop) outSlice() [][]byte {
	if s, ok := l.outSlices.take(); ok {
		return s
	}
	return make([][]byte, 0, 8)
}

// Bounds of the output slices a loop keeps for reuse: how many, and how
// many pieces one may hold (a bigger one, from a burst of many pieces,
// is left to the collector).
const (
	maxSpareOutSlices = 1024
	maxKeptOut        = 64
)

func (l *loop) putOutSlice(s [][]byte) {
	if s == nil || cap(s) > maxKeptOut || l.outSlices.len() >= maxSpareOutSlices {
		return
	}
	clear(s)
	l.outSlices.put(s[:0], maxSpareOutSlices)
}

// retrySlice lends a new connection the slice its first request is kept
// in for retry (OnClose gives it back): a connection per request costs
// no allocation for it.
func (l *loop) retrySlice() []retryPiece {
	if s, ok := l.retrySlices.take(); ok {
		return s
	}
	return make([]retryPiece, 0, 4)
}

// Bounds of the retry slices a loop keeps for reuse: how many, and how
// many pieces one may hold (a request kept in many body pieces leaves its
// slice to the collector).
const (
	maxSpareRetrySlices = 1024
	maxKeptRetry        = 16
)

// putRetrySlice takes back a closed connection's retry slice (dropped:
// no piece left), within the bounds above.
func (l *loop) putRetrySlice(s []retryPiece) {
	if s == nil || cap(s) > maxKeptRetry || l.retrySlices.len() >= maxSpareRetrySlices {
		return
	}
	clear(s[:cap(s)])
	l.retrySlices.put(s[:0], maxSpareRetrySlices)
}

// parser lends a request parser; parsers are kept only by connections in
// the middle of a request, so idle connections hold none.
func (l *loop) parser() *protocol.RequestParser {
	if p, ok := l.parsers.take(); ok {
		return p
	}
	return protocol.NewRequestParser(l.s.limits)
}

// maxSpareParsers bounds the parsers a loop keeps for reuse.
const maxSpareParsers = 1024

func (l *loop) releaseParser(p *protocol.RequestParser) {
	if l.parsers.len() < maxSpareParsers {
		p.Init(l.s.limits)
		l.parsers.put(p, maxSpareParsers)
	}
}

// sweep enforces the timeouts of every connection of the loop.
func (l *loop) sweep() {
	now := l.s.now()
	l.swept.Store(now)
	l.hsEvict = l.liveHandshakeWaiters()
	l.table.Range(func(sid *session.SID, c *conn) bool {
		if *sid == c.sid { // once per conn, not per HTTP/2 stream
			c.checkTimeouts(now)
		}
		return true
	})
	l.flush()
}

// closeIdle closes every connection not in the middle of a request; used
// when the server drains.
func (l *loop) closeIdle() {
	defer l.flush()
	l.table.Range(func(sid *session.SID, c *conn) bool {
		if *sid == c.sid {
			c.m.drainIdle(c)
		}
		return true
	})
}

// leaveH2 sends every HTTP/2 connection of the loop a graceful GOAWAY
// (shutdown-delay: Server.Leaving).
func (l *loop) leaveH2() {
	defer l.flush()
	l.table.Range(func(sid *session.SID, c *conn) bool {
		if *sid == c.sid && c.m == (h2{}) && !c.closed {
			c.h2GoAway(protocol.H2NoError, false)
		}
		return true
	})
}

// waitRoom registers c, whose message m was refused, to be retried when
// there is room for it.
func (l *loop) waitRoom(c *conn, m *zmqbridge.Msg) {
	if !c.inRoomWait {
		c.inRoomWait = true
		l.roomWait = append(l.roomWait, c)
	}
	l.askRoom(m)
}

// orphan keeps the `end` of a closed connection that the ring refused.
// A loop keeps at most ring-size of them: past that (a node stuck for
// long while its clients come and go) the oldest is dropped and counted
// (EndsDropped), as the bridge gives up what a stuck node holds past
// send-timeout.
func (l *loop) orphan(m zmqbridge.Msg) {
	if len(l.orphans) >= max(1, l.s.opts.RingSize) {
		l.dropOrphan()
	}
	l.orphans = append(l.orphans, m)
	if m.Node >= len(l.orphanN) {
		l.orphanN = append(l.orphanN, make([]int32, m.Node+1-len(l.orphanN))...)
	}
	l.orphanN[m.Node]++
	l.askRoom(&m)
}

// dropOrphan gives up the oldest orphaned `end` of the node that has the
// most (the stuck one, not a healthy node's behind a ring full a moment).
func (l *loop) dropOrphan() {
	k := 0
	for n, c := range l.orphanN {
		if c > l.orphanN[k] {
			k = n
		}
	}
	i := slices.IndexFunc(l.orphans, func(m zmqbridge.Msg) bool { return m.Node == k })
	switch {
	case i < 0:
		return // never: orphanN counts l.orphans
	case i == 0:
		// The usual case (the stuck node's ends fill the list): off the
		// front, not a copy of the whole list for every close past it.
		l.orphans[0] = zmqbridge.Msg{}
		l.orphans = l.orphans[1:]
	default:
		l.orphans = slices.Delete(l.orphans, i, i+1)
	}
	l.orphanN[k]--
	l.s.stats.EndsDropped.Add(1)
}

// orphanFor reports whether an orphaned `end` for node n waits: a new
// message for n must go after it. Every message the loop sends asks.
func (l *loop) orphanFor(n int) bool {
	return n >= 0 && n < len(l.orphanN) && l.orphanN[n] > 0
}

// countOrphans recounts the orphans by node after some went.
func (l *loop) countOrphans() {
	clear(l.orphanN)
	for i := range l.orphans {
		l.orphanN[l.orphans[i].Node]++
	}
}

// askRoom asks the bridge for a Room call once m can go. The loop's
// flag is set first, so the Room that follows always finds it.
func (l *loop) askRoom(m *zmqbridge.Msg) {
	l.wantRoom.Store(true)
	l.s.ring.WantRoomFor(m.Node)
}

// room is called by the bridge goroutine when the ring has room again.
func (l *loop) room() {
	if l.wantRoom.Load() {
		if el := l.el.Load(); el != nil {
			_ = (*el).Execute(context.Background(), l.retryFn)
		}
	}
}

// retryRoom pushes what waits for the ring, oldest first, and resumes
// the connections whose messages all went.
func (l *loop) retryRoom() {
	l.wantRoom.Store(false)
	var stuck []int
	if len(l.orphans) > 0 {
		l.orphans = retryMsgs(l.s.ring, l.orphans, &stuck)
		l.countOrphans()
	}
	waiting := l.roomWait
	l.roomWait = nil
	var again []*conn
	for i, c := range waiting {
		waiting[i] = nil
		c.inRoomWait = false
		if c.closed || len(c.outq) == 0 {
			continue
		}
		if !c.retryOut(&stuck) {
			c.inRoomWait = true
			again = append(again, c)
		}
		if c.m.readWaits(c) {
			continue
		}
		// All went, or what stays waits only for stuck nodes (HTTP/2).
		c.updateReadPause()
		if c.inputDue() {
			l.resume = append(l.resume, c)
		}
	}
	l.roomWait = append(again, l.roomWait...)
	for _, c := range l.roomWait {
		c.askRoomAll()
	}
	// Room for every node with orphaned ends, not only the first's: a
	// healthy node's may wait behind a stuck one's.
	if len(l.orphans) > 0 {
		for n, k := range l.orphanN {
			if k > 0 {
				l.wantRoom.Store(true)
				l.s.ring.WantRoomFor(n)
			}
		}
	}
	l.flush()
}

// admitHandshake lets c's TLS handshake start, or makes it wait (unread)
// while the loop runs its share of max-tls-handshakes; it reports whether
// it may start. It is asked once the client's first bytes came: a socket
// that sends nothing holds no slot (idle sockets would lock real clients
// out), only its place under max-connections until tls-handshake-timeout.
// An admitted handshake gets the whole tls-handshake-timeout from then.
func (l *loop) admitHandshake(c *conn) bool {
	if l.handshakes >= max(1, l.s.opts.MaxTLSHandshakes/len(l.s.loops)) {
		c.tls.queued = true
		l.hsWait = append(l.hsWait, c)
		c.updateReadPause()
		return false
	}
	l.takeHandshakeSlot(c)
	return true
}

// liveHandshakeWaiters counts the connections of hsWait that are still
// open (a closed one stays there until a slot frees).
func (l *loop) liveHandshakeWaiters() int {
	n := 0
	for _, c := range l.hsWait {
		if !c.closed && !c.closing {
			n++
		}
	}
	return n
}

// takeHandshakeSlot counts c's handshake in the loop's share; it gets the
// whole tls-handshake-timeout from now.
func (l *loop) takeHandshakeSlot(c *conn) {
	l.handshakes++
	c.tls.counted = true
	c.tls.slotAt = l.s.now()
	c.headBy = c.tls.slotAt + int64(l.s.opts.TLSHandshakeTimeout)
}

// handshakeOver frees c's handshake slot (done, failed or closed) for the
// next waiting connection.
func (l *loop) handshakeOver(c *conn) {
	if !c.tls.counted {
		return
	}
	c.tls.counted = false
	l.handshakes--
	for len(l.hsWait) > 0 {
		next := l.hsWait[0]
		l.hsWait[0] = nil
		l.hsWait = l.hsWait[1:]
		next.tls.queued = false
		if next.closed || next.closing {
			continue
		}
		l.takeHandshakeSlot(next)
		next.updateReadPause() // resumes reading
		if next.tls.Conn.InboundBuffered() > 0 {
			// Its first bytes wait in gnet's buffer: OnTraffic runs for
			// them soon, also when this runs from another's OnClose.
			_ = next.tls.Conn.Wake(nil)
		}
		return
	}
}

// trySend puts m on the ring for the bridge. Within a turn of the loop
// (handler.OnTurnStart to OnTurnEnd, gnet patch 12) the bridge is woken
// once, at the turn's end, for every message the turn queued: a turn that
// reads requests from several clients, or a drain that answers several,
// costs the bridge one wake-up, not one each. Outside a turn (gnet closing
// the connections of a stopping loop, after its last turn ended) it is
// woken at once.
func (l *loop) trySend(m *zmqbridge.Msg) bool {
	if !l.inTurn {
		return l.s.ring.TrySend(m)
	}
	if !l.s.ring.TrySendDeferred(m) {
		return false
	}
	l.kick = true
	return true
}
