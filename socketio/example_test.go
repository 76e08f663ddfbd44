package socketio_test

import (
	"fmt"
	"time"

	"github.com/anchat/realtime/socketio"
)

func ExampleParsePacket() {
	frame := []byte(`42/messenger,0["send_message",{"chatId":"c1","content":"hi"}]`)

	typ, data, err := socketio.ParseEngine(frame)
	if err != nil || typ != socketio.EngineMessage {
		return
	}
	p, err := socketio.ParsePacket(data)
	if err != nil {
		return
	}
	name, arg0, nargs, err := socketio.ParseEvent(p.Data)
	if err != nil {
		return
	}
	fmt.Printf("%s %s ack=%d %s %s (%d arg)\n", p.Type, p.Namespace, p.ID, name, arg0, nargs)
	// Output: EVENT /messenger ack=0 send_message {"chatId":"c1","content":"hi"} (1 arg)
}

func ExampleAppendEvent() {
	buf := make([]byte, 0, 512)
	buf = socketio.AppendEvent(buf[:0], "/messenger", -1, "user_typing", []byte(`{"chatId":"c1","userId":"u1","isTyping":true}`))
	fmt.Println(string(buf))
	buf = socketio.AppendAck(buf[:0], "/messenger", 0, []byte(`{"ok":true}`))
	fmt.Println(string(buf))
	// Output:
	// 42/messenger,["user_typing",{"chatId":"c1","userId":"u1","isTyping":true}]
	// 43/messenger,0[{"ok":true}]
}

func ExampleAppendOpen() {
	fmt.Println(string(socketio.AppendOpen(nil, socketio.Open{
		SID:          "lv_VI97HAXpY6yYWAAAC",
		PingInterval: 25 * time.Second,
		PingTimeout:  20 * time.Second,
		MaxPayload:   65536,
	})))
	// Output: 0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}
}

func ExampleAppendConnectError() {
	fmt.Println(string(socketio.AppendConnectError(nil, "/messenger", "authentication required", "AUTH_REQUIRED")))
	// Output: 44/messenger,{"message":"authentication required","data":{"code":"AUTH_REQUIRED"}}
}
