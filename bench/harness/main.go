// Command harness answers, in one run, how BlastBeat compares with its
// peers: it starts each system from configs it writes to a temp dir (on
// 127.0.0.1 only), drives it with wrk and bench/wsload, interleaving the
// systems round by round, and writes RESULTS.md, results.json and
// results.svg. Run it from the module root: `make bench` or
// `go run ./bench/harness -quick`; or, on a machine without Go, from the
// binaries bench/prebuild.sh made: `DIR/harness -prebuilt DIR`. See
// bench/README.md.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/blastbeat/blastbeat/internal/testcert"
)

// options are the harness's flags.
type options struct {
	systems, scenarios []string
	rounds             int
	dur, warmup        time.Duration
	quick              bool
	out                string
	deadline           time.Duration
	wsConns            int
	idleConns          int
	wssIdleConns       int
	idlePerProc        int
	cpuprofile         string
	blastbeat          string
	bbSet              []string
	nodes              int // bench node processes behind BlastBeat
	keep               bool
	quietWait          time.Duration
	reportFrom         string
	prebuilt           string // directory of prebuilt binaries ("" = build from the module)
}

// env is the state of one harness run. Only the main goroutine uses it,
// except reg, which is safe for concurrent use.
type env struct {
	opts      options
	root      string // module root ("" with -prebuilt)
	tmp       string
	logDir    string // load tools' logs
	reg       *registry
	blastbeat string
	nginx     string
	wrk       string
	h2load    string // "" when not installed: the HTTP/2 rows are n/a
	goBin     string // "" with -prebuilt and no Go here
	bins      struct{ node, hello, wsload, tlsload, m2handler string }
	// pki is this run's throwaway CA and the server certificate every
	// system serves HTTPS with (made by internal/testcert, never kept).
	pki struct {
		ca, cert, key string // PEM files
		pool          *x509.CertPool
	}
	missing map[string]string // system → why it cannot run here
	noWS    map[string]string // system → why its WebSocket probe failed

	cores            int
	nofile           int
	nginxUser        string
	nginxTempModules []string
	nginxHTTP2       bool
	postScript       string

	ports map[int]bool
	runs  int
}

func main() {
	os.Exit(run())
}

