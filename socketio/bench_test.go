package socketio

import (
	"strings"
	"testing"
)

// sendMessageFrame is a send_message emit with an ack, as socket.io-client
// writes it.
const sendMessageFrame = `42/messenger,17["send_message",{"chatId":"chat_8f14e45fceea167a","content":"Hey! Are we still on for the review at 3pm? I pushed the \"final\" deck.","messageType":"TEXT","tempId":"tmp_1718033112345_42","replyTo":"msg_01HZX3K9Q2","attachments":[{"url":"https://files.example.com/u/deck.pdf","name":"deck.pdf","mimeType":"application/pdf","size":482113}]}]`

// newMessagePayload is a new_message payload of about 300 bytes.
const newMessagePayload = `{"eventId":"1718033112345-0","messageId":"msg_01HZX3KA7TQ","chatId":"chat_8f14e45fceea167a","senderId":"user_42","senderName":"Ada Lovelace","content":"Hey! Are we still on for the review at 3pm? I pushed the final deck.","messageType":"TEXT","attachments":[],"tempId":"tmp_1718033112345_42","createdAt":"2024-06-10T15:25:12.345Z"}`

func BenchmarkParseEventFrame(b *testing.B) {
	frame := []byte(sendMessageFrame)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		typ, data, err := ParseEngine(frame)
		if err != nil || typ != EngineMessage {
			b.Fatal(typ, err)
		}
		p, err := ParsePacket(data)
		if err != nil || p.Type != Event {
			b.Fatal(err)
		}
		name, arg0, _, err := ParseEvent(p.Data)
		if err != nil || len(name) == 0 || len(arg0) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseEventFrameLong parses a send_message at the 4,000-character
// content limit.
func BenchmarkParseEventFrameLong(b *testing.B) {
	frame := []byte(`42/messenger,17["send_message",{"chatId":"c1","content":"` +
		strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing. ", 76) + `","messageType":"TEXT","tempId":"t1"}]`)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		_, data, err := ParseEngine(frame)
		if err != nil {
			b.Fatal(err)
		}
		p, err := ParsePacket(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := ParseEvent(p.Data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	payload := []byte(newMessagePayload)
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(AppendEvent(nil, "/messenger", -1, "new_message", payload))))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEvent(buf[:0], "/messenger", -1, "new_message", payload)
	}
}
