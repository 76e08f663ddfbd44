package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/anchat/realtime/socketio"
)

// worker holds connections [lo, hi) of the run and drives its share of the
// load. It answers its coordinator over the JSON-lines protocol.
type worker struct {
	cfg    *Config
	strict bool
	secret []byte
	apiKey string
	id     int
	procs  int
	lo, hi int
	dial   *dialer

	ctx    context.Context
	cancel context.CancelFunc

	outMu sync.Mutex // guards enc
	enc   *json.Encoder

	connsMu sync.Mutex // guards conns
	conns   []*Conn    // by idx-lo, the latest attempt

	loops  []*epollLoop
	recs   []*recorder // every recorder (loops or goroutine shards, connectors); appended under mu once the run has started
	shards []*recorder // goroutine reader recorders
	rr     atomic.Uint32

	attempts, connectOK, connectFail atomic.Int64
	open, disconnects                atomic.Int64
	dropped, back                    atomic.Int64
	sent, sendFailed, expected       atomic.Int64
	firstSend, lastSend              atomic.Int64
	stopping                         atomic.Bool

	mu           sync.Mutex // guards the following
	errors       map[string]int64
	connectLat   Histogram
	reconnectLat Histogram
	connectStart int64
	connectEnd   int64
	dropAt       int64
	allBackAt    int64

	joined     []int32        // ready members per group, all workers (from start)
	typingSent []atomic.Int64 // by idx-lo: last typing send time, bit 0 = start
	reconnectQ chan int
	loadDone   chan struct{}
	fatalOnce  sync.Once
}

// RunWorker serves one worker: it reads the coordinator's messages from in
// and writes its own to out, until the run ends or in closes. cmd/bench calls
// it in the worker processes it starts (the hidden --worker flag).
func RunWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(in))
	var first ctlMsg
	if err := dec.Decode(&first); err != nil {
		return fmt.Errorf("bench worker: reading config: %w", err)
	}
	if first.Op != "config" || first.Config == nil {
		return errors.New("bench worker: first message must be the config")
	}
	cfg := *first.Config
	cfg.JWTSecret = first.Secret
	cfg.APIKey = first.APIKey
	if err := cfg.Normalize(); err != nil {
		return err
	}
	w := newWorker(ctx, &cfg, first.Worker, max(first.Procs, 1), out)
	defer w.cancel()
	ctl := make(chan ctlMsg, 4)
	go func() {
		defer close(ctl)
		for {
			var m ctlMsg
			if err := dec.Decode(&m); err != nil {
				return
			}
			ctl <- m
		}
	}()
	return w.serve(ctl)
}

func newWorker(ctx context.Context, cfg *Config, id, procs int, out io.Writer) *worker {
	w := &worker{
		cfg: cfg, strict: cfg.Strict, secret: []byte(cfg.JWTSecret), apiKey: cfg.APIKey,
		id: id, procs: procs,
		lo: id * cfg.Conns / procs, hi: (id + 1) * cfg.Conns / procs,
		dial: newDialer(cfg), enc: json.NewEncoder(out),
		reconnectQ: make(chan int, max(cfg.Conns/procs+1, 16)), loadDone: make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	w.conns = make([]*Conn, w.hi-w.lo)
	if cfg.Scenario == ScenarioTyping {
		w.typingSent = make([]atomic.Int64, w.hi-w.lo)
	}
	return w
}

func (w *worker) send(m workerMsg) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_ = w.enc.Encode(m)
}

// fatal reports an error the worker cannot go on with and stops it.
func (w *worker) fatal(err error) {
	w.fatalOnce.Do(func() {
		w.send(workerMsg{Type: "fatal", Error: err.Error()})
		w.cancel()
	})
}

func (w *worker) countError(kind string) {
	w.mu.Lock()
	if w.errors == nil {
		w.errors = make(map[string]int64)
	}
	w.errors[kind]++
	w.mu.Unlock()
}

