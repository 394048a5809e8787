package config

import (
	"bytes"
	"strings"
)

// entry is one meaningful line of the raw file: a section header or a key.
// go-ini does not report line numbers, so scan finds them; the Nth
// non-empty value go-ini returns for a key belongs to the Nth non-empty
// entry of that key in that section.
type entry struct {
	line    int    // 1-based line number
	section string // section name as go-ini sees it ("" before any header)
	header  bool   // a [section] line
	key     string // key name, for key lines
	empty   bool   // the value is empty once comments and quotes are gone
}

// id names the key of a key entry within its section.
func (e entry) id() string { return e.section + "\x00" + e.key }

// scanned is what scan makes of a file.
type scanned struct {
	entries []entry
	// data is the file for go-ini: the lines scan rejected are blanked
	// (and a header with text after it cut down to "[NAME]"), so that
	// go-ini reads exactly the lines in entries.
	data []byte
	// lostHeader is set when a section header could not be read: the
	// keys under it were dropped with it.
	lostHeader bool
	// partial is set when scanning stopped early (UTF-16, a multi-line
	// value): where the next line starts is unknown, so entries and data
	// do not cover the file and nothing more should be read from it.
	partial bool
}

// scan splits data into entries, following the rules go-ini applies with
// the options Parse gives it, and adds to errs every line that mapping
// cannot follow (quoted key names, lines without "=", broken headers).
// Such a line is left out and the scan goes on; it stops only at a
// UTF-16 file or a multi-line value.
func scan(data []byte, errs *errorList) scanned {
	if bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) {
		errs.add(newError(ErrSyntax, "", 1, "", "", "UTF-16 files are not supported"))
		return scanned{partial: true}
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	out := scanned{data: data}
	// blank replaces the line at data[off:off+n] with spaces in out.data,
	// copying the file on the first change.
	copied := false
	blank := func(off, n int) {
		if !copied {
			out.data, copied = bytes.Clone(data), true
		}
		for i := off; i < off+n; i++ {
			out.data[i] = ' '
		}
	}
	reject := func(off, n, line int, key, detail string) {
		errs.add(newError(ErrSyntax, "", line, "", key, detail))
		blank(off, n)
	}
	section := ""
	lost := false // the current section's header was rejected: drop its keys
	for n, off := 1, 0; off < len(data); n++ {
		raw, _, _ := bytes.Cut(data[off:], []byte{'\n'})
		lineOff := off
		off += len(raw) + 1
		line := strings.TrimSpace(string(raw))
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			end := strings.LastIndexByte(line, ']')
			switch {
			case end < 0:
				reject(lineOff, len(raw), n, "", "unclosed section header")
				lost, out.lostHeader = true, true
				continue
			case end == 1:
				reject(lineOff, len(raw), n, "", "empty section name")
				lost, out.lostHeader = true, true
				continue
			}
			if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest[0] != '#' && rest[0] != ';' {
				// The name is known: keep the section, without the text.
				errs.add(newError(ErrSyntax, "", n, "", "", "unexpected text after section header"))
				blank(lineOff, len(raw))
				copy(out.data[lineOff:], line[:end+1])
			}
			section, lost = line[1:end], false
			out.entries = append(out.entries, entry{line: n, section: section, header: true})
		default:
			eq := strings.IndexByte(line, '=')
			if eq < 0 {
				reject(lineOff, len(raw), n, "", `expected "key = value"`)
				continue
			}
			key := strings.TrimSpace(line[:eq])
			switch {
			case key == "":
				reject(lineOff, len(raw), n, "", "missing key name")
				continue
			case key[0] == '"' || key[0] == '`':
				reject(lineOff, len(raw), n, "", "quoted key names are not supported")
				continue
			}
			val := strings.TrimSpace(line[eq+1:])
			if strings.HasPrefix(val, "`") || strings.HasPrefix(val, `"""`) {
				errs.add(newError(ErrSyntax, "", n, "", key, "multi-line values are not supported"))
				out.partial = true
				return out
			}
			if lost {
				blank(lineOff, len(raw))
				continue
			}
			out.entries = append(out.entries, entry{line: n, section: section, key: key, empty: plainValue(val) == ""})
		}
	}
	return out
}

// plainValue mirrors go-ini on a trimmed value: it cuts an inline comment
// (" #" or " ;") and one pair of surrounding quotes.
func plainValue(v string) string {
	i := strings.Index(v, " #")
	if i < 0 {
		i = strings.Index(v, " ;")
	}
	if i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] &&
		strings.IndexByte(v[1:], v[0]) == len(v)-2 {
		v = v[1 : len(v)-1]
	}
	return v
}
