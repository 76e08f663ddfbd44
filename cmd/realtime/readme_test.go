package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the flag tables in README.md")

// TestREADMEFlagTables keeps README.md's flag tables equal to the flags the
// commands define, so the documentation cannot rot. Regenerate with
//
//	go test ./cmd/realtime -run TestREADMEFlagTables -update
func TestREADMEFlagTables(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	tables := []struct {
		marker string
		table  string
	}{
		{"serve-flags", serveFlags(&serveOptions{}).markdownTable()},
		{"token-flags", tokenFlags(&tokenOptions{}).markdownTable()},
	}
	changed := readme
	for _, tb := range tables {
		begin := strings.Index(changed, "<!-- "+tb.marker+":begin")
		end := strings.Index(changed, "<!-- "+tb.marker+":end -->")
		if begin < 0 || end < begin {
			t.Fatalf("README.md lacks the <!-- %s:begin ... --> / <!-- %s:end --> markers", tb.marker, tb.marker)
		}
		bodyStart := begin + strings.Index(changed[begin:], "-->\n") + len("-->\n")
		if got := changed[bodyStart:end]; got != tb.table {
			if !*update {
				t.Errorf("README.md's %s table is out of date; run: go test ./cmd/realtime -run TestREADMEFlagTables -update", tb.marker)
			}
			changed = changed[:bodyStart] + tb.table + changed[end:]
		}
	}
	if *update && changed != readme {
		if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("README.md updated")
	}
}
