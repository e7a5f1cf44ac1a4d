package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
)

// pageNames are the pages; each is templates/<name>.html in layout.html.
var pageNames = []string{"login", "error", "overview", "businesses", "business", "event", "dead_letters", "dead_letter", "result", "audit", "attempts"}

// pageData is what every page gets; Data is the page's own.
type pageData struct {
	Title string
	Nav   string // the menu entry to highlight
	Error string
	CSRF  string
	In    bool // logged in: show the menu
	Data  any
}

var funcs = template.FuncMap{
	"when":    when,
	"ago":     ago,
	"percent": func(a, b int64) string { return percent(a, b) },
	// rate is a per-second rate: two decimals below 1, so that one
	// webhook a minute does not read 0.0.
	"rate": func(v float64) string {
		if v > 0 && v < 1 {
			return fmt.Sprintf("%.2f", v)
		}
		return fmt.Sprintf("%.1f", v)
	},
	"f0": func(v float64) string { return fmt.Sprintf("%.0f", v) },
	// ms is a latency; 0 means no Graph request in the window.
	"ms": func(v float64) string {
		if v == 0 {
			return "—"
		}
		return fmt.Sprintf("%.0f", v)
	},
	"add":    func(a, b int) int { return a + b },
	"pretty": prettyJSON,
	"sum":    sumCounts,
	"dlt": func(v dlView, csrf string) any {
		return struct {
			DL   dlView
			CSRF string
		}{v, csrf}
	},
	"byReason": func(m map[string]int64) string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
		return strings.Join(parts, ", ")
	},
}

func parsePages() map[string]*template.Template {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, n := range pageNames {
		pages[n] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+n+".html"))
	}
	return pages
}

// render writes page name; a template error (a programmer error) is logged
// and answered 500 before anything is sent, as the page is rendered to a
// buffer first.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, s session, d pageData) {
	d.CSRF, d.In = s.csrf, s.id != ""
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, d); err != nil {
		c.log.Error("console page failed", zap.String("page", name), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func when(t apiTime) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func ago(t apiTime) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t.Time).Round(time.Second)
	if d < 0 {
		return "in " + (-d).String()
	}
	return d.String() + " ago"
}

func percent(a, b int64) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", float64(a)/float64(b)*100)
}

func sumCounts(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// prettyJSON indents a message for <pre> (html/template escapes it).
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}
