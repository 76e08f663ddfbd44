package bench

import (
	"bytes"
	"strconv"
)

// A marker is what the generator writes at the start of every message it
// sends, so a receiver can tell when it was sent, by whom and which one it
// is without decoding the event:
//
//	t=<unix nanoseconds>;c=<group>;m=<member>;q=<sequence>;
//
// group is the chat (or RTM profile) index, member the sender's index within
// it, sequence the sender's own counter from 0. Only digits and ';' are
// used, so the marker needs no JSON escaping and survives any server.
type marker struct {
	t      int64 // unix ns, taken just before the send
	group  int64
	member int64
	seq    int64
}

// appendMarker appends the marker text.
func appendMarker(dst []byte, m marker) []byte {
	dst = append(dst, "t="...)
	dst = strconv.AppendInt(dst, m.t, 10)
	dst = append(dst, ";c="...)
	dst = strconv.AppendInt(dst, m.group, 10)
	dst = append(dst, ";m="...)
	dst = strconv.AppendInt(dst, m.member, 10)
	dst = append(dst, ";q="...)
	dst = strconv.AppendInt(dst, m.seq, 10)
	return append(dst, ';')
}

// parseMarker reads a marker at the start of b (b starts with "t=").
func parseMarker(b []byte) (m marker, ok bool) {
	var i int
	if m.t, i, ok = markerField(b, 0, 't'); !ok {
		return m, false
	}
	if m.group, i, ok = markerField(b, i, 'c'); !ok {
		return m, false
	}
	if m.member, i, ok = markerField(b, i, 'm'); !ok {
		return m, false
	}
	m.seq, _, ok = markerField(b, i, 'q')
	return m, ok
}

// markerField reads "<key>=<digits>;" at b[i:].
func markerField(b []byte, i int, key byte) (v int64, next int, ok bool) {
	if len(b)-i < 4 || b[i] != key || b[i+1] != '=' {
		return 0, 0, false
	}
	i += 2
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if i-start >= 19 {
			return 0, 0, false
		}
		v = v*10 + int64(b[i]-'0')
		i++
	}
	if i == start || i >= len(b) || b[i] != ';' {
		return 0, 0, false
	}
	return v, i + 1, true
}

// findMarker finds the marker inside a string field of raw JSON: field is
// the key with its quotes, colon and opening quote, e.g. `"content":"`. A
// byte search, no decoding: ';' appears in no JSON the servers write around
// the content, so the first one is the marker's, whose start is found by
// walking back over the send time's digits; the field name before it is
// then checked.
func findMarker(frame, field []byte) (marker, bool) {
	semi := bytes.IndexByte(frame, ';')
	if semi < 0 {
		return findMarkerSlow(frame, field)
	}
	j := semi
	for j > 0 && frame[j-1] >= '0' && frame[j-1] <= '9' {
		j--
	}
	start := j - 2
	if start < len(field) || frame[start] != 't' || frame[start+1] != '=' || !bytes.Equal(frame[start-len(field):start], field) {
		return findMarkerSlow(frame, field)
	}
	return parseMarker(frame[start:])
}

// findMarkerSlow searches for the field itself (other fields before it held
// a ';').
func findMarkerSlow(frame, field []byte) (marker, bool) {
	i := bytes.Index(frame, field)
	if i < 0 {
		return marker{}, false
	}
	return parseMarker(frame[i+len(field):])
}

// Fields the markers travel in.
var (
	fieldContent = []byte(`"content":"`) // new_message
	fieldText    = []byte(`"text":"`)    // message_toast
	fieldUserID  = []byte(`"userId":"`)  // user_typing
	fieldCode    = []byte(`"code":"`)    // error events and failed acks
	fieldTyping  = []byte(`"isTyping":`) // user_typing
)

// jsonStringAt returns the JSON string value that follows field in b,
// without its quotes and unescaped (the ids and codes read this way hold no
// escapes).
func jsonStringAt(b, field []byte) ([]byte, bool) {
	i := bytes.Index(b, field)
	if i < 0 {
		return nil, false
	}
	rest := b[i+len(field):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil, false
	}
	return rest[:j], true
}
