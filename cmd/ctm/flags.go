package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ctmpipe/ctmpipe/internal/localcreds"
)

// common are the flags every ctm command takes, before or after its words:
// where the admin API and NATS are, the all-in-one's data directory (its
// NATS credentials) and the output format.
type common struct {
	adminURL string // -admin-url, ADMIN_URL
	natsURL  string // -nats-url, NATS_URL ("" with an all-in-one's DATA_DIR: its NATS)
	dataDir  string // -data-dir, DATA_DIR
	output   string // -o table|json
}

func newCommon(getenv func(string) string) *common {
	c := &common{adminURL: getenv("ADMIN_URL"), natsURL: getenv("NATS_URL"), dataDir: localcreds.DataDir(getenv), output: "table"}
	if c.adminURL == "" {
		c.adminURL = DefaultAdminURL
	}
	return c
}

// flagSet returns a flag set holding the common flags, with their current
// values as defaults, for a command to add its own to. -nats is the old
// spelling of -nats-url, kept (and not shown in the help) so that scripts
// written for publish and replay keep working.
func (c *common) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.adminURL, "admin-url", c.adminURL, "")
	fs.StringVar(&c.natsURL, "nats-url", c.natsURL, "")
	fs.StringVar(&c.natsURL, "nats", c.natsURL, "")
	fs.StringVar(&c.dataDir, "data-dir", c.dataDir, "")
	fs.StringVar(&c.output, "o", c.output, "")
	return fs
}

// parse parses args against fs, flags and words in any order, and returns
// the words. It checks -o too.
func (c *common) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%s: %w (see ctm -h)", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		words, args = append(words, args[0]), args[1:]
	}
	if c.output != "table" && c.output != "json" {
		return nil, fmt.Errorf("%s: -o %s: want table or json", fs.Name(), c.output)
	}
	return words, nil
}

// needNATS says what to set when there is neither a NATS_URL nor an
// all-in-one's credentials file to find its NATS with.
func (c *common) needNATS(cmd string) error {
	if c.natsURL == "" && !localcreds.Exists(c.dataDir) {
		return fmt.Errorf("%s: NATS_URL (or -nats-url) is required, or -data-dir (DATA_DIR) of an all-in-one on this machine (%s does not exist)",
			cmd, localcreds.Path(c.dataDir))
	}
	return nil
}

// wantWords checks the number of words a command was given.
func wantWords(cmd string, words []string, n int, what string) error {
	if len(words) != n {
		return fmt.Errorf("%s: want %s (got %d arguments: %s)", cmd, what, len(words), strings.Join(words, " "))
	}
	return nil
}
