package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// undocumented returns the values of a chart's values.schema.json that its
// README does not mention as `dotted.path`. A value is a schema property
// without sub-properties of its own (free-form maps and lists count as one
// value); "global" is Helm's, not the chart's.
func undocumented(schemaFile, readmeFile string) ([]string, error) {
	raw, err := os.ReadFile(schemaFile)
	if err != nil {
		return nil, err
	}
	var schema schemaNode
	if err := json.Unmarshal(raw, &schema); err != nil {
		return nil, fmt.Errorf("%s: %w", schemaFile, err)
	}
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, path := range schema.leaves("") {
		if path != "global" && !strings.Contains(string(readme), "`"+path+"`") {
			missing = append(missing, path)
		}
	}
	return missing, nil
}

type schemaNode struct {
	Properties map[string]schemaNode `json:"properties"`
}

func (n schemaNode) leaves(prefix string) []string {
	var out []string
	for name, child := range n.Properties {
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		if len(child.Properties) == 0 {
			out = append(out, path)
			continue
		}
		out = append(out, child.leaves(path)...)
	}
	sort.Strings(out)
	return out
}
