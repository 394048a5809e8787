package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// passiveOpens reads the kernel's count of TCP connections accepted by
// listening sockets (Tcp PassiveOpens in /proc/net/snmp), all processes
// of this network namespace together.
func passiveOpens() (uint64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	return parsePassiveOpens(string(b))
}

// parsePassiveOpens finds PassiveOpens in /proc/net/snmp's text: a "Tcp:"
// line of names followed by a "Tcp:" line of values.
func parsePassiveOpens(text string) (uint64, error) {
	var names []string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "PassiveOpens" && i < len(f) {
				return strconv.ParseUint(f[i], 10, 64)
			}
		}
		break
	}
	return 0, fmt.Errorf("/proc/net/snmp: no Tcp PassiveOpens")
}

// closesPerRequest reports whether a row that asks for a new connection
// per request (Connection: close) got one: a server that ignores the
// header keeps the connection and wrk reuses it, and the row then
// measures keep-alive. Counted from PassiveOpens over the measured run;
// the backends' own new connections only add to it, so fewer opens than
// half the requests means the server did not close.
func closesPerRequest(opens, requests uint64) (ok bool, warning string) {
	if requests == 0 || opens*2 >= requests {
		return true, ""
	}
	return false, fmt.Sprintf("connections reused: %d new TCP connections for %d requests (the server kept them open despite Connection: close; this row then measures keep-alive)", opens, requests)
}

// asksClose reports whether the scenario's requests carry Connection: close.
func asksClose(sc scenario) bool {
	for _, h := range sc.headers {
		if strings.EqualFold(strings.TrimSpace(h), "Connection: close") {
			return true
		}
	}
	return false
}
