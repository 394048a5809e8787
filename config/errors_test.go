package config_test

import (
	"testing"

	"github.com/blastbeat/blastbeat/config"
)

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  config.Error
		want string
	}{
		{
			name: "everything",
			err:  config.Error{File: "bb.ini", Line: 7, Section: "blastbeat", Key: "bind", Msg: "bad value"},
			want: "bb.ini:7: [blastbeat] bind: bad value",
		},
		{
			name: "no key",
			err:  config.Error{File: "bb.ini", Line: 3, Section: "uwsgi", Msg: "unknown section"},
			want: "bb.ini:3: [uwsgi] unknown section",
		},
		{
			name: "no line",
			err:  config.Error{File: "bb.ini", Msg: "missing"},
			want: "bb.ini: missing",
		},
		{
			name: "no file",
			err:  config.Error{Line: 2, Key: "zmq", Msg: "bad value"},
			want: "line 2: zmq: bad value",
		},
		{
			name: "message only",
			err:  config.Error{Msg: "oops"},
			want: "oops",
		},
		{
			name: "empty",
			err:  config.Error{},
			want: "invalid configuration",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
