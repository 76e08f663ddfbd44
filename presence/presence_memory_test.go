package presence_test

import (
	"testing"

	"github.com/anchat/realtime/presence"
	"github.com/anchat/realtime/presence/presencetest"
)

func TestMemory(t *testing.T) {
	presencetest.Run(t, func(t *testing.T) presence.Presence { return presence.NewMemory() })
}
