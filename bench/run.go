package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"time"
)

// Options are how a run reports and starts its workers.
type Options struct {
	// Progress receives the live progress line; nil for none.
	Progress io.Writer
	// TTY rewrites the progress line in place; otherwise a line is printed
	// per phase and every 5 s.
	TTY bool
	// WorkerCommand builds the command of worker process i when Procs > 1;
	// default: this executable with the hidden --worker flag.
	WorkerCommand func(i int) *exec.Cmd
}

// workerLink is the coordinator's end of one worker.
type workerLink struct {
	enc    *json.Encoder
	closer io.Closer
	cmd    *exec.Cmd
	done   chan error // in-process worker's return
}

type linkMsg struct {
	i int
	m workerMsg
}

func startWorkers(ctx context.Context, cfg *Config, opts Options, msgs chan<- linkMsg) ([]*workerLink, error) {
	links := make([]*workerLink, cfg.Procs)
	for i := range cfg.Procs {
		var l workerLink
		var out io.Reader
		if cfg.Procs == 1 {
			ctlR, ctlW := io.Pipe()
			outR, outW := io.Pipe()
			l.done = make(chan error, 1)
			go func() {
				err := RunWorker(ctx, ctlR, outW)
				outW.CloseWithError(io.EOF)
				ctlR.Close()
				l.done <- err
			}()
			l.enc, l.closer, out = json.NewEncoder(ctlW), ctlW, outR
		} else {
			var cmd *exec.Cmd
			if opts.WorkerCommand != nil {
				cmd = opts.WorkerCommand(i)
			} else {
				exe, err := os.Executable()
				if err != nil {
					return links, fmt.Errorf("bench: find own executable for --procs: %w", err)
				}
				cmd = exec.Command(exe, "--worker")
			}
			cmd.Stderr = os.Stderr
			stdin, err := cmd.StdinPipe()
			if err != nil {
				return links, err
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				return links, err
			}
			if err := cmd.Start(); err != nil {
				return links, fmt.Errorf("bench: start worker %d: %w", i, err)
			}
			l.cmd, l.enc, l.closer, out = cmd, json.NewEncoder(stdin), stdin, stdout
		}
		links[i] = &l
		go func() {
			dec := json.NewDecoder(bufio.NewReaderSize(out, 64<<10))
			for {
				var m workerMsg
				if err := dec.Decode(&m); err != nil {
					msg := "worker exited"
					if !errors.Is(err, io.EOF) {
						msg = "worker stream: " + err.Error()
					}
					msgs <- linkMsg{i, workerMsg{Type: "exit", Error: msg}}
					return
				}
				msgs <- linkMsg{i, m}
			}
		}()
		cm := ctlMsg{Op: "config", Worker: i, Procs: cfg.Procs, Config: cfg, Secret: cfg.JWTSecret, APIKey: cfg.APIKey}
		if err := l.enc.Encode(cm); err != nil {
			return links, fmt.Errorf("bench: configure worker %d: %w", i, err)
		}
	}
	return links, nil
}

func stopWorkers(links []*workerLink) {
	for _, l := range links {
		if l == nil {
			continue
		}
		_ = l.closer.Close()
		if l.cmd != nil {
			done := make(chan struct{})
			go func() { _ = l.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = l.cmd.Process.Kill()
				<-done
			}
		} else if l.done != nil {
			select {
			case <-l.done:
			case <-time.After(20 * time.Second):
			}
		}
	}
}

// coordinator state of one run.
type coordinator struct {
	cfg     *Config
	opts    Options
	probes  []serverProbe
	client  *http.Client
	res     *Result
	latest  []tickData
	started time.Time

	// series
	lastPoint    time.Time
	prevSent     int64
	prevRecv     int64
	prevGenCPU   float64
	prevSrvCPU   float64
	interval     Histogram
	lastProgress time.Time
	progressLen  int
}

