// Package jsfetch reads what a JetStream consumer holds pending, for the
// commands that walk a stream once (redrive, unpark, forward redrive).
package jsfetch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Pending calls fn on each message cons had pending when it was called, in
// order, up to limit (0: all), until fn says stop or fails. Messages fetched
// after a stop are drained unhandled (neither acked nor nacked).
func Pending(ctx context.Context, cons jetstream.Consumer, limit int, fn func(jetstream.Msg, *jetstream.MsgMetadata) (stop bool, err error)) error {
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	left := int(info.NumPending)
	if limit > 0 {
		left = min(left, limit)
	}
	for left > 0 {
		mb, err := cons.Fetch(min(left, 256), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		got := 0
		for m := range mb.Messages() {
			got++
			if left <= 0 {
				continue // stopped: drain the batch
			}
			left--
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			stop, err := fn(m, md)
			if err != nil {
				return err
			}
			if stop {
				left = 0
			}
		}
		if err := mb.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("fetch: %w", err)
		}
		if got == 0 {
			break
		}
	}
	return nil
}
