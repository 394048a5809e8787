package server

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/blastbeat/blastbeat/config"
)

func TestKeyName(t *testing.T) {
	for field, key := range map[string]string{"HTTP2MaxStreams": "http2-max-streams", "PingFreq": "ping-freq",
		"TLSHandshakeTimeout": "tls-handshake-timeout", "ZMQHWM": "zmq-hwm", "ZMQ": "zmq", "MaxURI": "max-uri",
		"HTTP2": "http2", "UID": "uid", "MaxPendingOutputTotal": "max-pending-output-total", "Binds": "bind",
		"ZMQQueueBytes": "zmq-queue-bytes", "ZMQRcvHWM": "zmq-rcv-hwm", "ZMQIOThreads": "zmq-io-threads", "ZMQBridges": "zmq-bridges", "ZMQBusyPoll": "zmq-busy-poll", "ZMQRebalance": "zmq-rebalance"} {
		if got := keyName(field); got != key {
			t.Errorf("keyName(%s) = %s, want %s", field, got, key)
		}
	}
}

// TestKeyNamesAreKeys: every [blastbeat] field's key, as the restart
// warning names it, is a key the config file takes (an unknown key is
// the only error that names it as unknown).
func TestKeyNamesAreKeys(t *testing.T) {
	typ := reflect.TypeOf(config.Options{})
	for i := range typ.NumField() {
		field := typ.Field(i).Name
		if slices.Contains([]string{"VHosts", "File", "Ignored"}, field) {
			continue
		}
		key := keyName(field)
		_, err := config.Parse("t.ini", []byte("[blastbeat]\n"+key+" = x\n"))
		if errors.Is(err, config.ErrUnknownKey) {
			t.Errorf("field %s: %q is not a key: %v", field, key, err)
		}
	}
}

func TestChangedKeys(t *testing.T) {
	a, b := config.Defaults(), config.Defaults()
	a.Binds = []config.Bind{{Addr: "127.0.0.1:1", Line: 3}}
	b.Binds = []config.Bind{{Addr: "127.0.0.1:1", Line: 9}} // moved in the file only
	b.MaxBody = 5
	b.VHosts = []config.VHost{{Name: "x"}}
	if got := changedKeys(&a, &b); !slices.Equal(got, []string{"max-body"}) {
		t.Errorf("changed %v, want [max-body]", got)
	}
}
