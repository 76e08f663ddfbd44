package deps

import (
	_ "github.com/go-redis/redis_rate/v10"
	_ "github.com/gobwas/ws"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/rs/zerolog"
	_ "golang.org/x/sys/unix"
)