// Run runs one scenario and returns what it measured. The error is ErrLoss
// or ErrFailed (wrapped, with the reasons) when the run failed; the Result
// is filled in either case, so a failed run still reports. Other errors mean
// the run could not start.
func Run(ctx context.Context, cfg Config, opts Options) (*Result, error) {
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline.D())
	defer cancel()
	co := &coordinator{cfg: &cfg, opts: opts, probes: probes(&cfg), client: &http.Client{Timeout: 2 * time.Second},
		latest: make([]tickData, cfg.Procs), started: time.Now()}
	res := &Result{Scenario: cfg.Scenario, Config: cfg, Started: co.started, Machine: thisMachine()}
	co.res = res

	if cfg.Scenario == ScenarioRTM {
		if err := registerProfiles(ctx, &cfg); err != nil {
			return nil, err
		}
		if err := waitUpstream(ctx, &cfg, 15*time.Second); err != nil {
			return nil, err
		}
	}
	base := sampleAll(ctx, co.probes, co.client)
	coordCPU0 := selfCPU()

	msgs := make(chan linkMsg, 64*cfg.Procs)
	wctx, wcancel := context.WithCancel(context.Background()) // in-process worker: outlives ctx to report
	defer wcancel()
	links, err := startWorkers(wctx, &cfg, opts, msgs)
	defer stopWorkers(links)
	if err != nil {
		return nil, err
	}
	co.phase(fmt.Sprintf("connecting %d connections to %s (%d worker%s, %s reader)", cfg.Conns,
		strings.Join(cfg.Targets, ","), cfg.Procs, plural(cfg.Procs), cfg.IO))

	var (
		joined    = make([]int32, cfg.groups())
		ready     = 0
		results   = make([]*workerResult, cfg.Procs)
		nResults  = 0
		startAt   time.Time
		endAt     time.Time
		held      []serverSample
		startCPU  = make([]float64, cfg.Procs)
		coordCPU1 float64
		stopSent  bool
		stopAt    time.Time
		end       []serverSample
		failures  []string
		phase     = "connect"
		tick      = time.NewTicker(250 * time.Millisecond)
		exited    = make([]bool, cfg.Procs)
	)
	defer tick.Stop()
	sendAll := func(m ctlMsg) {
		for i, l := range links {
			if !exited[i] {
				_ = l.enc.Encode(m)
			}
		}
	}
	stop := func(why string) {
		if stopSent {
			return
		}
		stopSent = true
		stopAt = time.Now()
		end = sampleAll(context.Background(), co.probes, co.client)
		if why != "" {
			co.phase(why)
		}
		sendAll(ctlMsg{Op: "stop"})
	}
	var resultsDeadline <-chan time.Time
	for nResults < cfg.Procs {
		select {
		case lm := <-msgs:
			switch lm.m.Type {
			case "tick":
				co.latest[lm.i] = *lm.m.Tick
				if lat := lm.m.Tick.Lat; lat != nil {
					co.interval.Merge(lat.histogram())
				}
			case "ready":
				ready++
				for g, n := range lm.m.Joined {
					if g < len(joined) {
						joined[g] += n
					}
				}
				if ready == cfg.Procs && phase == "connect" {
					held = sampleAll(ctx, co.probes, co.client)
					startAt = time.Now().Add(300 * time.Millisecond)
					endAt = startAt.Add(cfg.Duration.D())
					for i := range startCPU {
						startCPU[i] = co.latest[i].CPU
					}
					coordCPU1 = selfCPU()
					phase = "load"
					var open int64
					for _, t := range co.latest {
						open += t.Open
					}
					co.phase(fmt.Sprintf("connected; %s for %s", describeLoad(&cfg), cfg.Duration.D()))
					sendAll(ctlMsg{Op: "start", StartAt: startAt.UnixNano(), Joined: joined})
				}
			case "result":
				if results[lm.i] == nil {
					results[lm.i] = lm.m.Result
					nResults++
				}
			case "fatal":
				failures = append(failures, fmt.Sprintf("worker %d: %s", lm.i, lm.m.Error))
				stop("")
			case "exit":
				if !exited[lm.i] {
					exited[lm.i] = true
					if results[lm.i] == nil {
						failures = append(failures, fmt.Sprintf("worker %d: %s before reporting", lm.i, lm.m.Error))
						nResults++
						stop("")
					}
				}
			}
		case now := <-tick.C:
			co.progress(now, startAt)
			switch {
			case stopSent:
				if resultsDeadline == nil {
					resultsDeadline = time.After(60 * time.Second)
				}
			case phase == "load" && !now.Before(endAt) && cfg.Scenario == ScenarioIdle:
				stop("hold over")
			case phase == "load" && cfg.Scenario == ScenarioReconnect:
				var dropped, back int64
				for _, t := range co.latest {
					dropped += t.Dropped
					back += t.Back
				}
				if now.After(startAt.Add(time.Second)) && dropped > 0 && back == dropped {
					stop(fmt.Sprintf("all %d back", back))
				} else if now.After(startAt.Add(cfg.ReconnectTimeout.D() + time.Second)) {
					stop(fmt.Sprintf("reconnect timeout: %d of %d back", back, dropped))
				}
			case phase == "load" && !now.Before(endAt):
				phase = "drain"
				co.phase(fmt.Sprintf("sending done; draining (at most %s)", cfg.Drain.D()))
				fallthrough
			case phase == "drain":
				var exp, recv int64
				fresh := true
				for _, t := range co.latest {
					exp += t.Expected
					recv += t.Received
					fresh = fresh && t.At > endAt.UnixNano()
				}
				if fresh && recv >= exp {
					stop("all delivered")
				} else if now.After(endAt.Add(cfg.Drain.D())) {
					stop(fmt.Sprintf("drain timeout: %d of %d delivered", recv, exp))
				}
			}
		case <-ctx.Done():
			if !stopSent {
				why := fmt.Sprintf("run deadline of %s reached (phase %s)", cfg.Deadline.D(), phase)
				if errors.Is(ctx.Err(), context.Canceled) {
					why = "interrupted (phase " + phase + ")"
				}
				failures = append(failures, why)
				stop(why)
				resultsDeadline = time.After(30 * time.Second)
			}
			ctx = context.Background()
		case <-resultsDeadline:
			failures = append(failures, "workers did not report within 60s of stop")
			nResults = cfg.Procs
		}
	}
	co.endProgress()
	if end == nil {
		end = sampleAll(context.Background(), co.probes, co.client)
	}
	if stopAt.IsZero() {
		stopAt = time.Now()
	}
	coordCPU2 := selfCPU()
	co.finish(results, base, held, end, startAt, stopAt, startCPU, coordCPU0, coordCPU1, coordCPU2, joined)
	res.Failures = append(failures, res.Failures...)
	res.OK = len(res.Failures) == 0
	res.Elapsed = time.Since(co.started).Seconds()
	if !res.OK {
		kind := ErrFailed
		if res.Load.Lost > 0 {
			kind = ErrLoss
		}
		return res, fmt.Errorf("%w: %s", kind, strings.Join(res.Failures, "; "))
	}
	return res, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func describeLoad(cfg *Config) string {
	switch cfg.Scenario {
	case ScenarioIdle:
		return "holding"
	case ScenarioReconnect:
		return fmt.Sprintf("dropping %.0f%% and reconnecting", cfg.ReconnectFraction*100)
	case ScenarioFanout:
		return fmt.Sprintf("one sender at %g msg/s to %d members (%g deliveries/s)", cfg.Rate, cfg.ChatSize, cfg.Rate*float64(cfg.ChatSize))
	case ScenarioTyping:
		return fmt.Sprintf("%g typing events/s in chats of %d", cfg.Rate, cfg.ChatSize)
	case ScenarioRTM:
		return fmt.Sprintf("%g RTM events/s over %d profiles", cfg.Rate, cfg.Profiles)
	}
	return fmt.Sprintf("%g msg/s in chats of %d", cfg.Rate, cfg.ChatSize)
}

