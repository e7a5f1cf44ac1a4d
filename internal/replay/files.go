package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxBody caps one body (a .json file or a JSONL line). Meta's deliveries
// are a few KB; anything near this is not a webhook.
const maxBody = 16 << 20

// isJSONL reports whether a file holds one body a line.
func isJSONL(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".jsonl" || ext == ".ndjson"
}

// Path returns the Source for a path given on the command line: a file
// (.jsonl or .ndjson: one body a line; anything else: one body), or a
// directory, whose *.json and *.jsonl files are read in name order (not its
// subdirectories). It fails when the path does not exist or a directory has
// no such file: nothing would be replayed, which is surely a mistake.
func Path(path string) (Source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return newFiles([]string{path}), nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.Type().IsRegular() && (ext == ".json" || isJSONL(e.Name())) {
			names = append(names, filepath.Join(path, e.Name()))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no *.json or *.jsonl files in the directory", path)
	}
	slices.Sort(names)
	return newFiles(names), nil
}

// files reads a list of files in order.
type files struct {
	names []string
	count int
}

func newFiles(names []string) *files {
	f := &files{names: names}
	for _, n := range names {
		f.count += countBodies(n)
	}
	return f
}

// Count implements Counter: the bodies the files hold (non-blank lines of
// JSONL files, one per other file), counted ahead so the bar has a total.
func (f *files) Count() int { return f.count }

func countBodies(name string) int {
	if !isJSONL(name) {
		return 1
	}
	fh, err := os.Open(name)
	if err != nil {
		return 1 // reported as one failure when read
	}
	defer fh.Close()
	n := 0
	lr := newLineReader(fh)
	for {
		line, tooLong, err := lr.next()
		if tooLong || len(bytes.TrimSpace(line)) > 0 {
			n++
		}
		if err != nil {
			return n
		}
	}
}

func (f *files) Read(ctx context.Context, emit func(Item) error) error {
	for _, name := range f.names {
		if err := readFile(ctx, name, emit); err != nil {
			return err
		}
	}
	return nil
}

// readFile emits the bodies of one file. A file that cannot be read is one
// failed item, not the end of the replay.
func readFile(ctx context.Context, name string, emit func(Item) error) error {
	fh, err := os.Open(name)
	if err != nil {
		return emit(Item{Source: name, Err: readError(err)})
	}
	defer fh.Close()
	if isJSONL(name) {
		return readLines(ctx, name, newLineReader(fh), emit)
	}
	body, err := io.ReadAll(io.LimitReader(fh, maxBody+1))
	switch {
	case err != nil:
		return emit(Item{Source: name, Err: readError(err)})
	case len(body) > maxBody:
		return emit(Item{Source: name + ":1", Err: errTooLong})
	}
	return emit(Item{Source: name + ":1", Body: body})
}

var errTooLong = fmt.Errorf("body longer than %d MiB", maxBody>>20)

// readError drops the path from an *os.PathError: the Source names it.
func readError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("read: %w", pe.Err)
	}
	return fmt.Errorf("read: %w", err)
}

// readLines emits one body per non-blank line, named name:line.
func readLines(ctx context.Context, name string, lr *lineReader, emit func(Item) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, tooLong, err := lr.next()
		if line = bytes.TrimSpace(line); len(line) > 0 || tooLong {
			it := Item{Source: fmt.Sprintf("%s:%d", name, lr.n), Body: line}
			if tooLong {
				it.Body, it.Err = nil, errTooLong
			}
			if eerr := emit(it); eerr != nil {
				return eerr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return emit(Item{Source: fmt.Sprintf("%s:%d", name, lr.n), Err: readError(err)})
		}
	}
}

// Reader returns a Source over r (stdin, say), named name in reports. It
// holds JSONL, or one JSON body spread over several lines (a pretty-printed
// file piped in): when the first non-blank line is not JSON on its own but
// the whole input is, the whole input is one body.
func Reader(name string, r io.Reader) Source { return &reader{name: name, r: r} }

type reader struct {
	name string
	r    io.Reader
}

func (rd *reader) Read(ctx context.Context, emit func(Item) error) error {
	lr := newLineReader(rd.r)
	var head []byte // the blank lines before the first body
	for {
		line, tooLong, err := lr.next()
		t := bytes.TrimSpace(line)
		at := fmt.Sprintf("%s:%d", rd.name, lr.n)
		switch {
		case tooLong:
			if eerr := emit(Item{Source: at, Err: errTooLong}); eerr != nil || err != nil {
				return lineEnd(eerr, err, at, emit)
			}
			return readLines(ctx, rd.name, lr, emit)
		case len(t) == 0 && err == nil:
			head = append(append(head, line...), '\n')
			continue
		case len(t) == 0:
			return lineEnd(nil, err, at, emit)
		case err != nil || json.Valid(t):
			if eerr := emit(Item{Source: at, Body: t}); eerr != nil || err != nil {
				return lineEnd(eerr, err, at, emit)
			}
			return readLines(ctx, rd.name, lr, emit)
		}
		// The first line is not JSON by itself: one multi-line body, or
		// JSONL that starts with a bad line.
		head = append(append(head, line...), '\n')
		rest, err := io.ReadAll(io.LimitReader(lr.br, maxBody))
		if err != nil {
			return emit(Item{Source: at, Err: readError(err)})
		}
		all := append(head, rest...)
		if json.Valid(all) {
			return emit(Item{Source: at, Body: bytes.TrimSpace(all)})
		}
		return readLines(ctx, rd.name, newLineReader(io.MultiReader(bytes.NewReader(all), lr.br)), emit)
	}
}

// lineEnd ends a read after a line: with emit's error, nothing at the end
// of input, or an item for a read error.
func lineEnd(emitErr, readErr error, at string, emit func(Item) error) error {
	switch {
	case emitErr != nil:
		return emitErr
	case readErr == nil || errors.Is(readErr, io.EOF):
		return nil
	}
	return emit(Item{Source: at, Err: readError(readErr)})
}

// lineReader reads lines of any length up to maxBody and numbers them.
type lineReader struct {
	br *bufio.Reader
	n  int // number of the line last returned
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its line ending, in a new slice. At the
// end of the input it returns the last (maybe empty) line with io.EOF. A
// line longer than maxBody comes back empty with tooLong set, and the rest
// of it is skipped.
func (l *lineReader) next() (line []byte, tooLong bool, err error) {
	l.n++
	for {
		chunk, err := l.br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > maxBody+2 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if tooLong {
			return nil, true, err
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		return line, false, err
	}
}
