package fileblob_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/blobtest"
	"github.com/wrenml/wren/blob/fileblob"
)

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := fileblob.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, blobtest.Options{Reopen: true})
}

// TestNoEscape checks that no key reaches a file outside the root, and that
// failed puts leave no temporary files behind.
func TestNoEscape(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "store")
	s, err := fileblob.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(parent, "secret")
	os.WriteFile(secret, []byte("s"), 0o600)
	ctx := context.Background()
	for _, k := range []string{"../secret", "x/../../secret", "/" + secret} {
		if _, err := s.Get(ctx, k); err == nil {
			t.Errorf("Get(%q) reached outside the root", k)
		}
		if err := blob.PutBytes(ctx, s, k, []byte("overwrite"), blob.PutOptions{}); err == nil {
			t.Errorf("Put(%q) succeeded", k)
		}
	}
	if b, _ := os.ReadFile(secret); string(b) != "s" {
		t.Fatal("secret was overwritten")
	}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if fi != nil && strings.Contains(fi.Name(), blob.TempPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func TestOpenURL(t *testing.T) {
	dir := t.TempDir()
	s, err := blob.Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.(*fileblob.Store).Root(); got != dir {
		t.Fatalf("root = %q, want %q", got, dir)
	}
	if _, err := blob.Open(context.Background(), "nope://x"); err == nil || !strings.Contains(err.Error(), "nope://x") {
		t.Fatalf("unknown scheme: %v, want an error naming the URL", err)
	}
}

// TestSyncModes: user data is fsynced by default, a running job's
// ephemeral objects are not; sync=always and sync=never in the URL change
// that, and the URL keeps the mode.
func TestSyncModes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, c := range []struct {
		url               string
		durable, ephemera int64 // fsyncs of a durable and of an ephemeral put
	}{
		{"file://" + dir, 1, 0},
		{"file://" + dir + "?sync=auto", 1, 0},
		{"file://" + dir + "?sync=always", 1, 1},
		{"file://" + dir + "?sync=never", 0, 0},
	} {
		s, err := blob.Open(ctx, c.url)
		if err != nil {
			t.Fatal(err)
		}
		n0 := fileblob.Syncs()
		blob.PutBytes(ctx, s, "d", []byte("x"), blob.PutOptions{})
		n1 := fileblob.Syncs()
		blob.PutBytes(ctx, s, "e", []byte("x"), blob.PutOptions{Ephemeral: true})
		n2 := fileblob.Syncs()
		if n1-n0 != c.durable || n2-n1 != c.ephemera {
			t.Errorf("%s: %d fsyncs for a durable put, %d for an ephemeral one; want %d and %d", c.url, n1-n0, n2-n1, c.durable, c.ephemera)
		}
		s2, err := blob.Open(ctx, s.URL())
		if err != nil || s2.URL() != s.URL() {
			t.Errorf("%s: reopened as %v, %v", c.url, s2, err)
		}
	}
	for _, bad := range []string{"?sync=sometimes", "?sync=always&sync=never", "?fsync=always"} {
		if _, err := blob.Open(ctx, "file://"+dir+bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestMain lets the test binary serve as a writer killed mid-put
// (TestKilledWriters).
func TestMain(m *testing.M) {
	if spec := os.Getenv("FILEBLOB_TEST_WRITER"); spec != "" {
		os.Exit(writer(spec))
	}
	os.Exit(m.Run())
}

// writer puts an object whose reader sends 4 MiB, says so on stdout, then
// blocks until the process is killed. spec is "mode dir key".
func writer(spec string) int {
	f := strings.Fields(spec)
	s, err := fileblob.Open(f[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r := io.MultiReader(bytes.NewReader(make([]byte, 4<<20)), &blockAfter{})
	ctx := context.Background()
	switch f[0] {
	case "put":
		err = s.Put(ctx, f[2], r, blob.PutOptions{})
	case "put-if-absent":
		err = s.Put(ctx, f[2], r, blob.PutOptions{IfNotExist: true})
	}
	fmt.Fprintln(os.Stderr, "writer returned:", err)
	return 1
}

// blockAfter announces that the bytes before it were read, then blocks.
type blockAfter struct{}

func (*blockAfter) Read(p []byte) (int, error) {
	fmt.Println("writing")
	time.Sleep(time.Hour)
	return 0, io.EOF
}

// TestKilledWriters: a writer SIGKILLed in the middle of a put, however it
// puts, leaves no temporary file (two kills during a sort left 31 MB of
// them that nothing would ever remove); stale temporaries from elsewhere
// are swept.
func TestKilledWriters(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []string{"put", "put", "put-if-absent", "put-if-absent"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FILEBLOB_TEST_WRITER="+mode+" "+dir+" jobs/j/shuffle/map-000001")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "writing\n" {
			t.Fatalf("writer said %q, %v", line, err)
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	var left []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if fi != nil && !fi.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("killed writers left %v", left)
	}

	// Temporaries of writers killed elsewhere (no O_TMPFILE there): the
	// stale ones go, a fresh one (a live put's) stays, objects stay.
	s, err := fileblob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := blob.PutBytes(ctx, s, "jobs/j/status/000001", []byte("{}"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{"jobs/j/" + blob.TempPrefix + "a", "jobs/j/shuffle/" + blob.TempPrefix + "b", blob.TempPrefix + "c"} {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, []byte("partial"), 0o644)
		os.Chtimes(full, old, old)
	}
	fresh := filepath.Join(dir, "jobs/j", blob.TempPrefix+"fresh")
	os.WriteFile(fresh, []byte("being written"), 0o644)
	n, err := s.SweepTemp(ctx, blob.StaleTemp)
	if err != nil || n != 3 {
		t.Fatalf("swept %d, %v; want 3", n, err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("a fresh temporary was swept: %v", err)
	}
	if b, err := blob.ReadAll(ctx, s, "jobs/j/status/000001"); err != nil || string(b) != "{}" {
		t.Fatalf("an object was swept: %q, %v", b, err)
	}
}

// TestPutsWhileDeletesEmptyDirs: a Delete removes the directories it
// empties; puts into the same directory at that moment still land (an
// unnamed file does not keep its directory, which the put makes again).
func TestPutsWhileDeletesEmptyDirs(t *testing.T) {
	s, err := fileblob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				k := fmt.Sprintf("jobs/j/status/%d-%d", g, i)
				opts := blob.PutOptions{IfNotExist: i%2 == 0}
				if err := blob.PutBytes(ctx, s, k, []byte("x"), opts); err != nil {
					errs <- err
					return
				}
				if err := s.Delete(ctx, k); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
