// Package rediserr classifies go-redis errors for the Redis engines (bus,
// presence, membership, limits, lease, rtm): a call that Redis could not
// serve (no connection, a timeout, a server that is loading, read-only or
// failing over) is "unavailable" — the node answers UNAVAILABLE and the action
// may be retried — while a reply that rejects the call (WRONGTYPE, a script
// error) is a plain error.
//
//	if err != nil {
//		return rediserr.Wrap("presence", "acquire", presence.ErrUnavailable, err)
//	}
package rediserr

import (
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// notNow are server replies that mean "not now" rather than "no". MOVED and
// ASK (a Redis Cluster slot served elsewhere: the command was not run) belong
// here because the engines' cluster clients follow no redirects (MaxRedirects
// -1: a redirected write whose reply was lost is never run twice); go-redis
// reloads its slot map on the reply, so a retry reaches the new owner.
var notNow = []string{
	"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY",
	"NOREPLICAS", "OOM", "max number of clients", "MOVED ", "ASK ",
}

// Unavailable reports whether err means Redis could not serve the call.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		// Network errors, timeouts, pool timeouts, a closed client, context
		// errors: no usable reply.
		return true
	}
	msg := strings.TrimPrefix(rerr.Error(), "ERR ")
	for _, p := range notNow {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Wrap adds context ("pkg: op: ...") to a Redis error; when the error means
// Redis was unavailable, the result also matches unavailable with errors.Is.
// A nil err stays nil.
func Wrap(pkg, op string, unavailable, err error) error {
	switch {
	case err == nil:
		return nil
	case Unavailable(err):
		return fmt.Errorf("%s: %s: %w: %w", pkg, op, unavailable, err)
	}
	return fmt.Errorf("%s: %s: %w", pkg, op, err)
}
