package main

import (
	"os/user"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestResolveIdentity(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody here")
	}
	nuid, _ := strconv.Atoi(nobody.Uid)
	ngid, _ := strconv.Atoi(nobody.Gid)
	// nobody's groups as this host has them: its primary first.
	ngroups := []int{ngid}
	if ids, err := nobody.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil && g != ngid {
				ngroups = append(ngroups, g)
			}
		}
	}
	tests := []struct {
		uid, gid string
		want     identity
		err      string
	}{
		{want: identity{uid: -1, gid: -1}},
		// uid alone takes the user's primary group and its groups: none
		// of root's stays (before, the gid stayed 0 and every group).
		{uid: "nobody", want: identity{uid: nuid, gid: ngid, groups: ngroups}},
		{uid: nobody.Uid, want: identity{uid: nuid, gid: ngid, groups: ngroups}},
		{uid: "nobody", gid: "0", want: identity{uid: nuid, gid: 0, groups: append([]int{0}, ngroups...)}},
		{gid: nobody.Gid, want: identity{uid: -1, gid: ngid, groups: []int{ngid}}},
		{uid: "4242424", gid: nobody.Gid, want: identity{uid: 4242424, gid: ngid, groups: []int{ngid}}},
		{uid: "4242424", err: "set gid as well"},
		{uid: "no-such-user-here", err: "no-such-user-here"},
		{gid: "no-such-group-here", err: "no-such-group-here"},
		{gid: "-3", err: "negative"},
		{uid: "-1", gid: nobody.Gid, err: "negative"}, // setuid skipped: it stayed root
	}
	for _, tt := range tests {
		got, err := resolveIdentity(tt.uid, tt.gid)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("resolveIdentity(%q, %q): error %v, want one with %q", tt.uid, tt.gid, err, tt.err)
			}
			continue
		}
		if err != nil || got.uid != tt.want.uid || got.gid != tt.want.gid || !slices.Equal(got.groups, tt.want.groups) {
			t.Errorf("resolveIdentity(%q, %q) = %+v, %v; want %+v", tt.uid, tt.gid, got, err, tt.want)
		}
	}
}
