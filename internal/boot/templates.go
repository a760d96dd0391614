package boot

import (
	"bytes"
	"embed"
	"fmt"
	"text/template"
)

//go:embed templates/*.ipxe templates/*.grub
var templateFS embed.FS

// Template names; TestTemplatesDeclared checks this list against the files.
const (
	tmplStage1 = "stage1.ipxe"
	tmplError  = "error.ipxe"

	// GRUB configs of the Secure Boot chain (shim → signed GRUB).
	tmplGrubBootstrap = "bootstrap.grub"
	tmplGrubMachine   = "machine.grub"
	tmplGrubError     = "error.grub"
)

func parseTemplates() (*template.Template, error) {
	t, err := template.New("").Option("missingkey=error").ParseFS(templateFS, "templates/*.ipxe", "templates/*.grub")
	if err != nil {
		return nil, fmt.Errorf("parse boot templates: %w", err)
	}
	return t, nil
}

func render(t *template.Template, name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// stage2Data is what the per-machine script (appendStage2) and
// templates/machine.grub see. Every field is validated before rendering
// (see Handler.machineData).
type stage2Data struct {
	machineQuery
	BootURL       string
	PublicURL     string
	CAFingerprint string
	KernelArgs    []string
	Menu          bool
	TimeoutMS     int64
	Default       string
}

// TimeoutSeconds is the menu timeout in whole seconds, rounded up, for
// GRUB (which counts seconds); -1 waits forever, as a zero MenuTimeout does.
func (d stage2Data) TimeoutSeconds() int64 {
	if d.TimeoutMS == 0 {
		return -1
	}
	return (d.TimeoutMS + 999) / 1000
}
