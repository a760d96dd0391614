package wire

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// TestAdminJSON pins the bytes of the admin shapes: they are what the
// server (and the client, for request bodies) sent before the shapes
// moved here from their own structs and Go maps, key order included.
func TestAdminJSON(t *testing.T) {
	tm := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	const stamp = `"2026-12-07T08:00:00Z"`
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"security", Security{Anonymous: true, AnonymousFrom: []string{"10.0.0.0/8"}, Entra: &EntraConfig{TenantID: "t", ClientID: "c"},
			PasscodeAlongside: true, SecureBootOff: true, Certificate: true, Passcode: true, Methods: []string{"passcode"},
			BootImageMethods: []string{}, SecureBootReady: true, Missing: []string{"x"}, CertSubject: "pc-.*"},
			`{"anonymous":true,"anonymousFrom":["10.0.0.0/8"],"entra":{"TenantID":"t","ClientID":"c","Audience":"","RequiredRole":"","Authority":"","MinRefetch":0},"passcodeAlongside":true,"secureBootOff":true,"certificate":true,"passcode":true,"methods":["passcode"],"bootImageMethods":[],"secureBoot":false,"secureBootReady":true,"missing":["x"],"certSubject":"pc-.*"}`},
		{"security empty", Security{},
			`{"anonymous":false,"certificate":false,"passcode":false,"methods":null,"bootImageMethods":null,"secureBoot":false,"secureBootReady":false}`},
		{"passcode status", PasscodeStatus{Set: true, Generation: 2, Generated: true, SetAt: tm, Age: time.Hour, PreviousGeneration: 1, PreviousGraceUntil: tm},
			`{"set":true,"generation":2,"generated":true,"setAt":` + stamp + `,"age":3600000000000,"previousGeneration":1,"previousGraceUntil":` + stamp + `}`},
		{"passcode status empty", PasscodeStatus{}, `{"set":false}`},
		{"sessions revoked", SessionsRevoked{3}, `{"sessionsRevoked":3}`},
		{"audit verify", AuditVerify{OK: true, Verified: 5}, `{"ok":true,"verified":5}`},
		{"admin token", AdminToken{ID: "i", Name: "n", CreatedAt: tm, ExpiresAt: &tm, LastUsedAt: &tm, RevokedAt: &tm},
			`{"id":"i","name":"n","createdAt":` + stamp + `,"expiresAt":` + stamp + `,"lastUsedAt":` + stamp + `,"revokedAt":` + stamp + `}`},
		{"new admin token", NewAdminToken{Token: "tok", AdminToken: AdminToken{ID: "i", Name: "n", CreatedAt: tm}},
			`{"token":"tok","id":"i","name":"n","createdAt":` + stamp + `}`},
		{"device", DeviceView{Device: &deploy.Device{ID: "d", Name: "x"}, NextBoot: "auto"},
			`{"id":"d","name":"x","firstSeen":"0001-01-01T00:00:00Z","lastSeen":"0001-01-01T00:00:00Z","nextBoot":"auto"}`},
		{"boot image", BootImage{Arch: "x86_64", KernelVersion: "6", KernelSigned: true, SignedChain: true, Size: 9, Built: tm, Error: "e"},
			`{"arch":"x86_64","kernelVersion":"6","kernelSigned":true,"signedChain":true,"size":9,"built":` + stamp + `,"error":"e"}`},
		{"boot image empty", BootImage{}, `{"arch":"","kernelSigned":false,"signedChain":false,"size":0,"built":"0001-01-01T00:00:00Z"}`},
		{"saved", SavedTaskSequence{&deploy.TaskSequence{ID: "ts"}, []deploy.FieldError{{Field: "f", Message: "m"}}},
			`{"taskSequence":{"id":"ts","name":"","description":null,"architecture":"","tags":null,"versions":null,"versionsCount":0,"createdDate":0,"lastModifiedDate":0},"warnings":[{"field":"f","message":"m"}]}`},
		{"validation", Validation{Errors: []deploy.FieldError{}, Warnings: []deploy.FieldError{}, CannotRun: []deploy.FieldError{{Field: "a", Message: "b"}}},
			`{"cannotRun":[{"field":"a","message":"b"}],"errors":[],"warnings":[]}`},
		{"scrub", ScrubReport{Blobs: 1, Bytes: 2, Problems: []BlobProblem{{SHA256: "h", Problem: "corrupt", Detail: "d",
			UsedBy: []BlobUse{{ItemID: "i", ItemName: "n", VersionNo: 1, Path: "p"}, {ItemID: "j"}}}}},
			`{"blobs":1,"bytes":2,"problems":[{"sha256":"h","problem":"corrupt","detail":"d","usedBy":[{"itemId":"i","itemName":"n","versionNo":1,"path":"p"},{"itemId":"j","itemName":"","versionNo":0}]}]}`},
		// Request bodies, as the client sent them.
		{"switch", SecuritySwitch{On: true, From: []string{"10.0.0.0/8"}}, `{"on":true,"from":["10.0.0.0/8"]}`},
		{"switch off", SecuritySwitch{}, `{"on":false}`},
		{"token request", AdminTokenRequest{Name: "n", Expires: "1h0m0s"}, `{"expires":"1h0m0s","name":"n"}`},
		{"token request forever", AdminTokenRequest{Name: "n"}, `{"name":"n"}`},
		{"user", UserRequest{Name: "n", Role: deploy.RoleAdmin, Password: "p"}, `{"name":"n","password":"p","role":"admin"}`},
		{"password", PasswordRequest{Password: "p"}, `{"password":"p"}`},
		{"new ts", NewTaskSequenceRequest{Template: "t", Name: "n"}, `{"name":"n","template":"t"}`},
		{"next boot", NextBootRequest{NextBoot: "local"}, `{"nextBoot":"local"}`},
		{"patch", VersionPatch{Description: deploy.StrPtr("d")}, `{"description":"d"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}
