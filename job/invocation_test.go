package job_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/memblob"
	"github.com/wrenml/wren/job"
)

// FuzzParseInvocation: no payload makes the parser panic, and every
// invocation it accepts names only keys inside its job's prefix.
func FuzzParseInvocation(f *testing.F) {
	good, _ := json.Marshal(job.Invocation{Store: "file:///tmp/s", Job: "20261128-1-ab", Task: "t", Calls: []job.Call{{Index: 3, Attempt: 1, RecordErrors: true}}, Timeout: 5})
	f.Add(good)
	for _, s := range []string{
		`{"store":"mem://x","job":"../../etc","task":"t","calls":[{"i":0}]}`,
		`{"store":"mem://x","job":"a/b","task":"t","calls":[{"i":0}]}`,
		`{"store":"mem://x","job":"j","task":"t","calls":[{"i":-1}]}`,
		`{"store":"mem://x","job":".wren-tmp-1","task":"t","calls":[{"i":0,"a":2}]}`,
		`{"store":"","job":"j","task":"t","calls":[]}`,
		`not json`,
		`{"store":"mem://x","job":"j","task":"t","calls_key":"jobs/j/invocations/000000.0"}`,
		`{"store":"mem://x","job":"j","task":"t","calls_key":"jobs/other/invocations/000000.0"}`,
		`{"store":"mem://x","job":"j","task":"t","calls_key":"jobs/j/invocations/../../../code/x"}`,
		`{"store":"mem://x","job":"j","task":"t","calls_key":"jobs/j/invocations/a/b"}`,
		`{"store":"mem://x","job":"j","task":"t","calls_key":"jobs/j/invocations/x","calls":[{"i":0}]}`,
		`{"store":"mem://x","job":"j","task":"t","code":"../x","calls":[{"i":0}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := job.ParseInvocation(data)
		if err != nil {
			return
		}
		prefix := job.JobPrefix(inv.Job)
		if k := inv.CallsKey; k != "" && (blob.ValidateKey(k) != nil || !strings.HasPrefix(k, job.InvocationPrefix(inv.Job)) || strings.Contains(k, "..")) {
			t.Fatalf("accepted invocation names calls object %q", k)
		}
		if inv.Code != "" && !job.IsHash(inv.Code) {
			t.Fatalf("accepted code hash %q", inv.Code)
		}
		for _, c := range inv.Calls {
			for _, k := range []string{job.InputKey(inv.Job, c.Index), job.OutputKey(inv.Job, c.Index, c.Attempt), job.StatusKey(inv.Job, c.Index)} {
				if err := blob.ValidateKey(k); err != nil || !strings.HasPrefix(k, prefix) || strings.Contains(strings.TrimPrefix(k, prefix), "..") {
					t.Fatalf("accepted invocation names key %q (%v)", k, err)
				}
			}
		}
	})
}

// TestInvocationCallsObject: the calls of an invocation kept in the store
// are read, checked as the payload's would be, and confined to the job.
func TestInvocationCallsObject(t *testing.T) {
	for name, c := range map[string]struct {
		payload string
		ok      bool
	}{
		"inside the job":     {`{"store":"mem://x","job":"j","task":"t","calls_key":"jobs/j/invocations/000000.0"}`, true},
		"another job":        {`{"store":"mem://x","job":"j","task":"t","calls_key":"jobs/k/invocations/000000.0"}`, false},
		"escaping":           {`{"store":"mem://x","job":"j","task":"t","calls_key":"jobs/j/invocations/../in/x"}`, false},
		"nested":             {`{"store":"mem://x","job":"j","task":"t","calls_key":"jobs/j/invocations/a/b"}`, false},
		"empty name":         {`{"store":"mem://x","job":"j","task":"t","calls_key":"jobs/j/invocations/"}`, false},
		"both":               {`{"store":"mem://x","job":"j","task":"t","calls_key":"jobs/j/invocations/x","calls":[{"i":0}]}`, false},
		"code not a hash":    {`{"store":"mem://x","job":"j","task":"t","code":"abc","calls":[{"i":0}]}`, false},
		"code a hash":        {`{"store":"mem://x","job":"j","task":"t","code":"` + strings.Repeat("ab", 32) + `","calls":[{"i":0}]}`, true},
		"code in upper case": {`{"store":"mem://x","job":"j","task":"t","code":"` + strings.Repeat("AB", 32) + `","calls":[{"i":0}]}`, false},
	} {
		if _, err := job.ParseInvocation([]byte(c.payload)); (err == nil) != c.ok {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	ctx := context.Background()
	st := memblob.New()
	inv, err := job.ParseInvocation([]byte(`{"store":"mem://x","job":"j","task":"t","calls_key":"jobs/j/invocations/000000.0"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`not json`, `[]`, `[{"i":-1}]`, `[{"i":0,"in":{"k":"jobs/other/in/pack-000000","o":0,"n":1,"s":9}}]`} {
		blob.PutBytes(ctx, st, inv.CallsKey, []byte(bad), blob.PutOptions{})
		cp := *inv
		if err := job.LoadCalls(ctx, st, &cp); err == nil {
			t.Errorf("calls object %s accepted", bad)
		}
	}
	blob.PutBytes(ctx, st, inv.CallsKey, []byte(`[{"i":4,"a":1},{"i":5}]`), blob.PutOptions{})
	if err := job.LoadCalls(ctx, st, inv); err != nil || len(inv.Calls) != 2 || inv.Calls[1].Index != 5 || inv.CallsKey != "" {
		t.Fatalf("loaded %+v, %v", inv, err)
	}
	missing := &job.Invocation{Store: "mem://x", Job: "j", Task: "t", CallsKey: "jobs/j/invocations/gone"}
	if err := job.LoadCalls(ctx, st, missing); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a missing calls object: %v", err)
	}
}
