// Package config loads and validates BlastBeat's .ini configuration file.
//
// A file has one [blastbeat] section with the global settings and one
// [blastbeat:NAME] section per virtual host, where NAME is "host",
// "host:port" or "*" (the catch-all):
//
//	[blastbeat]
//	bind = 0.0.0.0:8080
//	zmq = tcp://0.0.0.0:5000
//
//	[blastbeat:localhost:8000]
//	node = foobar1
//
// The keys bind, bind-ssl, zmq and node may be repeated and accumulate; any
// other key may appear at most once per section. Durations are seconds
// ("3", "0.5") or Go durations ("500ms"); sizes are bytes with an optional
// k, m or g suffix (1024-based); booleans are true/false, yes/no, on/off or
// 1/0. Lines starting with ';' or '#' are comments, and " ;" or " #" starts
// a comment after a value.
//
// A Host name, whether a section's NAME or an alias, belongs to one
// virtual host only (compared lower-cased, "host" and "host:port" as
// written): a second one is an error, not a routing tie.
//
// Every problem is reported as an *Error carrying the file name, the line
// and, where it applies, the section and key; errors.Is matches it against
// the sentinels in errors.go. Parse reads on past an error and reports
// them all, joined with errors.Join (one a line in the message).
package config