func run() (code int) {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 2
	}
	if o.reportFrom != "" {
		if err := rebuildReport(o); err != nil {
			fmt.Fprintln(os.Stderr, "harness:", err)
			return 1
		}
		return 0
	}
	reg := newRegistry()
	// Every way out stops every child: return, panic, signal, deadline.
	defer func() {
		if r := recover(); r != nil {
			reg.stopAll(2 * time.Second)
			panic(r)
		}
	}()
	defer reg.stopAll(3 * time.Second)

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	deadline := time.AfterFunc(o.deadline, func() {
		cancel(fmt.Errorf("global deadline of %s reached", o.deadline))
	})
	defer deadline.Stop()
	// Should anything ignore the cancelled context, a minute later the
	// harness stops every child and exits regardless.
	backstop := time.AfterFunc(o.deadline+time.Minute, func() {
		fmt.Fprintln(os.Stderr, "harness: still running a minute past the deadline; stopping everything")
		reg.stopAll(time.Second)
		os.Exit(3)
	})
	defer backstop.Stop()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		cancel(fmt.Errorf("interrupted by %v", s))
		// A second signal, or a stop that hangs, still ends the harness.
		select {
		case <-sigs:
		case <-time.After(30 * time.Second):
		}
		reg.stopAll(time.Second)
		os.Exit(130)
	}()

	e, err := setup(ctx, o, reg)
	if e != nil && !o.keep {
		defer os.RemoveAll(e.tmp)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	res := e.runAll(ctx)
	if err := e.writeResults(res); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	if res.StoppedEarly != "" {
		fmt.Fprintln(os.Stderr, "harness: stopped early:", res.StoppedEarly)
		return 3
	}
	return 0
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	systems := fs.String("systems", names(allSystems, func(s system) string { return s.name }), "comma-separated systems to run")
	scenarios := fs.String("scenarios", names(allScenarios, func(s scenario) string { return s.id }), "comma-separated scenarios to run")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every scenario on every system (A B A B …)")
	fs.DurationVar(&o.dur, "d", 5*time.Second, "measured duration of each run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each measured run (wrk rounds it to whole seconds)")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: 1 round, -d 2s, -warmup 1s, ws-idle and tls-ws-idle with 2,000 conns")
	fs.StringVar(&o.out, "out", "bench", "directory for RESULTS.md, results.json, results.svg")
	fs.DurationVar(&o.deadline, "deadline", 20*time.Minute, "global deadline: past it the harness stops everything and writes what it has")
	fs.IntVar(&o.wsConns, "ws-conns", 1000, "active connections of the WebSocket echo scenario")
	fs.IntVar(&o.idleConns, "ws-idle-conns", 10000, "idle WebSocket connections (beyond what the box allows: measured at the cap, projected)")
	fs.IntVar(&o.wssIdleConns, "wss-idle-conns", 5000, "idle wss:// connections of tls-ws-idle (capped like -ws-idle-conns)")
	fs.IntVar(&o.idlePerProc, "ws-idle-per-proc", 5000, "idle connections per wsload process (each from its own 127.0.0.x)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "run BlastBeat with -cpuprofile FILE during the first scenario of round 1 and print `go tool pprof -top`")
	fs.StringVar(&o.blastbeat, "blastbeat", "", "the BlastBeat binary (default bin/blastbeat under the module root, or DIR/blastbeat with -prebuilt; a relative path is taken from the module root, or with -prebuilt from the working directory)")
	fs.StringVar(&o.prebuilt, "prebuilt", "", "take every binary (blastbeat, node, hello, wsload, tlsload, m2handler) from `DIR`, as bench/prebuild.sh makes it, and build nothing: no Go toolchain or source tree needed")
	fs.IntVar(&o.nodes, "nodes", 1, "bench node processes behind BlastBeat (named bench1, bench2 … in one virtual host when more than 1; with many cores, also raise zmq-io-threads by -blastbeat-set)")
	bbSet := fs.String("blastbeat-set", "", "extra `key = value` lines for BlastBeat's [blastbeat] section, separated by ';'")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs and logs of every run)")
	fs.StringVar(&o.reportFrom, "report-from", "", "run nothing: rebuild RESULTS.md and results.svg (into -out) from this results.json")
	fs.DurationVar(&o.quietWait, "quiet-wait", 0, "before each run, wait up to this long for the machine to be quiet (other CPU use under 25% of a core)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["d"] {
			o.dur = 2 * time.Second
		}
		if !set["ws-idle-conns"] {
			o.idleConns = 2000
		}
		if !set["wss-idle-conns"] {
			o.wssIdleConns = 2000
		}
	}
	var err error
	if o.systems, err = pick(*systems, allSystems, func(s system) string { return s.name }); err != nil {
		return o, fmt.Errorf("-systems: %w", err)
	}
	if o.scenarios, err = pick(*scenarios, allScenarios, func(s scenario) string { return s.id }); err != nil {
		return o, fmt.Errorf("-scenarios: %w", err)
	}
	for _, l := range strings.Split(*bbSet, ";") {
		if l = strings.TrimSpace(l); l != "" {
			o.bbSet = append(o.bbSet, l)
		}
	}
	switch {
	case o.rounds < 1:
		return o, errors.New("-rounds must be at least 1")
	case o.dur < time.Second:
		return o, errors.New("-d must be at least 1s")
	case o.wsConns < 1 || o.idleConns < 1 || o.wssIdleConns < 1:
		return o, errors.New("-ws-conns, -ws-idle-conns and -wss-idle-conns must be positive")
	case o.deadline <= 0:
		return o, errors.New("-deadline must be positive")
	case o.nodes < 1 || o.nodes > maxNodes:
		return o, fmt.Errorf("-nodes must be 1 to %d", maxNodes)
	}
	return o, nil
}

