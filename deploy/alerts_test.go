package deploy_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// checkExpr parses expr with Prometheus's parser and checks that every
// metric it selects is one the binaries export, that every label it
// matches on is one of that metric's, and that every `by` label of an
// aggregation is a label of some metric under it.
func checkExpr(t testing.TB, where, expr string, known metrics) {
	t.Helper()
	checkExprTo(t.Errorf, where, expr, known)
}

// checkExprTo is checkExpr reporting to errorf.
func checkExprTo(errorf func(string, ...any), where, expr string, known metrics) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		errorf("%s: %v\n%s", where, err, expr)
		return
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			name := n.Name
			for _, m := range n.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			ls, ok := known[name]
			if !ok {
				errorf("%s: metric %q is exported by no binary", where, name)
				return nil
			}
			for _, m := range n.LabelMatchers {
				if m.Name != labels.MetricName && !ls[m.Name] {
					errorf("%s: %s has no label %q", where, name, m.Name)
				}
			}
		case *parser.AggregateExpr:
			if n.Without {
				return nil
			}
			under := map[string]bool{}
			parser.Inspect(n.Expr, func(m parser.Node, _ []parser.Node) error {
				if vs, ok := m.(*parser.VectorSelector); ok {
					for l := range known[vs.Name] {
						under[l] = true
					}
				}
				return nil
			})
			for _, g := range n.Grouping {
				if !under[g] {
					errorf("%s: by (%s): no metric under %s has that label", where, g, n.Op)
				}
			}
		}
		return nil
	})
}

// TestAlertRules loads prometheus/alerts.yml with Prometheus's own rule
// loader (the checks `promtool check rules` makes) and checks each
// expression against the metrics the binaries export.
func TestAlertRules(t *testing.T) {
	known := metricNames(t)
	groups, errs := rulefmt.ParseFile("prometheus/alerts.yml", false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.FailNow()
	}
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("%s: a recording rule %s; this file holds alerts", g.Name, r.Record)
				continue
			}
			alerts[r.Alert] = true
			checkExpr(t, g.Name+"/"+r.Alert, r.Expr, known)
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q; want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: want a summary and a description", r.Alert)
			}
			if time.Duration(r.For) > 6*time.Hour {
				t.Errorf("%s: for %v is longer than a working day's patience", r.Alert, r.For)
			}
		}
	}
	// The conditions an operator must hear of (issue 25).
	for _, want := range []string{"CtmpipeWebhookSignatureFailures", "CtmpipeWebhookStoreErrors", "CtmpipeBusinessesPaused",
		"CtmpipeDeadLettersRising", "CtmpipeInDoubt", "CtmpipeConsumerLag", "CtmpipeGraphErrors", "CtmpipeGraphVersionWarnings",
		"CtmpipeDependencyNotReady"} {
		if !alerts[want] {
			t.Errorf("alerts.yml has no %s", want)
		}
	}
}

// TestAlertRulesCheckerFails shows that checkExpr is not vacuous.
func TestAlertRulesCheckerFails(t *testing.T) {
	known := metrics{"a_total": {"job": true, "code": true}}
	for _, expr := range []string{`rate(b_total[5m])`, `a_total{outcome="x"}`, `sum by (outcome) (a_total)`, `sum(rate(a_total[5m])`} {
		failed := false
		checkExprTo(func(string, ...any) { failed = true }, "test", expr, known)
		if !failed {
			t.Errorf("checkExpr(%q) passed; want a failure", expr)
		}
	}
}

// grafanaVars stand in for the variables Grafana fills in before a query
// reaches Prometheus.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$job", ".*", "${datasource}", "")

// TestDashboard checks that grafana/ctmpipe.json is a dashboard whose every
// query parses and names exported metrics and labels, and that it covers
// ingest, the sender, forwarding and the businesses.
func TestDashboard(t *testing.T) {
	known := metricNames(t)
	b, err := os.ReadFile("grafana/ctmpipe.json")
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Title      string  `json:"title"`
		UID        string  `json:"uid"`
		Schema     int     `json:"schemaVersion"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Schema < 30 || len(d.Panels) == 0 {
		t.Fatalf("dashboard uid %q, schemaVersion %d, %d panels", d.UID, d.Schema, len(d.Panels))
	}
	ids := map[int]bool{}
	var titles []string
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		titles = append(titles, p.Title)
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			checkExpr(t, "panel "+p.Title+"/"+tg.RefID, grafanaVars.Replace(tg.Expr), known)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			if s, _ := q["query"].(string); strings.HasPrefix(s, "label_values(") {
				metric := strings.TrimSpace(strings.Split(strings.TrimPrefix(s, "label_values("), ",")[0])
				if known[metric] == nil {
					t.Errorf("variable %s: label_values of %q, which no binary exports", v.Name, metric)
				}
			}
		}
	}
	all := strings.ToLower(strings.Join(titles, "\n"))
	for _, want := range []string{"ingest", "sender", "forward", "businesses"} {
		if !strings.Contains(all, want) {
			t.Errorf("no row or panel about %s", want)
		}
	}
	t.Logf("%d panels, %d queries", len(d.Panels), queries)
}
