package node

import (
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func wsutilWriteBinary(c *testClient, b []byte) error {
	return wsutil.WriteClientMessage(c.nc, ws.OpBinary, b)
}

func wsutilReadText(c *testClient) (string, error) {
	b, err := wsutil.ReadServerText(c.br)
	return string(b), err
}