func names[T any](xs []T, name func(T) string) string {
	var s []string
	for _, x := range xs {
		s = append(s, name(x))
	}
	return strings.Join(s, ",")
}

// pick validates a comma-separated subset and returns it in the canonical
// order of all. An entry may be a shell pattern (path.Match): "tls*"
// picks every HTTPS row; a pattern must match at least one name.
func pick[T any](list string, all []T, name func(T) string) ([]string, error) {
	matched := map[string]bool{} // pattern → it matched a name
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf("pattern %q: %w", s, err)
			}
			matched[s] = false
		}
	}
	var out []string
	for _, x := range all {
		n := name(x)
		picked := false
		for p := range matched {
			if ok, _ := path.Match(p, n); ok {
				matched[p], picked = true, true
			}
		}
		if picked {
			out = append(out, n)
		}
	}
	var bad []string
	for p, ok := range matched {
		if !ok {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return nil, fmt.Errorf("unknown %q (known: %s)", bad, names(all, name))
	}
	if len(out) == 0 {
		return nil, errors.New("empty selection")
	}
	return out, nil
}

// setup finds the module, makes the temp dir, builds the helpers (or,
// with -prebuilt, finds them) and checks which systems can run.
func setup(ctx context.Context, o options, reg *registry) (*env, error) {
	var root string
	var err error
	if o.prebuilt == "" {
		if root, err = moduleRoot(); err != nil {
			return nil, err
		}
	} else if o.prebuilt, err = filepath.Abs(o.prebuilt); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "blastbeat-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{opts: o, root: root, tmp: tmp, reg: reg, ports: map[int]bool{}, missing: map[string]string{}, noWS: map[string]string{}}
	// nginx workers run as an unprivileged user: they must reach the
	// static file and their temp paths.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return e, err
	}
	e.logDir = filepath.Join(tmp, "logs")
	if err := os.MkdirAll(e.logDir, 0o755); err != nil {
		return e, err
	}
	e.cores = runtime.NumCPU()
	e.nofile = nofileLimit()
	e.blastbeat = o.blastbeat
	switch {
	case e.blastbeat == "" && o.prebuilt != "":
		e.blastbeat = filepath.Join(o.prebuilt, "blastbeat")
	case e.blastbeat == "":
		e.blastbeat = filepath.Join(root, "bin", "blastbeat")
	case filepath.IsAbs(e.blastbeat):
	case o.prebuilt != "":
		if e.blastbeat, err = filepath.Abs(e.blastbeat); err != nil {
			return e, err
		}
	default:
		e.blastbeat = filepath.Join(root, e.blastbeat)
	}
	e.nginx = findNginx(exec.LookPath)
	if e.wrk, err = exec.LookPath("wrk"); err != nil {
		return e, errors.New("wrk not found (apt-get install -y wrk)")
	}
	if e.h2load, err = exec.LookPath("h2load"); err != nil {
		e.h2load = ""
		if slices.ContainsFunc(o.scenarios, func(id string) bool { return scenarioByID(id).kind == kindH2 }) {
			fmt.Println("harness: h2load not found (apt-get install -y nghttp2-client): the HTTP/2 rows are n/a")
		}
	}
	if _, err := os.Stat(e.nginx); err == nil {
		e.nginxUser = nginxUser()
		e.nginxTempModules = nginxTempModules(e.nginx)
		e.nginxHTTP2 = nginxHasHTTP2(e.nginx)
	}
	e.postScript = filepath.Join(tmp, "post.lua")
	if err := os.WriteFile(e.postScript, fmt.Appendf(nil, postScript, postBodySize, postBodySize), 0o644); err != nil {
		return e, err
	}
	if err := e.makePKI(); err != nil {
		return e, err
	}
	if o.prebuilt != "" {
		fmt.Printf("harness: prebuilt binaries from %s\n", o.prebuilt)
		if err := e.prebuiltHelpers(); err != nil {
			return e, err
		}
	} else {
		fmt.Printf("harness: building helpers into %s\n", tmp)
		if err := e.buildHelpers(ctx); err != nil {
			return e, err
		}
	}
	for _, s := range allSystems {
		if why := s.missing(e); why != "" {
			e.missing[s.name] = why
			if contains(o.systems, s.name) {
				fmt.Printf("harness: %s: n/a: %s\n", s.name, why)
			}
		}
	}
	return e, nil
}

