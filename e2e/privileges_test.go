package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestPrivilegeDrop: started as root with uid = nobody, the proxy ends
// up as nobody, in nobody's primary group and its groups only, and still
// serves. Before, with uid alone the gid stayed 0 and root's
// supplementary groups stayed.
func TestPrivilegeDrop(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	// The stats listener on a port below 1024: bound before the drop.
	stats := ""
	for port := 1023; port > 900 && stats == ""; port-- {
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			stats = ln.Addr().String()
			ln.Close()
		}
	}
	p := startProxy(t, "uid = nobody\nstats = "+stats+"\n", "[blastbeat:*]\nnode = n1\n")
	hStartNode(t, p.ZMQ, "n1", hEcho())
	waitRoutable(t, p, "", "/ready")
	resp, err := http.Get("http://" + stats + "/status")
	if err != nil {
		t.Fatalf("stats on %s: %v", stats, err)
	}
	resp.Body.Close()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Uid:":    strings.Repeat(nobody.Uid+"\t", 3) + nobody.Uid,
		"Gid:":    strings.Repeat(nobody.Gid+"\t", 3) + nobody.Gid,
		"Groups:": nobody.Gid,
	}
	for _, line := range strings.Split(string(st), "\n") {
		f := strings.SplitN(line, "\t", 2)
		if w, ok := want[f[0]]; ok {
			if got := strings.TrimSpace(f[1]); got != w {
				t.Errorf("%s %q, want %q", f[0], got, w)
			}
			delete(want, f[0])
		}
	}
	if len(want) > 0 {
		t.Errorf("not in /proc/PID/status: %v", want)
	}
}

// TestPrivilegeDropIPCSocket: an ipc:// endpoint's socket file, made while
// the proxy is root, belongs to the uid (and gid) it drops to, so that
// nodes running as that user can connect. Before, it stayed root's (mode
// 0755 under the usual umask): only root's nodes could.
func TestPrivilegeDropIPCSocket(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "bb.sock")
	startProxy(t, "uid = nobody\nzmq = ipc://"+sock+"\n", "[blastbeat:*]\nnode = n1\n")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if got := strconv.Itoa(int(st.Uid)); got != nobody.Uid {
		t.Errorf("%s belongs to uid %s, want nobody's %s", sock, got, nobody.Uid)
	}
	if got := strconv.Itoa(int(st.Gid)); got != nobody.Gid {
		t.Errorf("%s belongs to gid %s, want nobody's %s", sock, got, nobody.Gid)
	}
}
