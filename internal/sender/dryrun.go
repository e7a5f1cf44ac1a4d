package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ctmpipe/ctmpipe/pkg/capi"
)

// DryRun is a poster that sends nothing: it appends each request it would
// send to a JSONL file, one line per request, as
// {"dataset_id","data":[...],"partner_agent","test_event_code"} (the access
// token is never written), and fsyncs it before answering, so that a line
// exists for every event the sender then marks sent.
type DryRun struct {
	partnerAgent, testEventCode string

	mu sync.Mutex
	f  *os.File
}

// dryRunLine is one request as the file holds it.
type dryRunLine struct {
	DatasetID     string       `json:"dataset_id"`
	Data          []capi.Event `json:"data"`
	PartnerAgent  string       `json:"partner_agent,omitempty"`
	TestEventCode string       `json:"test_event_code,omitempty"`
}

// NewDryRun opens (creating it and its directory when needed) the file path
// for appending. partnerAgent and testEventCode go into every line, as the
// real request would carry them.
func NewDryRun(path, partnerAgent, testEventCode string) (*DryRun, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	return &DryRun{partnerAgent: partnerAgent, testEventCode: testEventCode, f: f}, nil
}

// Send appends the request and reports every event as received.
func (d *DryRun) Send(ctx context.Context, datasetID, token string, events []capi.Event) (capi.Response, error) {
	return d.send(datasetID, d.partnerAgent, d.testEventCode, events)
}

func (d *DryRun) send(datasetID, partnerAgent, testEventCode string, events []capi.Event) (capi.Response, error) {
	switch {
	case len(events) == 0:
		return capi.Response{}, capi.ErrEmptyBatch
	case len(events) > capi.MaxBatch:
		return capi.Response{}, capi.ErrBatchTooLarge
	}
	b, err := json.Marshal(dryRunLine{DatasetID: datasetID, Data: events, PartnerAgent: partnerAgent, TestEventCode: testEventCode})
	if err != nil {
		return capi.Response{}, fmt.Errorf("dry run: encode: %w", err)
	}
	b = append(b, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.f.Write(b); err != nil {
		return capi.Response{}, fmt.Errorf("dry run: write: %w", err)
	}
	if err := d.f.Sync(); err != nil {
		return capi.Response{}, fmt.Errorf("dry run: sync: %w", err)
	}
	return capi.Response{EventsReceived: len(events)}, nil
}

// SendAs is Send with the business's own test_event_code and partner_agent
// where it has them (else NewDryRun's); the token and app secret are never
// written.
func (d *DryRun) SendAs(ctx context.Context, datasetID string, cr capi.Credentials, events []capi.Event) (capi.Response, error) {
	agent, code := d.partnerAgent, d.testEventCode
	if cr.PartnerAgent != "" {
		agent = cr.PartnerAgent
	}
	if cr.TestEventCode != "" {
		code = cr.TestEventCode
	}
	return d.send(datasetID, agent, code, events)
}

// Close closes the file.
func (d *DryRun) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f.Close()
}
