package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
)

// ndjsonType is the Content-Type of a body of one conversion a line.
const ndjsonType = "application/x-ndjson"

// isNDJSON reports whether the Content-Type says NDJSON. Anything else is
// read as JSON: curl -d sends application/x-www-form-urlencoded, and a
// client should not need the header right to post one object.
func isNDJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == ndjsonType
}

// split cuts a body into its items, each a slice of body (the bytes as the
// client sent them, which is what gets published): the lines of NDJSON
// (blank ones skipped, not counted), the elements of a JSON array, or the
// one JSON object. Errors are *answer values: 400 for a body that is not
// JSON, 413 for more than MaxItems. An item that is not a valid conversion
// is not an error here; conversion.Parse judges each.
func split(body []byte, ndjson bool) ([][]byte, error) {
	if ndjson {
		return splitLines(body)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, errEmpty
	}
	if !json.Valid(body) {
		return nil, notJSON(body)
	}
	switch body[0] {
	case '{':
		return [][]byte{body}, nil
	case '[':
		return splitArray(body)
	}
	return nil, errNotObject
}

func splitLines(body []byte) ([][]byte, error) {
	var items [][]byte
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		if len(items) == MaxItems {
			return nil, errTooMany
		}
		items = append(items, line)
	}
	if len(items) == 0 {
		return nil, errEmpty
	}
	return items, nil
}

// splitArray cuts a valid JSON array into its elements. The decoder reads
// each into one reused RawMessage only to find where it ends; the item is
// the slice of body, not a copy.
func splitArray(body []byte) ([][]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // '['
		return nil, notJSON(body)
	}
	var items [][]byte
	var raw json.RawMessage
	for dec.More() {
		if len(items) == MaxItems {
			return nil, errTooMany
		}
		if err := dec.Decode(&raw); err != nil {
			return nil, notJSON(body)
		}
		end := int(dec.InputOffset())
		items = append(items, body[end-len(raw):end])
	}
	if len(items) == 0 {
		return nil, errEmpty
	}
	return items, nil
}

// notJSON says where body stops being JSON, by offset only: the bytes
// themselves may be personal data.
func notJSON(body []byte) *answer {
	var raw json.RawMessage
	err := json.Unmarshal(body, &raw)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return badRequest("body is not JSON: syntax error at byte " + strconv.FormatInt(se.Offset, 10) +
			" (for one conversion a line, send Content-Type: " + ndjsonType + ")")
	}
	return badRequest("body is not JSON")
}

// readBody reads at most limit bytes of r. Its buffer grows as bytes
// arrive (doubling, never past limit+1), not by Content-Length, which the
// client chooses; a body over limit is refused once its limit+1st byte is
// read.
func readBody(r io.Reader, limit int64) ([]byte, error) {
	buf := make([]byte, 0, min(limit+1, 64<<10))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, tooLarge(limit)
			}
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), limit+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			if int64(len(buf)) > limit {
				return nil, tooLarge(limit)
			}
			return buf, nil
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return nil, errSlowBody
		}
		if err != nil {
			return nil, &answer{status: http.StatusBadRequest, msg: "could not read body", cause: err}
		}
	}
}

func tooLarge(limit int64) *answer {
	return &answer{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("body exceeds INTAKE_BODY_LIMIT (%d bytes)", limit)}
}
