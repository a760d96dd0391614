package pxe

import (
	"bytes"
	"encoding/binary"
	"maps"
	"strconv"
	"testing"
	"time"
)

// FuzzTFTPRequest feeds any packet to UDP 69's parser and option
// negotiation, as anyone on the LAN may. A request that parses encodes
// back to a packet that parses to the same request; negotiation keeps
// every value inside the server's limits and acknowledges only options
// asked for, with the value asked for (RFC 2347-2349).
// Seeds: testdata/fuzz/FuzzTFTPRequest.
func FuzzTFTPRequest(f *testing.F) {
	const maxTimeout = 5 * time.Second
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) < 4 || binary.BigEndian.Uint16(p) != opRRQ {
			return // refused by checkRequest before parsing
		}
		req, err := parseRequest(p)
		if err != nil {
			return
		}
		again := binary.BigEndian.AppendUint16(nil, opRRQ)
		again = append(append(again, req.name...), 0)
		again = append(append(again, req.mode...), 0)
		for k, v := range req.options {
			again = append(append(append(append(again, k...), 0), v...), 0)
		}
		req2, err := parseRequest(again)
		if err != nil {
			t.Fatalf("request %+v re-encoded as %q does not parse: %v", req, again, err)
		}
		if req2.name != req.name || req2.mode != req.mode || !maps.Equal(req2.options, req.options) {
			t.Fatalf("request %+v re-parses as %+v", req, req2)
		}

		tr := &transfer{timeout: 2 * time.Second, maxTimeout: maxTimeout}
		oack, err := tr.negotiate(req, 1000)
		if err != nil {
			return
		}
		if tr.blksize < minBlockSize || tr.blksize > maxBlockSize {
			t.Fatalf("options %v: block size %d outside %d-%d", req.options, tr.blksize, minBlockSize, maxBlockSize)
		}
		if tr.timeout < time.Second || tr.timeout > maxTimeout {
			t.Fatalf("options %v: timeout %v outside 1 s-%v", req.options, tr.timeout, maxTimeout)
		}
		fields := bytes.Split(oack, []byte{0})
		if len(oack) > 0 && (len(fields)%2 != 1 || len(fields[len(fields)-1]) != 0) {
			t.Fatalf("options %v: OACK %q is not name/value pairs", req.options, oack)
		}
		for i := 0; i+1 < len(fields); i += 2 {
			name, val := string(fields[i]), string(fields[i+1])
			asked, ok := req.options[name]
			switch {
			case !ok:
				t.Fatalf("options %v: OACK has %s, which was not asked for", req.options, name)
			case name == "timeout" && val != asked:
				t.Fatalf("options %v: OACK timeout %q, asked %q", req.options, val, asked)
			case name == "blksize" && val != strconv.Itoa(tr.blksize):
				t.Fatalf("options %v: OACK blksize %q, uses %d", req.options, val, tr.blksize)
			case name == "tsize" && val != "1000":
				t.Fatalf("options %v: OACK tsize %q, want 1000", req.options, val)
			}
		}
	})
}
