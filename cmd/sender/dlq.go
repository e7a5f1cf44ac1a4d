package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/localcreds"
	"github.com/ctmpipe/ctmpipe/internal/sender"
)

// dlq runs `sender dlq list|show`.
func dlq(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	c, err := sender.ParseDLQArgs(args, getenv, time.Now())
	if errors.Is(err, flag.ErrHelp) {
		sender.PrintDLQUsage(stdout)
		return nil
	}
	if err != nil {
		return err
	}
	nc, js, err := connectJS(c.NATSURL, c.DataDir, "ctmpipe-sender-dlq")
	if err != nil {
		return err
	}
	defer nc.Close()
	if c.Show > 0 {
		info, msg, err := sender.ShowDeadLetter(ctx, js, c.Show, c.Reveal)
		if err != nil {
			return fmt.Errorf("dlq show %d: %w", c.Show, err)
		}
		fmt.Fprintf(stdout, "seq:       %d\ntime:      %s\nreason:    %s\nbusiness:  %s\nevent_id:  %s\nchannel:   %s\nerror:     %s\nmessage:   %s\n",
			info.Seq, info.Time.Format(time.RFC3339), info.Reason, info.BusinessID, info.EventID, info.Channel, info.Error, msg)
		return nil
	}
	letters, more, err := sender.ListDeadLetters(ctx, js, c.Filter, c.Limit)
	if err != nil {
		return err
	}
	sender.PrintDeadLetters(stdout, letters)
	if more {
		fmt.Fprintf(stdout, "(more: -limit %d shows the newest %d only)\n", c.Limit, c.Limit)
	}
	return nil
}

// connectJS connects a command-line tool (dlq, redrive) to NATS and its
// JetStream; close the connection when done.
// connectJS connects to url, or to the all-in-one's NATS when it is ""; a
// NATS on this machine gets the credentials in dataDir (internal/localcreds).
func connectJS(url, dataDir, name string) (*nats.Conn, jetstream.JetStream, error) {
	url, creds, found, err := localcreds.NATS(url, dataDir)
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(url, append(creds, nats.Name(name))...)
	if err != nil {
		return nil, nil, fmt.Errorf("nats: %w (%s)", err, localcreds.Hint(dataDir, found))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}
