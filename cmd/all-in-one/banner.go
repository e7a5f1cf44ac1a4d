package main

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"

	"github.com/ctmpipe/ctmpipe/internal/localcreds"
)

// printBanner tells a person where everything listens and what to paste
// next. Secrets appear only when they are the development defaults.
func printBanner(w io.Writer, cfg config, ingestAddr, adminAddr, natsURL string) {
	base, adminBase := httpBase(ingestAddr), httpBase(adminAddr)
	secret, admin := "$META_APP_SECRET", "$ADMIN_TOKEN"
	if cfg.DevSecrets {
		secret, admin = devAppSecret, devAdminToken
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nctmpipe all-in-one is running\n")
	fmt.Fprintf(&b, "  webhooks   POST %s/webhook  (GET handshake, verify token %s)\n", base, ifDev(cfg, devVerifyToken, "$META_VERIFY_TOKEN"))
	fmt.Fprintf(&b, "  health     %s/healthz %s/readyz\n", base, base)
	fmt.Fprintf(&b, "  admin      %s  (Bearer %s; not for the internet)\n", adminBase, admin)
	fmt.Fprintf(&b, "  contexts   GET  %s/v1/contexts/{channel}/{business_id}/{user_id}\n", adminBase)
	fmt.Fprintf(&b, "  metrics    %s/metrics  (ingest and sender)\n", adminBase)
	if cfg.Services.Intake.Enabled() {
		fmt.Fprintf(&b, "  intake     POST %s/v1/conversions  (Bearer %s)\n", adminBase, ifDev(cfg, devIntakeToken, "$INTAKE_TOKEN"))
	}
	fmt.Fprintf(&b, "  events     GET  %s/v1/events/{business_id}/{event_id}  (what happened to a conversion)\n", adminBase)
	fmt.Fprintf(&b, "  dead letters GET %s/v1/dead-letters\n", adminBase)
	fmt.Fprintf(&b, "  console    %s/console/  (log in with the admin token)\n", adminBase)
	fmt.Fprintf(&b, "  registry   %s/v1/businesses  (Bearer %s)\n", adminBase, admin)
	if cfg.DevRegistryKey != "" {
		fmt.Fprintf(&b, "             secrets encrypted with a development REGISTRY_KEY kept in %s; set REGISTRY_KEY in production\n", cfg.DevRegistryKey)
	}
	if n := len(cfg.Services.Forward.URLs); n > 0 {
		fmt.Fprintf(&b, "  forwarding every verified /webhook delivery to %d destination(s) (FORWARD_URLS)\n", n)
	}
	fmt.Fprintf(&b, "  nats       %s  (streams CONVERSIONS, DLQ, PARKED, WEBHOOKS, FORWARD)\n", natsURL)
	if cfg.RedisURL == "" {
		fmt.Fprintf(&b, "  store      embedded, snapshot and journal in %s\n", filepath.Join(cfg.DataDir, storeDir))
	} else {
		fmt.Fprintf(&b, "  store      REDIS_URL\n")
	}
	if cfg.NATSURL == "" || cfg.RedisURL == "" {
		fmt.Fprintf(&b, "  credentials %s  (mode 0600: the embedded NATS's and store's passwords; the tools below read it)\n", localcreds.Path(cfg.DataDir))
	}
	if cfg.Sender.DryRunFile != "" {
		fmt.Fprintf(&b, "  capi       dry run: requests are appended to %s\n", cfg.Sender.DryRunFile)
	} else {
		fmt.Fprintf(&b, "  capi       sending to the Graph API\n")
	}
	if cfg.DevSecrets {
		fmt.Fprintf(&b, "  WARNING    development mode: the secrets above are development values, so every listener is\n")
		fmt.Fprintf(&b, "             bound to 127.0.0.1; set META_APP_SECRET, META_VERIFY_TOKEN and ADMIN_TOKEN for real webhooks\n")
		if len(cfg.Rebound) > 0 {
			fmt.Fprintf(&b, "             (moved to 127.0.0.1: %s)\n", strings.Join(cfg.Rebound, ", "))
		}
	}
	fmt.Fprintf(&b, "\nTry it (in another shell, from the repository root):\n")
	fmt.Fprintf(&b, "  META_APP_SECRET=%s go run ./cmd/replay -target %s/webhook examples/webhooks\n", secret, base)
	fmt.Fprintf(&b, "  go run ./cmd/publish -nats-url %s%s examples/conversions.jsonl\n", natsURL, dataDirFlag(cfg))
	// ctm, the operator's tool: the streams and dead letters through NATS
	// (the credentials file), an event's trail through the admin API. No
	// example id here: process output is treated like a log, and the
	// privacy tests forbid ids in it (the README has the full example).
	fmt.Fprintf(&b, "  go run ./cmd/ctm -nats-url %s%s streams\n", natsURL, dataDirFlag(cfg))
	fmt.Fprintf(&b, "  go run ./cmd/ctm -nats-url %s%s dlq list\n", natsURL, dataDirFlag(cfg))
	tokenEnv := ""
	if cfg.DevSecrets {
		tokenEnv = "ADMIN_TOKEN=" + devAdminToken + " "
	}
	fmt.Fprintf(&b, "  %sgo run ./cmd/ctm -admin-url %s events show BUSINESS_ID EVENT_ID\n", tokenEnv, adminBase)
	fmt.Fprintf(&b, "  curl -s -H 'Authorization: Bearer %s' %s/metrics | grep ^ingest_webhooks_total\n", admin, adminBase)
	if cfg.Sender.DryRunFile != "" {
		fmt.Fprintf(&b, "  tail -n 1 %s\n", cfg.Sender.DryRunFile)
	}
	fmt.Fprintln(&b)
	io.WriteString(w, b.String())
}

// dataDirFlag is the -data-dir a tool needs to find the credentials, ""
// for the default DATA_DIR (the tools' default too, from the same
// directory).
func dataDirFlag(cfg config) string {
	if cfg.NATSURL != "" || filepath.Clean(cfg.DataDir) == localcreds.DefaultDataDir {
		return ""
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		dir = cfg.DataDir
	}
	return " -data-dir " + dir
}

// httpBase is the URL of a bound address, with a wildcard host shown as
// 127.0.0.1 so that it can be pasted.
func httpBase(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func ifDev(cfg config, dev, env string) string {
	if cfg.DevSecrets {
		return dev
	}
	return env
}
