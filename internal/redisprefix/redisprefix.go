// Package redisprefix checks what every Redis engine's constructor is given:
// a client, and a key prefix that leaves the engine's hash tags ({...})
// intact, defaulting to "rt".
//
//	prefix, err := redisprefix.Resolve("lease", client, cfg.Prefix)
package redisprefix

import (
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Default is the key prefix of an engine whose config leaves it empty.
const Default = "rt"

// Resolve returns the prefix to use (Default when prefix is empty), or an
// error starting with pkg when client is nil or prefix holds '{' or '}'.
func Resolve(pkg string, client redis.UniversalClient, prefix string) (string, error) {
	if client == nil {
		return "", errors.New(pkg + ": nil redis client")
	}
	if prefix == "" {
		return Default, nil
	}
	if strings.ContainsAny(prefix, "{}") {
		return "", fmt.Errorf("%s: prefix %q must not contain '{' or '}'", pkg, prefix)
	}
	return prefix, nil
}
