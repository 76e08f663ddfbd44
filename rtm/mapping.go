package rtm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Upstream event types (DESIGN.md "RTM upstream").
const (
	TypeMessageSent        = "MessageSent"
	TypeMessageRead        = "MessageRead"
	TypeDialogLimitChanged = "DialogLimitChanged"
)

// Client events the bridge publishes on profile channels (PROTOCOL.md).
const (
	EventMessageToast       = "message_toast"
	EventMessageRead        = "message_read"
	EventDialogLimitChanged = "dialog_limit_changed"
	EventStatus             = "rtm_status"
)

// Upstream data objects; doc.go lists their fields.
type (
	messageSentData struct {
		DialogID  flexString `json:"dialogId"`
		MessageID flexString `json:"messageId"`
		FromID    flexString `json:"fromId"`
		Text      string     `json:"text"`
		CreatedAt flexTime   `json:"createdAt"`
		Outgoing  bool       `json:"outgoing"`
	}
	messageReadData struct {
		DialogID  flexString `json:"dialogId"`
		MessageID flexString `json:"messageId"`
		ReadAt    flexTime   `json:"readAt"`
	}
	dialogLimitData struct {
		DialogID  flexString `json:"dialogId"`
		Limit     *int64     `json:"limit"`
		Remaining *int64     `json:"remaining"`
	}
)

// Client payloads (PROTOCOL.md section 2, server events).
type (
	toastPayload struct {
		ProfileID string `json:"profileId"`
		DialogID  string `json:"dialogId"`
		MessageID string `json:"messageId"`
		FromID    string `json:"fromId"`
		Text      string `json:"text"`
		CreatedAt string `json:"createdAt"`
	}
	readPayload struct {
		ProfileID string `json:"profileId"`
		DialogID  string `json:"dialogId"`
		MessageID string `json:"messageId"`
		ReadAt    string `json:"readAt"`
	}
	limitPayload struct {
		ProfileID string `json:"profileId"`
		DialogID  string `json:"dialogId"`
		Limit     int64  `json:"limit"`
		Remaining int64  `json:"remaining"`
	}
	statusPayload struct {
		ProfileID string `json:"profileId"`
		State     State  `json:"state"`
		RetryInMs *int64 `json:"retryInMs,omitempty"`
	}
)

// Why a frame is not published.
var (
	errMalformed   = errors.New("malformed frame")
	errUnknownType = errors.New("unknown event type")
	errOwnMessage  = errors.New("message sent by the profile itself")
)

// mapped is one frame turned into a client event.
type mapped struct {
	id    string // upstream event id, for deduplication
	event string
	data  json.RawMessage
}

