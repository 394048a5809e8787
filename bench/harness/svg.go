package main

import (
	"fmt"
	"math"
	"strings"
)

// chartGroup is one cluster of bars (a scenario); bars are in series order.
type chartGroup struct {
	label string
	bars  []chartBar
}

// chartBar is one bar; ok is false when there is no value (n/a, error).
type chartBar struct {
	value float64
	ok    bool
}

// seriesColors are the bar colours, by series index.
var seriesColors = []string{"#d62728", "#1f77b4", "#7f7f7f", "#2ca02c", "#9467bd", "#ff7f0e"}

// Chart geometry, in SVG user units.
const (
	svgBarW     = 26
	svgGroupGap = 34
	svgLeft     = 56
	svgRight    = 24
	svgTop      = 64
	svgPlotH    = 280
	svgBottom   = 40
)

// renderSVG draws a grouped bar chart of ratios with a reference line at
// 1 (the baseline). It is self-contained SVG text: no scripts, no external
// fonts or styles.
func renderSVG(title string, series []string, groups []chartGroup) string {
	groupW := len(series)*svgBarW + svgGroupGap
	plotW := max(len(groups)*groupW, 320)
	legendRows := (len(series) + 2) / 2 // the series and the baseline
	width := svgLeft + plotW + svgRight
	height := svgTop + svgPlotH + svgBottom + legendRows*18

	top := 1.2
	for _, g := range groups {
		for _, b := range g.bars {
			if b.ok && !math.IsInf(b.value, 0) && !math.IsNaN(b.value) {
				top = math.Max(top, b.value)
			}
		}
	}
	step := niceStep(top * 1.1 / 5)
	ymax := math.Ceil(top*1.1/step) * step
	y := func(v float64) float64 { return svgTop + svgPlotH - v/ymax*svgPlotH }

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`, width, height, width, height)
	p(`<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`, width, height)
	p(`<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`, svgLeft, xmlEscape(title))

	// Grid and y axis labels.
	for v := 0.0; v <= ymax+step/2; v += step {
		p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e0e0e0"/>`, svgLeft, y(v), svgLeft+plotW, y(v))
		p(`<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`, svgLeft-6, y(v)+4, trimFloat(v))
	}
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, svgLeft, svgTop, svgLeft, svgTop+svgPlotH)
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, svgLeft, svgTop+svgPlotH, svgLeft+plotW, svgTop+svgPlotH)

	// Bars.
	for gi, g := range groups {
		x0 := svgLeft + gi*groupW + svgGroupGap/2
		for si, bar := range g.bars {
			x := x0 + si*svgBarW
			color := seriesColors[si%len(seriesColors)]
			name := ""
			if si < len(series) {
				name = series[si]
			}
			if !bar.ok {
				p(`<text x="%d" y="%d" text-anchor="middle" fill="#999" font-size="9">n/a</text>`, x+svgBarW/2, svgTop+svgPlotH-4)
				continue
			}
			v := math.Min(bar.value, ymax)
			p(`<rect class="bar" x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s, %s: ×%.2f</title></rect>`,
				x+1, y(v), svgBarW-2, y(0)-y(v), color, xmlEscape(g.label), xmlEscape(name), bar.value)
			p(`<text x="%d" y="%.1f" text-anchor="middle" font-size="9">%.2f</text>`, x+svgBarW/2, y(v)-3, bar.value)
		}
		p(`<text x="%d" y="%d" text-anchor="middle">%s</text>`, x0+len(g.bars)*svgBarW/2, svgTop+svgPlotH+16, xmlEscape(g.label))
	}

	// The baseline.
	p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#000" stroke-dasharray="6 4"/>`, svgLeft, y(1), svgLeft+plotW, y(1))

	// Legend, two columns: the series, then the baseline.
	at := func(i int) (int, int) {
		return svgLeft + (i%2)*(plotW/2), svgTop + svgPlotH + svgBottom + (i/2)*18
	}
	for si, name := range series {
		lx, ly := at(si)
		p(`<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`, lx, ly-10, seriesColors[si%len(seriesColors)])
		p(`<text x="%d" y="%d">%s</text>`, lx+18, ly, xmlEscape(name))
	}
	lx, ly := at(len(series))
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#000" stroke-dasharray="6 4"/>`, lx, ly-4, lx+12, ly-4)
	p(`<text x="%d" y="%d">nginx proxy_pass = 1 (the baseline)</text>`, lx+18, ly)
	p(`</svg>`)
	return b.String()
}

// niceStep rounds a raw axis step up to 1, 2, 2.5 or 5 × 10^k.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

var xmlReplacer = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

func xmlEscape(s string) string { return xmlReplacer.Replace(s) }
