// Command ctm is the operator's one tool for a running pipeline: the
// business registry, an event's trail and a conversation's context through
// ingest's admin API; dead letters and the streams' lag through NATS (an
// all-in-one's found through its DATA_DIR); the registry's key rotation in
// Redis. Run it with -h for the commands.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ctmpipe/ctmpipe/internal/audit"
	"github.com/ctmpipe/ctmpipe/internal/buildinfo"
	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/pkg/attribution"
	"github.com/ctmpipe/ctmpipe/pkg/capi"
	"github.com/ctmpipe/ctmpipe/pkg/registry"
)

func main() {
	if buildinfo.Asked(os.Args[1:]) {
		fmt.Println(buildinfo.Line("ctm"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctm:", err)
		os.Exit(1)
	}
}

// DefaultAdminURL is ingest's default ADMIN_ADDR.
const DefaultAdminURL = "http://127.0.0.1:8081"

const usage = `Usage: ctm [-admin-url URL] [-nats-url URL] [-data-dir DIR] [-o table|json] COMMAND ...

Through the admin API (ADMIN_URL, ADMIN_TOKEN):
  ctm businesses add ID [FILE]      create or replace business ID from a JSON record (FILE, or stdin; see docs/registry.md)
  ctm businesses show ID            the record (secrets as set/unset) and its health
  ctm businesses list               every business, one JSON record a line
  ctm businesses rm ID              delete business ID
  ctm businesses import FILE -channel C
                                    register the businesses of a CAPI_DATASETS_FILE that the registry does not hold
  ctm businesses resume ID          end ID's pause on every sender and send its parked messages back
  ctm events show BUSINESS_ID EVENT_ID
                                    what happened to a conversion: sent, duplicate, waiting_context, retrying,
                                    parked, dead_letter or in_doubt, with Meta's answer (docs/trail.md)
  ctm contexts show CHANNEL BUSINESS_ID USER_ID
                                    the stored ad-click context of a conversation (channel: whatsapp,
                                    messenger, instagram), and until when it lives

Through NATS (NATS_URL; unset, the all-in-one's, with the credentials in DATA_DIR):
  ctm dlq list [-reason R] [-business B] [-since T] [-limit N]
                                    dead letters, newest first (-since: RFC 3339 or a duration: 1h, 3d)
  ctm dlq show SEQ [-reveal]        one dead letter with its message (personal ids masked unless -reveal)
  ctm dlq redrive [-reason R[,R]] [-business B] [-seq N[,N]] [-since DUR | -from TIME] [-until TIME]
                  [-limit N] [-dry-run] [-force] [-host H]
                                    publish dead letters back (see sender redrive -h; -reason forward
                                    goes back to FORWARD, -host by destination; -force for in_doubt
                                    needs REDIS_URL)
  ctm streams                       every stream and consumer: messages, consumer lag (pending),
                                    ack pending against MAX_ACK_PENDING, parked and dead letters

Through Redis (REDIS_URL):
  ctm registry rotate-key           re-encrypt every secret with REGISTRY_KEY's first key

Offline:
  ctm versions                      Meta's Marketing API versions and expiry dates, and what they mean for GRAPH_API_VERSION
  ctm -version                      this build: version, commit, build date, Go version

Flags (before or after the command's words):
  -admin-url URL  ingest's admin listener (default $ADMIN_URL, else ` + DefaultAdminURL + `)
  -nats-url URL   NATS server (default $NATS_URL; unset: the all-in-one's, nats://127.0.0.1:4222)
  -data-dir DIR   the all-in-one's data directory (default $DATA_DIR, else ./data): its
                  credentials.json logs in to its NATS and store
  -o FORMAT       table (default) or json

Environment:
  ADMIN_TOKEN   the admin API's bearer token (businesses, events, contexts)
  REDIS_URL     the registry's Redis (rotate-key) and the ledger (dlq redrive -force); on 127.0.0.1
                without a password, the all-in-one's store password is read from DATA_DIR/credentials.json
  REGISTRY_KEY  the keys, current first (rotate-key)
`

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	c := newCommon(getenv)
	fs := c.flagSet("ctm")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stdout, usage)
			return err
		}
		return fmt.Errorf("%w (see ctm -h)", err)
	}
	args = fs.Args()
	if len(args) == 0 || args[0] == "help" {
		io.WriteString(stdout, usage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	if len(rest) > 0 && isHelp(rest[len(rest)-1]) {
		io.WriteString(stdout, usage)
		return flag.ErrHelp
	}
	switch cmd {
	case "versions":
		return versions(stdout, getenv("GRAPH_API_VERSION"), time.Now())
	case "dlq":
		return dlq(ctx, c, rest, getenv, stdout)
	case "streams":
		return streams(ctx, c, rest, stdout)
	case "events", "contexts":
		return inspect(ctx, c, cmd, rest, getenv, stdout)
	case "registry":
		if len(rest) != 1 || rest[0] != "rotate-key" {
			return fmt.Errorf("unknown command registry %s", strings.Join(rest, " "))
		}
		return rotateKey(ctx, getenv, c.dataDir, stdout)
	case "businesses":
		if len(rest) == 0 {
			return errors.New("businesses: say add, show, list, rm, import or resume (see ctm -h)")
		}
		cl, err := newClient(c.adminURL, getenv("ADMIN_TOKEN"))
		if err != nil {
			return err
		}
		return cl.businesses(ctx, rest[0], rest[1:], stdin, stdout, getenv)
	}
	return fmt.Errorf("unknown command %s (see ctm -h)", cmd)
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// client calls the admin API.
type client struct {
	base, token string
	http        *http.Client
}

func newClient(adminURL, tok string) (*client, error) {
	base := strings.TrimRight(adminURL, "/")
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("ADMIN_URL (-admin-url) is not an http(s) URL")
	}
	if tok == "" {
		return nil, errors.New("ADMIN_TOKEN is not set (the admin API's bearer token)")
	}
	return &client{base: base, token: tok, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// do sends a request and returns the status and body; a status outside
// want is an error carrying the API's own message.
func (c *client) do(ctx context.Context, method, path string, body []byte, want ...int) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("admin API: %w", err)
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp.StatusCode, out, nil
		}
	}
	return resp.StatusCode, out, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(out)))
}

