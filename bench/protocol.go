package bench

// The coordinator and its workers speak JSON lines: the coordinator writes
// ctlMsg to a worker's stdin (a pipe in-process), the worker writes workerMsg
// to its stdout.
//
//	coordinator                      worker
//	config ------------------------>  connects its share, joins chats
//	        <------------------------ tick (every 250 ms, from now on)
//	        <------------------------ ready (joined members per group)
//	start (time, all joins) ------->  sends until start + duration
//	stop -------------------------->  stops sending
//	        <------------------------ result; closes its connections, exits

// ctlMsg is a coordinator to worker message.
type ctlMsg struct {
	Op      string  `json:"op"` // config, start, stop
	Worker  int     `json:"worker,omitempty"`
	Procs   int     `json:"procs,omitempty"`
	Config  *Config `json:"config,omitempty"`
	Secret  string  `json:"secret,omitempty"` // Config.JWTSecret (not marshalled with Config)
	APIKey  string  `json:"apiKey,omitempty"`
	StartAt int64   `json:"startAt,omitempty"` // unix ns the load starts
	Joined  []int32 `json:"joined,omitempty"`  // ready members per group, all workers
}

// workerMsg is a worker to coordinator message.
type workerMsg struct {
	Type   string        `json:"type"` // tick, ready, result, fatal
	Tick   *tickData     `json:"tick,omitempty"`
	Joined []int32       `json:"joined,omitempty"` // ready: this worker's ready members per group
	Result *workerResult `json:"result,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// tickData are a worker's figures: cumulative counters, and the latencies
// recorded since its previous tick.
type tickData struct {
	At          int64            `json:"at"`
	Open        int64            `json:"open"` // ready connections now
	Attempts    int64            `json:"attempts"`
	ConnectOK   int64            `json:"connectOK"`
	ConnectFail int64            `json:"connectFail"`
	Sent        int64            `json:"sent"`
	SendFailed  int64            `json:"sendFailed"`
	Expected    int64            `json:"expected"`
	Received    int64            `json:"received"`
	Dups        int64            `json:"dups"`
	OOO         int64            `json:"ooo"`
	Misrouted   int64            `json:"misrouted"`
	Malformed   int64            `json:"malformed"`
	Invalid     int64            `json:"invalid"`
	Frames      int64            `json:"frames"`
	Disconnects int64            `json:"disconnects"` // connections lost after being ready (not dropped on purpose)
	Dropped     int64            `json:"dropped"`     // reconnect: dropped on purpose
	Back        int64            `json:"back"`        // reconnect: dropped and ready again
	FirstSend   int64            `json:"firstSend"`   // unix ns
	LastSend    int64            `json:"lastSend"`
	LastRecv    int64            `json:"lastRecv"`
	Errors      map[string]int64 `json:"errors,omitempty"`
	Lat         *histJSON        `json:"lat,omitempty"`
	CPU         float64          `json:"cpu"` // process CPU seconds (user+system)
	RSS         int64            `json:"rss"` // process resident bytes
}

// workerResult is a worker's final report.
type workerResult struct {
	Final        tickData  `json:"final"`
	Lat          *histJSON `json:"lat"`
	ConnectLat   *histJSON `json:"connectLat"`
	ReconnectLat *histJSON `json:"reconnectLat,omitempty"`
	ConnectStart int64     `json:"connectStart"`
	ConnectEnd   int64     `json:"connectEnd"`
	DropAt       int64     `json:"dropAt,omitempty"`
	AllBackAt    int64     `json:"allBackAt,omitempty"`
}
