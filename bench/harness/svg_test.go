package main

import (
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// svgBars decodes the SVG and returns the height of every bar, checking
// that the document is well-formed XML on the way.
func svgBars(t *testing.T, svg string) []float64 {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	var heights []float64
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf(
				"SVG is not well-formed XML: %v",
				err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = se.Name.Local
		}
		if se.Name.Local != "rect" {
			continue
		}
		class, h := "", 0.0
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "class":
				class = a.Value
			case "height":
				h, _ = strconv.ParseFloat(a.Value, 64)
			}
		}
		if class == "bar" {
			heights = append(heights, h)
		}
	}
	if root != "svg" {
		t.Fatalf(
			"root element %q, want svg",
			root)
	}
	return heights
}

func TestRenderSVG(t *testing.T) {
	series := []string{"BlastBeat", "nginx <proxy> & co", "nginx direct"}
	groups := []chartGroup{
		{label: "get-c64", bars: []chartBar{{value: 1.5, ok: true}, {value: 1, ok: true}, {value: 3, ok: true}}},
		{label: "ws-echo", bars: []chartBar{{value: 0.75, ok: true}, {value: 1, ok: true}, {}}},
	}
	svg := renderSVG(`ratios "vs" nginx`, series, groups)
	bars := svgBars(t, svg)
	if len(bars) != 5 {
		t.Fatalf(
			"%d bars, want 5 (one n/a)",
			len(bars))
	}
	// Heights are proportional to the values: 1.5 / 1 and 3 / 1.
	if math.Abs(bars[0]/bars[1]-1.5) > 0.01 || math.Abs(bars[2]/bars[1]-3) > 0.01 {
		t.Fatalf(
			"bar heights %v not proportional to 1.5, 1, 3",
			bars)
	}
	for _, want := range []string{"nginx &lt;proxy&gt; &amp; co", "ratios &quot;vs&quot; nginx", ">n/a<", "nginx proxy_pass = 1 (the baseline)"} {
		if !strings.Contains(svg, want) {
			t.Errorf(
				"SVG lacks %q",
				want)
		}
	}
}

func TestRenderSVGEmptyAndHuge(t *testing.T) {
	if bars := svgBars(t, renderSVG("empty", []string{"a"}, nil)); len(bars) != 0 {
		t.Fatalf(
			"empty chart has %d bars",
			len(bars))
	}
	groups := []chartGroup{{label: "x", bars: []chartBar{{value: math.Inf(1), ok: true}, {value: 250, ok: true}}}}
	bars := svgBars(t, renderSVG("huge", []string{"a", "b"}, groups))
	if len(bars) != 2 {
		t.Fatalf(
			"%d bars, want 2",
			len(bars))
	}
	for _, h := range bars {
		if h < 0 || h > svgPlotH+0.1 || math.IsNaN(h) {
			t.Fatalf(
				"bar height %v outside the plot",
				h)
		}
	}
}

func TestNiceStep(t *testing.T) {
	tests := []struct {
		raw, want float64
	}{
		{raw: 0.3, want: 0.5},
		{raw: 0.21, want: 0.25},
		{raw: 1, want: 1},
		{raw: 1.1, want: 2},
		{raw: 40, want: 50},
		{raw: 0, want: 1},
	}
	for _, tt := range tests {
		if got := niceStep(tt.raw); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf(
				"niceStep(%v) = %v, want %v",
				tt.raw, got, tt.want)
		}
	}
}
