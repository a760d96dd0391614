package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// FuzzLoginBody feeds any body to what POST /v1/auth/token does before it
// looks at a credential: the size cap, the JSON decoding and the device
// key. A refusal is KindInvalid (400) or, past the cap only, a
// MaxBytesError (413); an accepted body encodes and decodes back to the
// same request and the same device key.
// Seeds: testdata/fuzz/FuzzLoginBody.
func FuzzLoginBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		decode := func(b []byte) (wire.TokenRequest, error) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/v1/auth/token", bytes.NewReader(b))
			r.Body = http.MaxBytesReader(w, r.Body, maxAuthBody) // as handleToken
			var req wire.TokenRequest
			return req, decodeJSON(w, r, &req)
		}
		req, err := decode(body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				if len(body) <= maxAuthBody {
					t.Fatalf("a %d-byte body is over the %d-byte cap: %v", len(body), maxAuthBody, err)
				}
				return
			}
			if deploy.ErrorKind(err) != deploy.KindInvalid {
				t.Fatalf("decode error %v is %v, want KindInvalid", err, deploy.ErrorKind(err))
			}
			return
		}
		if len(body) > maxAuthBody {
			t.Fatalf("a %d-byte body was accepted past the %d-byte cap", len(body), maxAuthBody)
		}
		// As handleToken: an identity that is not one is malformed input.
		d := req.Device.Device()
		if err := d.Normalize(); err != nil {
			if deploy.ErrorKind(err) != deploy.KindInvalid {
				t.Fatalf("device error %v is %v, want KindInvalid", err, deploy.ErrorKind(err))
			}
			return
		}
		dev := deviceID(&d)
		req.Device = wire.DeviceInfo{UUID: d.UUID, MACs: d.MACs, SerialNumber: d.SerialNumber, Make: d.Make,
			Model: d.Model, Name: d.Name, Disks: d.Disks}
		if dev != strings.ToLower(dev) || len(dev) > 64+len("mac-") {
			t.Fatalf("device key %q is not lowercase and bounded", dev)
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", req, err)
		}
		if len(b) > maxAuthBody {
			return // re-encoding may escape and lengthen strings
		}
		req2, err := decode(b)
		if err != nil {
			t.Fatalf("re-encoded request %s refused: %v", b, err)
		}
		d2 := req2.Device.Device()
		if err := d2.Normalize(); err != nil {
			t.Fatalf("normalised device %+v refused on the way back: %v", req.Device, err)
		}
		if diff := cmp.Diff(req, req2, cmpopts.EquateEmpty()); diff != "" { // "macs":[] is omitted
			t.Fatalf("request changed on the way back (-first +second):\n%s", diff)
		}
		if dev2 := deviceID(&d2); dev2 != dev {
			t.Fatalf("device key %q became %q", dev, dev2)
		}
	})
}
