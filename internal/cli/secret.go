package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// Secret and confirmation input. On a terminal, secrets are read with echo
// off (term.ReadPassword on the stdin descriptor) after a prompt on stderr;
// otherwise they are read as lines from stdin, so scripts can pipe them in.
// The same buffered reader serves every line, so two lines piped at once
// are both seen.

// stdinTerminal reports whether stdin is an interactive terminal.
func (a *app) stdinTerminal() bool {
	f, ok := a.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// lines returns the buffered reader of stdin, made once.
func (a *app) lines() *bufio.Reader {
	if a.stdinLines == nil {
		a.stdinLines = bufio.NewReader(a.stdin)
	}
	return a.stdinLines
}

// readLine reads one line of stdin without its line ending. End of input
// before any character is an error naming what was expected.
func (a *app) readLine(what string) (string, error) {
	s, err := a.lines().ReadString('\n')
	if errors.Is(err, io.EOF) && s != "" {
		err = nil
	}
	if errors.Is(err, io.EOF) {
		return "", fmt.Errorf("%s: end of input (stdin is not a terminal: give it as a line on stdin)", what)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// readSecret prompts for a secret and reads it with no echo on a terminal,
// or reads a line of stdin otherwise. what names it in errors.
func (a *app) readSecret(prompt, what string) (string, error) {
	if !a.stdinTerminal() {
		return a.readLine(what)
	}
	fmt.Fprint(a.stderr, prompt)
	b, err := term.ReadPassword(int(a.stdin.(*os.File).Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return string(b), nil
}

// readNewSecret reads a new secret twice and checks both agree.
func (a *app) readNewSecret(what string) (string, error) {
	first, err := a.readSecret("New "+what+": ", "new "+what)
	if err != nil {
		return "", err
	}
	second, err := a.readSecret("Verify "+what+": ", "verify "+what)
	if err != nil {
		return "", err
	}
	if first != second {
		return "", fmt.Errorf("%ss do not match", what)
	}
	if first == "" {
		return "", fmt.Errorf("%s is empty", what)
	}
	return first, nil
}

// confirm asks a yes/no question on the terminal; only "y" or "yes" agree.
func (a *app) confirm(question string) (bool, error) {
	fmt.Fprintf(a.stderr, "%s [y/N] ", question)
	s, err := a.readLine("confirmation")
	if err != nil {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