// phase reports a phase change on its own line.
func (co *coordinator) phase(s string) {
	if co.opts.Progress == nil {
		return
	}
	co.endProgress()
	fmt.Fprintf(co.opts.Progress, "bench %s: %s\n", co.cfg.Scenario, s)
}

func (co *coordinator) endProgress() {
	if co.opts.TTY && co.progressLen > 0 && co.opts.Progress != nil {
		fmt.Fprint(co.opts.Progress, "\r\033[K")
		co.progressLen = 0
	}
}

// progress adds a series point every second and prints the live line.
func (co *coordinator) progress(now, startAt time.Time) {
	if now.Sub(co.lastPoint) < time.Second {
		return
	}
	var sum tickData
	var genCPU float64
	var errs int64
	for _, t := range co.latest {
		sum.Open += t.Open
		sum.Attempts += t.Attempts
		sum.ConnectFail += t.ConnectFail
		sum.Sent += t.Sent
		sum.Received += t.Received
		sum.Expected += t.Expected
		genCPU += t.CPU
		for _, v := range t.Errors {
			errs += v
		}
	}
	if co.cfg.Procs > 1 {
		genCPU += selfCPU()
	}
	var srvRSS int64
	var srvCPU float64
	for _, s := range sampleAll(context.Background(), co.probes, co.client) {
		srvRSS += max(s.RSS, 0)
		srvCPU += max(s.CPU, 0)
	}
	dt := now.Sub(co.lastPoint).Seconds()
	first := co.lastPoint.IsZero()
	p := Point{T: now.Sub(co.started).Seconds(), Open: sum.Open, ServerRSS: srvRSS}
	if !startAt.IsZero() && co.res.LoadStart == 0 {
		co.res.LoadStart = startAt.Sub(co.started).Seconds()
	}
	if !first {
		p.SentPerSec = float64(sum.Sent-co.prevSent) / dt
		p.RecvPerSec = float64(sum.Received-co.prevRecv) / dt
		p.GenCPU = (genCPU - co.prevGenCPU) / dt * 100
		p.ServerCPU = (srvCPU - co.prevSrvCPU) / dt * 100
	}
	p.Count = co.interval.Count()
	p.P50, p.P90, p.P99, p.Max = ms(co.interval.Quantile(.5)), ms(co.interval.Quantile(.9)), ms(co.interval.Quantile(.99)), ms(co.interval.Max())
	co.interval.Reset()
	co.prevSent, co.prevRecv, co.prevGenCPU, co.prevSrvCPU, co.lastPoint = sum.Sent, sum.Received, genCPU, srvCPU, now
	if !first {
		co.res.Series = append(co.res.Series, p)
	}
	if co.opts.Progress == nil {
		return
	}
	phaseT := progressSeconds(now, co.started, startAt)
	line := fmt.Sprintf("[%s %5.1fs] conns %d/%d (fail %d)  sent %d (%s/s)  recv %d/%d (%s/s)  p99 %.1fms  errors %d",
		co.cfg.Scenario, phaseT, sum.Open, co.cfg.Conns, sum.ConnectFail, sum.Sent, si(p.SentPerSec), sum.Received, sum.Expected, si(p.RecvPerSec), p.P99, errs)
	if co.opts.TTY {
		fmt.Fprint(co.opts.Progress, "\r\033[K"+line)
		co.progressLen = len(line)
	} else if now.Sub(co.lastProgress) >= 5*time.Second {
		fmt.Fprintln(co.opts.Progress, line)
		co.lastProgress = now
	}
}

