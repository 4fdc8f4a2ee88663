// Package testenv starts the real components that tests need on loopback:
// an S3-compatible server and redis-server processes on free ports.
package testenv

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is an S3-compatible server listening on loopback.
type S3 struct {
	// Endpoint is the server's base URL, e.g. "http://127.0.0.1:41234".
	Endpoint string
	srv      *httptest.Server
}

// StartS3 starts gofakes3 behind a real HTTP listener on 127.0.0.1, sets
// static credentials in the environment (inherited by worker processes) and
// stops the server when the test ends. With $WREN_TEST_WEED naming a
// SeaweedFS weed binary (make test-s3), it starts a real S3 server instead,
// which checks signatures, multipart uploads and conditional puts.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	SetS3Env(t)
	if weed := os.Getenv("WREN_TEST_WEED"); weed != "" {
		return startWeed(t, weed)
	}
	faker := gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewServer(faker.Server())
	t.Cleanup(srv.Close)
	return &S3{Endpoint: srv.URL, srv: srv}
}

// SetS3Env sets static test credentials and disables the EC2 metadata lookup.
func SetS3Env(t testing.TB) {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":         "wren-test",
		"AWS_SECRET_ACCESS_KEY":     "wren-test-secret",
		"AWS_REGION":                "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		if os.Getenv(k) == "" || k != "AWS_REGION" {
			t.Setenv(k, v)
		}
	}
}

// Client returns an S3 client for the server.
func (s *S3) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("wren-test", "wren-test-secret", ""),
		HTTPClient:   http.DefaultClient,
	})
}

// CreateBucket creates a bucket and fails the test on error.
func (s *S3) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %q: %v", name, err)
	}
}
