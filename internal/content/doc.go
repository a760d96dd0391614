// Package content is Imprint's content-addressed blob store on a local (or
// shared, POSIX) filesystem.
//
// Every blob is stored once, under its SHA-256:
//
//	<root>/sha256/ab/ab12…ef   owner read-only (0400), never rewritten
//	<root>/tmp/put-…           uploads in progress
//
// Put streams an upload to a temp file in <root>/tmp while hashing it, fsyncs
// it, renames it into place and fsyncs the directory, so a blob is either
// absent or complete under its final name, even after a crash or power cut.
// The caller commits its database row only after Put returns. A killed
// upload leaves only a temp file, which the next Open removes.
//
// A Folder version is a tar stream: PutTar stores each regular file as a blob
// and returns a deploy.Manifest; WriteTar streams a manifest back as a tar
// with deterministic headers. ValidManifestPath is the one check of manifest
// paths, shared with the agent.
//
// ServeBlob serves a blob with http.ServeContent and a strong ETag equal to
// its hash, so Range and If-Range resume exactly the same bytes. It hashes
// the bytes as they stream and reports a *CorruptError instead of sending
// the last chunk of a blob that no longer matches its name; Verify checks a
// whole blob, and SetAside moves a corrupt one to <root>/corrupt, where no
// read finds it and from where the next Put of the right bytes replaces it.
//
// The store never deletes blobs on its own. Garbage collection of blobs that
// no database row references belongs to the caller: Walk lists the blobs with
// their modification times, and Put refreshes the time of a blob it finds
// already present, so a collector that spares recent blobs does not remove a
// blob that an upload in flight is about to reference.
package content
