package server_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
)

// Every audit event is also sent to a syslog collector, as JSON with its
// sequence number and chain hash.
func TestAuditForwardedToSyslog(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ts := startServerWith(t, t.TempDir(), func(c *server.Config) {
		c.PasscodeArgon2 = testArgon2
		c.AuditSyslog = "udp://" + pc.LocalAddr().String()
	})
	ts.adminJSON(t, "PUT", "/admin/v1/passcode", map[string]string{"passcode": "Correct-Horse-Battery-42"}, nil)

	seen := map[string]deploy.AuditEvent{}
	buf := make([]byte, 64<<10)
	for seen["passcode.set"].Hash == "" {
		// A generous deadline: the forwarder sends from its own goroutine.
		pc.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no passcode.set event reached the collector (saw %d events): %v", len(seen), err)
		}
		msg := string(buf[:n])
		if !strings.Contains(msg, "imprint") {
			t.Errorf("syslog message without the tag: %q", msg)
		}
		var e deploy.AuditEvent
		if err := json.Unmarshal([]byte(msg[strings.Index(msg, "{"):]), &e); err != nil {
			t.Fatalf("message %q does not end in a JSON event: %v", msg, err)
		}
		seen[e.Action] = e
	}
	if e := seen["passcode.set"]; e.Seq == 0 || e.Actor != "admin-socket" || strings.Contains(e.Details["passcode"], "Horse") {
		t.Errorf("forwarded event = %+v", e)
	}
	if _, ok := seen["sys.startup"]; !ok {
		t.Errorf("events before the change were not forwarded: %v", seen)
	}
}

func TestAuditSyslogTargetIsChecked(t *testing.T) {
	for _, bad := range []string{"siem.example.org:514", "http://siem:514", "udp://siem", "unix://"} {
		cfg := server.DefaultConfig()
		cfg.AuditSyslog = bad
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "audit-syslog") {
			t.Errorf("audit-syslog %q: err = %v, want one naming audit-syslog", bad, err)
		}
	}
	cfg := server.DefaultConfig()
	cfg.AuditSyslog = "tcp://siem.example.org:6514"
	if err := cfg.Validate(); err != nil {
		t.Errorf("tcp target: %v", err)
	}
}
