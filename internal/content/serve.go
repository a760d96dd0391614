package content

import (
	"crypto/sha256"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ServeBlob writes the blob f, whose hash is h, as an attachment named name.
// It sets a strong ETag "<h>" before calling http.ServeContent, so Range,
// If-Range, If-Match and If-None-Match work and a resumed download continues
// exactly the same bytes; a multi-range request larger than the file is
// answered in full (ServeContent's guard against overlapping ranges). No
// Last-Modified is sent: the hash is the validator. The caller opened f
// (Blobs.Open) and closes it.
//
// The bytes are hashed as they stream out. full reports that the whole
// blob was sent and matched h. A blob that does not match is cut short
// before its last chunk and ServeBlob returns a *CorruptError: the caller
// must then abort the response (panic(http.ErrAbortHandler)) so the client
// sees a broken transfer, never a complete one with the wrong bytes. A
// range cannot be checked on its own; full is then false and the caller
// may check the whole blob apart (Store.Verify).
func ServeBlob(w http.ResponseWriter, r *http.Request, f Object, h string, name string) (full bool, err error) {
	size := f.Size()
	if size == 0 && h != emptySHA256 {
		return false, &CorruptError{SHA256: h, Got: emptySHA256} // nothing to cut short: refuse before the headers
	}
	hdr := w.Header()
	hdr.Set("ETag", `"`+h+`"`)
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Disposition", Disposition(name, h))
	v := &verifyingFile{f: f, want: h, size: size, h: sha256.New()}
	http.ServeContent(w, r, "", time.Time{}, v)
	if v.err != nil {
		return false, v.err
	}
	return v.full || (size == 0 && r.Method == http.MethodGet), nil
}

// emptySHA256 is the hash of no bytes.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Disposition returns an attachment Content-Disposition for name, made safe:
// only the last path element is kept, control characters, quotes and
// characters Windows forbids in file names are replaced by "_", and an empty
// result falls back to fallback. Non-ASCII names are encoded per RFC 2231.
func Disposition(name, fallback string) string {
	name = SafeFilename(name)
	if name == "" {
		name = SafeFilename(fallback)
	}
	if name == "" {
		return "attachment"
	}
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "attachment"
}

// SafeFilename reduces name to a single file name suitable for a download:
// the part after the last slash or backslash, with control characters,
// quotes and <>:|?* replaced by "_", leading dots and trailing dots and
// spaces removed, at most 255 bytes. It may return "".
func SafeFilename(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar || strings.ContainsRune(`"<>:|?*;`, r) {
			return '_'
		}
		return r
	}, strings.ToValidUTF8(name, "_"))
	name = strings.TrimLeft(name, ". ")
	name = strings.TrimRight(name, ". ")
	for len(name) > 255 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}
