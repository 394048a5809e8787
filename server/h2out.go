package server

import "github.com/blastbeat/blastbeat/protocol"

// The HTTP/2 frames the proxy writes per request are built in the loop's
// arena (arena.go), as HTTP/1.1's heads and chunk headers are: no
// allocation per HEADERS, DATA or WINDOW_UPDATE frame.

// h2WindowUpdateLen is a WINDOW_UPDATE frame's size.
const h2WindowUpdateLen = protocol.H2FrameHeaderLen + 4

// h2QueueHeaders queues a field block as HEADERS (and CONTINUATION frames
// past the client's SETTINGS_MAX_FRAME_SIZE).
func (c *conn) h2QueueHeaders(id uint32, endStream bool, block []byte) {
	maxFrame := int(c.h2.maxFrame)
	if maxFrame <= 0 {
		maxFrame = protocol.H2DefaultMaxFrameSize
	}
	frames := max(1, (len(block)+maxFrame-1)/maxFrame)
	room := c.l.arenaRoom(frames*protocol.H2FrameHeaderLen + len(block))
	c.queueOwn(c.l.used(protocol.AppendH2HeaderBlock(room, id, endStream, block, maxFrame)))
}

// h2QueueData queues one DATA frame: a small payload copied after its
// frame header, so that frames in a row go out as one piece; a big one
// written from where it lies, which lives until the turn's flush (a
// reply's receive buffer, or a stream's pending bytes).
func (c *conn) h2QueueData(id uint32, endStream bool, data []byte) {
	if len(data) <= copyOutMax {
		room := c.l.arenaRoom(protocol.H2FrameHeaderLen + len(data))
		c.queueOwn(c.l.used(protocol.AppendH2Data(room, id, endStream, data)))
		return
	}
	c.queueOwn(c.l.used(protocol.AppendH2DataHeader(c.l.arenaRoom(protocol.H2FrameHeaderLen), id, endStream, len(data))))
	c.queue(data)
}
