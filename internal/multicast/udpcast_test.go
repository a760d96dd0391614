package multicast

import (
	"slices"
	"testing"
	"time"
)

// TestCommandLines pins the udpcast command lines: the options that bound
// a stalled or absent receiver must be there.
func TestCommandLines(t *testing.T) {
	got := senderArgs(SendConfig{Interface: "eth0", Portbase: 9002, Machines: 30, Wait: 5 * time.Minute})
	want := []string{"--nokbd", "--interface", "eth0", "--portbase", "9002", "--min-receivers", "30", "--max-wait", "300",
		"--retries-until-drop", "20", "--start-timeout", "3900"}
	if !slices.Equal(got, want) {
		t.Errorf("sender args\n got %q\nwant %q", got, want)
	}
	got = receiverArgs(ReceiveConfig{Interface: "enp0s3", Portbase: 9002, StartTimeout: 330 * time.Second, ReceiveTimeout: 20 * time.Second})
	want = []string{"--nokbd", "--portbase", "9002", "--interface", "enp0s3", "--start-timeout", "330", "--receive-timeout", "20"}
	if !slices.Equal(got, want) {
		t.Errorf("receiver args\n got %q\nwant %q", got, want)
	}
}

func TestParseSenderLine(t *testing.T) {
	for line, want := range map[string]Event{
		"New connection from 10.78.0.11  (#0) 00000009": EventJoined,
		"Starting transfer: 00000009":                   EventStarting,
		"Dropping client #2 because of timeout":         EventDropped,
		"bytes=  1 793 792  re-xmits=0000425 ( 34.4%)":  EventOther,
	} {
		if got := parseSenderLine(line); got != want {
			t.Errorf("%q: %d, want %d", line, got, want)
		}
	}
}
