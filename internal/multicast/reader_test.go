package multicast_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/imprint-osd/imprint/internal/multicast"
)

// cut delivers data[:n] and then fails with err (io.EOF for a stream that
// just ends short).
type cut struct {
	r      io.Reader
	err    error
	closed bool
}

func (c *cut) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		return n, c.err
	}
	return n, err
}
func (c *cut) Close() error { c.closed = true; return nil }

func TestReaderFallsBackFromTheFirstMissingByte(t *testing.T) {
	data := []byte(strings.Repeat("0123456789abcdef", 4096)) // 64 KiB
	size := int64(len(data))
	tests := []struct {
		name      string
		delivered int
		err       error
	}{
		{"complete", len(data), io.EOF},
		{"receiver failed", 5000, errors.New("udp-receiver: exit status 1")},
		{"stream ended short", 40000, io.EOF},
		{"never started", 0, errors.New("udp-receiver: start timeout")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary := &cut{r: bytes.NewReader(data[:tt.delivered]), err: tt.err}
			var asked []int64
			fallback := func(_ context.Context, off int64) (io.ReadCloser, error) {
				asked = append(asked, off)
				return io.NopCloser(bytes.NewReader(data[off:])), nil
			}
			r := multicast.NewReader(t.Context(), primary, fallback, size)
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, not the content", len(got))
			}
			if r.Multicast != int64(tt.delivered) || r.Unicast != size-int64(tt.delivered) {
				t.Errorf("multicast %d, unicast %d; want %d and %d", r.Multicast, r.Unicast, tt.delivered, size-int64(tt.delivered))
			}
			if tt.delivered == len(data) {
				if len(asked) != 0 || r.Lost != nil {
					t.Errorf("a complete stream fell back to unicast at %v (%v)", asked, r.Lost)
				}
				return
			}
			if len(asked) != 1 || asked[0] != int64(tt.delivered) {
				t.Errorf("fallback asked from %v, want once from %d", asked, tt.delivered)
			}
			if r.Lost == nil || !primary.closed {
				t.Errorf("lost = %v, primary closed = %v; want the reason and the receiver closed", r.Lost, primary.closed)
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	data := []byte("0123456789")
	t.Run("fallback fails", func(t *testing.T) {
		primary := &cut{r: bytes.NewReader(data[:4]), err: errors.New("receiver died")}
		r := multicast.NewReader(t.Context(), primary, func(context.Context, int64) (io.ReadCloser, error) {
			return nil, errors.New("server unreachable")
		}, int64(len(data)))
		_, err := io.ReadAll(r)
		if err == nil || !strings.Contains(err.Error(), "server unreachable") || !strings.Contains(err.Error(), "receiver died") {
			t.Fatalf("err = %v, want both the multicast and the unicast reason", err)
		}
	})
	t.Run("unicast ends short", func(t *testing.T) {
		primary := &cut{r: bytes.NewReader(nil), err: errors.New("timeout")}
		r := multicast.NewReader(t.Context(), primary, func(_ context.Context, off int64) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data[off:5])), nil
		}, int64(len(data)))
		if _, err := io.ReadAll(r); err == nil || !strings.Contains(err.Error(), "5 of 10") {
			t.Fatalf("err = %v, want the content ended after 5 of 10 bytes", err)
		}
	})
	t.Run("never more than the size", func(t *testing.T) {
		primary := &cut{r: bytes.NewReader(append(data, "extra"...)), err: io.EOF}
		r := multicast.NewReader(t.Context(), primary, nil, int64(len(data)))
		got, err := io.ReadAll(r)
		if err != nil || string(got) != string(data) {
			t.Fatalf("got %q, %v; want exactly the size", got, err)
		}
	})
}
