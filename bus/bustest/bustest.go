// Package bustest is the contract suite every [bus.Broker] must pass. Each
// implementation runs it from its own test:
//
//	func TestMemoryContract(t *testing.T) {
//		bustest.Run(t, func(t *testing.T, historySize int) bus.Broker {
//			return bus.NewMemory(bus.MemoryConfig{HistorySize: historySize})
//		})
//	}
package bustest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anchat/realtime/bus"
)

// Factory returns a new, unstarted broker retaining historySize events per
// chat (0: the default). It releases whatever else it creates with t.Cleanup;
// the suite closes the broker itself.
type Factory func(t *testing.T, historySize int) bus.Broker

// Run runs the contract suite against brokers from newBroker.
func Run(t *testing.T, newBroker Factory) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"SendDeliveredOnce", testSendDeliveredOnce},
		{"SendDataShapes", testSendDataShapes},
		{"NotSubscribedGetsNothing", testNotSubscribed},
		{"SubscribeTwiceUnsubscribe", testSubscribeTwiceUnsubscribe},
		{"IDsStrictlyIncrease", testIDsIncrease},
		{"EditDelete", testEditDelete},
		{"Reactions", testReactions},
		{"Since", testSince},
		{"SinceTrimmed", testSinceTrimmed},
		{"Ephemeral", testEphemeral},
		{"StartAndClose", testStartAndClose},
		{"ConcurrentAppends", testConcurrentAppends},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBroker) })
	}
}

const waitTimeout = 10 * time.Second

// Recorder is a Handler that keeps every delivery.
type Recorder struct {
	mu  sync.Mutex
	got []bus.Delivery
}

// Handle is the bus.Handler.
func (r *Recorder) Handle(d bus.Delivery) {
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
}

// All returns a copy of the deliveries so far.
func (r *Recorder) All() []bus.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bus.Delivery(nil), r.got...)
}

// On returns the deliveries on ch, sync markers excluded.
func (r *Recorder) On(ch bus.Channel) []bus.Delivery {
	var out []bus.Delivery
	for _, d := range r.All() {
		if d.Channel == ch && d.Event != syncEvent {
			out = append(out, d)
		}
	}
	return out
}

