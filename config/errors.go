package config

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
)

// maxErrors bounds the errors one file reports: a file that is not an
// .ini at all (a binary, the wrong file) would otherwise give one per
// line, and nobody reads past the first screen of them.
const maxErrors = 50

// Sentinel errors. Every *Error returned by Load and Parse wraps one of
// them (or, for an unreadable file, the error from the file system), so
// callers can tell the kinds apart with errors.Is. A file with several
// problems gives several *Error values joined with errors.Join: errors.Is
// matches any of them, errors.As finds the first (in line order).
var (
	// ErrSyntax is a line that is neither a comment, a [section] header
	// nor a "key = value" pair, or uses ini syntax this package rejects
	// (quoted keys, multi-line values).
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownSection is a section other than [blastbeat] and
	// [blastbeat:NAME].
	ErrUnknownSection = errors.New("unknown section")
	// ErrUnknownKey is a key the section does not define.
	ErrUnknownKey = errors.New("unknown key")
	// ErrRepeated is a non-repeatable key set twice in one section.
	ErrRepeated = errors.New("key repeated")
	// ErrDuplicate is a section, or a virtual host name, defined twice.
	ErrDuplicate = errors.New("duplicate section")
	// ErrBadValue is a value that does not parse or is out of range.
	ErrBadValue = errors.New("bad value")
	// ErrMissing is a required section or key that is absent.
	ErrMissing = errors.New("missing")
)

// Error is a configuration error. Its message has the form
// "FILE:LINE: [SECTION] KEY: MSG", leaving out the parts that are empty.
type Error struct {
	// File is the name of the configuration file.
	File string
	// Line is the 1-based line the error refers to, or 0 for the whole
	// file.
	Line int
	// Section is the section name without brackets, if any.
	Section string
	// Key is the key, if any.
	Key string
	// Msg describes the problem.
	Msg string

	err error // the sentinel or underlying error, for Unwrap
}

// Error returns "FILE:LINE: [SECTION] KEY: MSG" without its empty parts.
func (e *Error) Error() string {
	var s string
	switch {
	case e.File != "" && e.Line > 0:
		s = e.File + ":" + strconv.Itoa(e.Line) + ": "
	case e.File != "":
		s = e.File + ": "
	case e.Line > 0:
		s = "line " + strconv.Itoa(e.Line) + ": "
	}
	if e.Section != "" {
		s += "[" + e.Section + "] "
	}
	if e.Key != "" {
		s += e.Key + ": "
	}
	return s + cmp.Or(e.Msg, "invalid configuration")
}

// Unwrap returns the sentinel (or file system error) e wraps, if any.
func (e *Error) Unwrap() error { return e.err }

// newError builds an *Error of the given kind whose message is the kind's
// text followed by detail, if any.
func newError(kind error, file string, line int, section, key, detail string) *Error {
	msg := kind.Error()
	if detail != "" {
		msg += ": " + detail
	}
	return &Error{File: file, Line: line, Section: section, Key: key, Msg: msg, err: kind}
}

// errorList collects the errors of one file: the maxErrors of them that
// come first in the file, and how many more there were.
type errorList struct {
	file  string
	errs  []*Error
	extra int // errors found beyond maxErrors
}

// add records e, naming the list's file in it.
func (l *errorList) add(e *Error) {
	e.File = l.file
	if len(l.errs) < maxErrors {
		l.errs = append(l.errs, e)
		return
	}
	l.extra++
	last := 0 // the error latest in the file, the last found among equals
	for i, x := range l.errs {
		if x.Line >= l.errs[last].Line {
			last = i
		}
	}
	if e.Line < l.errs[last].Line {
		l.errs[last] = e
	}
}

// err returns nil, the one error, or every error in line order (errors
// about the whole file first) joined with errors.Join: its message has
// one error a line.
func (l *errorList) err() error {
	switch len(l.errs) {
	case 0:
		return nil
	case 1:
		return l.errs[0]
	}
	slices.SortStableFunc(l.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, 0, len(l.errs)+1)
	for _, e := range l.errs {
		errs = append(errs, e)
	}
	if l.extra > 0 {
		errs = append(errs, &Error{File: l.file, Msg: "and " + strconv.Itoa(l.extra) + " more errors"})
	}
	return errors.Join(errs...)
}
