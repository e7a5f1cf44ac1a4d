package replay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// compact returns a fixture as one JSONL line.
func compact(t *testing.T, name string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, fixture(t, name)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func failureStrings(s *Summary) []string {
	var out []string
	for _, f := range s.Failures {
		out = append(out, f.String())
	}
	return out
}

func TestRunJSONFileSendsExactBytes(t *testing.T) {
	f := &fakeIngest{}
	body := fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	p := writeFile(t, t.TempDir(), "wa.json", body)

	sum := mustRun(t, testConfig(startIngest(t, f)), mustPath(t, p))

	if got := f.bodies(); len(got) != 1 || got[0] != string(body) {
		t.Fatalf("ingest got %d bodies; want the file's exact bytes once", len(got))
	}
	if sum.Bodies != 1 || sum.OK != 1 || sum.Failed != 0 || sum.Statuses[200] != 1 {
		t.Errorf("summary = %+v; want 1 body, 1 ok, status 200", sum)
	}
	if f.badSig != 0 {
		t.Errorf("%d requests failed signature verification", f.badSig)
	}
}

func TestRunDirectory(t *testing.T) {
	dir := t.TempDir()
	wa := fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	ms := fixture(t, "messenger_message_with_ad_referral.json")
	ig := compact(t, "instagram_message_with_ad_referral.json")
	// Name order, not creation order; other extensions and subdirectories
	// are not inputs; an expected.json-style array is reported.
	writeFile(t, dir, "b.json", ms)
	writeFile(t, dir, "a.json", wa)
	writeFile(t, dir, "c.jsonl", []byte(ig+"\n\n"+ig+"\n"))
	writeFile(t, dir, "expected.json", fixture(t, "expected.json"))
	writeFile(t, dir, "notes.txt", []byte("not an input"))
	writeFile(t, dir, "sub/d.json", wa)

	f := &fakeIngest{}
	cfg := testConfig(startIngest(t, f))
	cfg.Concurrency = 1
	src := mustPath(t, dir)
	if n := src.(Counter).Count(); n != 5 {
		t.Errorf("Count() = %d; want 5 (a, b, two lines of c, expected)", n)
	}
	sum := mustRun(t, cfg, src)

	want := []string{string(wa), string(ms), ig, ig}
	if diff := cmp.Diff(want, f.bodies()); diff != "" {
		t.Errorf("bodies sent, in order (-want +got):\n%s", diff)
	}
	wantFail := []string{dir + "/expected.json:1: not a webhook body"}
	if diff := cmp.Diff(wantFail, failureStrings(sum)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if sum.Bodies != 5 || sum.OK != 4 || sum.Failed != 1 || sum.NotSent != 1 {
		t.Errorf("summary = %d bodies, %d ok, %d failed, %d not sent; want 5, 4, 1, 1", sum.Bodies, sum.OK, sum.Failed, sum.NotSent)
	}
}

func TestPathErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "empty/readme.txt", []byte("x"))
	for _, p := range []string{dir + "/missing.json", dir + "/empty"} {
		if _, err := Path(p); err == nil {
			t.Errorf("Path(%q) = nil error; want one", p)
		}
	}
}

