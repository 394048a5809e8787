package main

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"
)

// dropPrivileges switches to gid, then uid (names or numbers), after the
// listeners are bound. Empty values change nothing.
func dropPrivileges(uid, gid string) error {
	if gid != "" {
		id, err := lookupID(gid, func(s string) (string, error) {
			g, err := user.LookupGroup(s)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		})
		if err != nil {
			return fmt.Errorf("gid %q: %w", gid, err)
		}
		if err := syscall.Setgid(id); err != nil {
			return fmt.Errorf("setgid %d: %w", id, err)
		}
	}
	if uid != "" {
		id, err := lookupID(uid, func(s string) (string, error) {
			u, err := user.Lookup(s)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		})
		if err != nil {
			return fmt.Errorf("uid %q: %w", uid, err)
		}
		if err := syscall.Setuid(id); err != nil {
			return fmt.Errorf("setuid %d: %w", id, err)
		}
	}
	return nil
}

func lookupID(s string, byName func(string) (string, error)) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	v, err := byName(s)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(v)
}
