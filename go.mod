module github.com/blastbeat/blastbeat

go 1.26.8

require (
	github.com/gobwas/ws v1.5.0
	github.com/panjf2000/gnet/v2 v2.9.7
	github.com/pebbe/zmq4 v1.4.0
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
	gopkg.in/ini.v1 v1.67.3
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/panjf2000/ants/v2 v2.11.3 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	go.uber.org/multierr v1.11.0 // indirect
	go.uber.org/zap v1.27.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	gopkg.in/natefinch/lumberjack.v2 v2.2.1 // indirect
)

replace github.com/panjf2000/gnet/v2 => ./third_party/gnet
