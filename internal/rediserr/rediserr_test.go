package rediserr

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/redistest"
)

var errDown = errors.New("x: unavailable")

// TestClassifiesRealErrors uses a real server's replies and a dead address.
func TestClassifiesRealErrors(t *testing.T) {
	c := redistest.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	wrongType := c.LPush(ctx, "k", "x").Err()
	if wrongType == nil || Unavailable(wrongType) {
		t.Fatalf("WRONGTYPE must be a plain error, got %v", wrongType)
	}
	if err := Wrap("x", "push", errDown, wrongType); errors.Is(err, errDown) || err.Error() == "" {
		t.Fatalf("wrapped WRONGTYPE %v", err)
	}

	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + itoa(redistest.FreePort(t)), MaxRetries: -1, DialerRetries: 1})
	defer dead.Close()
	refused := dead.Ping(ctx).Err()
	if !Unavailable(refused) {
		t.Fatalf("connection refused must be unavailable: %v", refused)
	}
	if err := Wrap("x", "ping", errDown, refused); !errors.Is(err, errDown) {
		t.Fatalf("wrapped refusal %v does not match the sentinel", err)
	}
	if Wrap("x", "op", errDown, nil) != nil || Unavailable(nil) {
		t.Fatal("nil must stay nil")
	}
	if !Unavailable(redis.Error(loading("LOADING Redis is loading the dataset in memory"))) {
		t.Fatal("LOADING must be unavailable")
	}
}

type loading string

func (l loading) Error() string { return string(l) }
func (loading) RedisError()     {}

func itoa(n int) string {
	b := []byte{}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestMovedIsUnavailable sends a write to a cluster node that does not own
// the key's slot: the MOVED reply means the command was not run (the
// engines' cluster clients follow no redirects), so it must be retryable.
func TestMovedIsUnavailable(t *testing.T) {
	cl := redistest.StartRealCluster(t, redistest.ClusterOptions{Replicas: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	owner, err := cl.MasterOf(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	other := cl.Nodes[0]
	if other == owner {
		other = cl.Nodes[1]
	}
	moved := other.Client().Set(ctx, "k", "v", 0).Err()
	if _, ok := redis.IsMovedError(moved); !ok {
		t.Fatalf("want a MOVED reply from a non-owner, got %v", moved)
	}
	if err := Wrap("x", "set", errDown, moved); !errors.Is(err, errDown) {
		t.Fatalf("wrapped MOVED %v does not match the sentinel", err)
	}
}
