package main

import (
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
	isProductionGo := func(path string) bool {
		return strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go")
	}
	root := repositoryRoot(t)
	fields := 0
	walkRepositoryFiles(t, root, isProductionGo, func(rel, _, src string) {
		for _, m := range durField.FindAllStringSubmatch(src, -1) {
			fields++
			if !strings.HasSuffix(m[1], "_ms") {
				t.Errorf("%s: duration field %q does not end in _ms", rel, m[1])
			}
		}
	})
	if fields < 5 {
		t.Fatalf("found only %d duration fields under %s", fields, root)
	}
}
