package server

import "path/filepath"

// PrepareDataDir runs the start-up check of a data directory as if the
// server ran as uid.
func PrepareDataDir(dir string, uid int) (int, error) {
	return prepareDataDir(dir, filepath.Join(dir, "imprint.db"), uid)
}

// RouteTable returns the patterns each router registered, by router name
// (routetable.go): api, api-admin, socket, socket-admin, boot.
func (s *Server) RouteTable() map[string][]string {
	t := map[string][]string{}
	for name, p := range s.routeTable {
		t[name] = append([]string(nil), *p...)
	}
	return t
}

// OpenAPIYAML is the embedded OpenAPI document.
func OpenAPIYAML() []byte { return openAPIYAML }
