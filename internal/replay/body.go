package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/ctmpipe/ctmpipe/pkg/webhook"
	"github.com/valyala/fastjson"
)

// The ingest paths a capture records, and so the routes a body can take.
const (
	PathCloud  = "/webhook"
	PathOnPrem = "/webhook/onprem"
)

// Reasons a body is not sent. Their text is what the summary prints after
// "file:line: ", and never quotes the body.
var (
	errNotJSON  = errors.New("not JSON")
	errNotBody  = errors.New("not a webhook body")
	errBadRoute = errors.New("capture header Ctm-Path is neither " + PathCloud + " nor " + PathOnPrem)
)

// OnPremURL returns the On-Premises URL that goes with a target URL: its
// path with "/onprem" appended (…/webhook → …/webhook/onprem).
func OnPremURL(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/onprem"
	u.RawPath = ""
	return u.String()
}

// checked is a body that passed the checks, with what ingest would make of it.
type checked struct {
	onPrem  bool
	payload webhook.Payload
}

// check makes sure body is a webhook ingest understands: a JSON object of a
// channel pkg/webhook parses (Channel set), or an On-Premises delivery.
// path, when the capture recorded one, decides the route; otherwise the
// shape does (top-level contacts or messages and no object: On-Premises).
func check(body []byte, path, onPremWABA string) (checked, error) {
	if !json.Valid(body) {
		return checked{}, errNotJSON
	}
	v, err := fastjson.ParseBytes(body)
	if err != nil || v.Type() != fastjson.TypeObject {
		return checked{}, errNotBody
	}
	onPrem := false
	switch path {
	case "":
		onPrem = v.Get("object") == nil && (v.Get("contacts") != nil || v.Get("messages") != nil)
	case PathCloud:
	case PathOnPrem:
		onPrem = true
	default:
		return checked{}, errBadRoute
	}
	if onPrem {
		pl, err := webhook.ParseOnPrem(body, onPremWABA)
		if err != nil {
			return checked{}, errNotBody
		}
		return checked{onPrem: true, payload: pl}, nil
	}
	pl, err := webhook.Parse(body)
	if err != nil {
		return checked{}, errNotBody
	}
	if pl.Channel == "" {
		return checked{}, unknownShape(pl.Object)
	}
	return checked{payload: pl}, nil
}

// unknownShape names the object, which is Meta's vocabulary ("user",
// "permissions"), never personal data; it is cut short all the same.
func unknownShape(object string) error {
	if object == "" {
		return errors.New("unknown shape (no \"object\", not On-Premises)")
	}
	if len(object) > 40 {
		object = object[:40] + "…"
	}
	return fmt.Errorf("unknown shape (object %q)", object)
}

// dryRunLine is what -dry-run prints for a body that passed the checks.
type dryRunLine struct {
	Source    string          `json:"source"`
	Path      string          `json:"path"`
	Object    string          `json:"object"`
	Channel   string          `json:"channel"`
	Touches   []webhook.Touch `json:"touches"`
	Ignored   int             `json:"ignored"`
	Malformed int             `json:"malformed"`
}

// dryRunError is what -dry-run prints for a body that did not.
type dryRunError struct {
	Source string `json:"source"`
	Error  string `json:"error"`
}

// dryRunRecord returns the -dry-run line for one body.
func dryRunRecord(source string, c checked, err error) any {
	if err != nil {
		return dryRunError{Source: source, Error: err.Error()}
	}
	path := PathCloud
	if c.onPrem {
		path = PathOnPrem
	}
	touches := c.payload.Touches
	if touches == nil {
		touches = []webhook.Touch{}
	}
	return dryRunLine{
		Source:    source,
		Path:      path,
		Object:    c.payload.Object,
		Channel:   string(c.payload.Channel),
		Touches:   touches,
		Ignored:   c.payload.Ignored,
		Malformed: c.payload.Malformed,
	}
}
