// Package node is the gateway: it accepts WebSocket connections from
// unmodified socket.io-client v4 applications (Engine.IO v4 / Socket.IO v5 over
// WebSocket only), authenticates them with JWTs, holds them without a goroutine
// per idle connection (an epoll readiness loop feeding a bounded worker pool),
// handles the chat events of PROTOCOL.md section 2, fans events out to local
// connections, and serves the admin surface: health, readiness, Prometheus
// metrics and the server API.
//
// Everything cluster-wide goes through the engines in Config.Engines (memory
// for a single node, Redis for a cluster); nothing in this package knows which.
// The engines belong to the caller, which closes them after Run returns.
//
// CONCURRENCY.md in this directory names every goroutine the node runs, its
// owner and how it stops, which goroutines may wait on Redis (none that carry
// other connections' writes, pings or bus deliveries), and the lock order.
//
//	n, err := node.New(cfg)
//	if err != nil { ... }
//	err = n.Run(ctx) // serves until ctx is cancelled, then drains and returns
package node

import (
	"context"
	"net"
)

// Node is one gateway process.
type Node struct {
	cfg Config
	srv *server
}

// New validates cfg, fills its defaults and builds a node. It does not listen yet.
func New(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s, err := newServer(&cfg)
	if err != nil {
		return nil, err
	}
	return &Node{cfg: cfg, srv: s}, nil
}

// Run listens on Config.Addr, Config.AdminAddr (and Config.APIAddr when
// set) and serves until ctx is cancelled; it then drains (turns not ready,
// refuses new connections with DRAINING, closes existing ones in batches
// over Config.DrainPeriod) and returns nil. It returns an error when it cannot listen.
func (n *Node) Run(ctx context.Context) error { return n.srv.run(ctx) }

// Ready is closed once both listeners are open.
func (n *Node) Ready() <-chan struct{} { return n.srv.ready }

// Addr is the public listener's address once Ready.
func (n *Node) Addr() net.Addr { return n.srv.addr() }

// AdminAddr is the admin listener's address once Ready.
func (n *Node) AdminAddr() net.Addr { return n.srv.adminAddr() }

// APIAddr is where the server API listens once Ready: Config.APIAddr's
// listener, or the admin listener when that is empty.
func (n *Node) APIAddr() net.Addr { return n.srv.apiAddr() }
