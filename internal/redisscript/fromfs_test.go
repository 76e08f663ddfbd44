package redisscript_test

import (
	"testing"
	"testing/fstest"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/redisscript"
)

func TestFromFS(t *testing.T) {
	const src = "return 1"
	fsys := fstest.MapFS{"lua/one.lua": {Data: []byte(src)}}
	if got, want := redisscript.FromFS(fsys, "lua/one.lua").Hash(), redis.NewScript(src).Hash(); got != want {
		t.Fatalf("hash %s, want %s (the file's script)", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("FromFS of a missing file did not panic")
		}
	}()
	redisscript.FromFS(fsys, "lua/missing.lua")
}
