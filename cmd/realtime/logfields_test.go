package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// durField matches a zerolog duration field: .Dur("name", ...).
var durField = regexp.MustCompile(`\.Dur\("([^"]+)"`)

// TestDurationFieldsNameTheirUnit: every duration logged anywhere in the
// repository carries its unit in the field name (zerolog writes Dur in
// milliseconds, see logger.go), so "duration_ms": 1500 cannot be read as
// seconds.
func TestDurationFieldsNameTheirUnit(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	fields := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "bin" || name == "tmp") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, m := range durField.FindAllStringSubmatch(string(b), -1) {
			fields++
			if !strings.HasSuffix(m[1], "_ms") {
				t.Errorf("%s: duration field %q does not end in _ms", rel, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fields < 5 {
		t.Fatalf("found only %d duration fields under %s", fields, root)
	}
}
