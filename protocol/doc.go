// Package protocol holds BlastBeat's pure, transport-free codecs: the
// HTTP/1.1 request parser, the response head checker and writer, chunked
// coding and uwsgi packets. Nothing here knows about sockets or goroutines;
// every function is safe for concurrent use unless its doc says otherwise,
// and parsers are owned by one goroutine at a time.
package protocol
