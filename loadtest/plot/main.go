// Command plot turns the comparison harness's JSON results into an SVG bar
// chart: joins per second (and sold-out answers per second) and p50/p99
// latency, one row per design. Standard library only.
//
//	go run ./loadtest/plot -in docs/benchmarks.json -out docs/benchmarks.svg
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"math"
	"os"
	"strings"
)

type results struct {
	GeneratedAt string `json:"generatedAt"`
	Machine     struct {
		CPUs    int    `json:"cpus"`
		Redis   string `json:"redis"`
		MariaDB string `json:"mariadb"`
	} `json:"machine"`
	Config struct {
		Conns    int    `json:"conns"`
		Duration string `json:"duration"`
		Stock    int64  `json:"stock"`
	} `json:"config"`
	Designs []struct {
		Key         string  `json:"key"`
		Short       string  `json:"short"`
		JoinsPerSec float64 `json:"joinsPerSec"`
		P50Ms       float64 `json:"p50Ms"`
		P99Ms       float64 `json:"p99Ms"`
		SoldOutRun  *struct {
			JoinsPerSec float64 `json:"joinsPerSec"`
		} `json:"soldOutRun"`
	} `json:"designs"`
}

func main() {
	in := flag.String("in", "docs/benchmarks.json", "results of loadtest/compare")
	out := flag.String("out", "docs/benchmarks.svg", "SVG to write")
	flag.Parse()
	b, err := os.ReadFile(*in)
	if err != nil {
		fail(err)
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		fail(fmt.Errorf("%s: %w", *in, err))
	}
	if len(r.Designs) == 0 {
		fail(fmt.Errorf("%s: no designs", *in))
	}
	if err := os.WriteFile(*out, []byte(render(&r)), 0o644); err != nil {
		fail(err)
	}
	fmt.Printf("wrote %s\n", *out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "plot:", err)
	os.Exit(1)
}

const (
	labelW  = 230
	panelW  = 330
	gap     = 100
	rowH    = 34
	barH    = 12
	top     = 78
	bottomM = 58
)

func render(r *results) string {
	n := len(r.Designs)
	width := labelW + 2*panelW + gap + 110
	height := top + n*rowH + bottomM
	var maxJoins, maxP99 float64
	for _, d := range r.Designs {
		maxJoins = math.Max(maxJoins, d.JoinsPerSec)
		if d.SoldOutRun != nil {
			maxJoins = math.Max(maxJoins, d.SoldOutRun.JoinsPerSec)
		}
		maxP99 = math.Max(maxP99, d.P99Ms)
	}
	maxJoins, maxP99 = niceCeil(maxJoins), niceCeil(maxP99)

	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&s, `<text x="16" y="24" font-size="16" font-weight="bold">seckill: joins per design, %d connections, %s each, stock %d</text>`+"\n",
		r.Config.Conns, html.EscapeString(r.Config.Duration), r.Config.Stock)
	fmt.Fprintf(&s, `<text x="16" y="42" fill="#555">%d CPUs, Redis %s, MariaDB %s, %s (loadtest/compare; make bench)</text>`+"\n",
		r.Machine.CPUs, html.EscapeString(r.Machine.Redis), html.EscapeString(short(r.Machine.MariaDB)), html.EscapeString(r.GeneratedAt))

	x1 := labelW
	x2 := labelW + panelW + gap
	panel(&s, x1, "joins/s (tokens + sold-out answers)", maxJoins, n)
	panel(&s, x2, "latency, ms (p50 dark, p99 light)", maxP99, n)
	for i, d := range r.Designs {
		y := top + i*rowH + 8
		weight := "normal"
		main, light := "#8aa4c8", "#c9d6ea"
		if d.Key == "f" {
			weight, main, light = "bold", "#d9534f", "#f2b8b6"
		}
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end" font-weight="%s">(%s) %s</text>`+"\n",
			labelW-10, y+barH-1, weight, html.EscapeString(d.Key), html.EscapeString(d.Short))
		// Joins, and below it the sold-out answers.
		w := scale(d.JoinsPerSec, maxJoins)
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x1, y, w, barH, main)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d" fill="#333">%s</text>`+"\n", float64(x1)+w+4, y+barH-1, commas(d.JoinsPerSec))
		if d.SoldOutRun != nil {
			ws := scale(d.SoldOutRun.JoinsPerSec, maxJoins)
			fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x1, y+barH+2, ws, barH/2, light)
			fmt.Fprintf(&s, `<text x="%.1f" y="%d" fill="#777" font-size="10">sold out %s</text>`+"\n", float64(x1)+ws+4, y+barH+8, commas(d.SoldOutRun.JoinsPerSec))
		}
		// Latency: p99 light, p50 dark over it.
		w99, w50 := scale(d.P99Ms, maxP99), scale(d.P50Ms, maxP99)
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x2, y, w99, barH, light)
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x2, y, w50, barH, main)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d" fill="#333">%s / %s</text>`+"\n", float64(x2)+w99+4, y+barH-1, msLabel(d.P50Ms), msLabel(d.P99Ms))
	}
	fmt.Fprintf(&s, `<text x="16" y="%d" fill="#555" font-size="11">thin bars: answers per second on an activity already sold out (stock 1). Higher joins/s and lower latency are better.</text>`+"\n",
		height-14)
	s.WriteString("</svg>\n")
	return s.String()
}

// panel draws a panel's title, axis and grid lines.
func panel(s *strings.Builder, x int, title string, maxV float64, n int) {
	y0, y1 := top-6, top+n*rowH
	fmt.Fprintf(s, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x, top-22, html.EscapeString(title))
	for i := 0; i <= 4; i++ {
		gx := float64(x) + float64(panelW)*float64(i)/4
		fmt.Fprintf(s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`+"\n", gx, y0, gx, y1)
		fmt.Fprintf(s, `<text x="%.1f" y="%d" text-anchor="middle" fill="#777" font-size="10">%s</text>`+"\n", gx, y1+14, commas(maxV*float64(i)/4))
	}
	fmt.Fprintf(s, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>`+"\n", x, y0, x, y1)
}

func scale(v, maxV float64) float64 {
	if maxV <= 0 || v <= 0 {
		return 0
	}
	return math.Min(v/maxV, 1) * panelW
}

// niceCeil rounds v up to a round multiple of a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func msLabel(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func commas(v float64) string {
	n := int64(math.Round(v))
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

func short(v string) string {
	if i := strings.Index(v, "-"); i > 0 {
		return v[:i]
	}
	return v
}
