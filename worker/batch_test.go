package worker

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/fileblob"
	"github.com/wrenml/wren/job"
)

// TestStatusGroupCommit: statuses written together share one object on
// fileblob, and each key still wins or loses on its own: a call whose
// status another attempt holds loses (its output is deleted), the others
// win, and every status reads back as its own.
func TestStatusGroupCommit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := fileblob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Another attempt (5) already holds call 1.
	if err := writeStatus(ctx, st, "j", &job.Status{Call: 1, Attempt: 5, OK: true, Inline: []byte("theirs")}); err != nil {
		t.Fatal(err)
	}
	inv := &job.Invocation{Store: st.URL(), Job: "j", Task: "t", InlineMax: 8}
	rep := &job.Reply{}
	var ws []*callWrite
	for i, out := range []string{"zero", "one, too long to inline", "two"} {
		ws = append(ws, &callWrite{ctx: ctx, st: st, inv: inv, c: job.Call{Index: i, RecordErrors: true}, s: &job.Status{Call: i, Started: 1}, out: []byte(out), rep: rep})
	}
	writeCalls(ws)
	for i, want := range []bool{true, false, true} {
		if ws[i].s.Won != want || !ws[i].s.OK {
			t.Fatalf("call %d: won %v, ok %v; want won %v", i, ws[i].s.Won, ws[i].s.OK, want)
		}
	}
	if len(rep.Statuses) != 3 {
		t.Fatalf("%d statuses in the reply", len(rep.Statuses))
	}
	if _, err := st.Stat(ctx, job.OutputKey("j", 1, 0)); err == nil {
		t.Fatal("the losing attempt's output was kept")
	}
	for i, want := range []string{"zero", "theirs", "two"} {
		s, ok, err := job.ReadStatus(ctx, st, "j", i)
		if err != nil || !ok || s.Call != i || string(s.Inline) != want {
			t.Fatalf("status %d: %+v, %v, %v", i, s, ok, err)
		}
	}
	// Calls 0 and 2 share one file.
	var a, b syscall.Stat_t
	syscall.Stat(filepath.Join(dir, job.StatusKey("j", 0)), &a)
	syscall.Stat(filepath.Join(dir, job.StatusKey("j", 2)), &b)
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Fatalf("statuses 0 and 2: inodes %d and %d, %d links", a.Ino, b.Ino, a.Nlink)
	}
	if ws[0].s.Puts+ws[2].s.Puts != 1 {
		t.Fatalf("%d puts for the two statuses written together", ws[0].s.Puts+ws[2].s.Puts)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "jobs", "j", "status"))
	for _, e := range left {
		if len(e.Name()) > len(blob.TempPrefix) && e.Name()[:len(blob.TempPrefix)] == blob.TempPrefix {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}