// WaitOn waits until at least n deliveries arrived on ch and returns them.
func (r *Recorder) WaitOn(t testing.TB, ch bus.Channel, n int) []bus.Delivery {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := r.On(ch)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("bustest: %d deliveries on %v after %v, want %d", len(got), ch, waitTimeout, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

const syncEvent = "bustest.sync"

var syncSeq struct {
	sync.Mutex
	n int
}

// Sync publishes a marker on the subscribed channel ch and waits for it: every
// pub/sub message sent to ch before it has then been handled.
func (r *Recorder) Sync(t testing.TB, b bus.Broker, ch bus.Channel) {
	t.Helper()
	syncSeq.Lock()
	syncSeq.n++
	n := syncSeq.n
	syncSeq.Unlock()
	data := json.RawMessage(fmt.Sprintf(`{"sync":%d}`, n))
	if err := b.Publish(context.Background(), ch, syncEvent, data); err != nil {
		t.Fatalf("bustest: sync publish: %v", err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, d := range r.All() {
			if d.Channel == ch && d.Event == syncEvent && string(d.Data) == string(data) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("bustest: sync marker on %v not delivered after %v", ch, waitTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// started returns a started broker with a recorder, closed with the test.
func started(t *testing.T, newBroker Factory, historySize int) (bus.Broker, *Recorder) {
	t.Helper()
	b := newBroker(t, historySize)
	rec := &Recorder{}
	if err := b.Start(rec.Handle); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, rec
}

// startedInChat is started with the default history, subscribed to a chat
// of the test's own.
func startedInChat(t *testing.T, newBroker Factory) (b bus.Broker, rec *Recorder, chat string, ch bus.Channel) {
	t.Helper()
	b, rec = started(t, newBroker, 0)
	chat = ChatID(t)
	ch = bus.Chat(chat)
	subscribe(t, b, ch)
	return b, rec, chat, ch
}

func subscribe(t testing.TB, b bus.Broker, ch bus.Channel) {
	t.Helper()
	if err := b.Subscribe(context.Background(), ch); err != nil {
		t.Fatalf("Subscribe(%v): %v", ch, err)
	}
}

// ChatID returns a chat id unique to the test.
func ChatID(t testing.TB) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
}

func send(t testing.TB, b bus.Broker, chat, user, text string) bus.Result {
	t.Helper()
	res, err := b.Append(context.Background(), chat, bus.Op{
		Kind: bus.OpSend, UserID: user, Event: "new_message",
		Data: json.RawMessage(fmt.Sprintf(`{"chatId":%q,"senderId":%q,"content":%q}`, chat, user, text)),
	})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return res
}

func jsonEqual(t testing.TB, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("data %s is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s is not JSON: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("data %s, want %s", got, want)
	}
}

func testSendDeliveredOnce(t *testing.T, newBroker Factory) {
	b, rec, chat, ch := startedInChat(t, newBroker)
	res := send(t, b, chat, "alice", "hi")
	if !res.Changed || res.EventID == "" || res.MessageID != res.EventID || !bus.ValidID(res.EventID) {
		t.Fatalf("Result %+v: want Changed, a valid EventID, MessageID == EventID", res)
	}
	got := rec.WaitOn(t, ch, 1)
	rec.Sync(t, b, ch)
	got = rec.On(ch)
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1: %+v", len(got), got)
	}
	d := got[0]
	if d.EventID != res.EventID || d.Event != "new_message" || d.Channel != ch {
		t.Fatalf("delivery %+v, want event new_message id %s on %v", d, res.EventID, ch)
	}
	prefix := `{"messageId":"` + res.EventID + `",`
	if !strings.HasPrefix(string(d.Data), prefix) {
		t.Fatalf("data %s does not start with %s", d.Data, prefix)
	}
	jsonEqual(t, d.Data, fmt.Sprintf(`{"messageId":%q,"chatId":%q,"senderId":"alice","content":"hi"}`, res.EventID, chat))
}

func testSendDataShapes(t *testing.T, newBroker Factory) {
	b, rec, chat, ch := startedInChat(t, newBroker)
	ctx := context.Background()
	for i, data := range []string{"", "{}", " { } ", `{"a":"x\"y"}`} {
		res, err := b.Append(ctx, chat, bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(data)})
		if err != nil {
			t.Fatalf("send %q: %v", data, err)
		}
		want := fmt.Sprintf(`{"messageId":%q}`, res.MessageID)
		if i == 3 {
			want = fmt.Sprintf(`{"messageId":%q,"a":"x\"y"}`, res.MessageID)
		}
		d := rec.WaitOn(t, ch, i+1)[i]
		jsonEqual(t, d.Data, want)
	}
	for _, data := range []string{`[1]`, `"s"`, `x`} {
		_, err := b.Append(ctx, chat, bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(data)})
		if err == nil || errors.Is(err, bus.ErrUnavailable) {
			t.Fatalf("send of non-object %q: err %v, want a plain error", data, err)
		}
	}
}

func testNotSubscribed(t *testing.T, newBroker Factory) {
	b, rec := started(t, newBroker, 0)
	chat := ChatID(t)
	other := bus.Chat(chat + "_subscribed")
	subscribe(t, b, other)
	ctx := context.Background()
	send(t, b, chat, "alice", "nobody listens")
	if err := b.Publish(ctx, bus.Chat(chat), "user_typing", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, bus.User("nobody"), "x", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	send(t, b, other.ID, "alice", "listened")
	rec.WaitOn(t, other, 1)
	rec.Sync(t, b, other)
	time.Sleep(20 * time.Millisecond)
	for _, d := range rec.All() {
		if d.Channel != other {
			t.Fatalf("delivery on unsubscribed channel: %+v", d)
		}
	}
}

func testSubscribeTwiceUnsubscribe(t *testing.T, newBroker Factory) {
	b, rec, chat, ch := startedInChat(t, newBroker)
	ctx := context.Background()
	subscribe(t, b, ch) // no-op
	send(t, b, chat, "alice", "one")
	rec.WaitOn(t, ch, 1)
	rec.Sync(t, b, ch)
	if n := len(rec.On(ch)); n != 1 {
		t.Fatalf("subscribed twice: %d deliveries, want 1", n)
	}
	if err := b.Unsubscribe(ctx, ch); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if err := b.Unsubscribe(ctx, ch); err != nil {
		t.Fatalf("second Unsubscribe: %v", err)
	}
	if err := b.Unsubscribe(ctx, bus.User("never")); err != nil {
		t.Fatalf("Unsubscribe of a channel never subscribed: %v", err)
	}
	send(t, b, chat, "alice", "two")
	if err := b.Publish(ctx, ch, "user_typing", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	// Subscribe again: only what is appended from now on arrives.
	subscribe(t, b, ch)
	res := send(t, b, chat, "alice", "three")
	got := rec.WaitOn(t, ch, 2)
	rec.Sync(t, b, ch)
	got = rec.On(ch)
	if len(got) != 2 || got[1].EventID != res.EventID {
		t.Fatalf("after resubscribe got %+v, want the first and %s only", got, res.EventID)
	}
}

func testIDsIncrease(t *testing.T, newBroker Factory) {
	b, rec, chat, ch := startedInChat(t, newBroker)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 30; i++ {
		res := send(t, b, chat, "alice", fmt.Sprint(i))
		ids = append(ids, res.EventID)
		if i%3 == 0 {
			r, err := b.Append(ctx, chat, bus.Op{Kind: bus.OpEdit, UserID: "alice", MessageID: res.MessageID,
				Event: "message_edited", Data: json.RawMessage(`{"content":"e"}`)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.EventID)
		}
	}
	for i := 1; i < len(ids); i++ {
		if bus.CompareIDs(ids[i-1], ids[i]) >= 0 {
			t.Fatalf("ids not increasing: %s then %s", ids[i-1], ids[i])
		}
	}
	got := rec.WaitOn(t, ch, len(ids))
	for i, d := range got {
		if d.EventID != ids[i] {
			t.Fatalf("delivery %d has id %s, want %s", i, d.EventID, ids[i])
		}
	}
}

func testEditDelete(t *testing.T, newBroker Factory) {
	b, rec, chat, ch := startedInChat(t, newBroker)
	ctx := context.Background()
	msg := send(t, b, chat, "alice", "original")
	op := func(kind bus.OpKind, user, msgID string) (bus.Result, error) {
		ev := map[bus.OpKind]string{bus.OpEdit: "message_edited", bus.OpDelete: "message_deleted",
			bus.OpReactAdd: "reaction_updated"}[kind]
		return b.Append(ctx, chat, bus.Op{Kind: kind, UserID: user, MessageID: msgID, Emoji: "👍",
			Event: ev, Data: json.RawMessage(`{"messageId":"` + msgID + `"}`)})
	}
	check := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("%s: err %v, want %v", name, err, want)
		}
	}
	_, err := op(bus.OpEdit, "bob", msg.MessageID)
	check("edit by another user", err, bus.ErrForbidden)
	_, err = op(bus.OpDelete, "bob", msg.MessageID)
	check("delete by another user", err, bus.ErrForbidden)
	_, err = op(bus.OpEdit, "alice", "1-999")
	check("edit of an unknown message", err, bus.ErrNotFound)
	_, err = op(bus.OpEdit, "alice", "not-an-id")
	check("edit of a malformed id", err, bus.ErrNotFound)
	_, err = b.Append(ctx, chat+"_other", bus.Op{Kind: bus.OpEdit, UserID: "alice", MessageID: msg.MessageID, Event: "message_edited"})
	check("edit of a message of another chat", err, bus.ErrNotFound)

	edit, err := op(bus.OpEdit, "alice", msg.MessageID)
	if err != nil || !edit.Changed || edit.MessageID != msg.MessageID || bus.CompareIDs(edit.EventID, msg.EventID) <= 0 {
		t.Fatalf("edit by author: %+v, %v", edit, err)
	}
	del, err := op(bus.OpDelete, "alice", msg.MessageID)
	if err != nil || !del.Changed || bus.CompareIDs(del.EventID, edit.EventID) <= 0 {
		t.Fatalf("delete by author: %+v, %v", del, err)
	}
	_, err = op(bus.OpEdit, "alice", msg.MessageID)
	check("edit after delete", err, bus.ErrNotFound)
	_, err = op(bus.OpDelete, "alice", msg.MessageID)
	check("delete after delete", err, bus.ErrNotFound)
	_, err = op(bus.OpReactAdd, "bob", msg.MessageID)
	check("reaction to a deleted message", err, bus.ErrNotFound)

	got := rec.WaitOn(t, ch, 3)
	rec.Sync(t, b, ch)
	got = rec.On(ch)
	if len(got) != 3 {
		t.Fatalf("%d deliveries, want 3 (send, edit, delete): %+v", len(got), got)
	}
	for i, want := range []struct{ id, ev string }{{msg.EventID, "new_message"}, {edit.EventID, "message_edited"}, {del.EventID, "message_deleted"}} {
		if got[i].EventID != want.id || got[i].Event != want.ev {
			t.Fatalf("delivery %d: %+v, want %s %s", i, got[i], want.ev, want.id)
		}
	}
	jsonEqual(t, got[1].Data, `{"messageId":"`+msg.MessageID+`"}`)
}

func testReactions(t *testing.T, newBroker Factory) {
	b, rec, chat, ch := startedInChat(t, newBroker)
	ctx := context.Background()
	msg := send(t, b, chat, "alice", "react to me")
	react := func(kind bus.OpKind, user, emoji string) bus.Result {
		t.Helper()
		res, err := b.Append(ctx, chat, bus.Op{Kind: kind, UserID: user, MessageID: msg.MessageID, Emoji: emoji,
			Event: "reaction_updated", Data: json.RawMessage(`{"emoji":"` + emoji + `"}`)})
		if err != nil {
			t.Fatalf("reaction %v %s %s: %v", kind, user, emoji, err)
		}
		if res.MessageID != msg.MessageID {
			t.Fatalf("reaction result %+v: MessageID want %s", res, msg.MessageID)
		}
		return res
	}
	steps := []struct {
		kind    bus.OpKind
		user    string
		emoji   string
		changed bool
	}{
		{bus.OpReactAdd, "bob", "👍", true},
		{bus.OpReactAdd, "bob", "👍", false},
		{bus.OpReactAdd, "carol", "👍", true},
		{bus.OpReactAdd, "bob", "❤️", true},
		{bus.OpReactRemove, "bob", "👍", true},
		{bus.OpReactRemove, "bob", "👍", false},
		{bus.OpReactRemove, "dave", "👍", false},
		{bus.OpReactAdd, "bob", "👍", true},
	}
	var want []string
	for i, s := range steps {
		res := react(s.kind, s.user, s.emoji)
		if res.Changed != s.changed {
			t.Fatalf("step %d %+v: Changed %v", i, s, res.Changed)
		}
		if !s.changed && res.EventID != "" {
			t.Fatalf("step %d: unchanged reaction has EventID %q", i, res.EventID)
		}
		if s.changed {
			want = append(want, res.EventID)
		}
	}
	// The author may react too; an unknown message may not be reacted to.
	want = append(want, react(bus.OpReactAdd, "alice", "👍").EventID)
	_, err := b.Append(ctx, chat, bus.Op{Kind: bus.OpReactAdd, UserID: "bob", MessageID: "1-1", Emoji: "👍", Event: "reaction_updated"})
	if !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("reaction to unknown message: %v, want ErrNotFound", err)
	}
	got := rec.WaitOn(t, ch, 1+len(want))
	rec.Sync(t, b, ch)
	got = rec.On(ch)[1:]
	if len(got) != len(want) {
		t.Fatalf("%d reaction deliveries, want %d (unchanged ones publish nothing)", len(got), len(want))
	}
	for i, id := range want {
		if got[i].EventID != id || got[i].Event != "reaction_updated" {
			t.Fatalf("reaction delivery %d: %+v, want id %s", i, got[i], id)
		}
	}
}

func testSince(t *testing.T, newBroker Factory) {
	b, rec, chat, ch := startedInChat(t, newBroker)
	ctx := context.Background()
	if evs, rec, err := b.Since(ctx, chat, "1-0", 10); err != nil || rec || len(evs) != 0 {
		t.Fatalf("Since on an empty chat: %v %v %v, want nothing, not recovered", evs, rec, err)
	}
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, send(t, b, chat, "alice", fmt.Sprint(i)).EventID)
	}
	if err := b.Publish(ctx, ch, "user_typing", json.RawMessage(`{"isTyping":true}`)); err != nil {
		t.Fatal(err)
	}
	delivered := rec.WaitOn(t, ch, 6)
	eventIDs := func(evs []bus.Event) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.EventID)
		}
		return out
	}
	// An id after ids[2] that no event has (or ids[3] itself).
	between, afterBetween := nextSeq(ids[2]), 3
	if between == ids[3] {
		afterBetween = 4
	}
	for _, tc := range []struct {
		name      string
		after     string
		limit     int
		want      []string
		recovered bool
	}{
		{"gap", ids[1], 100, ids[2:], true},
		{"limit keeps the oldest", ids[1], 2, ids[2:4], true},
		{"no gap", ids[4], 100, nil, true},
		{"from the oldest retained", ids[0], 0, ids[1:], true},
		{"id between events", between, 100, ids[afterBetween:], true},
		{"id older than history", "1-0", 100, ids, false},
		{"id older than history, limit", "1-0", 2, ids[:2], false},
		{"malformed id: newest", "garbage", 2, ids[3:], false},
		{"empty id: newest", "", 100, ids, false},
	} {
		evs, recovered, err := b.Since(ctx, chat, tc.after, tc.limit)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := eventIDs(evs); !reflect.DeepEqual(got, tc.want) || recovered != tc.recovered {
			t.Fatalf("%s: Since(%q, %d) = %v, %v; want %v, %v", tc.name, tc.after, tc.limit, got, recovered, tc.want, tc.recovered)
		}
	}
	// History holds exactly what was delivered.
	evs, _, _ := b.Since(ctx, chat, ids[0], 100)
	for i, e := range evs {
		d := delivered[i+1]
		if e.Event != d.Event || string(e.Data) != string(d.Data) {
			t.Fatalf("history %+v differs from delivery %+v", e, d)
		}
		if strings.Contains(string(e.Data), "eventId") {
			t.Fatalf("history data contains eventId: %s", e.Data)
		}
	}
}

