package content

import (
	"mime"
	"net/http"
	"os"
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
// (Store.Open) and closes it.
func ServeBlob(w http.ResponseWriter, r *http.Request, f *os.File, h string, name string) {
	hdr := w.Header()
	hdr.Set("ETag", `"`+h+`"`)
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Disposition", Disposition(name, h))
	http.ServeContent(w, r, "", time.Time{}, f)
}

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
