package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
)

// inspect runs `ctm events show BUSINESS EVENT_ID` and `ctm contexts show
// CHANNEL BUSINESS USER`: the admin API's answer (GET /v1/events/...,
// /v1/contexts/...), as a table of fields or as the API's JSON. They print
// what the operator asked about, ids included, to the operator's terminal:
// like the curl commands they replace, never to a log.
func inspect(ctx context.Context, c *common, what string, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := c.flagSet(what + " show")
	if len(args) == 0 || args[0] != "show" {
		return fmt.Errorf("%s: say %s show (see ctm -h)", what, what)
	}
	words, err := c.parse(fs, args[1:])
	if err != nil {
		return err
	}
	var path string
	switch what {
	case "events":
		if err := wantWords("events show", words, 2, "BUSINESS_ID EVENT_ID"); err != nil {
			return err
		}
		path = "/v1/events/" + url.PathEscape(words[0]) + "/" + url.PathEscape(words[1])
	case "contexts":
		if err := wantWords("contexts show", words, 3, "CHANNEL BUSINESS_ID USER_ID"); err != nil {
			return err
		}
		path = "/v1/contexts/" + url.PathEscape(words[0]) + "/" + url.PathEscape(words[1]) + "/" + url.PathEscape(words[2])
	}
	cl, err := newClient(c.adminURL, getenv("ADMIN_TOKEN"))
	if err != nil {
		return err
	}
	_, body, err := cl.do(ctx, http.MethodGet, path, nil, http.StatusOK)
	if err != nil {
		return err
	}
	return printObject(stdout, c.output, body)
}

// printObject writes a JSON object from the API: indented with -o json,
// else one FIELD VALUE row per leaf, nested fields joined with dots.
func printObject(w io.Writer, output string, body []byte) error {
	if output == "json" {
		var b bytes.Buffer
		if err := json.Indent(&b, body, "", "  "); err != nil {
			return fmt.Errorf("admin API answered no JSON: %w", err)
		}
		b.WriteByte('\n')
		_, err := b.WriteTo(w)
		return err
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("admin API answered no JSON: %w", err)
	}
	rows := map[string]string{}
	flatten("", v, rows)
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIELD\tVALUE")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\n", k, rows[k])
	}
	return tw.Flush()
}

// flatten puts v's leaves in rows by their dotted path (list items by
// index).
func flatten(prefix string, v any, rows map[string]string) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(join(k), e, rows)
		}
	case []any:
		if len(x) == 0 {
			rows[prefix] = "[]"
		}
		for i, e := range x {
			flatten(join(fmt.Sprint(i)), e, rows)
		}
	case nil:
		rows[prefix] = "-"
	default:
		rows[prefix] = strings.ReplaceAll(fmt.Sprint(x), "\n", " ")
	}
}