// progressSeconds is the time the progress line shows: since the load
// started, or since the run started while connecting, the load's start
// being scheduled a moment ahead (never negative).
func progressSeconds(now, started, startAt time.Time) float64 {
	if !startAt.IsZero() && !now.Before(startAt) {
		return now.Sub(startAt).Seconds()
	}
	return max(now.Sub(started).Seconds(), 0)
}

// si prints a rate with a k/M suffix.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// finish turns the workers' reports into the Result.
func (co *coordinator) finish(results []*workerResult, base, held, end []serverSample, startAt, stopAt time.Time,
	startCPU []float64, coordCPU0, coordCPU1, coordCPU2 float64, joined []int32) {
	cfg, res := co.cfg, co.res
	var lat, clat, rlat Histogram
	var sum tickData
	sum.Errors = map[string]int64{}
	var genCPU float64
	var connStart, connEnd, dropAt, allBack int64
	allBackKnown := true
	var genRSS int64
	for i, r := range results {
		if r == nil {
			allBackKnown = false
			continue
		}
		f := r.Final
		lat.Merge(r.Lat.histogram())
		clat.Merge(r.ConnectLat.histogram())
		if r.ReconnectLat != nil {
			rlat.Merge(r.ReconnectLat.histogram())
		}
		sum.Attempts += f.Attempts
		sum.ConnectOK += f.ConnectOK
		sum.ConnectFail += f.ConnectFail
		sum.Sent += f.Sent
		sum.SendFailed += f.SendFailed
		sum.Expected += f.Expected
		sum.Received += f.Received
		sum.Dups += f.Dups
		sum.OOO += f.OOO
		sum.Misrouted += f.Misrouted
		sum.Malformed += f.Malformed
		sum.Invalid += f.Invalid
		sum.Disconnects += f.Disconnects
		sum.Dropped += f.Dropped
		sum.Back += f.Back
		for k, v := range f.Errors {
			sum.Errors[k] += v
		}
		if f.FirstSend != 0 && (sum.FirstSend == 0 || f.FirstSend < sum.FirstSend) {
			sum.FirstSend = f.FirstSend
		}
		sum.LastSend = max(sum.LastSend, f.LastSend)
		sum.LastRecv = max(sum.LastRecv, f.LastRecv)
		genCPU += f.CPU - startCPU[i]
		genRSS += f.RSS
		if connStart == 0 || r.ConnectStart < connStart {
			connStart = r.ConnectStart
		}
		connEnd = max(connEnd, r.ConnectEnd)
		if r.DropAt != 0 && (dropAt == 0 || r.DropAt < dropAt) {
			dropAt = r.DropAt
		}
		if f.Dropped > 0 {
			if r.AllBackAt == 0 {
				allBackKnown = false
			}
			allBack = max(allBack, r.AllBackAt)
		}
	}
	if cfg.Procs > 1 {
		genCPU += coordCPU2 - coordCPU1
	}
	_ = coordCPU0
	var heldConns int64
	for _, n := range joined {
		heldConns += int64(n)
	}
	if cfg.Scenario == ScenarioRTM {
		heldConns = sum.ConnectOK
	}

	// Connect phase.
	res.Connect = ConnectResult{Attempted: sum.Attempts, OK: sum.ConnectOK, Failed: sum.ConnectFail, Held: heldConns,
		Latency: summarize(&clat), Errors: map[string]int64{}}
	if connEnd > connStart {
		res.Connect.Seconds = float64(connEnd-connStart) / 1e9
		res.Connect.PerSecond = float64(sum.ConnectOK) / res.Connect.Seconds
	}
	for k, v := range sum.Errors {
		if !strings.HasPrefix(k, "event_error:") && !strings.HasPrefix(k, "disconnect:") && !strings.HasPrefix(k, "send:") &&
			!strings.HasPrefix(k, "reconnect:") && !strings.HasPrefix(k, "rtm_emit:") && k != "server_disconnect" && k != "connect_error" {
			res.Connect.Errors[k] = v
		}
	}
	if cfg.Scenario == ScenarioReconnect {
		res.Connect.Attempted -= sum.Back + reconnectFailures(sum.Errors)
		res.Connect.OK -= sum.Back
	}

	// Load.
	l := &res.Load
	l.Sent, l.SendFailed, l.Expected, l.Received = sum.Sent, sum.SendFailed, sum.Expected, sum.Received
	l.Duplicates, l.OutOfOrder, l.Misrouted, l.Malformed, l.Invalid = sum.Dups, sum.OOO, sum.Misrouted, sum.Malformed, sum.Invalid
	l.Disconnects = sum.Disconnects
	l.Errors = sum.Errors
	switch cfg.Scenario {
	case ScenarioFanout, ScenarioChat, ScenarioTyping, ScenarioRTM:
		l.TargetRate = cfg.Rate
		if sum.LastSend > sum.FirstSend {
			l.Seconds = float64(sum.LastSend-sum.FirstSend) / 1e9
			l.SendRate = float64(sum.Sent-1) / l.Seconds
		}
		if sum.LastRecv > sum.FirstSend {
			l.DeliveriesPerSec = float64(sum.Received) / (float64(sum.LastRecv-sum.FirstSend) / 1e9)
		}
		if sum.LastRecv > sum.LastSend {
			l.DrainSeconds = float64(sum.LastRecv-sum.LastSend) / 1e9
		}
		l.Lost = max(sum.Expected-sum.Received, 0)
		if sum.Expected > 0 {
			l.LostPercent = float64(l.Lost) / float64(sum.Expected) * 100
		}
	}
	res.Latency = summarize(&lat)
	res.Quantiles = quantiles(&lat)

	if cfg.Scenario == ScenarioReconnect {
		rr := &ReconnectResult{Dropped: sum.Dropped, Back: sum.Back, AllBackSeconds: -1, Latency: summarize(&rlat)}
		if allBackKnown && sum.Dropped > 0 && sum.Back == sum.Dropped && allBack > dropAt {
			rr.AllBackSeconds = float64(allBack-dropAt) / 1e9
		}
		res.Reconnect = rr
	}

	// Generator.
	res.Generator = GeneratorResult{Procs: cfg.Procs, IO: cfg.IO, CPUSeconds: genCPU, RSSBytes: genRSS}
	if sum.Received > 0 {
		res.Generator.CPUPerMessageNs = genCPU / float64(sum.Received) * 1e9
	}
	if heldConns > 0 {
		res.Generator.RSSPerConn = float64(genRSS) / float64(heldConns)
	}

	// Servers.
	co.servers(base, held, end, startAt, stopAt, heldConns, sum.Received)

	// Verdict.
	var fail, warn []string
	if sum.ConnectFail > 0 && cfg.Scenario != ScenarioReconnect {
		fail = append(fail, fmt.Sprintf("%d of %d connections failed (%s)", sum.ConnectFail, sum.Attempts, topErrors(res.Connect.Errors)))
	}
	if l.Lost > 0 {
		fail = append(fail, fmt.Sprintf("LOST %d of %d deliveries (%.3f%%) %s after the last send", l.Lost, l.Expected, l.LostPercent, cfg.Drain.D()))
	}
	if l.Duplicates > 0 {
		fail = append(fail, fmt.Sprintf("%d duplicate deliveries", l.Duplicates))
	}
	if l.Misrouted > 0 {
		fail = append(fail, fmt.Sprintf("%d deliveries to connections outside the sender's chat", l.Misrouted))
	}
	if l.Malformed > 0 || l.Invalid > 0 {
		fail = append(fail, fmt.Sprintf("%d deliveries without a readable marker, %d with wrong fields", l.Malformed, l.Invalid))
	}
	if l.Disconnects > 0 {
		fail = append(fail, fmt.Sprintf("%d connections lost during the run (%s)", l.Disconnects, topErrors(prefixed(sum.Errors, "disconnect:"))))
	}
	if ev := prefixed(sum.Errors, "event_error:"); len(ev) > 0 {
		fail = append(fail, "the server refused events: "+topErrors(ev))
	}
	if r := res.Reconnect; r != nil && (r.Dropped == 0 || r.Back < r.Dropped) {
		fail = append(fail, fmt.Sprintf("reconnect: %d of %d back within %s", r.Back, r.Dropped, cfg.ReconnectTimeout.D()))
	}
	if l.OutOfOrder > 0 {
		warn = append(warn, fmt.Sprintf("%d deliveries out of order (per sender and receiver)", l.OutOfOrder))
	}
	if l.SendFailed > 0 {
		warn = append(warn, fmt.Sprintf("%d sends failed", l.SendFailed))
	}
	if l.TargetRate > 0 && l.SendRate > 0 && l.SendRate < 0.95*l.TargetRate {
		warn = append(warn, fmt.Sprintf("sent %.0f/s of the %.0f/s asked for (the generator or the server's reading fell behind)", l.SendRate, l.TargetRate))
	}
	res.Failures = append(res.Failures, fail...)
	res.Warnings = append(res.Warnings, warn...)
}

