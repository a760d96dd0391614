package web

import (
	"net/http"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// registerAdmin adds the content, devices, boot-image, run-cancel and
// security routes. Every change is c.change (same origin, CSRF token,
// role) and goes to the admin API in-process under the account's name, so
// it is validated and audited exactly as the CLI's request would be.
func (c *Console) registerAdmin(h func(string, http.HandlerFunc)) {
	// Content (content_upload.go).
	h("POST /content/new", c.change(deploy.RoleOperator, c.contentCreate))
	h("GET /content/{id}", c.page(deploy.RoleViewer, c.contentItem))
	h("POST /content/{id}/versions/upload", c.change(deploy.RoleOperator, c.contentUpload))
	h("POST /content/{id}/versions/{no}/status", c.change(deploy.RoleOperator, c.contentVersionStatus))

	// Devices and boot images (devices.go).
	h("GET /devices", c.page(deploy.RoleViewer, c.devicesPage))
	h("GET /devices/{id}", c.page(deploy.RoleViewer, c.devicePage))
	h("POST /devices/{id}/nextboot", c.change(deploy.RoleOperator, c.deviceNextBoot))
	h("GET /bootimages", c.page(deploy.RoleViewer, c.bootImagesPage))
	h("GET /bootimages/{arch}/iso", c.page(deploy.RoleOperator, c.bootImageISO))
	h("GET /bootimages/build", c.page(deploy.RoleViewer, c.bootImageBuildState))
	h("POST /bootimages/build", c.change(deploy.RoleAdmin, c.bootImageBuild))
	h("POST /runs/{id}/cancel", c.change(deploy.RoleOperator, c.runCancel))

	// Security (security.go): reading the summary is for everyone,
	// everything else for admins only.
	h("GET /security", c.page(deploy.RoleViewer, c.securityPage))
	h("POST /security/anonymous", c.change(deploy.RoleAdmin, c.securityAnonymous))
	h("POST /security/passcode", c.change(deploy.RoleAdmin, c.passcodeSet))
	h("POST /security/passcode/generate", c.change(deploy.RoleAdmin, c.passcodeGenerate))
	h("POST /security/passcode/rotate", c.change(deploy.RoleAdmin, c.passcodeRotate))
	h("POST /security/passcode/clear", c.change(deploy.RoleAdmin, c.passcodeClear))
	h("GET /security/sessions", c.page(deploy.RoleAdmin, c.sessionsPage))
	h("POST /security/sessions/{id}/revoke", c.change(deploy.RoleAdmin, c.sessionRevoke))
	h("POST /security/sessions/revoke", c.change(deploy.RoleAdmin, c.sessionsRevoke))
	h("GET /security/tokens", c.page(deploy.RoleAdmin, c.tokensPage))
	h("POST /security/tokens", c.change(deploy.RoleAdmin, c.tokenCreate))
	h("POST /security/tokens/{ref}/revoke", c.change(deploy.RoleAdmin, c.tokenRevoke))
	h("GET /security/audit", c.page(deploy.RoleAdmin, c.auditPage))
	h("POST /security/audit/verify", c.change(deploy.RoleAdmin, c.auditVerify))
}
