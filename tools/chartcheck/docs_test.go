package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestUndocumented(t *testing.T) {
	dir := t.TempDir()
	schema := filepath.Join(dir, "values.schema.json")
	readme := filepath.Join(dir, "README.md")
	write := func(name, text string) {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(schema, `{"properties": {
		"global": {"type": "object"},
		"replicaCount": {"type": "integer"},
		"podAnnotations": {"type": "object"},
		"image": {"properties": {"repository": {}, "tag": {}}},
		"redis": {"properties": {"external": {"properties": {"url": {}}}}}
	}}`)
	write(readme, "| `replicaCount` | 2 |\n| `image.tag` | |\n| image.repository | no backticks |\n| `redis.external` | a parent is not its leaves |\n")

	got, err := undocumented(schema, readme)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"image.repository", "podAnnotations", "redis.external.url"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("undocumented = %v, want %v", got, want)
	}
}