func (w *worker) serve(ctl <-chan ctlMsg) error {
	if err := w.startReaders(); err != nil {
		w.fatal(err)
		return err
	}
	tickStop := make(chan struct{})
	tickDone := make(chan struct{})
	go w.ticker(tickStop, tickDone)
	defer w.shutdown()

	if w.cfg.Scenario == ScenarioReconnect {
		go w.reconnector()
	}
	connected := make(chan struct{})
	go func() { w.connectAll(); close(connected) }()

	stopTicks := func() {
		select {
		case <-tickStop:
		default:
			close(tickStop)
			<-tickDone
		}
	}
	for {
		select {
		case <-connected:
			connected = nil
			w.send(workerMsg{Type: "ready", Joined: w.joinedHere()})
		case m, ok := <-ctl:
			if !ok { // the coordinator is gone
				stopTicks()
				return errors.New("bench worker: coordinator closed the pipe")
			}
			switch m.Op {
			case "start":
				w.joined = m.Joined
				go w.load(m.StartAt)
			case "stop":
				w.stopping.Store(true)
				w.cancel()
				if connected != nil {
					<-connected
				}
				<-w.loadDoneOrNow()
				stopTicks()
				w.send(workerMsg{Type: "result", Result: w.result()})
				return nil
			}
		case <-w.ctx.Done():
			if !w.stopping.Load() {
				stopTicks()
				return w.ctx.Err()
			}
		}
	}
}

// loadDoneOrNow is closed when the load goroutine has ended (at once if it
// never started).
func (w *worker) loadDoneOrNow() <-chan struct{} {
	if w.joined == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return w.loadDone
}

func (w *worker) startReaders() error {
	if w.cfg.IO == IOEpoll {
		n := runtime.GOMAXPROCS(0)
		for range n {
			rec := &recorder{}
			l, err := newEpollLoop(w, rec)
			if err != nil {
				return err
			}
			w.loops = append(w.loops, l)
			w.recs = append(w.recs, rec)
		}
		return nil
	}
	for range 4 * runtime.GOMAXPROCS(0) {
		rec := &recorder{}
		w.shards = append(w.shards, rec)
		w.recs = append(w.recs, rec)
	}
	return nil
}

// closeGrace bounds the clean close of every connection at the end of a run.
const closeGrace = 2 * time.Second

// shutdown stops the readers and closes every connection cleanly: a
// WebSocket close frame to each, then, once the server has answered and
// closed its side (or closeGrace has passed), the socket. The server then
// counts client closes, not read errors.
func (w *worker) shutdown() {
	w.stopping.Store(true)
	w.cancel()
	w.connsMu.Lock()
	conns := slices.DeleteFunc(append([]*Conn(nil), w.conns...), func(c *Conn) bool { return c == nil || c.nc == nil })
	w.connsMu.Unlock()
	deadline := time.Now().Add(closeGrace)
	for _, c := range conns {
		c.startClose(deadline)
	}
	if w.loops == nil {
		// Goroutine readers see the server's close and close the socket
		// themselves; wait for them, then close what is left.
		for _, c := range conns {
			for c.state.Load() != stateClosed && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			c.closeNow()
		}
		return
	}
	// The epoll loops stop; their connections are read to the server's
	// close here.
	for _, l := range w.loops {
		l.close()
	}
	buf := make([]byte, 4096)
	for _, c := range conns {
		c.finishClose(deadline, buf)
	}
}

// joinedHere counts this worker's ready members per group.
func (w *worker) joinedHere() []int32 {
	j := make([]int32, w.cfg.groups())
	w.connsMu.Lock()
	defer w.connsMu.Unlock()
	for _, c := range w.conns {
		if c != nil && c.state.Load() == stateReady {
			j[c.group]++
		}
	}
	return j
}

// connectAll opens connections lo..hi-1 with ConnectConcurrency connectors,
// at no more than this worker's share of ConnectRate.
func (w *worker) connectAll() {
	w.mu.Lock()
	w.connectStart = time.Now().UnixNano()
	w.mu.Unlock()
	jobs := make(chan int)
	var wg sync.WaitGroup
	n := min(w.cfg.ConnectConcurrency, w.hi-w.lo)
	for range n {
		rec := w.connectorRecorder()
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, connectBufSize)
			for idx := range jobs {
				w.connectOne(idx, buf, rec, false)
			}
		}()
	}
	rate := w.cfg.ConnectRate / float64(w.procs)
	start := time.Now()
	for i, idx := 0, w.lo; idx < w.hi; i, idx = i+1, idx+1 {
		if rate > 0 {
			sleep(w.ctx, time.Until(start.Add(time.Duration(float64(i)/rate*float64(time.Second)))))
		}
		if w.ctx.Err() != nil {
			break
		}
		jobs <- idx
	}
	close(jobs)
	wg.Wait()
	w.mu.Lock()
	w.connectEnd = time.Now().UnixNano()
	w.mu.Unlock()
}