// nextSeq returns id with its sequence number plus one.
func nextSeq(id string) string {
	i := strings.IndexByte(id, '-')
	seq, _ := strconv.ParseUint(id[i+1:], 10, 64)
	return id[:i+1] + strconv.FormatUint(seq+1, 10)
}

func testSinceTrimmed(t *testing.T, newBroker Factory) {
	const size = 5
	b, _ := started(t, newBroker, size)
	ctx := context.Background()
	chat := ChatID(t)
	var ids []string
	for i := 0; i < 8; i++ {
		ids = append(ids, send(t, b, chat, "alice", fmt.Sprint(i)).EventID)
	}
	retained := ids[len(ids)-size:]
	for _, tc := range []struct {
		after     string
		limit     int
		want      []string
		recovered bool
	}{
		{ids[0], 100, retained, false},
		{ids[2], 100, retained, false}, // the newest trimmed event: the cap was passed
		{ids[2], 2, retained[:2], false},
		{ids[3], 100, retained[1:], true}, // the oldest retained
		{ids[7], 100, nil, true},
		{"x", 3, retained[2:], false},
	} {
		evs, recovered, err := b.Since(ctx, chat, tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.EventID)
		}
		if !reflect.DeepEqual(got, tc.want) || recovered != tc.recovered {
			t.Fatalf("Since(%q, %d) = %v, %v; want %v, %v", tc.after, tc.limit, got, recovered, tc.want, tc.recovered)
		}
	}
	// A message trimmed out of history is gone; a retained one can be edited.
	_, err := b.Append(ctx, chat, bus.Op{Kind: bus.OpEdit, UserID: "alice", MessageID: ids[2], Event: "message_edited"})
	if !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("edit of a trimmed message: %v, want ErrNotFound", err)
	}
	if _, err := b.Append(ctx, chat, bus.Op{Kind: bus.OpEdit, UserID: "alice", MessageID: ids[4], Event: "message_edited"}); err != nil {
		t.Fatalf("edit of a retained message: %v", err)
	}
	// That edit trimmed ids[3]: its message is gone too.
	_, err = b.Append(ctx, chat, bus.Op{Kind: bus.OpReactAdd, UserID: "bob", MessageID: ids[3], Emoji: "x", Event: "reaction_updated"})
	if !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("reaction to a trimmed message: %v, want ErrNotFound", err)
	}
}

