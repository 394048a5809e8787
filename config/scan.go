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

// scan splits data into entries, following the rules go-ini applies with
// the options Parse gives it, and rejects what that mapping cannot follow
// (quoted key names, multi-line values). Errors carry no file name.
func scan(data []byte) ([]entry, *Error) {
	if bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) {
		return nil, newError(ErrSyntax, "", 1, "", "", "UTF-16 files are not supported")
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	var out []entry
	section := ""
	for n := 1; len(data) > 0; n++ {
		var raw []byte
		raw, data, _ = bytes.Cut(data, []byte{'\n'})
		line := strings.TrimSpace(string(raw))
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			end := strings.LastIndexByte(line, ']')
			if end < 0 {
				return nil, newError(ErrSyntax, "", n, "", "", "unclosed section header")
			}
			if end == 1 {
				return nil, newError(ErrSyntax, "", n, "", "", "empty section name")
			}
			if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest[0] != '#' && rest[0] != ';' {
				return nil, newError(ErrSyntax, "", n, "", "", "unexpected text after section header")
			}
			section = line[1:end]
			out = append(out, entry{line: n, section: section, header: true})
		default:
			eq := strings.IndexByte(line, '=')
			if eq < 0 {
				return nil, newError(ErrSyntax, "", n, "", "", `expected "key = value"`)
			}
			key := strings.TrimSpace(line[:eq])
			switch {
			case key == "":
				return nil, newError(ErrSyntax, "", n, "", "", "missing key name")
			case key[0] == '"' || key[0] == '`':
				return nil, newError(ErrSyntax, "", n, "", "", "quoted key names are not supported")
			}
			val := strings.TrimSpace(line[eq+1:])
			if strings.HasPrefix(val, "`") || strings.HasPrefix(val, `"""`) {
				return nil, newError(ErrSyntax, "", n, "", key, "multi-line values are not supported")
			}
			out = append(out, entry{line: n, section: section, key: key, empty: plainValue(val) == ""})
		}
	}
	return out, nil
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
