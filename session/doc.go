// Package session holds what ties a client's request to a backend node:
// session ids (sids), the per-event-loop session table, virtual hosts, the
// node registry with liveness, and node choice.
//
// A sid encodes its owning event loop and table slot, so a reply from a
// node finds its session with no global map and no lock: the bridge reads
// the loop index from the sid, and the loop looks the slot up in its own
// table.
package session
