package redisprefix

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestResolve(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	for _, tc := range []struct {
		prefix, want, err string
		client            redis.UniversalClient
	}{
		{prefix: "", want: "rt", client: c},
		{prefix: "app1", want: "app1", client: c},
		{prefix: "a{b", err: `x: prefix "a{b" must not contain '{' or '}'`, client: c},
		{prefix: "a}", err: `x: prefix "a}" must not contain`, client: c},
		{prefix: "app1", err: "x: nil redis client"},
	} {
		got, err := Resolve("x", tc.client, tc.prefix)
		if tc.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("Resolve(%q): %q, %v; want error %q", tc.prefix, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.prefix, got, err, tc.want)
		}
	}
}
