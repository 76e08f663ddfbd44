package bus

import "strconv"

// An event id is a Redis stream id, "<unix-ms>-<seq>": the millisecond at which
// the event was appended and a sequence number breaking ties within that
// millisecond. Ids of one chat strictly increase. Both brokers issue them.

// eventID is a parsed event id.
type eventID struct {
	ms, seq uint64
}

// parseID parses "<ms>-<seq>" (decimal, no sign, no spaces).
func parseID(s string) (eventID, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			continue
		}
		if i == 0 || i == len(s)-1 {
			return eventID{}, false
		}
		ms, ok := parseUint(s[:i])
		if !ok {
			return eventID{}, false
		}
		seq, ok := parseUint(s[i+1:])
		if !ok {
			return eventID{}, false
		}
		return eventID{ms: ms, seq: seq}, true
	}
	return eventID{}, false
}

// parseUint accepts 1 to 20 decimal digits and nothing else (no sign, no
// spaces, no underscores).
func parseUint(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

func (id eventID) String() string {
	var b [41]byte
	return string(id.append(b[:0]))
}

func (id eventID) append(dst []byte) []byte {
	dst = strconv.AppendUint(dst, id.ms, 10)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, id.seq, 10)
}

func (id eventID) compare(o eventID) int {
	switch {
	case id.ms < o.ms:
		return -1
	case id.ms > o.ms:
		return 1
	case id.seq < o.seq:
		return -1
	case id.seq > o.seq:
		return 1
	}
	return 0
}

// next returns the id to issue after id at wall-clock millisecond ms: ms-0 if
// the clock moved past id, otherwise id's millisecond with the next sequence
// number (the rule Redis applies to XADD *).
func (id eventID) next(ms uint64) eventID {
	if ms > id.ms {
		return eventID{ms: ms}
	}
	return eventID{ms: id.ms, seq: id.seq + 1}
}

// ValidID reports whether s is a well-formed event id ("<ms>-<seq>").
func ValidID(s string) bool {
	_, ok := parseID(s)
	return ok
}

// CompareIDs orders event ids numerically by millisecond, then sequence: it
// returns -1, 0 or +1 as a is before, equal to or after b. A malformed id
// (including "") sorts before every well-formed one; two malformed ids compare
// equal.
func CompareIDs(a, b string) int {
	ia, oka := parseID(a)
	ib, okb := parseID(b)
	switch {
	case !oka && !okb:
		return 0
	case !oka:
		return -1
	case !okb:
		return 1
	}
	return ia.compare(ib)
}
