package search

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestCommandTestdataIsThisSchema: the summaries cmd/shakedown's tests
// merge are summaries of this schema, every field known (but the one that
// stands for a field added later), so the command reads what checks write.
func TestCommandTestdataIsThisSchema(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "..", "cmd", "shakedown", "testdata", "shards", "*", "*", "*", "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 6 {
		t.Fatalf("found %d summaries in cmd/shakedown's testdata, want 6", len(paths))
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		delete(fields, "a_field_added_later")
		data, _ = json.Marshal(fields)
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var s Summary
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if s.Version != SummaryVersion {
			t.Fatalf("%s: version %d", p, s.Version)
		}
	}
}
