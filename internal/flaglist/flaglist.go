// Package flaglist reads the comma-separated lists the command-line tools
// take as one flag value (--redis-cluster-addrs a:1,b:2, --targets ...).
//
//	addrs := flaglist.Split(*clusterAddrs)
package flaglist

import "strings"

// Split splits s at commas, trimming white space and dropping empty items;
// "" gives nil.
func Split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