// connectOne opens connection idx and hands it to a reader. reconnect marks
// a connection coming back after a drop.
func (w *worker) connectOne(idx int, buf []byte, rec *recorder, reconnect bool) error {
	cfg := w.cfg
	w.attempts.Add(1)
	started := time.Now()
	c := &Conn{idx: idx, fd: -1, startedAt: started.UnixNano()}
	c.group, c.member = cfg.groupOf(idx)
	fail := func(err error) error {
		w.connectFail.Add(1)
		kind := classify(err)
		if reconnect {
			kind = "reconnect:" + kind
		}
		w.countError(kind)
		return err
	}
	ctx, cancel := context.WithTimeout(w.ctx, cfg.ConnectTimeout.D())
	defer cancel()
	nc, early, err := w.dial.dial(ctx, idx)
	if err != nil {
		return fail(err)
	}
	c.nc = nc
	c.pending = early
	var profiles []string
	if cfg.Scenario == ScenarioRTM {
		profiles = []string{cfg.profileID(c.group)}
	}
	token, err := mintToken(w.secret, cfg.userID(idx), profiles, cfg.TokenTTL.D(), started)
	if err != nil {
		nc.Close()
		return fail(err)
	}
	h := &handler{w: w, rec: rec}
	after := func(c *Conn, msg []byte) error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		h.now = time.Now().UnixNano()
		return h.on(c, msg)
	}
	deadline := started.Add(cfg.ConnectTimeout.D())
	if err := c.handshake(deadline, token, cfg.Namespace, cfg.chatID(c.group), cfg.Scenario != ScenarioRTM, buf, after); err != nil {
		c.closeNow()
		return fail(err)
	}
	took := time.Since(started)
	w.connsMu.Lock()
	w.conns[idx-w.lo] = c
	w.connsMu.Unlock()
	w.open.Add(1)
	w.connectOK.Add(1)
	w.mu.Lock()
	w.connectLat.Record(int64(took))
	w.mu.Unlock()
	if w.loops != nil {
		l := w.loops[int(w.rr.Add(1))%len(w.loops)]
		if err := l.add(c); err != nil {
			c.state.Store(stateClosed)
			w.open.Add(-1)
			c.closeNow()
			return fail(err)
		}
	} else {
		go w.readGoroutine(c, w.shards[idx%len(w.shards)])
	}
	return nil
}

// closed is called by a reader once a ready connection has ended.
func (w *worker) closed(c *Conn, err error) {
	if c.state.Swap(stateClosed) != stateReady {
		return
	}
	w.open.Add(-1)
	if c.dropped.Load() {
		select {
		case w.reconnectQ <- c.idx:
		case <-w.ctx.Done():
		}
		return
	}
	if w.stopping.Load() {
		return
	}
	w.disconnects.Add(1)
	w.countError("disconnect:" + classify(err))
}

// sleep waits d (nothing when d <= 0) or until ctx ends; false when ctx has
// ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// connectBufSize is the scratch buffer of one connecting goroutine
// (connectOne's buf).
const connectBufSize = 16 << 10

// connectorRecorder returns a new recorder for connecting goroutines, listed
// in w.recs under mu: snapshot reads recs while connectors start.
func (w *worker) connectorRecorder() *recorder {
	rec := &recorder{}
	w.mu.Lock()
	w.recs = append(w.recs, rec)
	w.mu.Unlock()
	return rec
}

// reconnector brings dropped connections back, retrying with backoff until
// ReconnectTimeout after the drop.
func (w *worker) reconnector() {
	sem := make(chan struct{}, w.cfg.ConnectConcurrency)
	rec := w.connectorRecorder()
	var bufs sync.Pool
	bufs.New = func() any { return make([]byte, connectBufSize) }
	for {
		var idx int
		select {
		case idx = <-w.reconnectQ:
		case <-w.ctx.Done():
			return
		}
		select {
		case sem <- struct{}{}:
		case <-w.ctx.Done():
			return
		}
		go func() {
			defer func() { <-sem }()
			buf := bufs.Get().([]byte)
			defer bufs.Put(buf)
			w.mu.Lock()
			dropAt := w.dropAt
			w.mu.Unlock()
			limit := time.Unix(0, dropAt).Add(w.cfg.ReconnectTimeout.D())
			backoff := 50 * time.Millisecond
			for attempt := 0; ; attempt++ {
				if w.connectOne(idx, buf, rec, true) == nil {
					now := time.Now().UnixNano()
					w.mu.Lock()
					w.reconnectLat.Record(now - dropAt)
					w.mu.Unlock()
					if w.back.Add(1) == w.dropped.Load() {
						w.mu.Lock()
						w.allBackAt = now
						w.mu.Unlock()
					}
					return
				}
				// Full jitter, as socket.io-client's randomizationFactor does.
				d := time.Duration(rand.Int64N(int64(backoff)) + int64(backoff)/2)
				if time.Now().Add(d).After(limit) || w.ctx.Err() != nil {
					w.countError("reconnect:gave_up")
					return
				}
				if !sleep(w.ctx, d) {
					return
				}
				backoff = min(2*backoff, 2*time.Second)
			}
		}()
	}
}