func reconnectFailures(errs map[string]int64) int64 {
	var n int64
	for k, v := range errs {
		if strings.HasPrefix(k, "reconnect:") && k != "reconnect:gave_up" {
			n += v
		}
	}
	return n
}

func prefixed(m map[string]int64, prefix string) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] += v
		}
	}
	return out
}

// topErrors lists the most frequent errors, "http_503 ×12, timeout ×3".
func topErrors(m map[string]int64) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for i, k := range keys {
		if i == 5 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func (co *coordinator) servers(base, held, end []serverSample, startAt, stopAt time.Time, heldConns, received int64) {
	sr := &co.res.Servers
	sr.GoroutinesPerConn = -1
	if len(co.probes) == 0 || held == nil {
		return
	}
	var memDelta, gorDelta int64
	gorKnown := true
	window := stopAt.Sub(startAt).Seconds()
	for i, p := range co.probes {
		s := ServerResult{Name: p.name, RSSBase: base[i].RSS, RSSHeld: held[i].RSS, RSSEnd: end[i].RSS,
			GoroutinesBase: base[i].Goroutines, GoroutinesHeld: held[i].Goroutines, Connections: held[i].Connections,
			Version: cmp.Or(held[i].Version, base[i].Version),
			Err:     strings.Join(nonEmpty(base[i].Err, held[i].Err, end[i].Err), "; ")}
		if end[i].CPU >= 0 && held[i].CPU >= 0 {
			s.CPUSeconds = end[i].CPU - held[i].CPU
		}
		memDelta += max(s.RSSHeld-s.RSSBase, 0)
		if s.GoroutinesBase >= 0 && s.GoroutinesHeld >= 0 {
			gorDelta += s.GoroutinesHeld - s.GoroutinesBase
		} else {
			gorKnown = false
		}
		sr.CPUSeconds += s.CPUSeconds
		sr.Each = append(sr.Each, s)
	}
	if heldConns > 0 {
		sr.MemPerConnBytes = float64(memDelta) / float64(heldConns)
		if gorKnown {
			// A few background goroutines come and go: fewer than before is 0.
			sr.GoroutinesPerConn = max(float64(gorDelta), 0) / float64(heldConns)
		}
	}
	if window > 0 {
		sr.CPUPercent = sr.CPUSeconds / window * 100
	}
	if received > 0 {
		sr.CPUPerDeliveryUs = sr.CPUSeconds / float64(received) * 1e6
	}
}

func nonEmpty(ss ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if s != "" && !seen[s] {
			out = append(out, s)
			seen[s] = true
		}
	}
	return out
}
