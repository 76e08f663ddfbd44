package lease_test

import (
	"testing"
	"time"

	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/lease/leasetest"
)

func TestMemory(t *testing.T) {
	leasetest.Run(t, func(t *testing.T, now func() time.Time) lease.Lease {
		return lease.NewMemory(now)
	}, leasetest.Options{})
}
