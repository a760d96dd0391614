package deployrjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Kind is the kind of document an export holds.
type Kind int

const (
	KindUnknown Kind = iota
	KindTaskSequence
	KindStepDefinition
	KindContentItem
)

func (k Kind) String() string {
	switch k {
	case KindTaskSequence:
		return "task sequence"
	case KindStepDefinition:
		return "step definition"
	case KindContentItem:
		return "content item"
	}
	return "unknown"
}

const bom = "\xEF\xBB\xBF"

// read reads at most max bytes of r and drops a leading byte-order mark.
func read(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, deploy.Wrap(deploy.KindInvalid, err, "read document")
	}
	if int64(len(b)) > max {
		return nil, deploy.Errorf(deploy.KindTooLarge, "document is larger than %d bytes", max)
	}
	return b, nil
}

// parse checks b is exactly one well-formed JSON value in UTF-8 and returns
// it as a generic value (numbers as json.Number) with the BOM removed.
func parse(b []byte) (any, []byte, error) {
	b = bytes.TrimPrefix(b, []byte(bom))
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil, deploy.Errorf(deploy.KindInvalid, "empty input: want a DeployR export (a JSON object)")
	}
	if !utf8.Valid(b) {
		off := 0
		for off < len(b) {
			r, n := utf8.DecodeRune(b[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		line, col := position(b, off+1)
		return nil, nil, deploy.Errorf(deploy.KindInvalid, "invalid UTF-8 at line %d, column %d", line, col)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			line, col := position(b, int(se.Offset))
			return nil, nil, deploy.Errorf(deploy.KindInvalid, "malformed JSON at line %d, column %d: %v", line, col, se)
		case errors.Is(err, io.ErrUnexpectedEOF):
			line, col := position(b, len(b))
			return nil, nil, deploy.Errorf(deploy.KindInvalid, "malformed JSON at line %d, column %d: unexpected end of input", line, col)
		}
		return nil, nil, deploy.Wrap(deploy.KindInvalid, err, "malformed JSON")
	}
	if jsonDepth(v, 0) > maxDepth {
		return nil, nil, deploy.Errorf(deploy.KindInvalid,
			"JSON nests deeper than %d levels (a DeployR export needs about 10)", maxDepth)
	}
	end := int(dec.InputOffset())
	rest := bytes.TrimLeft(b[end:], " \t\r\n")
	if len(rest) > 0 {
		line, col := position(b, len(b)-len(rest)+1)
		return nil, nil, deploy.Errorf(deploy.KindInvalid, "trailing data after the JSON document at line %d, column %d", line, col)
	}
	return v, b, nil
}

// maxDepth bounds how deeply a document may nest objects and arrays. The
// typed decoding costs the size of each step's subtree at every level of
// group nesting, so depth multiplies the cost of a document: 2,000 nested
// groups in 108 KB took 12 s. DeployR's exports nest about 10 levels; 64
// leaves room for some 29 nested groups.
const maxDepth = 64

// jsonDepth is the nesting depth of a generic JSON value, counted only as
// far as maxDepth+1.
func jsonDepth(v any, depth int) int {
	if depth > maxDepth {
		return depth
	}
	deepest := depth
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			deepest = max(deepest, jsonDepth(x, depth+1))
		}
		if len(v) == 0 {
			deepest = max(deepest, depth+1)
		}
	case []any:
		for _, x := range v {
			deepest = max(deepest, jsonDepth(x, depth+1))
		}
		if len(v) == 0 {
			deepest = max(deepest, depth+1)
		}
	}
	return deepest
}

// position turns a byte offset (as json.SyntaxError reports it: the count
// of bytes read, so the offending byte is at off-1) into a 1-based line and
// column counted in characters.
func position(b []byte, off int) (line, col int) {
	if off > len(b) {
		off = len(b)
	}
	if off > 0 {
		off-- // point at the byte the decoder stopped on
	}
	line = 1 + bytes.Count(b[:off], []byte("\n"))
	start := bytes.LastIndexByte(b[:off], '\n') + 1
	return line, utf8.RuneCount(b[start:off]) + 1
}

