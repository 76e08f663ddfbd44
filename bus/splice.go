package bus

import (
	"encoding/json"
	"errors"

	"github.com/anchat/realtime/internal/jsonstr"
)

// errNotObject: an OpSend payload must be a JSON object so messageId can be
// spliced into it.
var errNotObject = errors.New("bus: data is not a JSON object")

// SpliceFields returns data (a JSON object) with string fields inserted at the
// front, fields being key, value pairs: SpliceFields(`{"a":1}`, "eventId", "1-0")
// is `{"eventId":"1-0","a":1}`. Keys and values are written as encoding/json
// writes strings (internal/jsonstr). Data that is not an object is returned
// unchanged. The brokers use it to add "messageId" to an OpSend payload, the
// node to add "eventId" to a delivery or a replayed event.
func SpliceFields(data json.RawMessage, fields ...string) json.RawMessage {
	if _, _, ok := splitObject(data); !ok {
		return data
	}
	n := len(data) + 2
	for _, f := range fields {
		n += len(f) + 4
	}
	return AppendSpliced(make([]byte, 0, n), data, fields...)
}

// AppendSpliced appends SpliceFields(data, fields...) to dst and returns the
// extended buffer; with a dst of enough capacity it does not allocate. It
// panics if fields is not a list of key, value pairs.
func AppendSpliced(dst []byte, data json.RawMessage, fields ...string) []byte {
	if len(fields)%2 != 0 {
		panic("bus: AppendSpliced needs key, value pairs")
	}
	body, empty, ok := splitObject(data)
	if !ok {
		return append(dst, data...)
	}
	dst = append(dst, '{')
	for i := 0; i < len(fields); i += 2 {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonstr.Append(dst, fields[i])
		dst = append(dst, ':')
		dst = jsonstr.Append(dst, fields[i+1])
	}
	if !empty && len(fields) > 0 {
		dst = append(dst, ',')
	}
	return append(dst, body...)
}

// splitObject checks that data is a JSON object (after optional leading
// whitespace) and returns what follows its opening brace, and whether the
// object is empty. Only the braces are checked, not the whole document.
func splitObject(data []byte) (body []byte, empty, ok bool) {
	i := 0
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	if i == len(data) || data[i] != '{' {
		return nil, false, false
	}
	body = data[i+1:]
	j := 0
	for j < len(body) && isSpace(body[j]) {
		j++
	}
	return body, j < len(body) && body[j] == '}', true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
