// Package web is the browser console served by `imprint server` on its
// HTTPS port: server-rendered pages (html/template, assets embedded), a
// few lines of plain JavaScript for live updates over Server-Sent Events,
// and no inline script or style, so a strict Content-Security-Policy
// holds.
//
// Accounts and roles come from the store (auth.Users); sessions live in
// memory (a restart logs everybody out). Every change goes through the
// server's own admin API in-process, under the account's name, so the
// console validates, audits and fails exactly like the CLI; reads come
// straight from the store.
package web