func testEphemeral(t *testing.T, newBroker Factory) {
	b, rec := started(t, newBroker, 0)
	ctx := context.Background()
	id := ChatID(t)
	chans := []bus.Channel{bus.User(id), bus.Profile(id), bus.Chat(id)}
	for _, ch := range chans {
		subscribe(t, b, ch)
	}
	for i, ch := range chans {
		data := json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
		if err := b.Publish(ctx, ch, "evt", data); err != nil {
			t.Fatalf("Publish(%v): %v", ch, err)
		}
		got := rec.WaitOn(t, ch, 1)
		rec.Sync(t, b, ch)
		got = rec.On(ch)
		if len(got) != 1 || got[0].EventID != "" || got[0].Event != "evt" || string(got[0].Data) != string(data) {
			t.Fatalf("on %v got %+v, want one evt %s without EventID", ch, got, data)
		}
	}
	// Same id, different kinds: separate channels (checked above by count).
	if evs, _, err := b.Since(ctx, id, "", 10); err != nil || len(evs) != 0 {
		t.Fatalf("ephemeral events in history: %v %v", evs, err)
	}
}

func testStartAndClose(t *testing.T, newBroker Factory) {
	ctx := context.Background()
	b := newBroker(t, 0)
	if err := b.Subscribe(ctx, bus.Chat("x")); err == nil {
		t.Fatal("Subscribe before Start succeeded")
	}
	rec := &Recorder{}
	if err := b.Start(rec.Handle); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(rec.Handle); err == nil {
		t.Fatal("second Start succeeded")
	}
	subscribe(t, b, bus.Chat("x"))
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Append(ctx, "x", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(`{}`)}); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if err := b.Publish(ctx, bus.Chat("x"), "e", nil); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
	if err := b.Subscribe(ctx, bus.Chat("y")); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if _, _, err := b.Since(ctx, "x", "", 1); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Since after Close: %v, want ErrClosed", err)
	}
}

