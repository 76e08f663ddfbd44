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

func TestTwoUsersExchangeMessages(t *testing.T) {
	n := StartNode(t)
	n.RunJS(t, "chat.mjs", users(t))
}

func TestJoinWithoutMembershipIsNotMember(t *testing.T) {
	n := StartNode(t)
	n.RunJS(t, "not_member.mjs", users(t))
}

func TestEditDeleteOthersMessageForbidden(t *testing.T) {
	n := StartNode(t)
	n.RunJS(t, "edit_delete.mjs", users(t))
}

func TestTypingStartExpiresAsStop(t *testing.T) {
	n := StartNode(t, "--typing-expiry", "1s")
	n.RunJS(t, "typing.mjs", users(t))
}

func TestDuplicateReactionFansOutNothing(t *testing.T) {
	n := StartNode(t)
	n.RunJS(t, "reactions.mjs", users(t))
}

func TestMessageRateLimit(t *testing.T) {
	const limit = 30 // the default: the 31st message inside the minute is refused
	n := StartNode(t, "--limit-messages", strconv.Itoa(limit))
	env := users(t)
	env["LIMIT"] = strconv.Itoa(limit)
	n.RunJS(t, "ratelimit.mjs", env)
}

func TestReconnectWithLastEventIDGetsWhatItMissed(t *testing.T) {
	n := StartNode(t, "--history-size", "5")
	n.RunJS(t, "recovery.mjs", users(t))
}

func TestServerAPI(t *testing.T) {
	n := StartNode(t)
	n.RunJS(t, "server_api.mjs", users(t))
}
