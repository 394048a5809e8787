# BlastBeat — `make run` and `make test` work on a fresh Debian machine:
# they install what is missing (Debian packages via apt-get, Go modules via
# the module proxy), build, and run.

GO       ?= go
DEBS     := libzmq3-dev pkg-config python3-zmq python3-websockets python3-flask python3-django curl openssl nghttp2-client
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BINDIR   := bin
export CGO_ENABLED := 1

.PHONY: all deps tools build run test vet fuzz bench clean

all: build

# deps installs the Debian packages that are missing (nothing else is
# downloaded from anywhere but Debian and the Go module proxy).
deps:
	@missing=""; for p in $(DEBS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "apt-get install:$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing </dev/null; \
	fi

# H2SPEC is the HTTP/2 conformance tester, from the Go module proxy, pinned.
H2SPEC_VERSION := v2.2.1+incompatible

# tools installs the Go-built test tools into bin/ (only when missing).
tools:
	@test -x $(BINDIR)/h2spec || GOBIN=$(CURDIR)/$(BINDIR) GOFLAGS= $(GO) install github.com/summerwind/h2spec/cmd/h2spec@$(H2SPEC_VERSION)

build: deps
	$(GO) build -o $(BINDIR)/blastbeat ./cmd/blastbeat
	$(GO) build -o $(BINDIR)/demo-node ./examples/demo-node

# run starts the demo node and blastbeat on examples/blastbeat.ini;
# Ctrl-C stops both.
run: build
	@$(BINDIR)/demo-node -identity demo -connect tcp://127.0.0.1:5000 & node=$$!; \
	trap 'kill $$node 2>/dev/null' EXIT INT TERM; \
	echo "blastbeat on http://127.0.0.1:8080 (try: curl localhost:8080)"; \
	$(BINDIR)/blastbeat examples/blastbeat.ini

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
bench: build
	$(GO) run ./bench/harness $(BENCHFLAGS)

clean:
	rm -rf $(BINDIR)
