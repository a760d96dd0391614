package wire

import (
	"strconv"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// The shapes of the admin API (/admin/v1/…) that are not domain types of
// deploy. Where an answer used to be a Go map, the fields are in the
// map's (sorted) key order, so the bytes on the wire stay as they were.

// PasscodeStatus is the answer of GET /admin/v1/passcode: whether a
// passcode is set, never its value or hash.
type PasscodeStatus struct {
	Set        bool          `json:"set"`
	Generation int           `json:"generation,omitempty"`
	Generated  bool          `json:"generated,omitempty"`
	SetAt      time.Time     `json:"setAt,omitzero"`
	Age        time.Duration `json:"age,omitempty"`
	// Previous is the rotated-out passcode while its grace lasts.
	PreviousGeneration int       `json:"previousGeneration,omitempty"`
	PreviousGraceUntil time.Time `json:"previousGraceUntil,omitzero"`
}

// SessionsRevoked is the answer of DELETE /admin/v1/sessions.
type SessionsRevoked struct {
	SessionsRevoked int `json:"sessionsRevoked"`
}

// EntraConfig is the Entra ID tenant and app registration: the body of
// PUT /admin/v1/security/entra and Security's Entra. The member names are
// the Go names of the server's entra.Config, which has no json tags.
type EntraConfig struct {
	TenantID     string        `json:"TenantID"`
	ClientID     string        `json:"ClientID"`
	Audience     string        `json:"Audience"`
	RequiredRole string        `json:"RequiredRole"`
	Authority    string        `json:"Authority"`
	MinRefetch   time.Duration `json:"MinRefetch"`
}

// Security is the answer of GET /admin/v1/security and of every change of
// it: the stored settings, then the effective client-authentication setup.
type Security struct {
	Anonymous bool `json:"anonymous"`
	// AnonymousFrom limits anonymous logins to these networks (CIDRs).
	AnonymousFrom []string     `json:"anonymousFrom,omitempty"`
	Entra         *EntraConfig `json:"entra,omitempty"`
	// PasscodeAlongside: an installed OS may use the passcode while Entra
	// ID or certificates are on.
	PasscodeAlongside bool `json:"passcodeAlongside,omitempty"`
	// SecureBootOff is the stored setting behind SecureBoot.
	SecureBootOff bool `json:"secureBootOff,omitempty"`
	Certificate   bool `json:"certificate"`
	Passcode      bool `json:"passcode"`
	// Methods is the mode order for an agent in an installed OS,
	// BootImageMethods the one for the boot image.
	Methods          []string `json:"methods"`
	BootImageMethods []string `json:"bootImageMethods"`
	// SecureBoot: `imprint server --pxe` sends x86-64 UEFI machines the
	// signed chain (shim, signed GRUB, signed kernel); SecureBootReady:
	// the boot image has its files.
	SecureBoot      bool `json:"secureBoot"`
	SecureBootReady bool `json:"secureBootReady"`
	// Missing lists what an admin should configure or fix.
	Missing []string `json:"missing,omitempty"`
	// CertSubject is the --cert-subject rule device certificates must
	// match ("" accepts any the client CA issued).
	CertSubject string `json:"certSubject,omitempty"`
}

// SecuritySwitch is the body of PUT /admin/v1/security/{anonymous,
// passcode-alongside,secure-boot}; From limits anonymous to networks.
type SecuritySwitch struct {
	On   bool     `json:"on"`
	From []string `json:"from,omitempty"`
}

// AuditVerify is the answer of GET /admin/v1/audit/verify.
type AuditVerify struct {
	OK       bool `json:"ok"`
	Verified int  `json:"verified"`
}

// AdminToken describes an admin token (GET /admin/v1/tokens, DELETE
// /admin/v1/tokens/{ref}); the token itself is only in NewAdminToken, once.
type AdminToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  *time.Time `json:"expiresAt,omitempty"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
}

// NewAdminToken is the answer of POST /admin/v1/tokens: the token with
// its secret, shown this once.
type NewAdminToken struct {
	Token string `json:"token"`
	AdminToken
}

// AdminTokenRequest is the body of POST /admin/v1/tokens. Expires is a Go
// duration ("2160h"); empty means until revoked.
type AdminTokenRequest struct {
	Expires string `json:"expires,omitempty"`
	Name    string `json:"name"`
}

// UserRequest is the body of POST /admin/v1/users; the answer is the
// deploy.User (never its password or hash).
type UserRequest struct {
	Name     string      `json:"name"`
	Password string      `json:"password"`
	Role     deploy.Role `json:"role"`
}

// PasswordRequest is the body of PUT /admin/v1/users/{name}/password.
type PasswordRequest struct {
	Password string `json:"password"`
}

// DeviceView is a device with its next-boot default (GET
// /admin/v1/devices and /admin/v1/devices/{id}).
type DeviceView struct {
	*deploy.Device
	NextBoot deploy.NextBoot `json:"nextBoot"`
}

// NextBootRequest is the body of PUT /admin/v1/devices/{id}/nextboot:
// auto, deploy or local.
type NextBootRequest struct {
	NextBoot deploy.NextBoot `json:"nextBoot"`
}

// BootImage is one built boot image (GET /admin/v1/bootimages).
type BootImage struct {
	Arch          string    `json:"arch"`
	KernelVersion string    `json:"kernelVersion,omitempty"`
	KernelSigned  bool      `json:"kernelSigned"`
	SignedChain   bool      `json:"signedChain"`
	Size          int64     `json:"size"` // kernel and initrd
	Built         time.Time `json:"built"`
	Error         string    `json:"error,omitempty"` // why it is not usable
}

// SavedTaskSequence is the answer of every call that stores a task
// sequence: the stored sequence and the warnings (references the server
// cannot resolve yet).
type SavedTaskSequence struct {
	TaskSequence *deploy.TaskSequence `json:"taskSequence"`
	Warnings     []deploy.FieldError  `json:"warnings"`
}

// Validation is the answer of POST /admin/v1/tasksequences/validate: the
// document's errors and warnings, and every enabled step that cannot run,
// with the reason. The server sends every list, empty or not.
type Validation struct {
	CannotRun []deploy.FieldError `json:"cannotRun"`
	Errors    []deploy.FieldError `json:"errors"`
	Warnings  []deploy.FieldError `json:"warnings"`
}

// Template is a task-sequence template `imprint ts new` can start from
// (GET /admin/v1/tasksequences/templates).
type Template struct {
	Slug        string `json:"slug"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// NewTaskSequenceRequest is the body of POST /admin/v1/tasksequences/new.
type NewTaskSequenceRequest struct {
	Name     string `json:"name"`
	Template string `json:"template"`
}

// VersionPatch is the body of PATCH /admin/v1/content/{id}/versions/{no}:
// a partial update of a content version; only the non-nil fields are sent.
type VersionPatch struct {
	Status                       *deploy.Status `json:"status,omitempty"`
	Description                  *string        `json:"description,omitempty"`
	InstallationCommandLine      *string        `json:"installationCommandLine,omitempty"`
	InstallationWorkingDirectory *string        `json:"installationWorkingDirectory,omitempty"`
	InstallationSuccessCodes     *string        `json:"installationSuccessCodes,omitempty"`
	InstallationDependencies     *[]string      `json:"installationDependencies,omitempty"`
	DriverManufacturer           *string        `json:"driverManufacturer,omitempty"`
	DriverModel                  *string        `json:"driverModel,omitempty"`
	Tags                         *[]string      `json:"tags,omitempty"`
}

// ScrubReport is the answer of POST /admin/v1/content/verify: how many
// blobs the server read and checked, and the ones that cannot be served.
type ScrubReport struct {
	Blobs    int           `json:"blobs"` // blobs read and checked
	Bytes    int64         `json:"bytes"`
	Problems []BlobProblem `json:"problems"`
}

// BlobProblem is one blob that cannot be served as stored.
type BlobProblem struct {
	SHA256 string `json:"sha256"`
	// Problem is "corrupt" (its bytes do not match its hash; now set
	// aside) or "missing" (a version names it, the store has no such blob).
	Problem string    `json:"problem"`
	Detail  string    `json:"detail"`
	UsedBy  []BlobUse `json:"usedBy"`
}

// BlobUse is a content version (and, for a Folder, the file) that stores
// its bytes in a blob.
type BlobUse struct {
	ItemID    string `json:"itemId"`
	ItemName  string `json:"itemName"`
	VersionNo int    `json:"versionNo"`
	Path      string `json:"path,omitempty"`
}

// String is ITEM:VERSION, with :PATH for a Folder's file.
func (u BlobUse) String() string {
	s := u.ItemID + ":" + strconv.Itoa(u.VersionNo)
	if u.Path != "" {
		s += ":" + u.Path
	}
	return s
}
