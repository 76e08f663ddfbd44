package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// mdLink matches inline links and images, [text](target "title"), and
// reference definitions, [name]: target.
var mdLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|(?m)^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s|$)`)

// TestMarkdownLinksStayInRepository checks every relative link of every
// Markdown file in the repository: it must name a file or folder that
// exists, inside the repository, so a clone has every document it links.
// Web links (a scheme) and in-page anchors are not checked.
func TestMarkdownLinksStayInRepository(t *testing.T) {
	isMarkdown := func(path string) bool { return strings.HasSuffix(path, ".md") }
	root := repositoryRoot(t)
	checked := walkRepositoryFiles(t, root, isMarkdown, func(rel, path, doc string) {
		for _, bad := range brokenLinks(root, path, doc) {
			t.Errorf("%s: %s", rel, bad)
		}
	})
	if checked < 5 {
		t.Fatalf("checked only %d Markdown files under %s", checked, root)
	}
}

// brokenLinks returns a description of each relative link in doc (the text
// of file) that leaves root or names nothing.
func brokenLinks(root, file, doc string) []string {
	var bad []string
	for _, m := range mdLink.FindAllStringSubmatch(stripCode(doc), -1) {
		target := m[1] + m[2]
		if target == "" || strings.HasPrefix(target, "#") || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		target, _, _ = strings.Cut(target, "#")
		target, _, _ = strings.Cut(target, "?")
		var abs string
		if strings.HasPrefix(target, "/") {
			abs = filepath.Join(root, target) // repository-relative, as GitHub reads it
		} else {
			abs = filepath.Join(filepath.Dir(file), target)
		}
		if r, err := filepath.Rel(root, abs); err != nil || r == ".." || strings.HasPrefix(r, "../") {
			bad = append(bad, "link "+target+" leaves the repository")
			continue
		}
		if _, err := os.Stat(abs); err != nil {
			bad = append(bad, "link "+target+" names nothing in the repository")
		}
	}
	return bad
}

// stripCode blanks fenced code blocks and inline code spans, where link
// syntax is only text.
func stripCode(doc string) string {
	var out strings.Builder
	fenced := false
	for line := range strings.SplitAfterSeq(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			out.WriteString("\n")
			continue
		}
		if fenced {
			out.WriteString("\n")
			continue
		}
		out.WriteString(inlineCode.ReplaceAllString(line, "``"))
	}
	return out.String()
}

var inlineCode = regexp.MustCompile("`[^`\n]*`")

func TestBrokenLinksFindsEscapesAndMissingFiles(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "docs", "A.md"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	doc := "[ok](docs/A.md#x) [web](https://example.com) [anchor](#top) `[code](../no)`\n" +
		"[out](../shared/PROTOCOL.md) [gone](docs/B.md)\n[ref]: ../outside.md\n```\n[fenced](../no)\n```\n"
	got := brokenLinks(root, filepath.Join(root, "README.md"), doc)
	want := []string{
		"link ../shared/PROTOCOL.md leaves the repository",
		"link docs/B.md names nothing in the repository",
		"link ../outside.md leaves the repository",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("brokenLinks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
