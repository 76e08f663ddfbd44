package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/redisslot"
)

// Sharded pub/sub, used when the broker's client is a *redis.ClusterClient.
//
// A chat's events are SPUBLISHed by the append script to a channel in the
// chat's own slot, so they reach only the master owning that slot (classic
// PUBLISH on a cluster is broadcast to every node). Every chat, user and
// profile belongs to one of Partitions partitions (by hash of its id); each
// partition is a hash tag chosen so that partitions spread evenly over the
// slots, and every key and channel of a chat carries its partition's tag:
//
//	rt:{17}:chat:c1       chat channel (SPUBLISH / SSUBSCRIBE)
//	rt:{17}:chat:c1:h     history stream, and :m:<msgid>, :r:<msgid> as above
//	rt:{4}:user:u1        user channel
//	rt:{90}:profile:p1    RTM profile channel
//	rt:{17}:probe:<nonce> one broker's liveness probe in partition 17
//
// A node has one go-redis PubSub per partition it has subscribers in, opened
// with the partition's first channel and closed with its last, so that:
//
//   - one SSUBSCRIBE never names channels of two slots: go-redis resubscribes
//     every shard channel of a PubSub in a single SSUBSCRIBE after a
//     reconnect, which fails with CROSSSLOT otherwise;
//   - a PubSub is bound to the master of its channels' slot: go-redis dials
//     the owner of the first channel's slot;
//   - the number of pub/sub connections per node is bounded by Partitions,
//     not by the number of chats (Centrifugo partitions its sharded pub/sub
//     the same way).
//
// go-redis does not report a resubscription that failed (a CLUSTERDOWN or
// MOVED reply during a failover, or a stale slot map dialling the old
// master), nor does Redis say anything when a slot moves, beyond a
// SUNSUBSCRIBE. So every partition's watcher SPUBLISHes a probe to a channel
// of its own every ProbeInterval, through the cluster client (which follows
// MOVED by reloading its slot map): if three intervals pass without one
// coming back, or Redis unsubscribed a channel by itself, the watcher
// replaces the PubSub with a new one subscribed to all the partition's
// channels, and the confirmations start a gap repair of every chat from its
// stream, as after any reconnect.

// slots is the number of Redis Cluster hash slots.
const slots = redisslot.Count

// DefaultPartitions is [RedisConfig.Partitions]'s default.
const DefaultPartitions = 128

// slotTags returns n hash tags whose slots spread evenly: tag i hashes into
// the i-th of n equal slot ranges. It is deterministic, so that every node
// computes the same tags.
func slotTags(n int) []string {
	tags := make([]string, n)
	for k, left := 0, n; left > 0; k++ {
		t := strconv.Itoa(k)
		i := int(redisslot.Of(t)) * n / slots
		if tags[i] == "" {
			tags[i] = t
			left--
		}
	}
	return tags
}

// partition maps a channel's id to its partition (FNV-1a of kind and id).
func (r *Redis) partition(kind Kind, id string) int {
	h := uint32(2166136261)
	h = (h ^ uint32(kind)) * 16777619
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return int(h % uint32(len(r.tags)))
}

// tagOf is "<prefix>:{<tag>}:", the start of partition i's keys and channels.
func (r *Redis) tagOf(i int) string { return r.prefix + ":{" + r.tags[i] + "}:" }

func (r *Redis) partitionTag(kind Kind, id string) string {
	return r.tagOf(r.partition(kind, id))
}

// publishCmd is the command the append script publishes with.
func (r *Redis) publishCmd() string {
	if r.sharded {
		return "SPUBLISH"
	}
	return "PUBLISH"
}

func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// drain empties a replaced connection's message channel until go-redis closes
// it (its PubSub was closed), so go-redis's reader goroutine is not left
// blocked on a full channel.
func drain(wg *sync.WaitGroup, ch <-chan any) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range ch {
		}
	}()
}

