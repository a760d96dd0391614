// Package s3store keeps Imprint's content blobs in a bucket of an
// S3-compatible object store (AWS S3, SeaweedFS, Ceph RGW, Garage, …),
// through the minio-go client. It implements content.Blobs with the
// promises of the local store:
//
//	PREFIX/sha256/ab/ab12…ef   a blob, under its SHA-256, never rewritten but with the same bytes
//	PREFIX/tmp/put-…           an upload in progress whose hash was not known when it began
//	PREFIX/corrupt/ab12…ef     a blob set aside after it failed its hash check
//
// Put streams in parts of Config.PartSize (16 MiB): one buffer per upload,
// nothing on local disk. Content that fits in one part is hashed before
// a single PUT to its hash key. Longer content is a multipart upload,
// hashed part by part as it goes: to the hash key directly when the caller
// gave the expected hash (the upload is completed only if the hash
// matches, otherwise aborted), else to a temporary key that is copied
// server-side to the hash key once the hash is known, then deleted. An
// incomplete multipart upload is not an object: a killed upload leaves
// nothing any read or listing finds, and Put aborts the upload on any
// error or cancellation. Open aborts uploads and removes temporary objects
// older than Config.StaleAfter (a day), left by a process that died.
//
// Reads stream through this process (Object is a ranged GET that Seek
// restarts), so ServeBlob's hash check applies to S3 as to a local disk
// and a machine needs to trust only the Imprint server, never the object
// store's certificate or a presigned URL.
package s3store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"path"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

const (
	// DefaultPartSize is the multipart part size: the memory one upload
	// holds. 10,000 parts of 16 MiB bound a blob at 156 GiB.
	DefaultPartSize = 16 << 20
	// MinPartSize is S3's smallest part but the last.
	MinPartSize = 5 << 20
	maxParts    = 10000
	// maxCopy is the largest single server-side copy S3 allows; larger
	// blobs are copied part by part.
	maxCopy = 5 << 30

	// DefaultStaleAfter is the age past which Open treats an incomplete
	// upload or temporary object as left by a dead process. Other servers
	// may share the bucket, so younger ones may still be in progress.
	DefaultStaleAfter = 24 * time.Hour

	blobDir, tmpDir, corruptDir = "sha256/", "tmp/", "corrupt/"
)

// Store is a content.Blobs in an S3 bucket. It is safe for concurrent use,
// also by several servers sharing the bucket.
type Store struct {
	cfg  Config
	c    *minio.Client
	core minio.Core
	tr   *http.Transport
	bufs sync.Pool

	partSize   int
	staleAfter time.Duration

	// Cleaned is how many stale uploads and temporary objects Open removed.
	Cleaned int
}

// Options tune a Store; zero values take the defaults.
type Options struct {
	PartSize   int           // DefaultPartSize; at least MinPartSize
	StaleAfter time.Duration // DefaultStaleAfter
}

var _ content.Blobs = (*Store)(nil)

// Open connects to the bucket cfg names, checks that it exists, and
// removes stale uploads (see Options.StaleAfter); Store.Cleaned says how
// many.
func Open(ctx context.Context, cfg Config, opts Options) (*Store, error) {
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < MinPartSize {
		return nil, deploy.Errorf(deploy.KindInvalid, "s3 content store: part size %d is below S3's minimum of %d", opts.PartSize, MinPartSize)
	}
	if opts.StaleAfter == 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	if err := checkBucket(cfg.Bucket); err != nil {
		return nil, deploy.Wrap(deploy.KindInvalid, err, "s3 content store")
	}
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, fmt.Errorf("s3 content store: %w", err)
	}
	// Every download streams through a connection of its own.
	tr.MaxIdleConnsPerHost = 256
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:    cfg.Secure,
		Region:    cfg.Region,
		Transport: tr,
	})
	if err != nil {
		return nil, deploy.Wrap(deploy.KindInvalid, err, "s3 content store")
	}
	s := &Store{cfg: cfg, c: c, core: minio.Core{Client: c}, tr: tr, partSize: opts.PartSize, staleAfter: opts.StaleAfter}
	s.bufs.New = func() any { b := make([]byte, s.partSize); return &b }

	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ok, err := c.BucketExists(cctx, cfg.Bucket)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("s3 content store %s: %w", s.where(), err)
	}
	if !ok {
		tr.CloseIdleConnections()
		return nil, deploy.Errorf(deploy.KindNotFound, "s3 content store %s: the bucket does not exist: create it first", s.where())
	}
	if err := s.cleanup(ctx); err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("s3 content store %s: %w", s.where(), err)
	}
	return s, nil
}

