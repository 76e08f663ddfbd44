package e2e

import (
	"strconv"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// Messenger scenarios (issue 3): chat events, membership, limits, recovery and
// the server API, on nodes without --dev (membership through the server API).

// users mints the usual tokens: alice (with a display name), bob and carol.
func users(t *testing.T) map[string]string {
	return map[string]string{
		"TOKEN_ALICE": Token(t, "alice", func(c jwt.MapClaims) { c["name"] = "Alice" }),
		"TOKEN_BOB":   Token(t, "bob"),
		"TOKEN_CAROL": Token(t, "carol"),
	}
}

// runMessenger runs js/<script> with the users' tokens against a node
// started with flags.
func runMessenger(t *testing.T, script string, flags ...string) {
	t.Helper()
	StartNode(t, flags...).RunJS(t, script, users(t))
}

func TestTwoUsersExchangeMessages(t *testing.T) {
	runMessenger(t, "chat.mjs")
}

func TestJoinWithoutMembershipIsNotMember(t *testing.T) {
	runMessenger(t, "not_member.mjs")
}

func TestEditDeleteOthersMessageForbidden(t *testing.T) {
	runMessenger(t, "edit_delete.mjs")
}

func TestTypingStartExpiresAsStop(t *testing.T) {
	runMessenger(t, "typing.mjs", "--typing-expiry", "1s")
}

func TestDuplicateReactionFansOutNothing(t *testing.T) {
	runMessenger(t, "reactions.mjs")
}

func TestMessageRateLimit(t *testing.T) {
	const limit = 30 // the default: the 31st message inside the minute is refused
	n := StartNode(t, "--limit-messages", strconv.Itoa(limit))
	env := users(t)
	env["LIMIT"] = strconv.Itoa(limit)
	n.RunJS(t, "ratelimit.mjs", env)
}

func TestReconnectWithLastEventIDGetsWhatItMissed(t *testing.T) {
	runMessenger(t, "recovery.mjs", "--history-size", "5")
}

func TestServerAPI(t *testing.T) {
	runMessenger(t, "server_api.mjs")
}
