// Package sequence is the task-sequence engine shared by the agent and the
// server: condition parsing and evaluation, variables, validation, the
// depth-first walk and the resume journal. It imports neither net/http nor
// database/sql.
package sequence