func (c *client) businesses(ctx context.Context, cmd string, args []string, stdin io.Reader, stdout io.Writer, getenv func(string) string) error {
	id := func() (string, error) {
		if len(args) < 1 {
			return "", fmt.Errorf("businesses %s: give the business id", cmd)
		}
		return url.PathEscape(args[0]), nil
	}
	switch cmd {
	case "add":
		bid, err := id()
		if err != nil {
			return err
		}
		var body []byte
		if len(args) > 1 && args[1] != "-" {
			body, err = os.ReadFile(args[1])
		} else {
			body, err = io.ReadAll(stdin)
		}
		if err != nil {
			return err
		}
		code, out, err := c.do(ctx, http.MethodPut, "/v1/businesses/"+bid, body, http.StatusOK, http.StatusCreated)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s\n", map[int]string{http.StatusCreated: "created", http.StatusOK: "replaced"}[code], bytes.TrimSpace(out))
		return nil
	case "show":
		bid, err := id()
		if err != nil {
			return err
		}
		_, out, err := c.do(ctx, http.MethodGet, "/v1/businesses/"+bid, nil, http.StatusOK)
		if err == nil {
			fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(out))
		}
		return err
	case "rm":
		bid, err := id()
		if err != nil {
			return err
		}
		_, _, err = c.do(ctx, http.MethodDelete, "/v1/businesses/"+bid, nil, http.StatusNoContent)
		if err == nil {
			fmt.Fprintln(stdout, "deleted")
		}
		return err
	case "resume":
		bid, err := id()
		if err != nil {
			return err
		}
		code, out, err := c.do(ctx, http.MethodPost, "/v1/businesses/"+bid+"/resume", nil, http.StatusAccepted, http.StatusNoContent)
		if err != nil {
			return err
		}
		if code == http.StatusNoContent {
			fmt.Fprintln(stdout, "nothing to resume")
			return nil
		}
		fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(out))
		return nil
	case "list":
		return c.list(ctx, stdout)
	case "import":
		return c.importFile(ctx, args, stdout, getenv)
	}
	return fmt.Errorf("unknown command businesses %s (see ctm -h)", cmd)
}

// list pages through every business, one record a line.
func (c *client) list(ctx context.Context, stdout io.Writer) error {
	cursor := ""
	for {
		_, out, err := c.do(ctx, http.MethodGet, "/v1/businesses?limit=500&cursor="+url.QueryEscape(cursor), nil, http.StatusOK)
		if err != nil {
			return err
		}
		var page struct {
			Businesses []json.RawMessage `json:"businesses"`
			NextCursor string            `json:"next_cursor"`
		}
		if err := json.Unmarshal(out, &page); err != nil {
			return fmt.Errorf("list: %w", err)
		}
		for _, b := range page.Businesses {
			fmt.Fprintf(stdout, "%s\n", b)
		}
		if page.NextCursor == "" {
			return nil
		}
		cursor = page.NextCursor
	}
}