func (s *Store) where() string {
	scheme := "https"
	if !s.cfg.Secure {
		scheme = "http"
	}
	return fmt.Sprintf("s3://%s/%s (%s://%s)", s.cfg.Bucket, s.cfg.Prefix, scheme, s.cfg.Endpoint)
}

// cleanup aborts incomplete uploads and removes temporary objects older
// than staleAfter.
func (s *Store) cleanup(ctx context.Context) error {
	before := time.Now().Add(-s.staleAfter)
	for u := range s.c.ListIncompleteUploads(ctx, s.cfg.Bucket, s.cfg.Prefix, true) {
		if u.Err != nil && isNotFound(u.Err) {
			break // some servers answer an empty listing with NoSuchUpload
		}
		if u.Err != nil {
			return fmt.Errorf("list incomplete uploads: %w", u.Err)
		}
		if u.Initiated.After(before) {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, u.Key, u.UploadID); err != nil && !isNotFound(err) {
			return fmt.Errorf("abort stale upload %s: %w", u.Key, err)
		}
		s.Cleaned++
	}
	for o := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.cfg.Prefix + tmpDir, Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("list temporary objects: %w", o.Err)
		}
		if o.LastModified.After(before) {
			continue
		}
		if err := s.c.RemoveObject(ctx, s.cfg.Bucket, o.Key, minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove stale temporary object %s: %w", o.Key, err)
		}
		s.Cleaned++
	}
	return nil
}

// Close releases idle connections.
func (s *Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// Bucket and Prefix say where the blobs are.
func (s *Store) Bucket() string { return s.cfg.Bucket }
func (s *Store) Prefix() string { return s.cfg.Prefix }

// Key returns the object key of the blob h.
func (s *Store) Key(h string) string { return s.cfg.Prefix + blobDir + h[:2] + "/" + h }

func (s *Store) corruptKey(h string) string { return s.cfg.Prefix + corruptDir + h }

func isNotFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.StatusCode == http.StatusNotFound || r.Code == minio.NoSuchKey || r.Code == minio.NoSuchUpload
}

func notFound(h string) error { return deploy.Errorf(deploy.KindNotFound, "blob %s not found", h) }

// Stat returns the blob h; KindNotFound if it is not stored.
func (s *Store) Stat(ctx context.Context, h string) (content.Blob, error) {
	info, err := s.stat(ctx, h)
	if err != nil {
		return content.Blob{}, err
	}
	return content.Blob{SHA256: h, Size: info.Size}, nil
}

func (s *Store) stat(ctx context.Context, h string) (minio.ObjectInfo, error) {
	if err := content.CheckHash(h); err != nil {
		return minio.ObjectInfo{}, err
	}
	info, err := s.c.StatObject(ctx, s.cfg.Bucket, s.Key(h), minio.StatObjectOptions{})
	if isNotFound(err) {
		return info, notFound(h)
	}
	if err != nil {
		return info, fmt.Errorf("stat blob: %w", ctxErr(ctx, err))
	}
	return info, nil
}

// ctxErr prefers the context's error, which callers test for, to the
// client's wrapping of it.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// Open opens the blob h for reading: a ranged GET, restarted where Seek
// says, with ctx. KindNotFound if it is not stored.
func (s *Store) Open(ctx context.Context, h string) (content.Object, error) {
	info, err := s.stat(ctx, h)
	if err != nil {
		return nil, err
	}
	return &object{s: s, ctx: ctx, key: s.Key(h), h: h, size: info.Size, mtime: info.LastModified}, nil
}

// Remove deletes the blob h; a missing blob is not an error.
func (s *Store) Remove(ctx context.Context, h string) error {
	if err := content.CheckHash(h); err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.cfg.Bucket, s.Key(h), minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove blob: %w", ctxErr(ctx, err))
	}
	return nil
}

