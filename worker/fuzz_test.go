package worker_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/worker"
)

// FuzzParseInvocation: no payload makes the parser panic, and every
// invocation it accepts names only keys inside its job's prefix.
func FuzzParseInvocation(f *testing.F) {
	good, _ := json.Marshal(worker.Invocation{Store: "file:///tmp/s", Job: "20261128-1-ab", Task: "t", Calls: []worker.Call{{Index: 3, Attempt: 1, RecordErrors: true}}, Timeout: 5})
	f.Add(good)
	for _, s := range []string{
		`{"store":"mem://x","job":"../../etc","task":"t","calls":[{"i":0}]}`,
		`{"store":"mem://x","job":"a/b","task":"t","calls":[{"i":0}]}`,
		`{"store":"mem://x","job":"j","task":"t","calls":[{"i":-1}]}`,
		`{"store":"mem://x","job":".wren-tmp-1","task":"t","calls":[{"i":0,"a":2}]}`,
		`{"store":"","job":"j","task":"t","calls":[]}`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := worker.ParseInvocation(data)
		if err != nil {
			return
		}
		prefix := worker.JobPrefix(inv.Job)
		for _, c := range inv.Calls {
			for _, k := range []string{worker.InputKey(inv.Job, c.Index), worker.OutputKey(inv.Job, c.Index, c.Attempt), worker.StatusKey(inv.Job, c.Index)} {
				if err := blob.ValidateKey(k); err != nil || !strings.HasPrefix(k, prefix) || strings.Contains(strings.TrimPrefix(k, prefix), "..") {
					t.Fatalf("accepted invocation names key %q (%v)", k, err)
				}
			}
		}
	})
}
