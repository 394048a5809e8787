package main

import (
	"errors"
	"strconv"
)

// tnetstring type tags (the byte after the payload).
const (
	tnString = ','
	tnDict   = '}'
	tnList   = ']'
	tnInt    = '#'
	tnFloat  = '^'
	tnBool   = '!'
	tnNull   = '~'
)

// maxTnetLenDigits bounds the length prefix: 9 digits is what the
// tnetstrings spec allows (lengths under 1 GB).
const maxTnetLenDigits = 9

var errTnet = errors.New("tnetstring: malformed")

// parseTnet splits one tnetstring off the front of b: its payload, its type
// tag and the bytes after it. The payload aliases b.
func parseTnet(b []byte) (payload []byte, tag byte, rest []byte, err error) {
	colon := -1
	for i := 0; i < len(b) && i <= maxTnetLenDigits; i++ {
		if b[i] == ':' {
			colon = i
			break
		}
		if b[i] < '0' || b[i] > '9' {
			return nil, 0, nil, errTnet
		}
	}
	if colon <= 0 {
		return nil, 0, nil, errTnet
	}
	n, err := strconv.Atoi(string(b[:colon]))
	if err != nil {
		return nil, 0, nil, errTnet
	}
	end := colon + 1 + n
	if end >= len(b) {
		return nil, 0, nil, errTnet
	}
	return b[colon+1 : end], b[end], b[end+1:], nil
}

// forEachDictString calls fn for every key whose value is a string in the
// tnetstring dict payload d (values of other types are skipped).
func forEachDictString(d []byte, fn func(key, val []byte)) error {
	for len(d) > 0 {
		k, kt, rest, err := parseTnet(d)
		if err != nil || kt != tnString {
			return errTnet
		}
		v, vt, rest, err := parseTnet(rest)
		if err != nil {
			return err
		}
		if vt == tnString {
			fn(k, v)
		}
		d = rest
	}
	return nil
}

// appendTnetString appends s as a tnetstring.
func appendTnetString(dst, s []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	dst = append(dst, s...)
	return append(dst, tnString)
}
