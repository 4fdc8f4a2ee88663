package remote

import (
	"errors"
	"testing"
)

// TestCheckStore: a store matches an allowed one by scheme, bucket or
// host, prefix or path, and S3 endpoint; other parameters do not matter.
func TestCheckStore(t *testing.T) {
	allowed := []string{"s3://jobs/wren?endpoint=http://10.0.0.5:9000", "s3://other/team-a"}
	for u, ok := range map[string]bool{
		"s3://jobs/wren?endpoint=http://10.0.0.5:9000":                    true,
		"s3://jobs/wren/?endpoint=http://10.0.0.5:9000/&region=us-east-1": true,
		"s3://JOBS/wren?endpoint=http://10.0.0.5:9000&path_style=true":    true,
		"s3://other/team-a":                                                         true,
		"s3://other/team-a?region=eu-west-1":                                        true,
		"s3://jobs/wren":                                                            false, // no endpoint: AWS, not the server allowed
		"s3://jobs/wren?endpoint=http://evil.example":                               false,
		"s3://jobs/wrenx?endpoint=http://10.0.0.5:9000":                             false,
		"s3://jobs/wren/sub?endpoint=http://10.0.0.5:9000":                          false,
		"s3://other/team-a?endpoint=http://10.0.0.5:9000":                           false,
		"s3://other/team-b":                                                         false,
		"file:///tmp/x":                                                             false,
		"s3://u:p@jobs/wren?endpoint=http://10.0.0.5:9000":                          false,
		"s3://jobs/wren?endpoint=http://10.0.0.5:9000&endpoint=http://evil.example": false,
		"%":  false,
		"":   false,
		"s3": false,
	} {
		err := CheckStore(u, allowed)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrStoreNotAllowed)) {
			t.Errorf("%q: %v, want allowed %v", u, err, ok)
		}
	}
	if err := CheckStore("s3://jobs/wren", nil); !errors.Is(err, ErrStoreNotAllowed) {
		t.Fatalf("nothing allowed: %v", err)
	}
}
