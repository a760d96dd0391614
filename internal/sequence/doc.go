// Package sequence is the task-sequence engine shared by the agent and the
// server: condition parsing and evaluation, variables, validation, the
// depth-first walk and the resume journal. It imports neither net/http nor
// database/sql (a test checks this).
//
// The pieces:
//
//   - Vars (vars.go): the task-sequence environment — case-insensitive
//     names, %VAR% expansion, secret variables, read-only "_" variables,
//     list variables stored DeployR/ConfigMgr style as NAME001, NAME002, ….
//   - Step, Registry, Env (step.go): a step type is looked up by its
//     step-definition type id; Run task sequence steps are handled by the
//     engine itself through a Loader.
//   - Engine (engine.go): the walk. Its Run documents the rules (disabled,
//     conditions, continueOnError, content, nesting, reboots, resume).
//   - Journal, FileJournal (journal.go): the atomically replaced resume
//     state, written before and after every step.
//
// Step identity: a step is identified by the chain of step ids from the top
// level down ("group/step"); a step inside a nested task sequence is
// prefixed by the Run task sequence step that started it, so the same child
// sequence run by two steps is tracked separately.
//
// Settings as variables: before a step runs, each of its settings (after
// %VAR% expansion) is set as a variable named after the option, and each
// content option's local path as _CONTENT-<Option>. As in DeployR, these
// variables remain set after the step.
package sequence
