// Package winacl builds Windows security descriptors in their
// self-relative binary form and sets them on files of an NTFS volume
// mounted on Linux (ntfs-3g's system.ntfs_acl extended attribute, or the
// kernel ntfs3 driver's system.ntfs_security).
//
// It exists for the Windows continuation (security checklist TK-7): the
// run's state staged under ProgramData, whose inherited ACL lets Users
// read, must be readable only by SYSTEM and the Administrators.
package winacl

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Well-known SIDs.
const (
	System         = "S-1-5-18"     // NT AUTHORITY\SYSTEM
	Administrators = "S-1-5-32-544" // BUILTIN\Administrators
)

// Access masks and flags of the descriptors built here.
const (
	FileAllAccess = 0x001F01FF // FILE_ALL_ACCESS

	aceAccessAllowed  = 0x00
	aceObjectInherit  = 0x01
	aceContainerInher = 0x02

	seDACLPresent   = 0x0004
	seDACLProtected = 0x1000
	seSelfRelative  = 0x8000
)

// SID encodes a SID string ("S-1-5-32-544") in its binary form.
func SID(s string) ([]byte, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || parts[0] != "S" || parts[1] != "1" || len(parts)-3 > 15 {
		return nil, fmt.Errorf("winacl: bad SID %q", s)
	}
	auth, err := strconv.ParseUint(parts[2], 10, 48)
	if err != nil {
		return nil, fmt.Errorf("winacl: bad SID %q: %w", s, err)
	}
	b := make([]byte, 8, 8+4*(len(parts)-3))
	b[0], b[1] = 1, byte(len(parts)-3)
	for i := 0; i < 6; i++ {
		b[2+i] = byte(auth >> (8 * (5 - i)))
	}
	for _, p := range parts[3:] {
		sub, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("winacl: bad SID %q: %w", s, err)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(sub))
	}
	return b, nil
}

// Private returns the self-relative security descriptor that gives full
// control to SYSTEM and the Administrators and to no one else: owner and
// group SYSTEM, a protected DACL (nothing inherited from the parent) whose
// entries a directory (dir true) passes on to the files and directories
// created in it. In SDDL: O:SYG:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA), or
// without OICI for a file.
func Private(dir bool) []byte {
	sys, _ := SID(System)
	admins, _ := SID(Administrators)
	flags := byte(0)
	if dir {
		flags = aceObjectInherit | aceContainerInher
	}
	ace := func(sid []byte) []byte {
		a := []byte{aceAccessAllowed, flags, 0, 0}
		binary.LittleEndian.PutUint16(a[2:], uint16(8+len(sid)))
		a = binary.LittleEndian.AppendUint32(a, FileAllAccess)
		return append(a, sid...)
	}
	aces := append(ace(sys), ace(admins)...)
	acl := []byte{2, 0, 0, 0, 2, 0, 0, 0} // ACL_REVISION, size, 2 ACEs
	binary.LittleEndian.PutUint16(acl[2:], uint16(8+len(aces)))
	acl = append(acl, aces...)

	const header = 20
	sd := make([]byte, header)
	sd[0] = 1 // SECURITY_DESCRIPTOR_REVISION
	binary.LittleEndian.PutUint16(sd[2:], seSelfRelative|seDACLPresent|seDACLProtected)
	dacl := header
	owner := dacl + len(acl)
	group := owner + len(sys)
	binary.LittleEndian.PutUint32(sd[4:], uint32(owner))
	binary.LittleEndian.PutUint32(sd[8:], uint32(group))
	binary.LittleEndian.PutUint32(sd[12:], 0) // no SACL
	binary.LittleEndian.PutUint32(sd[16:], uint32(dacl))
	sd = append(sd, acl...)
	sd = append(sd, sys...)
	return append(sd, sys...)
}