// helpers are the bench's own programs, by package; bench/prebuild.sh
// builds each into a file named after its folder.
func (e *env) helpers() []struct {
	dst *string
	pkg string
} {
	return []struct {
		dst *string
		pkg string
	}{
		{&e.bins.node, "./bench/node"},
		{&e.bins.hello, "./bench/hello"},
		{&e.bins.wsload, "./bench/wsload"},
		{&e.bins.tlsload, "./bench/tlsload"},
		{&e.bins.m2handler, "./bench/m2handler"},
	}
}

// prebuiltHelpers takes the helpers from -prebuilt DIR instead of building
// them. Go is needed only for -cpuprofile's `go tool pprof`, if at all.
func (e *env) prebuiltHelpers() error {
	var missing []string
	for _, b := range e.helpers() {
		*b.dst = filepath.Join(e.opts.prebuilt, filepath.Base(b.pkg))
		if st, err := os.Stat(*b.dst); err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			missing = append(missing, filepath.Base(b.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("-prebuilt %s lacks %s (make it with bench/prebuild.sh %s)", e.opts.prebuilt, strings.Join(missing, ", "), e.opts.prebuilt)
	}
	e.goBin, _ = exec.LookPath("go")
	return nil
}

func (e *env) buildHelpers(ctx context.Context) error {
	var err error
	if e.goBin, err = exec.LookPath("go"); err != nil {
		e.goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	for _, b := range e.helpers() {
		*b.dst = filepath.Join(e.tmp, "bin", filepath.Base(b.pkg))
		cmd := exec.CommandContext(ctx, e.goBin, "build", "-o", *b.dst, b.pkg)
		cmd.Dir = e.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// makePKI makes this run's CA and the server certificate (for
// 127.0.0.1 and localhost) under tmp/pki. The nginx master reads the key
// before it drops privileges, so the key may stay 0600.
func (e *env) makePKI() error {
	dir := filepath.Join(e.tmp, "pki")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ca, err := testcert.NewCA(dir)
	if err != nil {
		return fmt.Errorf("test CA: %w", err)
	}
	cert, key, err := ca.Issue(testcert.Leaf{Name: "bench", DNSNames: []string{"localhost"}})
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	e.pki.ca, e.pki.cert, e.pki.key, e.pki.pool = ca.File, cert, key, ca.Pool()
	return nil
}

// moduleRoot walks up from the working directory to BlastBeat's go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/blastbeat/blastbeat") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the harness inside the BlastBeat module (no go.mod for github.com/blastbeat/blastbeat above the working directory), or give it prebuilt binaries: -prebuilt DIR (bench/prebuild.sh DIR makes them)")
		}
		dir = parent
	}
}

// rel shows a path relative to the module root when it is inside it.
func (e *env) rel(p string) string {
	if r, err := filepath.Rel(e.root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// runDir makes a fresh directory for one run's configs and logs.
func (e *env) runDir(name string) (string, error) {
	e.runs++
	dir := filepath.Join(e.tmp, "runs", fmt.Sprintf("%03d-%s", e.runs, name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.Chmod(filepath.Join(e.tmp, "runs"), 0o755)
}

// freePort picks a random free port on 127.0.0.1, never the same twice in
// one harness run, below the kernel's ephemeral range (32768+).
func (e *env) freePort() (int, error) {
	for range 200 {
		p := 20000 + rand.IntN(12000)
		if e.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		e.ports[p] = true
		return p, nil
	}
	return 0, errors.New("no free port found on 127.0.0.1")
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// runAll runs rounds × scenarios × systems, interleaved, and collects
// everything.
func (e *env) runAll(ctx context.Context) *results {
	res := &results{Started: time.Now()}
	res.Machine = e.machine()
	total := e.opts.rounds * len(e.opts.scenarios) * len(e.opts.systems)
	n := 0
	profiled := false
	for round := 1; round <= e.opts.rounds; round++ {
		for _, scID := range e.opts.scenarios {
			sc := scenarioByID(scID)
			for _, sysName := range e.opts.systems {
				sys := systemByName(sysName)
				n++
				if ctx.Err() != nil {
					res.StoppedEarly = context.Cause(ctx).Error()
					res.finish(e)
					return res
				}
				profile := ""
				if e.opts.cpuprofile != "" && !profiled && sys.name == "blastbeat" && e.missing[sys.name] == "" {
					profile, _ = filepath.Abs(e.opts.cpuprofile)
					profiled = true
				}
				if e.opts.quietWait > 0 && e.missing[sys.name] == "" {
					waitQuiet(ctx, e.opts.quietWait)
				}
				t0 := time.Now()
				m := e.runOne(ctx, sys, sc, round, profile)
				res.Runs = append(res.Runs, m)
				fmt.Printf("[%d/%d] round %d %-10s %-13s %s (%.1fs)\n", n, total, round, sc.id, sys.name, m.brief(), time.Since(t0).Seconds())
				if profile != "" {
					e.printProfile(profile)
				}
			}
		}
	}
	if ctx.Err() != nil {
		res.StoppedEarly = context.Cause(ctx).Error()
	}
	res.finish(e)
	return res
}

// waitQuiet samples the machine's CPU use (the harness's children are all
// stopped between runs, so it is someone else's) once a second until it is
// under busyOtherPct of a core, or limit has passed.
func waitQuiet(ctx context.Context, limit time.Duration) {
	deadline := time.Now().Add(limit)
	said := false
	for {
		a := readSysCPU()
		t0 := time.Now()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		b := readSysCPU()
		busy := 100 * float64(b.busy-a.busy) / clockTicks / time.Since(t0).Seconds()
		if busy < busyOtherPct {
			return
		}
		if time.Now().After(deadline) {
			fmt.Printf("harness: machine still busy (%.0f%% CPU) after %s; running anyway\n", busy, limit)
			return
		}
		if !said {
			fmt.Printf("harness: waiting for a quiet machine (%.0f%% CPU in use by others)\n", busy)
			said = true
		}
	}
}

func (e *env) printProfile(profile string) {
	if _, err := os.Stat(profile); err != nil {
		fmt.Printf("harness: no CPU profile at %s (%v): does this BlastBeat support -cpuprofile?\n", profile, err)
		return
	}
	if e.goBin == "" {
		fmt.Printf("harness: CPU profile in %s; no Go toolchain here to read it: elsewhere, run `go tool pprof -top %s %s` (with this blastbeat binary)\n", profile, e.blastbeat, filepath.Base(profile))
		return
	}
	cmd := exec.Command(e.goBin, "tool", "pprof", "-top", "-nodecount=40", e.blastbeat, profile)
	cmd.Dir = e.root
	out, err := cmd.CombinedOutput()
	fmt.Printf("harness: go tool pprof -top %s %s\n%s", e.rel(e.blastbeat), profile, out)
	if err != nil {
		fmt.Println("harness: pprof:", err)
	}
}

func scenarioByID(id string) scenario {
	for _, s := range allScenarios {
		if s.id == id {
			return s
		}
	}
	panic("unknown scenario " + id)
}

func systemByName(name string) system {
	for _, s := range allSystems {
		if s.name == name {
			return s
		}
	}
	panic("unknown system " + name)
}

// findNginx is nginx on PATH (a build carried to a machine without it),
// else Debian's /usr/sbin/nginx, which an ordinary user's PATH lacks.
func findNginx(lookPath func(string) (string, error)) string {
	if p, err := lookPath("nginx"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return "/usr/sbin/nginx"
}