// load runs this worker's share of the scenario from startAt until
// startAt+Duration or stop.
func (w *worker) load(startAt int64) {
	defer close(w.loadDone)
	start := time.Unix(0, startAt)
	if !sleep(w.ctx, time.Until(start)) {
		return
	}
	end := start.Add(w.cfg.Duration.D())
	switch w.cfg.Scenario {
	case ScenarioIdle:
	case ScenarioReconnect:
		w.drop()
	case ScenarioFanout:
		if w.lo == 0 {
			w.pace(start, end, w.cfg.Rate, w.sendMessage(func() *Conn { return w.conn(0) }))
		}
	case ScenarioChat:
		w.pace(start, end, w.cfg.Rate*float64(w.hi-w.lo)/float64(w.cfg.Conns), w.sendMessage(w.roundRobin()))
	case ScenarioTyping:
		w.pace(start, end, w.cfg.Rate*float64(w.hi-w.lo)/float64(w.cfg.Conns), w.sendTyping(w.roundRobin()))
	case ScenarioRTM:
		if w.id == 0 {
			w.pace(start, end, w.cfg.Rate, w.injectRTM())
		}
	}
}

func (w *worker) conn(idx int) *Conn {
	w.connsMu.Lock()
	defer w.connsMu.Unlock()
	return w.conns[idx-w.lo]
}

// roundRobin picks the next ready connection of this worker.
func (w *worker) roundRobin() func() *Conn {
	next := 0
	n := w.hi - w.lo
	return func() *Conn {
		for range n {
			c := w.conn(w.lo + next)
			next = (next + 1) % n
			if c != nil && c.state.Load() == stateReady {
				return c
			}
		}
		return nil
	}
}

// pace calls send at rate per second, spread evenly from start until end (an
// open loop: if a send is late, the ones due are sent at once).
func (w *worker) pace(start, end time.Time, rate float64, send func() bool) {
	if rate <= 0 {
		return
	}
	var done int64
	for {
		now := time.Now()
		if !now.Before(end) || w.ctx.Err() != nil {
			return
		}
		due := int64(now.Sub(start).Seconds()*rate) + 1
		for done < due && time.Now().Before(end) {
			send()
			done++
		}
		next := start.Add(time.Duration(float64(done) / rate * float64(time.Second)))
		d := time.Until(next)
		if !sleep(w.ctx, max(d, 100*time.Microsecond)) {
			return
		}
	}
}

func (w *worker) noteSend(ts int64) {
	w.firstSend.CompareAndSwap(0, ts)
	w.lastSend.Store(ts)
}

// sendMessage returns a send function for send_message from pick's
// connections.
func (w *worker) sendMessage(pick func() *Conn) func() bool {
	cfg := w.cfg
	var data, payload, frame []byte
	return w.sender(pick, func(c *Conn) ([]byte, int64, int64) {
		ts := time.Now().UnixNano()
		m := marker{t: ts, group: int64(c.group), member: int64(c.member), seq: c.sendSeq}
		c.sendSeq++
		data = append(data[:0], `{"chatId":"`...)
		data = append(data, cfg.chatID(c.group)...)
		data = append(data, `","content":"`...)
		mark := len(data)
		data = appendMarker(data, m)
		for len(data)-mark < cfg.MessageSize {
			data = append(data, 'x')
		}
		data = append(data, `","messageType":"TEXT","tempId":"`...)
		data = strconv.AppendInt(data, m.seq, 10)
		data = append(data, `"}`...)
		payload = socketio.AppendEvent(payload[:0], cfg.Namespace, -1, "send_message", data)
		frame = appendClientFrame(frame[:0], ws.OpText, payload, ws.NewMask())
		return frame, ts, int64(w.joined[c.group])
	})
}

// sendTyping returns a send function alternating typing_start and
// typing_stop per connection.
func (w *worker) sendTyping(pick func() *Conn) func() bool {
	cfg := w.cfg
	var data, payload, frame []byte
	return w.sender(pick, func(c *Conn) ([]byte, int64, int64) {
		c.typing = !c.typing
		name, flag := "typing_stop", int64(0)
		if c.typing {
			name, flag = "typing_start", 1
		}
		data = append(append(append(data[:0], `{"chatId":"`...), cfg.chatID(c.group)...), `"}`...)
		payload = socketio.AppendEvent(payload[:0], cfg.Namespace, -1, name, data)
		frame = appendClientFrame(frame[:0], ws.OpText, payload, ws.NewMask())
		ts := time.Now().UnixNano()
		w.typingSent[c.idx-w.lo].Store(ts&^1 | flag)
		return frame, ts, int64(w.joined[c.group] - 1)
	})
}

