// Package s3blob is the blob.Store driver for Amazon S3 and S3-compatible
// servers (SeaweedFS, MinIO, gofakes3), registered for "s3://" URLs and built
// on aws-sdk-go-v2.
//
// URL form:
//
//	s3://bucket/optional/prefix?region=us-east-1&endpoint=http://127.0.0.1:9000&path_style=true
//
// Credentials come from the SDK's standard chain (environment, shared config
// and credentials files, SSO, IMDS, ...). With an endpoint set, path-style
// addressing is the default. Objects larger than the part size (8 MiB) are
// uploaded with a parallel multipart upload, aborted on any failure, so a
// failed put never leaves a visible object.
package s3blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren/blob"
)

func init() {
	blob.RegisterScheme("s3", func(ctx context.Context, u *url.URL) (blob.Store, error) {
		o, err := ParseURL(u)
		if err != nil {
			return nil, err
		}
		return Open(ctx, o)
	})
}

// urlParams are the query parameters an s3:// URL may carry.
var urlParams = []string{"endpoint", "part_size", "path_style", "region"}

// ParseURL reads the Options an s3:// URL describes:
// s3://bucket/prefix?region=R&endpoint=E&path_style=true&part_size=N. A
// parameter it does not know (a typo such as "pathstyle"), or one given
// twice, is an error: a setting never goes silently ignored.
func ParseURL(u *url.URL) (Options, error) {
	var o Options
	if u.Scheme != "s3" {
		return o, fmt.Errorf("s3blob: URL scheme %q, want s3", u.Scheme)
	}
	if u.User != nil || u.Port() != "" || u.Fragment != "" || u.Opaque != "" {
		return o, fmt.Errorf("s3blob: URL %q: want s3://bucket/prefix?params", u.Redacted())
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return o, fmt.Errorf("s3blob: URL query %q: %w", u.RawQuery, err)
	}
	for k, v := range q {
		if !slices.Contains(urlParams, k) {
			return o, fmt.Errorf("s3blob: unknown URL parameter %q (known: %s)", k, strings.Join(urlParams, ", "))
		}
		if len(v) != 1 {
			return o, fmt.Errorf("s3blob: URL parameter %q given %d times", k, len(v))
		}
	}
	o = Options{
		Bucket:   u.Host,
		Prefix:   strings.TrimPrefix(u.Path, "/"),
		Region:   q.Get("region"),
		Endpoint: q.Get("endpoint"),
	}
	if v := q.Get("path_style"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("s3blob: path_style=%q: %w", v, err)
		}
		o.PathStyle = &b
	}
	if v := q.Get("part_size"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("s3blob: part_size=%q: want a positive number of bytes", v)
		}
		o.PartSize = n
	}
	if o.Bucket == "" {
		return o, errors.New("s3blob: URL has no bucket")
	}
	if o.Prefix != "" {
		if err := blob.ValidatePrefix(strings.TrimSuffix(o.Prefix, "/") + "/"); err != nil {
			return o, fmt.Errorf("s3blob: %w", err)
		}
	}
	return o, nil
}

// MinPartSize is S3's smallest allowed part (except the last).
const MinPartSize = 5 << 20

// Options configure a Store. Zero values take the documented defaults.
type Options struct {
	// Bucket is required.
	Bucket string
	// Prefix is prepended to every key ("" or "a/b", a trailing "/" is added).
	Prefix string
	// Region defaults to the SDK's configured region, else "us-east-1".
	Region string
	// Endpoint, when set, sends requests to an S3-compatible server instead of AWS.
	Endpoint string
	// PathStyle selects path-style addressing; nil means true when Endpoint is set.
	PathStyle *bool
	// PartSize is the multipart part size; 0 means 8 MiB, and values below
	// MinPartSize are raised to it.
	PartSize int64
	// Concurrency is the number of parts uploaded at once; 0 means 4.
	Concurrency int
	// Client, when set, is used as is (Region, Endpoint and PathStyle are then
	// only used to build the URL).
	Client *s3.Client
}

