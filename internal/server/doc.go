// Package server is the Imprint daemon: it opens the store and content
// store, generates its TLS material on first start, and serves the machine
// API (HTTPS), the boot files (plain HTTP) and the admin API (Unix socket).
package server
