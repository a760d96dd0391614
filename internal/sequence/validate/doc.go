// Package validate checks task sequences and custom step definitions before
// they are stored or run.
//
// Errors make a document unacceptable. Warnings mark what a stored or
// imported document may legitimately have but cannot run with until it is
// resolved: a step definition, content item or child task sequence that is
// not on this server (DeployR's built-in 00000000-… content items, for
// example), and PowerShell conditions, which need pwsh at run time.
//
// Decisions where DeployR's behaviour is unknown:
//   - Option keys match step settings and contentItems case-insensitively
//     (exports mix ScriptName and scriptName).
//   - An empty value falls back to the option's default; "required" fails
//     only when both are empty.
//   - Values holding a %VAR% reference are resolved at run time, so their
//     regex, number, boolean and dropdown checks are skipped.
//   - A content option whose contentItemPurpose is empty or Other accepts a
//     content item of any purpose; any other purpose must match exactly.
//   - "unknown step type" is an error only inside Imprint's own built-in
//     block (00000001-0000-0000-0000-0000000001XX). A typeId in DeployR's
//     block (…0000000000XX) that is neither built in nor on the server is a
//     warning, "DeployR built-in step type X is not supported by this
//     server" (naming it when stepdefs.Unsupported knows it): the sequence
//     must still import, and nobody can import DeployR's built-ins.
//   - A step's definition version is found by stepDefinitionVersionId
//     first and stepDefinitionVersionNo second: DeployR's exports can
//     disagree on the number.
//   - A required option that the step stores (or defaults) as "" is a
//     warning, as DeployR exports such steps; absent with no default, an
//     error. "[]" is an empty content list.
package validate
