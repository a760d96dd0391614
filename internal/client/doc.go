// Package client is the typed HTTP client of Imprint's APIs. Admin speaks
// the admin API (docs/api.md) over the server's Unix socket; it is what the
// `imprint` command line uses. Errors come back as *deploy.Error with the
// Kind the server's status and error code name, so callers can test them
// with deploy.ErrorKind just as they would a store error.
package client
