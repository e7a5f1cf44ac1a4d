package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ctmpipe/ctmpipe/internal/sender"
)

// streamView is one JetStream stream as `ctm streams` shows it.
type streamView struct {
	Name      string         `json:"name"`
	Messages  uint64         `json:"messages"`
	Bytes     uint64         `json:"bytes"`
	FirstTime time.Time      `json:"first_time"`
	LastTime  time.Time      `json:"last_time"`
	Replicas  int            `json:"replicas"`
	Consumers []consumerView `json:"consumers"`
}

// consumerView is one consumer: Pending is its lag (stored, not yet
// delivered), AckPending delivered and not yet acked (MaxAckPending stops
// delivery to it).
type consumerView struct {
	Name          string `json:"name"`
	Pending       uint64 `json:"pending"`
	AckPending    int    `json:"ack_pending"`
	MaxAckPending int    `json:"max_ack_pending"`
	Redelivered   int    `json:"redelivered"`
	Waiting       int    `json:"waiting"`
}

// streams runs `ctm streams`: every stream with its consumers' lag, and
// what waits in PARKED (paused businesses) and DLQ.
func streams(ctx context.Context, c *common, args []string, stdout io.Writer) error {
	words, err := c.parse(c.flagSet("streams"), args)
	if err != nil {
		return err
	}
	if err := wantWords("streams", words, 0, "no arguments"); err != nil {
		return err
	}
	if err := c.needNATS("streams"); err != nil {
		return err
	}
	return withJS(c, func(js jetstream.JetStream) error {
		views, err := readStreams(ctx, js)
		if err != nil {
			return err
		}
		if c.output == "json" {
			return writeJSON(stdout, map[string]any{"streams": views})
		}
		printStreams(stdout, views)
		return nil
	})
}

func readStreams(ctx context.Context, js jetstream.JetStream) ([]streamView, error) {
	views := []streamView{}
	lister := js.ListStreams(ctx)
	for si := range lister.Info() {
		v := streamView{Name: si.Config.Name, Messages: si.State.Msgs, Bytes: si.State.Bytes,
			FirstTime: si.State.FirstTime, LastTime: si.State.LastTime, Replicas: si.Config.Replicas, Consumers: []consumerView{}}
		s, err := js.Stream(ctx, v.Name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", v.Name, err)
		}
		cl := s.ListConsumers(ctx)
		for ci := range cl.Info() {
			v.Consumers = append(v.Consumers, consumerView{Name: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending,
				MaxAckPending: ci.Config.MaxAckPending, Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting})
		}
		if err := cl.Err(); err != nil {
			return nil, fmt.Errorf("stream %s: consumers: %w", v.Name, err)
		}
		views = append(views, v)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("streams: %w", err)
	}
	return views, nil
}

func printStreams(w io.Writer, views []streamView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tBYTES\tREPLICAS\tLAST")
	for _, v := range views {
		last := "-"
		if v.Messages > 0 {
			last = v.LastTime.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", v.Name, v.Messages, v.Bytes, v.Replicas, last)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CONSUMER\tPENDING (lag)\tACK_PENDING\tMAX_ACK_PENDING\tREDELIVERED\tWAITING")
	for _, v := range views {
		for _, c := range v.Consumers {
			fmt.Fprintf(tw, "%s/%s\t%d\t%d\t%d\t%d\t%d\n", v.Name, c.Name, c.Pending, c.AckPending, c.MaxAckPending, c.Redelivered, c.Waiting)
		}
	}
	tw.Flush()
	count := map[string]uint64{}
	for _, v := range views {
		count[v.Name] = v.Messages
	}
	fmt.Fprintf(w, "\nparked: %d messages of paused businesses (stream %s; ctm businesses list shows which are paused)\n", count[sender.StreamParked], sender.StreamParked)
	fmt.Fprintf(w, "dead letters: %d (stream %s; ctm dlq list)\n", count[sender.StreamDLQ], sender.StreamDLQ)
}