func TestRunJSONLReportsBadLinesAndGoesOn(t *testing.T) {
	dir := t.TempDir()
	ms := compact(t, "messenger_message_with_ad_referral.json")
	ig := compact(t, "instagram_message_with_ad_referral.json")
	unknown := compact(t, "edge_unknown_object.json")
	lines := []string{
		ms,                        // 1
		"",                        // 2: blank, skipped
		`{"object":"page","entry`, // 3: not JSON
		`[1,2]`,                   // 4: JSON, not an object
		unknown,                   // 5: an object nobody subscribes to
		`{}`,                      // 6: no object, not On-Premises
		ig + "\r",                 // 7: CRLF line ending
	}
	p := writeFile(t, dir, "bad.jsonl", []byte(strings.Join(lines, "\n")))
	f := &fakeIngest{}
	cfg := testConfig(startIngest(t, f))
	cfg.Concurrency = 1

	sum := mustRun(t, cfg, mustPath(t, p))

	if diff := cmp.Diff([]string{ms, ig}, f.bodies()); diff != "" {
		t.Errorf("bodies sent (-want +got):\n%s", diff)
	}
	wantFail := []string{
		p + ":3: not JSON",
		p + ":4: not a webhook body",
		p + `:5: unknown shape (object "user")`,
		p + `:6: unknown shape (no "object", not On-Premises)`,
	}
	if diff := cmp.Diff(wantFail, failureStrings(sum)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if sum.Bodies != 6 || sum.OK != 2 || sum.Failed != 4 {
		t.Errorf("summary = %d bodies, %d ok, %d failed; want 6, 2, 4", sum.Bodies, sum.OK, sum.Failed)
	}
	for _, fl := range sum.Failures {
		if strings.Contains(fl.Reason, "entry") || strings.Contains(fl.Reason, "1,2") {
			t.Errorf("failure %q quotes the body", fl)
		}
	}
}

func TestRunStdin(t *testing.T) {
	ms := compact(t, "messenger_message_with_ad_referral.json")
	ig := compact(t, "instagram_message_with_ad_referral.json")
	pretty := string(fixture(t, "whatsapp_cloud_text_with_ctwa_referral.json"))
	tests := []struct {
		name     string
		in       string
		want     []string
		wantFail []string
	}{
		{name: "jsonl", in: ms + "\n" + ig + "\n", want: []string{ms, ig}},
		{name: "jsonl without final newline", in: ms + "\n" + ig, want: []string{ms, ig}},
		{name: "one pretty body", in: "\n" + pretty, want: []string{strings.TrimSpace(pretty)}},
		{name: "jsonl with a bad first line", in: "{oops\n" + ms + "\n\nnope\n" + ig,
			want: []string{ms, ig}, wantFail: []string{"stdin:1: not JSON", "stdin:4: not JSON"}},
		{name: "one bad line", in: "nope", wantFail: []string{"stdin:1: not JSON"}},
		{name: "empty", in: "\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeIngest{}
			cfg := testConfig(startIngest(t, f))
			cfg.Concurrency = 1
			sum := mustRun(t, cfg, Reader("stdin", strings.NewReader(tt.in)))
			if diff := cmp.Diff(tt.want, f.bodies()); diff != "" {
				t.Errorf("bodies sent (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFail, failureStrings(sum)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunMixedInputsInOrder(t *testing.T) {
	dir := t.TempDir()
	ms := compact(t, "messenger_message_with_ad_referral.json")
	ig := compact(t, "instagram_message_with_ad_referral.json")
	wa := compact(t, "whatsapp_cloud_text_with_ctwa_referral.json")
	a := writeFile(t, dir, "a.jsonl", []byte(ms+"\n"))
	c := writeFile(t, dir, "c.json", []byte(wa))
	f := &fakeIngest{}
	cfg := testConfig(startIngest(t, f))
	cfg.Concurrency = 1

	sources := []Source{mustPath(t, c), Reader("stdin", strings.NewReader(ig)), mustPath(t, a)}
	if _, ok := countAll(sources); ok {
		t.Error("countAll is known with stdin among the inputs")
	}
	mustRun(t, cfg, sources...)

	if diff := cmp.Diff([]string{wa, ig, ms}, f.bodies()); diff != "" {
		t.Errorf("bodies sent (-want +got):\n%s", diff)
	}
}

func TestLineReaderLongLines(t *testing.T) {
	// Lines longer than bufio's buffer are joined; lines over maxBody are
	// reported and skipped without losing the next line.
	long := `{"object":"page","pad":"` + strings.Repeat("x", 200<<10) + `"}`
	huge := strings.Repeat("y", maxBody+10)
	in := long + "\n" + huge + "\nlast\n"
	lr := newLineReader(strings.NewReader(in))
	var got []string
	for {
		line, tooLong, err := lr.next()
		got = append(got, fmt.Sprintf("%d:%d:%v", lr.n, len(line), tooLong))
		if err != nil {
			break
		}
	}
	want := []string{fmt.Sprintf("1:%d:false", len(long)), "2:0:true", "3:4:false", "4:0:false"}
	if !slices.Equal(got, want) {
		t.Errorf("lines = %v; want %v", got, want)
	}
}
