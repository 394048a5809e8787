package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is
// 100 on every Linux the bench targets (sysconf(_SC_CLK_TCK)).
const clockTicks = 100

// procStat is what the harness reads from /proc/PID/stat.
type procStat struct {
	comm  string
	state byte
	ppid  int
	ticks uint64 // utime + stime, in clockTicks
}

// parseStat parses one /proc/PID/stat line. comm may hold spaces and
// parentheses, so the fields are counted from its last ')'.
func parseStat(line string) (procStat, error) {
	open := strings.IndexByte(line, '(')
	shut := strings.LastIndexByte(line, ')')
	if open < 0 || shut < open {
		return procStat{}, fmt.Errorf("stat: no (comm) in %q", line)
	}
	f := strings.Fields(line[shut+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("stat: %d fields after comm in %q", len(f), line)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("stat: ppid: %w", err)
	}
	utime, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat: utime: %w", err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat: stime: %w", err)
	}
	return procStat{comm: line[open+1 : shut], state: f[0][0], ppid: ppid, ticks: utime + stime}, nil
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

// cpuTicks sums utime+stime over pids; a pid that is gone counts 0.
func cpuTicks(pids []int) uint64 {
	var sum uint64
	for _, pid := range pids {
		if st, err := readStat(pid); err == nil {
			sum += st.ticks
		}
	}
	return sum
}

// parseVmRSS returns VmRSS in KiB from the text of /proc/PID/status.
func parseVmRSS(status string) (int64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: odd VmRSS line %q", sc.Text())
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("status: no VmRSS line")
}

// rssKiB sums VmRSS over pids; a pid that is gone counts 0.
func rssKiB(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		if kb, err := parseVmRSS(string(b)); err == nil {
			sum += kb
		}
	}
	return sum
}

// childrenOf lists the live processes whose parent is ppid.
func childrenOf(ppid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.ppid == ppid && st.state != 'Z' {
			kids = append(kids, pid)
		}
	}
	return kids
}

// alive reports whether pid exists, is not a zombie, and (when comm is
// not empty) still runs the program called comm, so a recycled pid is not
// mistaken for one of ours.
func alive(pid int, comm string) bool {
	st, err := readStat(pid)
	if err != nil || st.state == 'Z' {
		return false
	}
	return comm == "" || st.comm == comm
}

// sysCPU is the whole machine's CPU time from the "cpu" line of
// /proc/stat, in clockTicks.
type sysCPU struct {
	busy  uint64 // user + nice + system + irq + softirq (guest is inside user)
	steal uint64 // taken by the hypervisor for other guests
}

// parseSysCPU parses the text of /proc/stat.
func parseSysCPU(text string) (sysCPU, error) {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "cpu" {
			continue
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return sysCPU{}, fmt.Errorf("/proc/stat: %q: %w", line, err)
			}
			v[i] = n
		}
		// user nice system idle iowait irq softirq steal
		return sysCPU{busy: v[0] + v[1] + v[2] + v[5] + v[6], steal: v[7]}, nil
	}
	return sysCPU{}, fmt.Errorf("/proc/stat: no cpu line")
}

func readSysCPU() sysCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return sysCPU{}
	}
	s, _ := parseSysCPU(string(b))
	return s
}