// connect opens the partition's PubSub with SSUBSCRIBE names and the probe
// channel (all in the partition's slot) and hands its messages to the
// reader. On error the PubSub is kept when keep is set (go-redis retries its
// connection and subscriptions in the background, and the watcher replaces
// it if that does not work), otherwise closed. subMu must be held.
func (sh *shard) connect(ctx context.Context, keep bool, names ...string) error {
	if sh.r.isClosed() {
		return ErrClosed
	}
	ps := sh.r.client.SSubscribe(ctx) // no channels: no I/O
	sh.probeSeen.Store(time.Now().UnixNano())
	// The first channel picks the node: any of them, all share the slot.
	err := ps.SSubscribe(ctx, append(names, sh.probeName)...)
	if err != nil && !keep {
		_ = ps.Close()
		return err
	}
	sh.ps = ps
	select {
	case sh.swap <- ps.ChannelWithSubscriptions(redis.WithChannelSize(1024)):
	case <-sh.r.closeCh:
	}
	return err
}

// disconnect closes the partition's PubSub. subMu must be held.
func (sh *shard) disconnect() {
	if sh.ps == nil {
		return
	}
	_ = sh.ps.Close()
	sh.ps = nil
	select {
	case sh.swap <- nil:
	case <-sh.r.closeCh:
	}
}

// onServerUnsubscribe handles a SUNSUBSCRIBE that this broker did not ask
// for: Redis drops a slot's shard channels when the slot moves to another
// node. The watcher resubscribes on the new owner.
func (sh *shard) onServerUnsubscribe(name string) {
	sh.mu.Lock()
	_, ours := sh.chans[name]
	sh.mu.Unlock()
	if !ours && name != sh.probeName {
		return // our own SUNSUBSCRIBE's confirmation
	}
	sh.log.Info().Str("channel", name).Msg("Redis unsubscribed a shard channel (slot moved?); resubscribing on the slot's owner")
	select {
	case sh.renewWake <- struct{}{}:
	default:
	}
}

// watch probes the partition's connection every ProbeInterval and replaces
// it when probes stop coming back or Redis unsubscribed it.
func (sh *shard) watch() {
	defer sh.r.wg.Done()
	t := time.NewTicker(sh.r.probe)
	defer t.Stop()
	for {
		force := false
		select {
		case <-sh.r.closeCh:
			return
		case <-t.C:
		case <-sh.renewWake:
			force = true
		}
		sh.subMu.Lock()
		active := sh.ps != nil && !sh.r.isClosed()
		if active {
			silent := time.Since(time.Unix(0, sh.probeSeen.Load()))
			if force || silent > 3*sh.r.probe {
				sh.renew(silent)
			}
		}
		sh.subMu.Unlock()
		if active {
			ctx, cancel := context.WithTimeout(context.Background(), sh.r.probe)
			_ = sh.r.client.SPublish(ctx, sh.probeName, "").Err()
			cancel()
		}
	}
}

// renew replaces the partition's PubSub by a new one subscribed to all its
// channels; their confirmations start the gap repairs. subMu must be held.
func (sh *shard) renew(silent time.Duration) {
	sh.log.Warn().Dur("silent_ms", silent).Msg("sharded pub/sub connection lost its subscriptions; resubscribing on the slot's current master")
	if cc, ok := sh.r.client.(*redis.ClusterClient); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		sh.awaitSlotMap(ctx, cc) // the slot may have a new master
		cancel()
	}
	sh.disconnect()
	sh.mu.Lock()
	names := make([]string, 0, len(sh.chans))
	for name := range sh.chans {
		names = append(names, name)
	}
	sh.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := sh.connect(ctx, true, names...); err != nil {
		sh.log.Warn().Err(err).Msg("resubscribe failed; retrying")
	}
}

// awaitSlotMap waits, until ctx is done, for cc's slot map to route the
// partition's slot to a node that serves it. go-redis reloads the map in the
// background (ReloadState only schedules it), and a PubSub dialled from a
// stale map subscribes nowhere: the old owner answers its SSUBSCRIBE with
// MOVED, which go-redis drops, and the watcher would notice only after three
// silent probe intervals. Any other outcome (a reply, a dead master during a
// failover) ends the wait: the watcher handles those. subMu must be held.
func (sh *shard) awaitSlotMap(ctx context.Context, cc *redis.ClusterClient) {
	for {
		cc.ReloadState(ctx)
		node, err := cc.MasterForKey(ctx, sh.probeName)
		if err != nil {
			return
		}
		// SPUBLISH to one node: MOVED when it no longer owns the slot.
		if _, moved := redis.IsMovedError(node.SPublish(ctx, sh.probeName, "").Err()); !moved {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		case <-sh.r.closeCh:
			return
		}
	}
}