// importFile registers the businesses of a CAPI_DATASETS_FILE the registry
// does not hold yet (the tokens its access_token_env entries name come
// from this environment), and leaves the others as they are.
func (c *client) importFile(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("ctm businesses import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	channel := fs.String("channel", "", "")
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("businesses import: %w", err)
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
	}
	if file == "" || !registry.Channel(*channel).Valid() {
		return errors.New("businesses import FILE -channel whatsapp|messenger|instagram")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	bs, err := registry.ParseDatasetsFile(data, registry.Channel(*channel), getenv)
	if err != nil {
		return err
	}
	var created, skipped int
	for _, b := range bs {
		path := "/v1/businesses/" + url.PathEscape(b.ID)
		code, _, err := c.do(ctx, http.MethodGet, path, nil, http.StatusOK, http.StatusNotFound)
		if err != nil {
			return err
		}
		if code == http.StatusOK {
			skipped++
			continue
		}
		rec := map[string]any{"channel": b.Channel}
		if b.DatasetID != "" {
			rec["dataset_id"] = b.DatasetID
		}
		if b.AccessToken.IsSet() {
			rec["access_token"] = b.AccessToken.Reveal()
		}
		body, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if _, _, err := c.do(ctx, http.MethodPut, path, body, http.StatusOK, http.StatusCreated); err != nil {
			return err
		}
		created++
	}
	fmt.Fprintf(stdout, "imported %d, already registered %d\n", created, skipped)
	return nil
}

// rotateKey seals every secret again with REGISTRY_KEY's first key.
func rotateKey(ctx context.Context, getenv func(string) string, dataDir string, stdout io.Writer) error {
	if getenv("REDIS_URL") == "" {
		return errors.New("REDIS_URL is not set (the registry's Redis)")
	}
	keys, err := registry.ParseKeyring(getenv(registry.KeyEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", registry.KeyEnv, err)
	}
	if keys == nil {
		return fmt.Errorf("%s is not set (the new key first, then the old ones)", registry.KeyEnv)
	}
	// An all-in-one's embedded store (REDIS_URL on 127.0.0.1) needs the
	// password in its DATA_DIR.
	redisURL, err := localcreds.Redis(getenv("REDIS_URL"), dataDir)
	if err != nil {
		return err
	}
	rdb, err := attribution.NewClient(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	res, err := registry.NewStore(rdb, keys).RotateKey(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "records %d, re-encrypted %d\n", res.Records, res.Reencrypted)
	// The rotation changes state without the admin API, so it records
	// itself in the same audit log (key ids only, never a key).
	if err := audit.NewStore(rdb, 0).Record(ctx, audit.Entry{Actor: audit.ActorCLI, Action: "registry.rotate_key",
		Status: http.StatusOK, Changes: []string{
			fmt.Sprintf("records: %d, re-encrypted: %d", res.Records, res.Reencrypted),
			"current key id: " + keys.CurrentID(),
		}}); err != nil {
		fmt.Fprintf(stdout, "warning: the rotation is done, but its audit record was not stored: %v\n", err)
	}
	return nil
}

// versions prints Meta's table of Marketing API versions as of now, and
// what it says of configured (GRAPH_API_VERSION; empty: the default).
func versions(w io.Writer, configured string, now time.Time) error {
	if configured == "" {
		configured = capi.DefaultVersion
	}
	fmt.Fprintf(w, "%-8s %-12s %-12s %s\n", "VERSION", "RELEASED", "EXPIRES", "STATE")
	for _, v := range capi.Versions {
		st, _, _ := capi.VersionStatus(v.Name, now)
		expires := "no date yet"
		if !v.Expires.IsZero() {
			expires = v.Expires.Format(time.DateOnly)
		}
		mark := ""
		if v.Name == configured {
			mark = "  <- GRAPH_API_VERSION"
		}
		fmt.Fprintf(w, "%-8s %-12s %-12s %s%s\n", v.Name, v.Released.Format(time.DateOnly), expires, st, mark)
	}
	if _, err := capi.ParseVersion(configured); err != nil {
		return fmt.Errorf("GRAPH_API_VERSION: %w", err)
	}
	_, _, msg := capi.VersionStatus(configured, now)
	fmt.Fprintf(w, "\n%s.\nSource: Meta's Marketing API version history (docs/graph-errors.md).\n", msg)
	return nil
}
