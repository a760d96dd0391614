// Package script runs custom step definitions whose content item holds a
// script. The step definition names the file in an option of type Script
// (DeployR's convention is ScriptName) and holds it in a Content option;
// the interpreter follows the extension: .sh (sh), .bash (bash), .py
// (python3), .ps1 (pwsh; on Windows without pwsh, Windows PowerShell 5.1).
//
// The script gets, as environment variables, each of the step's options
// twice: under its own name and as IMPRINT_VAR_<NAME> (the name in upper
// case); each content option's local path as IMPRINT_CONTENT_<OPTION>;
// IMPRINT_PROCESS=1; and IMPRINT_VARS_FILE, the file through which it sets
// task-sequence variables: run
//
//	imprint-agent var set NAME VALUE
//
// (or append a JSON line {"name":"NAME","value":"VALUE"} to the file
// yourself). After the script exits with 0 the step sets every variable
// the file names, in order; any other exit code fails the step.
package script

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/steps/powershell"
	"github.com/imprint-osd/imprint/internal/steps/proc"
)

// EnvVarsFile names the file a script writes variables to.
const EnvVarsFile = "IMPRINT_VARS_FILE"

// Step runs the script of a custom step definition.
type Step struct {
	// ScriptOption is the option holding the script's file name.
	ScriptOption string
	// ContentOption is the content option holding the script ("" means the
	// only content path the step has).
	ContentOption string
	// TempDir holds the variables file; "" means os.TempDir().
	TempDir string
	// LookPath finds interpreters; nil means exec.LookPath.
	LookPath func(string) (string, error)
	// Agent is the imprint-agent executable, put first on the script's
	// PATH so `imprint-agent var set` works; "" leaves PATH alone.
	Agent string
}

var _ sequence.Step = Step{}

// Interpreter returns the program that runs a script file, by extension.
func Interpreter(file string) (string, []string, error) {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".sh":
		return "sh", nil, nil
	case ".bash":
		return "bash", nil, nil
	case ".py":
		return "python3", nil, nil
	case ".ps1":
		return "pwsh", []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File"}, nil
	}
	return "", nil, fmt.Errorf("script %q: unknown extension; use .sh, .bash, .py or .ps1", filepath.Base(file))
}

// Program finds an interpreter with look. On Windows a .ps1 whose pwsh
// is not installed runs in Windows PowerShell 5.1 below systemRoot, which
// every Windows has (DeployR's custom steps are PowerShell scripts).
func Program(goos, prog string, look func(string) (string, error), systemRoot string) (string, error) {
	full, err := look(prog)
	if err == nil || goos != "windows" || prog != "pwsh" {
		return full, err
	}
	if systemRoot == "" {
		systemRoot = `C:\Windows`
	}
	return powershell.WindowsPowerShell(systemRoot), nil
}

// Run runs the script and reads back the variables it set.
func (s Step) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	name := strings.TrimSpace(env.Setting(s.ScriptOption))
	if name == "" {
		return sequence.Result{}, fmt.Errorf("script step: option %s is empty", s.ScriptOption)
	}
	dir := env.Content[s.ContentOption]
	if s.ContentOption == "" && len(env.Content) == 1 {
		for _, p := range env.Content {
			dir = p
		}
	}
	if dir == "" {
		return sequence.Result{}, fmt.Errorf("script step: no content holds script %s", name)
	}
	path := filepath.Join(dir, filepath.FromSlash(name))
	if _, err := os.Stat(path); err != nil {
		return sequence.Result{}, fmt.Errorf("script step: script %s is not in the content: %w", name, err)
	}
	prog, args, err := Interpreter(name)
	if err != nil {
		return sequence.Result{}, err
	}
	look := s.LookPath
	if look == nil {
		look = exec.LookPath
	}
	full, err := Program(runtime.GOOS, prog, look, os.Getenv("SystemRoot"))
	if err != nil {
		return sequence.Result{}, fmt.Errorf("script %s needs %s, which is not installed on this machine", name, prog)
	}
	vf, err := os.CreateTemp(s.TempDir, "imprint-vars-*.jsonl")
	if err != nil {
		return sequence.Result{}, fmt.Errorf("script step: %w", err)
	}
	vf.Close()
	defer os.Remove(vf.Name())

	envList := []string{"IMPRINT_PROCESS=1", EnvVarsFile + "=" + vf.Name()}
	for k, v := range env.Settings {
		envList = append(envList, k+"="+v, "IMPRINT_VAR_"+envName(k)+"="+v)
	}
	for k, p := range env.Content {
		envList = append(envList, "IMPRINT_CONTENT_"+envName(k)+"="+p)
	}
	if s.Agent != "" {
		envList = append(envList, "PATH="+filepath.Dir(s.Agent)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	res, err := proc.Run(ctx, proc.Cmd{Path: full, Args: append(args, path), Dir: dir, Env: envList, Log: env.Log})
	out := sequence.Result{ExitCode: res.ExitCode, Output: res.Tail}
	if err != nil {
		return out, err
	}
	if err := proc.CheckCodes(res.ExitCode, []int{0}); err != nil {
		return out, fmt.Errorf("script %s: %w", name, err)
	}
	vars, err := ReadVars(vf.Name())
	if err != nil {
		return out, err
	}
	for _, kv := range vars {
		if err := env.Vars.Set(kv[0], kv[1]); err != nil {
			return out, fmt.Errorf("script %s set a variable: %w", name, err)
		}
		fmt.Fprintf(env.Log, "Script set %s\n", kv[0])
	}
	return out, nil
}

func envName(k string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, k)
}

type varLine struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// AppendVar adds NAME=VALUE to the variables file (what `imprint-agent var
// set` does).
func AppendVar(file, name, value string) error {
	if file == "" {
		return fmt.Errorf("%s is not set: `var set` works only inside a script run by imprint-agent", EnvVarsFile)
	}
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("variable name is empty")
	}
	b, err := json.Marshal(varLine{Name: name, Value: value})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("variables file %s does not exist: is the step still running?", file)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadVars reads the variables file, in order.
func ReadVars(file string) ([][2]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var v varLine
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return nil, fmt.Errorf("variables file line %d: %w", n, err)
		}
		out = append(out, [2]string{v.Name, v.Value})
	}
	return out, sc.Err()
}