// Walk calls fn for every stored blob in key order, stopping at the first
// error fn returns. Objects under sha256/ not named by their hash are
// skipped.
func (s *Store) Walk(ctx context.Context, fn func(content.BlobInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing when fn fails
	for o := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.cfg.Prefix + blobDir, Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("list blobs: %w", ctxErr(ctx, o.Err))
		}
		h := path.Base(o.Key)
		if !content.ValidHash(h) || o.Key != s.Key(h) {
			continue
		}
		if err := fn(content.BlobInfo{Blob: content.Blob{SHA256: h, Size: o.Size}, ModTime: o.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Verify reads the whole blob h back and compares its hash with its name.
func (s *Store) Verify(ctx context.Context, h string) error {
	obj, err := s.Open(ctx, h)
	if err != nil {
		return err
	}
	defer obj.Close()
	return content.VerifyObject(ctx, obj, h)
}

// SetAside moves the blob h to corrupt/ (a server-side copy, then a
// delete); a blob that is not there is not an error.
func (s *Store) SetAside(ctx context.Context, h string) error {
	info, err := s.stat(ctx, h)
	if deploy.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set aside blob: %w", err)
	}
	if err := s.copy(ctx, s.Key(h), s.corruptKey(h), info.Size); err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("set aside blob %s: %w", h, err)
	}
	if err := s.c.RemoveObject(ctx, s.cfg.Bucket, s.Key(h), minio.RemoveObjectOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("set aside blob %s: %w", h, ctxErr(ctx, err))
	}
	return nil
}

// SetAsideBlob reports whether a blob h was set aside as corrupt.
func (s *Store) SetAsideBlob(ctx context.Context, h string) bool {
	if !content.ValidHash(h) {
		return false
	}
	_, err := s.c.StatObject(ctx, s.cfg.Bucket, s.corruptKey(h), minio.StatObjectOptions{})
	return err == nil
}

// copy copies src to dst inside the bucket on the server side, part by
// part above S3's single-copy limit.
func (s *Store) copy(ctx context.Context, src, dst string, size int64) error {
	d := minio.CopyDestOptions{Bucket: s.cfg.Bucket, Object: dst}
	sr := minio.CopySrcOptions{Bucket: s.cfg.Bucket, Object: src}
	var err error
	if size > maxCopy {
		_, err = s.c.ComposeObject(ctx, d, sr)
	} else {
		_, err = s.c.CopyObject(ctx, d, sr)
	}
	return ctxErr(ctx, err)
}

// Put stores the content of r under its hash and returns it, streaming it
// in parts (see the package comment) while hashing it. Before Put returns
// the blob is complete under its key, so the caller may commit a record
// that references it. On any error or cancellation nothing new is visible:
// the multipart upload is aborted, a temporary object removed. A Put of
// content already stored stores it again (same bytes), which refreshes its
// modification time as the local store's Put does.
func (s *Store) Put(ctx context.Context, r io.Reader, opts content.PutOptions) (content.Blob, error) {
	if opts.ExpectSHA256 != "" {
		if err := content.CheckHash(opts.ExpectSHA256); err != nil {
			return content.Blob{}, fmt.Errorf("expected hash: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return content.Blob{}, err
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	u := &upload{s: s, ctx: ctx, r: r, max: opts.MaxSize, h: sha256.New(), buf: *bp}
	b, err := u.run(opts.ExpectSHA256)
	if err != nil {
		return content.Blob{}, fmt.Errorf("put: %w", err)
	}
	return b, nil
}

// upload is one Put in progress.
type upload struct {
	s   *Store
	ctx context.Context
	r   io.Reader
	max int64
	h   hash.Hash
	buf []byte
	n   int64 // bytes read
	eof bool
}

// fill reads the next part into u.buf, hashing it, and returns its length.
// It sets u.eof at the end of r.
func (u *upload) fill() (int, error) {
	n := 0
	for n < len(u.buf) && !u.eof {
		if err := u.ctx.Err(); err != nil {
			return 0, err
		}
		m, err := u.r.Read(u.buf[n:])
		n += m
		switch {
		case err == io.EOF:
			u.eof = true
		case err != nil && u.ctx.Err() != nil:
			return 0, u.ctx.Err()
		case err != nil:
			return 0, fmt.Errorf("read: %w", err)
		}
	}
	u.n += int64(n)
	if u.max > 0 && u.n > u.max {
		return 0, deploy.Errorf(deploy.KindTooLarge, "content exceeds the limit of %d bytes", u.max)
	}
	u.h.Write(u.buf[:n])
	return n, nil
}

func (u *upload) sum(expect string) (string, error) {
	sum := hex.EncodeToString(u.h.Sum(nil))
	if expect != "" && sum != expect {
		return "", deploy.Errorf(deploy.KindInvalid,
			"content hash mismatch: expected sha256 %s, got %s (%d bytes)", expect, sum, u.n)
	}
	return sum, nil
}

func (u *upload) run(expect string) (content.Blob, error) {
	s := u.s
	n, err := u.fill()
	if err != nil {
		return content.Blob{}, err
	}
	if u.eof { // one part: its hash is known before a byte is sent
		sum, err := u.sum(expect)
		if err != nil {
			return content.Blob{}, err
		}
		// The payload's SHA-256 is signed, so the server refuses bytes
		// that arrive different from those hashed here.
		_, err = s.core.PutObject(u.ctx, s.cfg.Bucket, s.Key(sum), bytes.NewReader(u.buf[:n]), int64(n), "", sum,
			minio.PutObjectOptions{ContentType: "application/octet-stream", DisableContentSha256: true})
		if err != nil {
			return content.Blob{}, fmt.Errorf("store blob: %w", ctxErr(u.ctx, err))
		}
		return content.Blob{SHA256: sum, Size: u.n}, nil
	}

	key := s.cfg.Prefix + tmpDir + "put-" + rand.Text()
	if expect != "" {
		key = s.Key(expect) // completed only if the hash matches
	}
	id, err := s.core.NewMultipartUpload(u.ctx, s.cfg.Bucket, key, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return content.Blob{}, fmt.Errorf("start upload: %w", ctxErr(u.ctx, err))
	}
	completed := false
	defer func() {
		if !completed {
			u.abort(key, id)
		}
	}()
	var parts []minio.CompletePart
	for no := 1; ; no++ {
		if no > maxParts {
			return content.Blob{}, deploy.Errorf(deploy.KindTooLarge, "content exceeds %d parts of %d bytes", maxParts, len(u.buf))
		}
		// Content-MD5 lets the server refuse a part that arrives
		// different (cheaper than signing the payload's SHA-256 again).
		sum := md5.Sum(u.buf[:n])
		p, err := s.core.PutObjectPart(u.ctx, s.cfg.Bucket, key, id, no, bytes.NewReader(u.buf[:n]), int64(n),
			minio.PutObjectPartOptions{Md5Base64: base64.StdEncoding.EncodeToString(sum[:]), DisableContentSha256: true})
		if err != nil {
			return content.Blob{}, fmt.Errorf("upload part %d: %w", no, ctxErr(u.ctx, err))
		}
		parts = append(parts, minio.CompletePart{PartNumber: no, ETag: p.ETag})
		if u.eof {
			break
		}
		if n, err = u.fill(); err != nil {
			return content.Blob{}, err
		}
		if n == 0 && u.eof {
			break
		}
	}
	sum, err := u.sum(expect)
	if err != nil {
		return content.Blob{}, err
	}
	if err := u.ctx.Err(); err != nil {
		return content.Blob{}, err
	}
	if _, err := s.core.CompleteMultipartUpload(u.ctx, s.cfg.Bucket, key, id, parts, minio.PutObjectOptions{}); err != nil {
		return content.Blob{}, fmt.Errorf("complete upload: %w", ctxErr(u.ctx, err))
	}
	completed = true
	if expect == "" {
		err := s.copy(u.ctx, key, s.Key(sum), u.n)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), time.Minute)
		defer cancel()
		if rerr := s.c.RemoveObject(rctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{}); rerr != nil && err == nil {
			err = fmt.Errorf("remove temporary object (Open removes it once stale): %w", rerr)
		}
		if err != nil {
			return content.Blob{}, fmt.Errorf("publish blob: %w", err)
		}
	}
	return content.Blob{SHA256: sum, Size: u.n}, nil
}

// abort ends a multipart upload that will not complete, even when the
// upload's context was cancelled, so its parts do not linger.
func (u *upload) abort(key, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), time.Minute)
	defer cancel()
	_ = u.s.core.AbortMultipartUpload(ctx, u.s.cfg.Bucket, key, id) // else Open's cleanup aborts it once stale
}

