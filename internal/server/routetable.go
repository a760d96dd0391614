package server

import "net/http"

// routeMux is a ServeMux that remembers the patterns registered on it, so
// that a test can hold every route against the OpenAPI document
// (openapi.yaml) and the document against the routes.
type routeMux struct {
	*http.ServeMux
	patterns *[]string
}

// newRouteMux returns a mux whose patterns are kept under name in
// s.routeTable.
func (s *Server) newRouteMux(name string) *routeMux {
	if s.routeTable == nil {
		s.routeTable = map[string]*[]string{}
	}
	p := new([]string)
	s.routeTable[name] = p
	return &routeMux{ServeMux: http.NewServeMux(), patterns: p}
}

// Handle registers h for pattern and records the pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	*m.patterns = append(*m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}
