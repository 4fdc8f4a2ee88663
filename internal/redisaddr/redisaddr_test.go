package redisaddr

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for raw, want := range map[string]Addr{
		"redis://127.0.0.1:6379":                           {Hosts: []string{"127.0.0.1:6379"}},
		"redis://a:1,b:2,c:3":                              {Hosts: []string{"a:1", "b:2", "c:3"}},
		"redis://user:pw@a:1,b:2?cluster=1":                {Hosts: []string{"a:1", "b:2"}, Username: "user", Password: "pw", Cluster: true},
		"redis://secret@a:1":                               {Hosts: []string{"a:1"}, Password: "secret"},
		"rediss://a:1":                                     {Hosts: []string{"a:1"}, TLS: true},
		"redis://a:1?tls=1&cluster=0":                      {Hosts: []string{"a:1"}, TLS: true},
		"redis://wren-job-ab:p%40ss@[::1]:6379,[::1]:6380": {Hosts: []string{"[::1]:6379", "[::1]:6380"}, Username: "wren-job-ab", Password: "p@ss"},
	} {
		a, err := Parse(raw)
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		if strings.Join(a.Hosts, ",") != strings.Join(want.Hosts, ",") || a.Username != want.Username || a.Password != want.Password || a.Cluster != want.Cluster || a.TLS != want.TLS {
			t.Errorf("%s: %+v, want %+v", raw, a, want)
		}
		back, err := Parse(a.String())
		if err != nil || back.String() != a.String() {
			t.Errorf("%s: round trip %q, %v", raw, a.String(), err)
		}
		if want.Password != "" && strings.Contains(a.Redacted(), want.Password) {
			t.Errorf("%s: Redacted shows the password: %s", raw, a.Redacted())
		}
	}
	for _, raw := range []string{"", "http://a:1", "redis://", "redis://a", "redis://a:0", "redis://a:1/2", "redis://a:1?db=2", "redis://a:1?cluster=yes", "redis://a:1?cluster=1&cluster=1", "redis://:1", "redis://a:1#x"} {
		if _, err := Parse(raw); !errors.Is(err, ErrBadURL) {
			t.Errorf("%q: %v, want ErrBadURL", raw, err)
		}
	}
}

func TestShardOf(t *testing.T) {
	if ShardOf("x", 1) != 0 || ShardOf("x", 0) != 0 {
		t.Fatal("one shard")
	}
	// Keys with the same tag share a shard; keys spread over shards.
	if ShardOf("wps:{m/3}:w", 7) != ShardOf("wps:{m/3}:p:abc", 7) {
		t.Fatal("same tag, other shards")
	}
	seen := map[int]bool{}
	for i := range 100 {
		seen[ShardOf("mapreduce/j/shuffle/map-"+strings.Repeat("x", i), 4)] = true
	}
	if len(seen) != 4 {
		t.Fatalf("100 keys on %d of 4 shards", len(seen))
	}
}

// FuzzParse: no URL makes Parse panic; an accepted one formats to a URL
// that parses back to the same address, and its redacted form holds no
// password.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"redis://127.0.0.1:6379",
		"redis://u:p%40ss@h1:1,h2:2?cluster=1&tls=1",
		"rediss://:secret@[::1]:6380",
		"redis://h:1?cluster=1&cluster=0",
		"redis://h",
		"redis://h:1,,h:2",
		"http://h:1",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		a, err := Parse(raw)
		if err != nil {
			return
		}
		if len(a.Hosts) == 0 {
			t.Fatalf("%q: accepted with no host", raw)
		}
		b, err := Parse(a.String())
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("%q -> %q -> %+v, %v; want %+v", raw, a.String(), b, err, a)
		}
		if a.Password != "" && strings.Contains(a.Redacted(), a.Password) && !strings.Contains(a.Redacted(), "xxxxx") {
			t.Fatalf("%q: redacted %q shows the password", raw, a.Redacted())
		}
	})
}