// object reads a blob with ranged GETs.
type object struct {
	s     *Store
	ctx   context.Context
	key   string
	h     string
	size  int64
	mtime time.Time

	off  int64
	body io.ReadCloser
}

func (o *object) Size() int64        { return o.size }
func (o *object) ModTime() time.Time { return o.mtime }

func (o *object) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	if o.body == nil {
		opts := minio.GetObjectOptions{}
		if o.off > 0 {
			if err := opts.SetRange(o.off, 0); err != nil {
				return 0, err
			}
		}
		body, _, _, err := o.s.core.GetObject(o.ctx, o.s.cfg.Bucket, o.key, opts)
		if isNotFound(err) {
			return 0, notFound(o.h)
		}
		if err != nil {
			return 0, fmt.Errorf("read blob %s: %w", o.h, ctxErr(o.ctx, err))
		}
		o.body = body
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	if err == io.EOF && o.off < o.size {
		err = io.ErrUnexpectedEOF // shorter than it said: ServeBlob and Verify see a broken read
	}
	return n, err
}

func (o *object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.size
	default:
		return o.off, errors.New("seek: bad whence")
	}
	if offset < 0 {
		return o.off, errors.New("seek: negative position")
	}
	if offset != o.off && o.body != nil {
		o.body.Close()
		o.body = nil
	}
	o.off = offset
	return offset, nil
}

func (o *object) Close() error {
	if o.body != nil {
		err := o.body.Close()
		o.body = nil
		return err
	}
	return nil
}