func testConcurrentAppends(t *testing.T, newBroker Factory) {
	b, rec, chat, ch := startedInChat(t, newBroker)
	const writers, each = 8, 40
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = make(map[string]bool)
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				res, err := b.Append(context.Background(), chat, bus.Op{Kind: bus.OpSend, UserID: fmt.Sprint("w", w),
					Event: "new_message", Data: json.RawMessage(`{"n":1}`)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids[res.EventID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(ids) != writers*each {
		t.Fatalf("%d distinct ids, want %d", len(ids), writers*each)
	}
	rec.WaitOn(t, ch, writers*each)
	rec.Sync(t, b, ch)
	got := rec.On(ch)
	if len(got) != writers*each {
		t.Fatalf("%d deliveries, want %d", len(got), writers*each)
	}
	for i, d := range got {
		if !ids[d.EventID] {
			t.Fatalf("delivery of unknown id %s", d.EventID)
		}
		if i > 0 && bus.CompareIDs(got[i-1].EventID, d.EventID) >= 0 {
			t.Fatalf("deliveries out of order: %s then %s", got[i-1].EventID, d.EventID)
		}
	}
}

// BenchmarkAppend starts br, subscribes it to a chat and measures Append of
// one chat message to that chat: the same load on every broker.
func BenchmarkAppend(b *testing.B, br bus.Broker) {
	if err := br.Start(func(bus.Delivery) {}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := br.Subscribe(ctx, bus.Chat("c")); err != nil {
		b.Fatal(err)
	}
	op := bus.Op{Kind: bus.OpSend, UserID: "alice", Event: "new_message",
		Data: json.RawMessage(`{"chatId":"c","senderId":"alice","content":"hello","messageType":"TEXT"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Append(ctx, "c", op); err != nil {
			b.Fatal(err)
		}
	}
}
