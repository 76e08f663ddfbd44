package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repositoryRoot returns the absolute path of the repository, two folders
// up from this package.
func repositoryRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// walkRepositoryFiles calls visit with the root-relative path, the absolute
// path and the text of every file under root whose path keep accepts,
// skipping hidden folders, node_modules, bin and tmp. It returns how many
// files it visited.
func walkRepositoryFiles(t *testing.T, root string, keep func(path string) bool, visit func(rel, path, text string)) (visited int) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "bin" || name == "tmp") {
				return filepath.SkipDir
			}
			return nil
		}
		if !keep(path) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		visit(rel, path, string(b))
		visited++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return visited
}