// Detect tells which kind of DeployR export b holds, by shape: a content
// item has contentItemType or contentItemPurpose; a step definition has
// versions with options (or a typeName); a task sequence has versions with
// steps (or an architecture).
func Detect(b []byte) (Kind, error) {
	v, _, err := parse(b)
	if err != nil {
		return KindUnknown, err
	}
	return detect(v)
}

func detect(v any) (Kind, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return KindUnknown, deploy.Errorf(deploy.KindInvalid, "want a JSON object (one DeployR export), got %s", jsonType(v))
	}
	if _, ok := m["contentItemType"]; ok {
		return KindContentItem, nil
	}
	if _, ok := m["contentItemPurpose"]; ok {
		return KindContentItem, nil
	}
	if vs, ok := m["versions"].([]any); ok {
		for _, x := range vs {
			vm, _ := x.(map[string]any)
			if has(vm, "options", "stepDefinitionId") {
				return KindStepDefinition, nil
			}
			if has(vm, "steps", "taskSequenceId") {
				return KindTaskSequence, nil
			}
		}
	}
	if has(m, "typeName") {
		return KindStepDefinition, nil
	}
	if has(m, "architecture") {
		return KindTaskSequence, nil
	}
	return KindUnknown, deploy.Errorf(deploy.KindInvalid,
		"not a DeployR export: no steps, options or contentItemType found")
}

func has(m map[string]any, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// decode runs the whole pipeline for one expected kind.
func decode(r io.Reader, max int64, want Kind, dst any) error {
	b, err := read(r, max)
	if err != nil {
		return err
	}
	v, b, err := parse(b)
	if err != nil {
		return err
	}
	got, err := detect(v)
	if err != nil {
		return err
	}
	if got != want {
		return deploy.Errorf(deploy.KindInvalid, "this is a DeployR %s export, not a %s", got, want)
	}
	if err := check(v, schemaFor(want), ""); err != nil {
		return err
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return deploy.Wrap(deploy.KindInvalid, err, fmt.Sprintf("decode %s", want))
	}
	return nil
}

// DecodeTaskSequence reads one task-sequence export of at most max bytes.
func DecodeTaskSequence(r io.Reader, max int64) (*deploy.TaskSequence, error) {
	var ts deploy.TaskSequence
	if err := decode(r, max, KindTaskSequence, &ts); err != nil {
		return nil, err
	}
	return &ts, nil
}

// DecodeStepDefinition reads one step-definition export of at most max bytes.
func DecodeStepDefinition(r io.Reader, max int64) (*deploy.StepDefinition, error) {
	var d deploy.StepDefinition
	if err := decode(r, max, KindStepDefinition, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// DecodeContentItem reads one content-item export of at most max bytes.
func DecodeContentItem(r io.Reader, max int64) (*deploy.ContentItem, error) {
	var c deploy.ContentItem
	if err := decode(r, max, KindContentItem, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Decode reads one export of any kind and returns it as
// *deploy.TaskSequence, *deploy.StepDefinition or *deploy.ContentItem.
func Decode(r io.Reader, max int64) (any, Kind, error) {
	b, err := read(r, max)
	if err != nil {
		return nil, KindUnknown, err
	}
	k, err := Detect(b)
	if err != nil {
		return nil, KindUnknown, err
	}
	var v any
	switch k {
	case KindTaskSequence:
		v, err = DecodeTaskSequence(bytes.NewReader(b), max)
	case KindStepDefinition:
		v, err = DecodeStepDefinition(bytes.NewReader(b), max)
	default:
		v, err = DecodeContentItem(bytes.NewReader(b), max)
	}
	if err != nil {
		return nil, KindUnknown, err
	}
	return v, k, nil
}

// Encode writes v as DeployR does: compact, single-line JSON followed by a
// newline. HTML characters are not escaped.
func Encode(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
