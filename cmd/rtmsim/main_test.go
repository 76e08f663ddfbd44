package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpListsControlAPI: --help prints, once and on stdout, the endpoint
// to give a node and every route of the control API.
func TestHelpListsControlAPI(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if errb.Len() != 0 {
		t.Errorf("stderr: %q", errb.String())
	}
	help := out.String()
	for _, want := range []string{"--rtm-url ws://<addr>/ws", "POST /control/emit", "GET  /control/connections",
		"POST /control/expire", "POST /control/refuse", "POST /control/drop", "GET  /control/sent", "-profiles", "-rate"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q:\n%s", want, help)
		}
	}
	if strings.Count(help, "Control API") != 1 {
		t.Errorf("usage printed %d times", strings.Count(help, "Control API"))
	}
}

func TestBadFlagExits2(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--no-such-flag"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}
