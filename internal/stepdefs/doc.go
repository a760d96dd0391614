// Package stepdefs is Imprint's built-in step-definition catalogue and its
// task-sequence templates.
//
// Built-ins that DeployR also ships keep DeployR's type ids
// (00000001-0000-0000-0000-0000000000XX) and version ids, and carry the same
// option names DeployR's exports use in step settings and contentItems
// (including the hidden ScriptName/Content options), so that DeployR task
// sequences validate unchanged. Built-ins whose DeployR id is unknown use
// Imprint's own block 00000001-0000-0000-0000-0000000001XX, which DeployR's
// two-hex-digit numbering cannot reach.
//
// The catalogue is plain Go data; Builtins and Builtin build fresh copies on
// every call, so callers may modify what they get.
package stepdefs
