package content

// SetMaxEntries lowers the entry limit of PutTar so tests need not build a
// million-entry archive.
func SetMaxEntries(s *Store, n int) { s.maxEntries = n }
