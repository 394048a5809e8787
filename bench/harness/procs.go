package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// registry records every child process the harness starts, so that all of
// them are stopped, by their own PID, on every way out: normal end,
// Ctrl-C, the global deadline, a panic. Safe for concurrent use.
type registry struct {
	mu    sync.Mutex
	procs map[int]*proc
	// extra are PIDs the harness did not start but must not leave behind
	// (nginx's workers), each with its comm to guard against PID reuse.
	extra map[int]string
	// names counts starts per name, so that every child gets its own log.
	names map[string]int
}

func newRegistry() *registry {
	return &registry{procs: make(map[int]*proc), extra: make(map[int]string), names: make(map[string]int)}
}

// proc is one started child.
type proc struct {
	name  string
	cmd   *exec.Cmd
	log   string         // where its output goes
	stdin io.WriteCloser // set when spec.stdin
	done  chan struct{}  // closed once it has exited
	err   error          // its exit status, valid after done
}

// procSpec says how to start a child.
type procSpec struct {
	name   string    // short name for logs and messages
	argv   []string  // program and arguments
	dir    string    // working directory ("" = the harness's)
	logDir string    // stderr (and stdout, unless stdout is set) go to logDir/name[-N].log
	stdout io.Writer // optional: where stdout goes instead of the log
	stdin  bool      // give the child a stdin pipe (proc.stdin)
	env    []string  // extra environment
}

// start runs a child and records its PID.
func (r *registry) start(s procSpec) (*proc, error) {
	r.mu.Lock()
	r.names[s.name]++
	logName := s.name
	if n := r.names[s.name]; n > 1 {
		logName = fmt.Sprintf("%s-%d", s.name, n)
	}
	r.mu.Unlock()
	logPath := filepath.Join(s.logDir, logName+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir = s.dir
	cmd.Stderr = logf
	cmd.Stdout = logf
	if s.stdout != nil {
		cmd.Stdout = s.stdout
	}
	if len(s.env) > 0 {
		cmd.Env = append(os.Environ(), s.env...)
	}
	// If the harness dies without cleaning up (SIGKILL, a crash in a
	// goroutine), the kernel still kills its direct children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: s.name, cmd: cmd, log: logPath, done: make(chan struct{})}
	if s.stdin {
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			logf.Close()
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	r.mu.Lock()
	r.procs[cmd.Process.Pid] = p
	r.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		r.mu.Lock()
		delete(r.procs, cmd.Process.Pid)
		r.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the child has already exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILL, and waits for the
// exit. It is idempotent.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// wait waits for the child to exit by itself, up to d; false on timeout.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// logTail returns the last n bytes of the child's log.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	return tail(string(b), n)
}

// adopt records a PID the harness did not start (an nginx worker) so that
// stopAll kills it if it outlives its parent.
func (r *registry) adopt(pid int, comm string) {
	r.mu.Lock()
	r.extra[pid] = comm
	r.mu.Unlock()
}

// reap kills adopted PIDs that are still alive (their parent was stopped)
// and forgets them.
func (r *registry) reap() {
	r.mu.Lock()
	extra := r.extra
	r.extra = make(map[int]string)
	r.mu.Unlock()
	for pid, comm := range extra {
		if alive(pid, comm) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// stopAll stops every live child (SIGTERM, then SIGKILL after grace) and
// the adopted PIDs.
func (r *registry) stopAll(grace time.Duration) {
	r.mu.Lock()
	procs := make([]*proc, 0, len(r.procs))
	for _, p := range r.procs {
		procs = append(procs, p)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(grace)
		}()
	}
	wg.Wait()
	r.reap()
}
