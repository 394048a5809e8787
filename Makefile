# BlastBeat — `make run` and `make test` work on a fresh Debian machine:
# they install what is missing (Debian packages via apt-get, Go modules via
# the module proxy), build, and run.

GO       ?= go
DEBS     := gcc libc6-dev libzmq3-dev pkg-config python3-zmq python3-websockets python3-flask python3-django curl openssl nghttp2-client
# BENCH_DEBS are the load generators and the servers `make bench` compares.
BENCH_DEBS := wrk nginx-light mongrel2-core nghttp2-client
# GO_MIN is the Go release go.mod asks for.
GO_MIN   := $(shell sed -n 's/^go //p' go.mod)
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BINDIR   := bin
export CGO_ENABLED := 1

.PHONY: all deps bench-deps apt gocheck tools build run test vet fuzz bench clean

all: build

# deps installs the Debian packages that are missing (nothing else is
# downloaded from anywhere but Debian and the Go module proxy).
deps:
	@$(MAKE) --no-print-directory apt PKGS="$(DEBS)"

bench-deps:
	@$(MAKE) --no-print-directory apt PKGS="$(BENCH_DEBS)"

# apt installs those of PKGS that are missing.
apt:
	@missing=""; for p in $(PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "apt-get install:$$missing"; \
		if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
			echo "make: installing$$missing needs root: run as root, or install sudo" >&2; exit 1; fi; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing </dev/null; \
	fi

# gocheck stops with a clear message when Go is missing or older than
# go.mod asks (Debian's golang-go is older: Go comes from go.dev/dl).
gocheck:
	@command -v $(GO) >/dev/null || { echo "make: Go $(GO_MIN) or later is needed (https://go.dev/dl/; Debian's golang-go is too old)" >&2; exit 1; }
	@v=$$($(GO) env GOVERSION) || { echo "make: $(GO) env failed (go.mod asks for Go $(GO_MIN)): see its message above" >&2; exit 1; }; \
	v=$${v#go}; \
	if [ "$$(printf '%s\n%s\n' "$(GO_MIN)" "$$v" | sort -V | head -n1)" != "$(GO_MIN)" ]; then \
		echo "make: Go $$v is older than $(GO_MIN), which go.mod needs (https://go.dev/dl/)" >&2; exit 1; fi

# H2SPEC is the HTTP/2 conformance tester, from the Go module proxy, pinned.
H2SPEC_VERSION := v2.2.1+incompatible

# tools installs the Go-built test tools into bin/ (only when missing).
tools:
	@test -x $(BINDIR)/h2spec || GOBIN=$(CURDIR)/$(BINDIR) GOFLAGS= $(GO) install github.com/summerwind/h2spec/cmd/h2spec@$(H2SPEC_VERSION)

build: deps gocheck
	$(GO) build -o $(BINDIR)/blastbeat ./cmd/blastbeat
	$(GO) build -o $(BINDIR)/demo-node ./examples/demo-node

# run starts the demo node and blastbeat on examples/blastbeat.ini (the
# node first, so that the first request finds it connected); Ctrl-C, or
# a SIGTERM to make, stops both (by their PIDs).
run: build
	@$(BINDIR)/demo-node -identity demo -connect tcp://127.0.0.1:5000 & node=$$!; \
	$(BINDIR)/blastbeat examples/blastbeat.ini & bb=$$!; \
	trap 'kill $$node $$bb 2>/dev/null' TERM; \
	echo "blastbeat on http://127.0.0.1:8080 (try: curl localhost:8080)"; \
	wait $$bb; status=$$?; \
	while kill -0 $$bb 2>/dev/null; do wait $$bb; status=$$?; done; \
	kill $$node 2>/dev/null; wait $$node 2>/dev/null; exit $$status

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	cd third_party/gnet && $(GO) vet ./...

# test runs every test, with the race detector, against the real binary
# and real libzmq (see e2e/), and the tests of BlastBeat's gnet patches
# (third_party/gnet is a module of its own: ./... does not reach it); then
# the allocation tests (testing.AllocsPerRun), which are built without
# the race detector (it allocates), in every package that has one.
test: build vet tools
	cd third_party/gnet && $(GO) test -race -count=1 -run BlastBeat ./...
	H2SPEC=$(CURDIR)/$(BINDIR)/h2spec $(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -count=1 -run Allocs $$(grep -rl --include='*_test.go' AllocsPerRun . | grep -v '^./third_party/' | xargs -n1 dirname | sort -u)

# fuzz runs each fuzz target for FUZZTIME (seeds always run in `make test`).
FUZZTIME ?= 30s
fuzz: deps
	@for t in $$($(GO) test -list 'Fuzz.*' ./protocol | grep ^Fuzz); do \
		$(GO) test -run XXX -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./protocol || exit 1; done
	@for t in $$($(GO) test -list 'Fuzz.*' ./config | grep ^Fuzz); do \
		$(GO) test -run XXX -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./config || exit 1; done

# bench compares blastbeat with nginx and others side by side (bench/).
bench: build bench-deps
	$(GO) run ./bench/harness $(BENCHFLAGS)

clean:
	rm -rf $(BINDIR)
