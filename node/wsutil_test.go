package node

import (
	"bufio"
	"io"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func wsutilWriteBinary(c *testClient, b []byte) error {
	return wsutil.WriteClientMessage(c.nc, ws.OpBinary, b)
}

// wsutilReadText reads one text message, answering control frames.
func wsutilReadText(c *testClient) (string, error) {
	b, err := wsutil.ReadServerText(struct {
		io.Reader
		io.Writer
	}{c.br, c.nc})
	return string(b), err
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
