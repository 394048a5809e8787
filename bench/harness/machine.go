package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// machine describes where the numbers were measured.
type machine struct {
	Cores    int     `json:"cores"`
	CPU      string  `json:"cpu"`
	MemGiB   float64 `json:"mem_gib"`
	Kernel   string  `json:"kernel"` // uname -sr
	Go       string  `json:"go"`
	Nginx    string  `json:"nginx"`
	Wrk      string  `json:"wrk"`
	H2load   string  `json:"h2load,omitempty"`
	Libzmq   string  `json:"libzmq"`
	Mongrel2 string  `json:"mongrel2"`
	NoFile   int     `json:"nofile"` // per-process open-file limit
	// BlastBeat is the source the measured blastbeat was built from:
	// git describe of the tree, or BUILDINFO's source line (-prebuilt).
	BlastBeat string `json:"blastbeat"`
}

func (e *env) machine() machine {
	m := machine{Cores: e.cores, Go: runtime.Version(), NoFile: e.nofile}
	m.CPU = cpuModel()
	m.MemGiB = memGiB()
	m.Kernel = firstLine(command("uname", "-sr"))
	if v := command(e.nginx, "-v"); v != "" {
		m.Nginx = strings.TrimPrefix(firstLine(v), "nginx version: nginx/")
	}
	// "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer"
	if f := strings.Fields(command(e.wrk, "-v")); len(f) >= 2 {
		m.Wrk = f[1]
	}
	// "h2load nghttp2/1.52.0"
	if e.h2load != "" {
		m.H2load = strings.TrimPrefix(firstLine(command(e.h2load, "--version")), "h2load nghttp2/")
	}
	if e.opts.prebuilt != "" {
		m.Go += " (prebuilt)"
		if b, err := os.ReadFile(filepath.Join(e.opts.prebuilt, "BUILDINFO")); err == nil {
			for l := range strings.SplitSeq(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "source:"); ok {
					m.BlastBeat = strings.TrimSpace(v)
				}
			}
		}
	} else {
		m.BlastBeat = firstLine(command("git", "describe", "--always", "--dirty"))
	}
	m.Libzmq = firstLine(command(e.bins.node, "-version"))
	if _, err := exec.LookPath("mongrel2"); err == nil {
		m.Mongrel2 = firstLine(command("dpkg-query", "-W", "-f", "${Version}", "mongrel2-core"))
	}
	return m
}

// command runs a short query and returns its output (stdout and stderr),
// or "" when it fails.
func command(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func memGiB() float64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / (1 << 20)
			}
		}
	}
	return 0
}
