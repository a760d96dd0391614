package deploy

import (
	"time"
)

// Role is what a console account may do. Each role includes the ones
// below it: a viewer reads; an operator also runs and watches (a device's
// next boot, cancelling a run); an admin does everything, security too.
type Role string

const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r == RoleViewer || r == RoleOperator || r == RoleAdmin }

// rank orders the roles; 0 is not a role.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// AtLeast reports whether r grants everything min grants.
func (r Role) AtLeast(min Role) bool { return r.rank() > 0 && r.rank() >= min.rank() }

// User is a web-console account. Only the Argon2id PHC string of its
// password is stored.
type User struct {
	Name         string    `json:"name"`
	Role         Role      `json:"role"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// Check refuses a user no store may hold: no name, an unknown role or no
// password hash.
func (u *User) Check() error {
	switch {
	case u == nil:
		return Errorf(KindInvalid, "user is missing")
	case u.Name == "":
		return Errorf(KindInvalid, "user name is empty")
	case !u.Role.Valid():
		return Errorf(KindInvalid, "user %s: role %q is not admin, operator or viewer", u.Name, u.Role)
	case u.PasswordHash == "":
		return Errorf(KindInvalid, "user %s: password hash is empty", u.Name)
	}
	return nil
}
