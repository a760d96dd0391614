package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/multicast"
)

// MulticastSession returns the multicast session waiting for receivers of
// content id:no, or ok false when there is none (the machine downloads by
// unicast).
func (m *Machine) MulticastSession(ctx context.Context, id string, no int) (sess multicast.Session, ok bool, err error) {
	err = m.callJSON(ctx, http.MethodGet, fmt.Sprintf("/v1/content/%s/%d/multicast", esc(id), no), nil, &sess)
	if deploy.IsNotFound(err) {
		return multicast.Session{}, false, nil
	}
	if err != nil {
		return multicast.Session{}, false, err
	}
	return sess, true, nil
}