// Store is an S3-backed blob.Store, safe for concurrent use.
type Store struct {
	c    *s3.Client
	opts Options
}

var _ blob.Store = (*Store)(nil)

// Open returns a store for the bucket and prefix. It does not contact the
// server; the first request reports an unreachable endpoint or missing bucket.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Bucket == "" {
		return nil, errors.New("s3blob: no bucket")
	}
	if o.Prefix != "" && !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.Prefix != "" {
		if err := blob.ValidatePrefix(o.Prefix); err != nil {
			return nil, fmt.Errorf("s3blob: %w", err)
		}
	}
	if o.PartSize == 0 {
		o.PartSize = 8 << 20
	}
	if o.PartSize < MinPartSize {
		o.PartSize = MinPartSize
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.PathStyle == nil {
		ps := o.Endpoint != ""
		o.PathStyle = &ps
	}
	if o.Client == nil {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3blob: load AWS config: %w", err)
		}
		if o.Region == "" {
			o.Region = cfg.Region
		}
		if o.Region == "" {
			o.Region = "us-east-1"
		}
		o.Client = s3.NewFromConfig(cfg, func(so *s3.Options) {
			so.Region = o.Region
			so.UsePathStyle = *o.PathStyle
			if o.Endpoint != "" {
				so.BaseEndpoint = aws.String(o.Endpoint)
			}
			// Checksums on every request cost a full pass over the body; S3
			// verifies Content-MD5-free uploads by signature anyway.
			so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		})
	}
	return &Store{c: o.Client, opts: o}, nil
}

// Client returns the underlying S3 client.
func (s *Store) Client() *s3.Client { return s.opts.Client }

// URL implements blob.Store.
func (s *Store) URL() string { return s.opts.url() }

// url formats the options as the s3:// URL ParseURL reads back.
func (o Options) url() string {
	u := url.URL{Scheme: "s3", Host: o.Bucket, Path: "/" + strings.TrimSuffix(o.Prefix, "/")}
	q := url.Values{}
	if o.Region != "" {
		q.Set("region", o.Region)
	}
	if o.Endpoint != "" {
		q.Set("endpoint", o.Endpoint)
	}
	if o.PathStyle != nil {
		q.Set("path_style", strconv.FormatBool(*o.PathStyle))
	}
	if o.PartSize != 0 && o.PartSize != 8<<20 {
		q.Set("part_size", strconv.FormatInt(o.PartSize, 10))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Close implements blob.Store.
func (s *Store) Close() error { return nil }

func (s *Store) where() string {
	if s.opts.Endpoint != "" {
		return "s3://" + s.opts.Bucket + " at " + s.opts.Endpoint
	}
	return "s3://" + s.opts.Bucket
}

// wrap maps S3 errors onto the blob sentinels and names the operation.
func (s *Store) wrap(op, key string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("s3blob: %s %q in %s: %w", op, key, s.where(), blob.ErrNotFound)
		case "PreconditionFailed":
			return fmt.Errorf("s3blob: %s %q in %s: %w", op, key, s.where(), blob.ErrExists)
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			if op != "list" && !isBucketErr(err) {
				return fmt.Errorf("s3blob: %s %q in %s: %w", op, key, s.where(), blob.ErrNotFound)
			}
		case http.StatusPreconditionFailed:
			return fmt.Errorf("s3blob: %s %q in %s: %w", op, key, s.where(), blob.ErrExists)
		}
	}
	return fmt.Errorf("s3blob: %s %q in %s: %w", op, key, s.where(), err)
}