// sender returns a send function on pick's connections: build makes the
// frame for a ready connection and says when it was sent (ns) and how many
// deliveries it owes; the counters follow what the write does.
func (w *worker) sender(pick func() *Conn, build func(c *Conn) (frame []byte, sentAt, owed int64)) func() bool {
	return func() bool {
		c := pick()
		if c == nil || c.state.Load() != stateReady {
			w.sendFailed.Add(1)
			return false
		}
		frame, ts, owed := build(c)
		if err := c.writeFrame(frame); err != nil {
			w.sendFailed.Add(1)
			w.countError("send:" + classify(err))
			return false
		}
		w.sent.Add(1)
		w.expected.Add(owed)
		w.noteSend(ts)
		return true
	}
}

// drop closes ReconnectFraction of this worker's connections at once; the
// reconnector brings them back.
func (w *worker) drop() {
	w.connsMu.Lock()
	var victims []*Conn
	f := w.cfg.ReconnectFraction
	for i, c := range w.conns {
		if c == nil || c.state.Load() != stateReady {
			continue
		}
		if int(float64(i+1)*f) > int(float64(i)*f) {
			victims = append(victims, c)
		}
	}
	w.connsMu.Unlock()
	w.mu.Lock()
	w.dropAt = time.Now().UnixNano()
	w.mu.Unlock()
	w.dropped.Store(int64(len(victims)))
	for _, c := range victims {
		c.dropped.Store(true)
	}
	for _, c := range victims {
		c.shutdown()
	}
}

// ticker sends a tick every 250 ms until stop is closed.
func (w *worker) ticker(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			td := w.snapshot(nil)
			w.send(workerMsg{Type: "tick", Tick: &td})
		case <-stop:
			return
		}
	}
}

// snapshot collects the counters. With all non-nil, the run's whole latency
// histogram is merged into it too.
func (w *worker) snapshot(all *Histogram) tickData {
	td := tickData{At: time.Now().UnixNano(), Errors: map[string]int64{}}
	var interval Histogram
	w.mu.Lock()
	recs := append([]*recorder(nil), w.recs...)
	for k, v := range w.errors {
		td.Errors[k] += v
	}
	w.mu.Unlock()
	for _, r := range recs {
		r.mu.Lock()
		td.Received += r.received
		td.Dups += r.dups
		td.OOO += r.ooo
		td.Misrouted += r.misrouted
		td.Malformed += r.malformed
		td.Invalid += r.invalid
		td.Frames += r.frames
		td.LastRecv = max(td.LastRecv, r.lastRecv)
		for k, v := range r.errors {
			td.Errors[k] += v
		}
		interval.Merge(&r.interval)
		r.interval.Reset()
		if all != nil {
			all.Merge(&r.lat)
		}
		r.mu.Unlock()
	}
	td.Lat = interval.toJSON()
	td.Open = w.open.Load()
	td.Attempts = w.attempts.Load()
	td.ConnectOK = w.connectOK.Load()
	td.ConnectFail = w.connectFail.Load()
	td.Sent = w.sent.Load()
	td.SendFailed = w.sendFailed.Load()
	td.Expected = w.expected.Load()
	td.Disconnects = w.disconnects.Load()
	td.Dropped = w.dropped.Load()
	td.Back = w.back.Load()
	td.FirstSend = w.firstSend.Load()
	td.LastSend = w.lastSend.Load()
	td.CPU = selfCPU()
	td.RSS = selfRSS()
	return td
}

func (w *worker) result() *workerResult {
	var all Histogram
	td := w.snapshot(&all)
	w.mu.Lock()
	defer w.mu.Unlock()
	r := &workerResult{Final: td, Lat: all.toJSON(), ConnectLat: w.connectLat.toJSON(),
		ConnectStart: w.connectStart, ConnectEnd: w.connectEnd, DropAt: w.dropAt, AllBackAt: w.allBackAt}
	if w.cfg.Scenario == ScenarioReconnect {
		r.ReconnectLat = w.reconnectLat.toJSON()
	}
	return r
}

// selfCPU is this process's user+system CPU time in seconds (getrusage).
func selfCPU() float64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// selfRSS is this process's resident set in bytes.
func selfRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	if _, err := fmt.Sscan(string(b), &size, &res); err != nil {
		return 0
	}
	return res * int64(os.Getpagesize())
}
