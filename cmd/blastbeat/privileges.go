package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// identity is what the process becomes after its listeners are bound
// (uid, gid in the config): the user, its group, and its supplementary
// groups, as initgroups(3) and su would set them.
type identity struct {
	uid, gid int   // -1: unchanged
	groups   []int // the supplementary groups; nil: unchanged
}

// resolveIdentity looks uid and gid (names or numbers; empty: unchanged)
// up, before anything is bound, so that a name that does not resolve
// fails the start and blastbeat -t.
//   - uid alone: the user's primary group and its groups, so that no
//     group of root's stays (a numeric uid the user database does not
//     know needs gid too);
//   - uid and gid: gid, and the user's groups (gid among them);
//   - gid alone: gid, and no other group.
func resolveIdentity(uid, gid string) (identity, error) {
	id := identity{uid: -1, gid: -1}
	if gid != "" {
		g, err := lookupID(gid, func(s string) (string, error) {
			g, err := user.LookupGroup(s)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		})
		if err != nil {
			return id, fmt.Errorf("gid %q: %w", gid, err)
		}
		id.gid, id.groups = g, []int{g}
	}
	if uid == "" {
		return id, nil
	}
	var u *user.User
	var err error
	if n, nerr := strconv.Atoi(uid); nerr == nil {
		if n < 0 {
			return id, fmt.Errorf("uid %q: negative", uid)
		}
		id.uid = n
		if u, err = user.LookupId(uid); err != nil {
			if id.gid < 0 {
				return id, fmt.Errorf("uid %q: not in the user database (%v): set gid as well", uid, err)
			}
			return id, nil // gid and no other group
		}
	} else {
		if u, err = user.Lookup(uid); err != nil {
			return id, fmt.Errorf("uid %q: %w", uid, err)
		}
		if id.uid, err = strconv.Atoi(u.Uid); err != nil {
			return id, fmt.Errorf("uid %q: %w", uid, err)
		}
	}
	if id.gid < 0 {
		if id.gid, err = strconv.Atoi(u.Gid); err != nil {
			return id, fmt.Errorf("uid %q: primary group: %w", uid, err)
		}
	}
	id.groups = []int{id.gid}
	gids, err := u.GroupIds()
	if err != nil {
		return id, fmt.Errorf("uid %q: groups: %w", uid, err)
	}
	for _, s := range gids {
		if g, err := strconv.Atoi(s); err == nil && g != id.gid {
			id.groups = append(id.groups, g)
		}
	}
	return id, nil
}

// apply switches to id after the listeners are bound: the supplementary
// groups first (only root may set them), then the group, then the user,
// for every thread.
func (id identity) apply() error {
	if id.groups != nil && os.Geteuid() == 0 {
		if err := syscall.Setgroups(id.groups); err != nil {
			return fmt.Errorf("setgroups %v: %w", id.groups, err)
		}
	}
	if id.gid >= 0 {
		if err := syscall.Setgid(id.gid); err != nil {
			return fmt.Errorf("setgid %d: %w", id.gid, err)
		}
	}
	if id.uid >= 0 {
		if err := syscall.Setuid(id.uid); err != nil {
			return fmt.Errorf("setuid %d: %w", id.uid, err)
		}
	}
	return nil
}

func lookupID(s string, byName func(string) (string, error)) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, errors.New("negative")
		}
		return n, nil
	}
	v, err := byName(s)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}

// chownIPC gives the ipc:// endpoints' socket files, which the bridges
// made as root, to the identity the proxy drops to: nodes that run as
// that user can then connect (a Unix socket takes a connect only from
// who may write it). Before, they were root's, mode 0755: only root's
// nodes could connect. Nothing to do unless the proxy runs as root and
// drops to someone.
func (id identity) chownIPC(endpoints []string) error {
	if os.Geteuid() != 0 || id.uid < 0 && id.gid < 0 {
		return nil
	}
	for _, ep := range endpoints {
		path, ok := strings.CutPrefix(ep, "ipc://")
		if !ok || path == "" || path[0] == '@' { // '@': abstract, no file
			continue
		}
		if err := os.Lchown(path, id.uid, id.gid); err != nil {
			return fmt.Errorf("zmq %s: giving the socket file to uid %d gid %d: %w", ep, id.uid, id.gid, err)
		}
	}
	return nil
}
