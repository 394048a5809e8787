package protocol_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/blastbeat/blastbeat/protocol"
)

var h2ConnErrors = []*protocol.H2ConnError{
	protocol.ErrH2BadPreface, protocol.ErrH2FrameTooLarge, protocol.ErrH2FrameTooShort, protocol.ErrH2Padding,
	protocol.ErrH2DataStreamZero, protocol.ErrH2HeadersStreamZero, protocol.ErrH2PriorityStreamZero,
	protocol.ErrH2RSTStreamStreamZero, protocol.ErrH2RSTStreamLength, protocol.ErrH2SettingsStream,
	protocol.ErrH2SettingsAckLength, protocol.ErrH2SettingsLength, protocol.ErrH2SettingsEnablePush,
	protocol.ErrH2SettingsWindowSize, protocol.ErrH2SettingsMaxFrameSize, protocol.ErrH2SettingsConnectProto,
	protocol.ErrH2SettingsNoPriorities, protocol.ErrH2PushPromise, protocol.ErrH2PingStream, protocol.ErrH2PingLength,
	protocol.ErrH2GoAwayStream, protocol.ErrH2GoAwayLength, protocol.ErrH2WindowUpdateLength,
	protocol.ErrH2WindowUpdateZeroConn, protocol.ErrH2ContinuationStreamZero, protocol.ErrH2ExpectedContinuation,
	protocol.ErrH2UnexpectedContinuation, protocol.ErrH2HeaderBlockTooLarge,
}

var h2StreamErrors = []*protocol.H2StreamError{protocol.ErrH2PriorityLength, protocol.ErrH2WindowUpdateZero}

// TestH2ErrorSentinels checks that every sentinel has a text, a registered
// code and a metric name of its own, and survives wrapping.
func TestH2ErrorSentinels(t *testing.T) {
	metrics := map[string]bool{}
	check := func(err error, code protocol.H2ErrCode, reason, metric string) {
		t.Helper()
		if !strings.HasPrefix(err.Error(), "protocol: http2: ") || !strings.Contains(err.Error(), code.String()) ||
			reason == "" || !strings.HasPrefix(metric, "h2_") || strings.Contains(code.String(), "unknown") {
			t.Errorf("%v: bad text, code or metric %q", err, metric)
		}
		if metrics[metric] {
			t.Errorf("metric %q used twice", metric)
		}
		metrics[metric] = true
		if !errors.Is(fmt.Errorf("wrapped: %w", err), err) {
			t.Errorf("%v: errors.Is fails through wrapping", err)
		}
	}
	for _, e := range h2ConnErrors {
		check(e, e.Code, e.Reason, e.Metric)
	}
	for _, e := range h2StreamErrors {
		if e.StreamID != 0 {
			t.Errorf("%v: sentinel with a stream", e)
		}
		check(e, e.Code, e.Reason, e.Metric)
	}
}

// TestH2StreamErrorIs checks that a stream error returned by the reader
// matches its sentinel and no other, and names its stream.
func TestH2StreamErrorIs(t *testing.T) {
	_, _, err := protocol.NewH2Reader(h2Lim).Feed(hx("000004 08 00 0000002a 00000000"))
	var se *protocol.H2StreamError
	if !errors.As(err, &se) || se.StreamID != 42 || se.Code != protocol.H2ProtocolError {
		t.Fatalf("got %#v", err)
	}
	if !errors.Is(err, protocol.ErrH2WindowUpdateZero) || errors.Is(err, protocol.ErrH2PriorityLength) {
		t.Fatalf("errors.Is does not tell the sentinels apart")
	}
	if se == protocol.ErrH2WindowUpdateZero || protocol.ErrH2WindowUpdateZero.StreamID != 0 {
		t.Fatalf("the sentinel itself was returned or changed")
	}
	// Another stream's error is not the sentinel's target.
	other := *se
	if errors.Is(err, &other) {
		t.Fatalf("a non-sentinel target matched")
	}
	if want := "protocol: http2: stream 42 error PROTOCOL_ERROR: WINDOW_UPDATE of 0 on a stream"; err.Error() != want {
		t.Fatalf("text %q", err.Error())
	}
}