// mapFrame parses one upstream frame received on profileID's connection and
// maps it. now stamps a missing createdAt/readAt. The error wraps
// errMalformed, errUnknownType or errOwnMessage.
func mapFrame(profileID string, raw []byte, now time.Time) (mapped, error) {
	var f struct {
		ID        flexString      `json:"id"`
		Type      string          `json:"type"`
		ProfileID string          `json:"profileId"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return mapped{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if f.ID == "" {
		return mapped{}, fmt.Errorf("%w: no id", errMalformed)
	}
	if f.ProfileID != "" && f.ProfileID != profileID {
		return mapped{}, fmt.Errorf("%w: profileId %q on the connection of %q", errMalformed, f.ProfileID, profileID)
	}
	m := mapped{id: string(f.ID)}
	if len(bytes.TrimSpace(f.Data)) == 0 || bytes.TrimSpace(f.Data)[0] != '{' {
		if f.Type != TypeMessageSent && f.Type != TypeMessageRead && f.Type != TypeDialogLimitChanged {
			return m, fmt.Errorf("%w: %q", errUnknownType, f.Type)
		}
		return m, fmt.Errorf("%w: data must be an object", errMalformed)
	}
	var (
		payload any
		err     error
	)
	switch f.Type {
	case TypeMessageSent:
		var d messageSentData
		if err = json.Unmarshal(f.Data, &d); err != nil {
			break
		}
		if d.DialogID == "" || d.MessageID == "" {
			err = errors.New("dialogId and messageId are required")
			break
		}
		if d.Outgoing || string(d.FromID) == profileID {
			return m, errOwnMessage
		}
		m.event = EventMessageToast
		payload = toastPayload{ProfileID: profileID, DialogID: string(d.DialogID), MessageID: string(d.MessageID),
			FromID: string(d.FromID), Text: d.Text, CreatedAt: d.CreatedAt.or(now)}
	case TypeMessageRead:
		var d messageReadData
		if err = json.Unmarshal(f.Data, &d); err != nil {
			break
		}
		if d.DialogID == "" || d.MessageID == "" {
			err = errors.New("dialogId and messageId are required")
			break
		}
		m.event = EventMessageRead
		payload = readPayload{ProfileID: profileID, DialogID: string(d.DialogID), MessageID: string(d.MessageID),
			ReadAt: d.ReadAt.or(now)}
	case TypeDialogLimitChanged:
		var d dialogLimitData
		if err = json.Unmarshal(f.Data, &d); err != nil {
			break
		}
		if d.DialogID == "" || d.Limit == nil || d.Remaining == nil {
			err = errors.New("dialogId, limit and remaining are required")
			break
		}
		m.event = EventDialogLimitChanged
		payload = limitPayload{ProfileID: profileID, DialogID: string(d.DialogID), Limit: *d.Limit, Remaining: *d.Remaining}
	default:
		return m, fmt.Errorf("%w: %q", errUnknownType, f.Type)
	}
	if err != nil {
		return m, fmt.Errorf("%w: %s: %v", errMalformed, f.Type, err)
	}
	m.data, err = json.Marshal(payload)
	if err != nil {
		return m, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return m, nil
}

// flexString accepts a JSON string or number (kept as its decimal text).
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	return unmarshalFlex(b, (*string)(s), func(b []byte) (string, error) {
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return "", fmt.Errorf("want a string or a number, got %s", b)
		}
		return n.String(), nil
	})
}

// flexTime accepts an RFC 3339 string (kept as given) or Unix milliseconds.
type flexTime string

func (t *flexTime) UnmarshalJSON(b []byte) error {
	return unmarshalFlex(b, (*string)(t), func(b []byte) (string, error) {
		ms, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return "", fmt.Errorf("want an RFC 3339 string or Unix milliseconds, got %s", b)
		}
		return time.UnixMilli(ms).UTC().Format(timeFormat), nil
	})
}

// unmarshalFlex sets *dst from the JSON value b: "" for null (or nothing),
// the text of a string as given, and what other turns anything else into.
func unmarshalFlex(b []byte, dst *string, other func([]byte) (string, error)) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*dst = ""
		return nil
	case b[0] == '"':
		return json.Unmarshal(b, dst)
	}
	v, err := other(b)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// or returns t, or now when t is empty.
func (t flexTime) or(now time.Time) string {
	if t == "" {
		return now.UTC().Format(timeFormat)
	}
	return string(t)
}

// timeFormat is RFC 3339 with milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// Envelope: every profile-channel publication is
//
//	{"term":<fencing number>,"data":<client payload>}
//
// so receivers can drop a stale leader's late events.
const envPrefix = `{"term":`

// wrap builds the envelope around a client payload.
func wrap(term int64, payload []byte) json.RawMessage {
	b := make([]byte, 0, len(envPrefix)+20+len(`,"data":`)+len(payload)+1)
	b = append(b, envPrefix...)
	b = strconv.AppendInt(b, term, 10)
	b = append(b, `,"data":`...)
	b = append(b, payload...)
	return append(b, '}')
}

// unwrap parses an envelope without allocating when it is in the form wrap
// writes; other well-formed JSON objects with the same fields are accepted
// through encoding/json.
func unwrap(b []byte) (term int64, payload []byte, ok bool) {
	if rest, found := bytes.CutPrefix(b, []byte(envPrefix)); found {
		var n int64
		i := 0
		for ; i < len(rest) && i < 18 && rest[i] >= '0' && rest[i] <= '9'; i++ {
			n = n*10 + int64(rest[i]-'0')
		}
		if d, found := bytes.CutPrefix(rest[i:], []byte(`,"data":`)); i > 0 && found &&
			len(d) >= 3 && d[0] == '{' && d[len(d)-2] == '}' && d[len(d)-1] == '}' {
			return n, d[:len(d)-1], true
		}
	}
	var e struct {
		Term *int64          `json:"term"`
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(b, &e) != nil || e.Term == nil || len(e.Data) == 0 || e.Data[0] != '{' {
		return 0, nil, false
	}
	return *e.Term, e.Data, true
}