func isBucketErr(err error) bool {
	var nb *types.NoSuchBucket
	var ae smithy.APIError
	return errors.As(err, &nb) || (errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket")
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) error {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	// Read up to one part: small objects go in one request.
	first := make([]byte, 0, min(max(opts.Size, 0)+1, s.opts.PartSize+1))
	first, err := readUpTo(r, first, int(s.opts.PartSize)+1)
	if err != nil {
		return fmt.Errorf("s3blob: put %q: read body: %w", key, err)
	}
	if int64(len(first)) <= s.opts.PartSize {
		in := &s3.PutObjectInput{
			Bucket:        aws.String(s.opts.Bucket),
			Key:           aws.String(s.opts.Prefix + key),
			Body:          bytes.NewReader(first),
			ContentLength: aws.Int64(int64(len(first))),
		}
		if opts.IfNotExist {
			in.IfNoneMatch = aws.String("*")
		}
		if _, err := s.c.PutObject(ctx, in); err != nil {
			return s.wrap("put", key, err)
		}
		return nil
	}
	return s.multipart(ctx, key, io.MultiReader(bytes.NewReader(first), r), opts)
}

func readUpTo(r io.Reader, buf []byte, n int) ([]byte, error) {
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

func (s *Store) multipart(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) (err error) {
	full := s.opts.Prefix + key
	if opts.IfNotExist {
		// Not every S3-compatible server honours If-None-Match on completion:
		// check first as well.
		if _, err := s.Stat(ctx, key); err == nil {
			return fmt.Errorf("s3blob: put %q: %w", key, blob.ErrExists)
		}
	}
	up, err := s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.opts.Bucket), Key: aws.String(full),
	})
	if err != nil {
		return s.wrap("put", key, err)
	}
	defer func() {
		if err != nil {
			// Abort with a fresh context: the caller's may be cancelled.
			_, _ = s.c.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{
				Bucket: aws.String(s.opts.Bucket), Key: aws.String(full), UploadId: up.UploadId,
			})
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	var mu sync.Mutex
	var parts []types.CompletedPart
	pool := sync.Pool{New: func() any { b := make([]byte, s.opts.PartSize); return &b }}
	for n := int32(1); ; n++ {
		bp := pool.Get().(*[]byte)
		buf := *bp
		m, rerr := io.ReadFull(r, buf)
		if m == 0 {
			pool.Put(bp)
			if rerr == io.EOF {
				break
			}
		}
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			g.Wait()
			return fmt.Errorf("s3blob: put %q: read body: %w", key, rerr)
		}
		if gctx.Err() != nil {
			pool.Put(bp)
			break
		}
		part := buf[:m]
		g.Go(func() error {
			defer pool.Put(bp)
			out, err := s.c.UploadPart(gctx, &s3.UploadPartInput{
				Bucket: aws.String(s.opts.Bucket), Key: aws.String(full), UploadId: up.UploadId,
				PartNumber: aws.Int32(n), Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(m)),
			})
			if err != nil {
				return err
			}
			mu.Lock()
			parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
			mu.Unlock()
			return nil
		})
		if rerr != nil {
			break
		}
	}
	if err := g.Wait(); err != nil {
		return s.wrap("put", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3blob: put %q: %w", key, err)
	}
	sortParts(parts)
	in := &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(s.opts.Bucket), Key: aws.String(full), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if opts.IfNotExist {
		in.IfNoneMatch = aws.String("*")
	}
	if _, err := s.c.CompleteMultipartUpload(ctx, in); err != nil {
		return s.wrap("put", key, err)
	}
	return nil
}

func sortParts(p []types.CompletedPart) {
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && *p[j].PartNumber < *p[j-1].PartNumber; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
}

type body struct {
	io.ReadCloser
	size int64
}

func (b body) Size() int64 { return b.size }

// Get implements blob.Store. The reader has a Size() int64 method.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := blob.ValidateKey(key); err != nil {
		return nil, err
	}
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.opts.Bucket), Key: aws.String(s.opts.Prefix + key)})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	return body{out.Body, aws.ToInt64(out.ContentLength)}, nil
}

