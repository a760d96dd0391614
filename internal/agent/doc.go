// Package agent is imprint-agent's loop: authenticate → select a task
// sequence → gather inventory → run it with the sequence engine → report
// to the server. It also holds the pieces the loop is made of: inventory
// gathering from sysfs with DeployR's variable names and alias rules
// (gather.go), the content cache (fetcher.go), the on-disk event outbox
// (outbox.go), plain-text and CMTrace logs (logs.go), the dry-run plan
// (plan.go) and the built-in step registry (registry.go).
//
// OSVERSION is "ImprintPE" in Imprint's boot image (DeployR says "WinPE"
// in its boot image), "Linux" in an installed Linux and "Windows" in an
// installed Windows, so that DeployR conditions such as
// "OSVERSION notEquals WinPE" still pick the full-OS branch.
package agent
