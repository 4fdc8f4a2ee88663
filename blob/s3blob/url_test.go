package s3blob

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	good := map[string]Options{
		"s3://b":                               {Bucket: "b"},
		"s3://b/p/q?region=eu-west-1":          {Bucket: "b", Prefix: "p/q", Region: "eu-west-1"},
		"s3://b?endpoint=http://127.0.0.1:9":   {Bucket: "b", Endpoint: "http://127.0.0.1:9"},
		"s3://b?part_size=6291456":             {Bucket: "b", PartSize: 6 << 20},
		"s3://b?path_style=false&region=x-y-1": {Bucket: "b", Region: "x-y-1", PathStyle: new(bool)},
	}
	for raw, want := range good {
		u, _ := url.Parse(raw)
		got, err := ParseURL(u)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, %v; want %+v", raw, got, err, want)
		}
	}
	bad := map[string]string{
		"s3://b?pathstyle=true":    `unknown URL parameter "pathstyle"`,
		"s3://b?region=a&region=b": "given 2 times",
		"s3://b?path_style=maybe":  "path_style",
		"s3://b?part_size=-4":      "part_size",
		"s3:///prefix":             "no bucket",
		"s3://b/../x":              "invalid key",
		"s3://user:pw@b/x":         "want s3://bucket",
		"s3://b:99/x":              "want s3://bucket",
		"s3://b?region=x%zz":       "URL query",
		"file://b":                 "scheme",
	}
	for raw, want := range bad {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		if _, err := ParseURL(u); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error mentioning %q", raw, err, want)
		}
	}
}

// FuzzParseURL: no URL makes the parser panic, and every URL it accepts
// formats back (Store.URL) to the same options.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"s3://bucket/prefix?region=us-east-1&endpoint=http://127.0.0.1:9000&path_style=true",
		"s3://b?part_size=5242880", "s3://b/a/../b", "s3://b?pathstyle=1", "s3://b/%2e%2e/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		o, err := ParseURL(u)
		if err != nil {
			return
		}
		if o.Bucket == "" {
			t.Fatalf("%q: accepted without a bucket", raw)
		}
		u2, err := url.Parse(o.url())
		if err != nil {
			t.Fatalf("%q: formatted URL %q does not parse: %v", raw, o.url(), err)
		}
		o2, err := ParseURL(u2)
		if err != nil {
			t.Fatalf("%q: formatted URL %q refused: %v", raw, o.url(), err)
		}
		o.Prefix, o2.Prefix = strings.TrimSuffix(o.Prefix, "/"), strings.TrimSuffix(o2.Prefix, "/")
		if !reflect.DeepEqual(o, o2) {
			t.Fatalf("%q: round trip %+v -> %q -> %+v", raw, o, o.url(), o2)
		}
	})
}
