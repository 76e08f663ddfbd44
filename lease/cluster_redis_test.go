package lease_test

import (
	"testing"
	"time"

	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/lease/leasetest"
)

func TestRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	leasetest.Run(t, func(t *testing.T, _ func() time.Time) lease.Lease {
		return newRedis(t, c, redistest.Prefix(t))
	}, leasetest.Options{ServerClock: true})
}
