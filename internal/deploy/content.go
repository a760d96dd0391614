package deploy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ContentType says how a content item's versions hold their bytes.
type ContentType string

const (
	ContentURL    ContentType = "URL"    // the agent fetches Version.ExternalURL
	ContentFile   ContentType = "File"   // one blob
	ContentFolder ContentType = "Folder" // a manifest of files, each a blob
)

// Purpose filters content pickers and is checked against step options.
type Purpose string

const (
	PurposeApplication     Purpose = "Application"
	PurposeDriverPack      Purpose = "DriverPack"
	PurposeOperatingSystem Purpose = "OperatingSystem"
	PurposeBootImage       Purpose = "BootImage"
	PurposeOther           Purpose = "Other"
)

// Status is the lifecycle of any version (content, step definition, task sequence).
type Status string

const (
	StatusInDevelopment Status = "In_Development"
	StatusActive        Status = "Active"
	StatusDeprecated    Status = "Deprecated"
)

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	return s == StatusInDevelopment || s == StatusActive || s == StatusDeprecated
}

// Valid reports whether t is a known content type.
func (t ContentType) Valid() bool {
	return t == ContentURL || t == ContentFile || t == ContentFolder
}

// Valid reports whether p is a known purpose.
func (p Purpose) Valid() bool {
	switch p {
	case PurposeApplication, PurposeDriverPack, PurposeOperatingSystem, PurposeBootImage, PurposeOther:
		return true
	}
	return false
}

// ContentItem is DeployR's content item: metadata plus numbered versions.
type ContentItem struct {
	ID               string           `json:"id"`
	Name             string           `json:"name"`
	Description      *string          `json:"description"`
	Type             ContentType      `json:"contentItemType"`
	Purpose          Purpose          `json:"contentItemPurpose"`
	Versions         []ContentVersion `json:"versions"`
	VersionsCount    int              `json:"versionsCount"`
	CreatedDate      int64            `json:"createdDate"`
	LastModifiedDate int64            `json:"lastModifiedDate"`
	ReadOnly         bool             `json:"readOnly"`
	Tags             []string         `json:"tags"`
	Doc
}

// Version returns the version numbered no.
func (c *ContentItem) Version(no int) (*ContentVersion, bool) {
	for i := range c.Versions {
		if c.Versions[i].VersionNo == no {
			return &c.Versions[i], true
		}
	}
	return nil, false
}

// ContentVersion is one immutable version of a content item. SHA256 and
// Manifest are Imprint's additions: DeployR exports have neither, and they
// are omitted from JSON when empty.
type ContentVersion struct {
	ID                           string   `json:"id"`
	ContentItemID                string   `json:"contentItemId"`
	VersionNo                    int      `json:"versionNo"`
	Status                       Status   `json:"status"`
	Description                  *string  `json:"description"`
	RelativePath                 *string  `json:"relativePath"`
	ContentSize                  int64    `json:"contentSize"`
	ExternalURL                  *string  `json:"externalURL"`
	CreatedDate                  int64    `json:"createdDate"`
	LastModifiedDate             int64    `json:"lastModifiedDate"`
	InstallationCommandLine      *string  `json:"installationCommandLine"`
	InstallationWorkingDirectory *string  `json:"installationWorkingDirectory"`
	InstallationSuccessCodes     *string  `json:"installationSuccessCodes"` // comma-separated exit codes, e.g. "0,3010"
	InstallationDependencies     []string `json:"installationDependencies"` // "guid:version" references
	DriverManufacturer           *string  `json:"driverManufacturer"`
	DriverModel                  *string  `json:"driverModel"`
	Tags                         []string `json:"tags"`

	// SHA256 is the hex hash of the File blob, or of the canonical manifest
	// JSON for a Folder; for URL versions the expected hash, if known.
	SHA256   string    `json:"sha256,omitempty"`
	Manifest *Manifest `json:"manifest,omitempty"`
	// AwaitingContent marks a version imported from an export without its
	// bytes (File and Folder items). SHA256, when set, is then the hash the
	// bytes must have; `imprint content version ID PATH --version N`
	// supplies them and clears the mark.
	AwaitingContent bool `json:"awaitingContent,omitempty"`
	Doc
}

// SuccessCodes parses InstallationSuccessCodes; empty means {0}.
func (v *ContentVersion) SuccessCodes() ([]int, error) {
	s := strings.TrimSpace(Str(v.InstallationSuccessCodes))
	if s == "" {
		return []int{0}, nil
	}
	var codes []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("success code %q is not a number", f)
		}
		codes = append(codes, n)
	}
	return codes, nil
}

// Manifest lists the files of a Folder version. Paths use forward slashes,
// are relative, clean and never contain "..".
type Manifest struct {
	Files []ManifestFile `json:"files"`
}

// ManifestFile is one file of a Folder version.
type ManifestFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Mode   uint32 `json:"mode"` // permission bits only, e.g. 0o644 or 0o755
	SHA256 string `json:"sha256"`
}

// ContentList splits the value of a ContentList option into its
// references. "" and the JSON text "[]" are empty lists, a JSON array of
// strings gives its elements, and anything else is references separated
// by commas, semicolons or white space.
func ContentList(s string) []string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var a []string
		if err := json.Unmarshal([]byte(s), &a); err == nil {
			out := a[:0]
			for _, e := range a {
				if e = strings.TrimSpace(e); e != "" {
					out = append(out, e)
				}
			}
			return out
		}
	}
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\t' || r == '\r'
	})
}

// Ref is a parsed "guid:versionNo" reference.
type Ref struct {
	ID        string
	VersionNo int
}

func (r Ref) String() string { return fmt.Sprintf("%s:%d", r.ID, r.VersionNo) }

// ParseRef parses "guid:versionNo".
func ParseRef(s string) (Ref, error) {
	id, no, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || id == "" {
		return Ref{}, Errorf(KindInvalid, "reference %q is not of the form guid:version", s)
	}
	n, err := strconv.Atoi(no)
	if err != nil || n < 1 {
		return Ref{}, Errorf(KindInvalid, "reference %q has no valid version number", s)
	}
	return Ref{ID: CanonicalID(id), VersionNo: n}, nil
}