// Range implements blob.Store with a ranged GET (the Range header); the
// object's size comes from the answer's Content-Range.
func (s *Store) Range(ctx context.Context, key string, off, n int64) (blob.RangeReader, error) {
	if err := blob.CheckRange(key, off); err != nil {
		return nil, err
	}
	if n == 0 {
		a, err := s.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		return rangeBody{io.NopCloser(strings.NewReader("")), a.Size}, nil
	}
	hdr := fmt.Sprintf("bytes=%d-", off)
	if n > 0 {
		hdr += strconv.FormatInt(off+n-1, 10)
	}
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.opts.Bucket), Key: aws.String(s.opts.Prefix + key), Range: aws.String(hdr)})
	if err != nil {
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable {
			// off is at or past the end: no bytes, and the size from a HEAD.
			a, serr := s.Stat(ctx, key)
			if serr != nil {
				return nil, serr
			}
			return rangeBody{io.NopCloser(strings.NewReader("")), a.Size}, nil
		}
		return nil, s.wrap("range", key, err)
	}
	size := int64(-1)
	if cr := aws.ToString(out.ContentRange); cr != "" {
		// "bytes 0-99/12345"
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if v, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
				size = v
			}
		}
	}
	if size < 0 {
		// A server that ignored the range sent the whole object.
		size = aws.ToInt64(out.ContentLength)
		if off > 0 || (n >= 0 && n < size) {
			out.Body.Close()
			return nil, fmt.Errorf("s3blob: range %q in %s: the server answered without Content-Range", key, s.where())
		}
	}
	return rangeBody{out.Body, size}, nil
}

type rangeBody struct {
	io.ReadCloser
	size int64
}

func (b rangeBody) ObjectSize() int64 { return b.size }

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Attrs, error) {
	if err := blob.ValidateKey(key); err != nil {
		return blob.Attrs{}, err
	}
	out, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.opts.Bucket), Key: aws.String(s.opts.Prefix + key)})
	if err != nil {
		return blob.Attrs{}, s.wrap("stat", key, err)
	}
	return blob.Attrs{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// List implements blob.Store.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[blob.Attrs, error] {
	return func(yield func(blob.Attrs, error) bool) {
		if err := blob.ValidatePrefix(prefix); err != nil {
			yield(blob.Attrs{}, err)
			return
		}
		p := s3.NewListObjectsV2Paginator(s.c, &s3.ListObjectsV2Input{
			Bucket: aws.String(s.opts.Bucket), Prefix: aws.String(s.opts.Prefix + prefix),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				yield(blob.Attrs{}, s.wrap("list", prefix, err))
				return
			}
			for _, o := range page.Contents {
				k := strings.TrimPrefix(aws.ToString(o.Key), s.opts.Prefix)
				if !yield(blob.Attrs{Key: k, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}, nil) {
					return
				}
			}
		}
	}
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidateKey(key); err != nil {
		return err
	}
	_, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.opts.Bucket), Key: aws.String(s.opts.Prefix + key)})
	if err != nil {
		if e := s.wrap("delete", key, err); errors.Is(e, blob.ErrNotFound) {
			return nil
		}
		return s.wrap("delete", key, err)
	}
	return nil
}

var _ blob.BatchDeleter = (*Store)(nil)

// DeleteBatch implements blob.BatchDeleter with one DeleteObjects request
// (up to blob.MaxDeleteBatch keys; S3 takes 1,000). A key S3 could not
// delete is an error naming it.
func (s *Store) DeleteBatch(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if len(keys) > blob.MaxDeleteBatch {
		return fmt.Errorf("s3blob: delete %d keys in one request (at most %d)", len(keys), blob.MaxDeleteBatch)
	}
	objs := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		if err := blob.ValidateKey(k); err != nil {
			return err
		}
		objs[i] = types.ObjectIdentifier{Key: aws.String(s.opts.Prefix + k)}
	}
	out, err := s.c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(s.opts.Bucket),
		Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)}})
	if err != nil {
		return s.wrap("delete", keys[0], err)
	}
	for _, e := range out.Errors {
		if code := aws.ToString(e.Code); code != "NoSuchKey" {
			return fmt.Errorf("s3blob: delete %q from %s: %s: %s", strings.TrimPrefix(aws.ToString(e.Key), s.opts.Prefix), s.where(), code, aws.ToString(e.Message))
		}
	}
	return nil
}
