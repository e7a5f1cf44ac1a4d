// Command healthcheck GETs one URL and exits 0 on a 2xx answer, 1 otherwise.
// The images are distroless (no shell, no curl), so docker-compose's
// healthchecks run this binary, copied into every image by the Dockerfile:
//
//	healthcheck http://127.0.0.1:8080/readyz
//
// Kubernetes probes do not need it: the kubelet makes the request itself.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

const usage = `Usage: healthcheck URL

GETs URL (http or https) within 3 s and exits 0 on a 2xx answer, 1 otherwise.
For docker-compose healthchecks in the distroless images, for example
  healthcheck http://127.0.0.1:8080/readyz
`

// errHelp is returned for -h: the usage was printed, exit 0.
var errHelp = errors.New("help requested")

func main() {
	err := run(os.Args[1:], os.Stdout)
	if errors.Is(err, errHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 1 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			io.WriteString(stdout, usage)
			return errHelp
		}
	}
	if len(args) != 1 {
		return fmt.Errorf("want one URL (see healthcheck -h)")
	}
	if u, err := url.Parse(args[0]); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL (see healthcheck -h)", args[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) //nolint:errcheck // only the status matters
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}
