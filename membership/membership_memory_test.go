package membership_test

import (
	"testing"

	"github.com/anchat/realtime/membership"
	"github.com/anchat/realtime/membership/membershiptest"
)

func TestMemory(t *testing.T) {
	membershiptest.Run(t, func(t *testing.T) membership.Store { return membership.NewMemory() })
}
