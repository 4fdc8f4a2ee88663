package ps_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wrenml/wren/blob/memblob"
	"github.com/wrenml/wren/internal/redisserver"
	"github.com/wrenml/wren/internal/testenv"
	"github.com/wrenml/wren/ps"
)

func open(t *testing.T, shards, blockSize int) (*ps.Client, []*redisserver.Server) {
	t.Helper()
	servers := testenv.StartRedis(t, shards, redisserver.Options{})
	s, err := ps.Open(context.Background(), ps.Options{Addrs: testenv.Addrs(servers), BlockSize: blockSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, servers
}

// addRef is the Go float32 reference of one dense add.
func addRef(w float32, scale float64, d float32) float32 {
	return float32(float64(w) + float64(scale*float64(d)))
}

func TestDenseAgainstReference(t *testing.T) {
	for _, shards := range []int{1, 3} {
		t.Run(fmt.Sprint(shards, "shards"), func(t *testing.T) {
			s, _ := open(t, shards, 16)
			ctx := context.Background()
			const n = 203 // the last block is partial
			m, err := s.Create(ctx, "dense", n, ps.Normal(0, 1, 7))
			if err != nil {
				t.Fatal(err)
			}
			ref, err := m.Pull(ctx, 0, n)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 1))
			for range 200 {
				lo := rng.IntN(n)
				l := 1 + rng.IntN(n-lo)
				d := make([]float32, l)
				for i := range d {
					d[i] = float32(rng.NormFloat64())
				}
				scale := rng.NormFloat64() * 0.3
				if err := m.Push(ctx, lo, d, scale); err != nil {
					t.Fatal(err)
				}
				for i := range d {
					ref[lo+i] = addRef(ref[lo+i], scale, d[i])
				}
			}
			got, err := m.Pull(ctx, 0, n)
			if err != nil {
				t.Fatal(err)
			}
			for i := range ref {
				if got[i] != ref[i] {
					t.Fatalf("w[%d] = %v, reference %v", i, got[i], ref[i])
				}
			}
			// Partial ranges across block edges.
			for _, r := range [][2]int{{0, 1}, {15, 17}, {5, 200}, {190, 203}, {50, 50}} {
				part, err := m.Pull(ctx, r[0], r[1])
				if err != nil || !slices.Equal(part, ref[r[0]:r[1]]) {
					t.Fatalf("Pull(%d, %d) = %v, %v", r[0], r[1], part, err)
				}
			}
			if v, err := m.Version(ctx); err != nil || v != 200 {
				t.Fatalf("version = %d, %v; want 200", v, err)
			}
		})
	}
}

func TestSparseAgainstReference(t *testing.T) {
	// Block size 32 takes the script's per-pair path for every push; 128
	// also its whole-block path (a block's pairs >= 1/8 of its floats).
	for _, c := range []struct{ shards, block int }{{1, 32}, {3, 32}, {1, 128}, {3, 128}} {
		shards := c.shards
		t.Run(fmt.Sprint(shards, "shards-block", c.block), func(t *testing.T) {
			s, _ := open(t, shards, c.block)
			ctx := context.Background()
			const n = 1000
			m, err := s.Create(ctx, "sparse", n, ps.Normal(0, 1, 3))
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := m.Pull(ctx, 0, n)
			rng := rand.New(rand.NewPCG(2, 2))
			for it := range 100 {
				k := 1 + rng.IntN(40)
				if it%10 == 0 {
					k = 600 // many pairs per block: the script's dense path
				}
				idx := make([]int, k)
				d := make([]float32, k)
				for j := range idx {
					idx[j] = rng.IntN(n)
					if j > 0 && rng.IntN(5) == 0 {
						idx[j] = idx[j-1] // repeated index
					}
					d[j] = float32(rng.NormFloat64())
				}
				scale := -0.05 + rng.Float64()*0.1
				if err := m.PushSparse(ctx, idx, d, scale); err != nil {
					t.Fatal(err)
				}
				// Reference: per index, in the given order, in float64, rounded once.
				acc := map[int]float64{}
				for j, i := range idx {
					if _, ok := acc[i]; !ok {
						acc[i] = float64(ref[i])
					}
					acc[i] += float64(scale * float64(d[j]))
				}
				for i, v := range acc {
					ref[i] = float32(v)
				}
			}
			got, _ := m.Pull(ctx, 0, n)
			for i := range ref {
				if got[i] != ref[i] {
					t.Fatalf("w[%d] = %v, reference %v", i, got[i], ref[i])
				}
			}
			pick := []int{999, 0, 31, 32, 500, 500}
			vals, err := m.PullIndices(ctx, pick)
			if err != nil {
				t.Fatal(err)
			}
			for j, i := range pick {
				if vals[j] != ref[i] {
					t.Fatalf("PullIndices[%d] = %v, want %v", i, vals[j], ref[i])
				}
			}
		})
	}
}

// TestAtomicity: 16 goroutines x 1000 concurrent pushes of integer-valued
// deltas give exactly the expected sums.
func TestAtomicity(t *testing.T) {
	s, _ := open(t, 3, 64)
	ctx := context.Background()
	const n, workers, pushes = 1000, 16, 1000
	m, err := s.Create(ctx, "atomic", n, ps.Zeros)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			local := make([]float64, n)
			for p := range pushes {
				if p%2 == 0 {
					lo := rng.IntN(n - 100)
					d := make([]float32, 100)
					for i := range d {
						d[i] = float32(rng.IntN(5) - 2)
						local[lo+i] += float64(d[i])
					}
					if err := m.Push(ctx, lo, d, 1); err != nil {
						errs <- err
						return
					}
				} else {
					idx := []int{rng.IntN(n), rng.IntN(n), rng.IntN(n)}
					d := []float32{1, 2, -1}
					for j, i := range idx {
						local[i] += float64(d[j])
					}
					if err := m.PushSparse(ctx, idx, d, 1); err != nil {
						errs <- err
						return
					}
				}
			}
			mu.Lock()
			for i := range want {
				want[i] += local[i]
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, _ := m.Pull(ctx, 0, n)
	for i := range want {
		if float64(got[i]) != want[i] {
			t.Fatalf("w[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if v, _ := m.Version(ctx); v != workers*pushes {
		t.Fatalf("version = %d, want %d", v, workers*pushes)
	}
}

func TestBadInput(t *testing.T) {
	s, servers := open(t, 1, 8)
	ctx := context.Background()
	m, err := s.Create(ctx, "bad", 20, ps.Zeros)
	if err != nil {
		t.Fatal(err)
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"push past the end", m.Push(ctx, 15, make([]float32, 6), 1), ps.ErrBadInput},
		{"push at negative", m.Push(ctx, -1, make([]float32, 2), 1), ps.ErrBadInput},
		{"NaN delta", m.Push(ctx, 0, []float32{1, nan}, 1), ps.ErrBadInput},
		{"Inf delta", m.PushSparse(ctx, []int{1}, []float32{inf}, 1), ps.ErrBadInput},
		{"NaN scale", m.Push(ctx, 0, []float32{1}, math.NaN()), ps.ErrBadInput},
		{"Inf scale", m.PushSparse(ctx, []int{1}, []float32{1}, math.Inf(-1)), ps.ErrBadInput},
		{"length mismatch", m.PushSparse(ctx, []int{1, 2}, []float32{1}, 1), ps.ErrBadInput},
		{"index out of range", m.PushSparse(ctx, []int{20}, []float32{1}, 1), ps.ErrBadInput},
		{"pull out of range", pullErr(m.Pull(ctx, 10, 21)), ps.ErrBadInput},
		{"pull index out of range", pullErr(m.PullIndices(ctx, []int{-1})), ps.ErrBadInput},
		{"exists", createErr(s.Create(ctx, "bad", 5, ps.Zeros)), ps.ErrModelExists},
		{"no model", createErr(s.Model(ctx, "nothere")), ps.ErrNoModel},
		{"bad name", createErr(s.Create(ctx, "a b{c}", 5, ps.Zeros)), ps.ErrBadInput},
		{"FromSlice length", createErr(s.Create(ctx, "short", 5, ps.FromSlice([]float32{1}))), ps.ErrBadInput},
		{"NaN initial value", createErr(s.Create(ctx, "nanmodel", 2, ps.FromSlice([]float32{0, nan}))), ps.ErrBadInput},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	// Nothing was written.
	if w, _ := m.Pull(ctx, 0, 20); slices.ContainsFunc(w, func(x float32) bool { return x != 0 }) {
		t.Fatalf("bad pushes wrote: %v", w)
	}
	if v, _ := m.Version(ctx); v != 0 {
		t.Fatalf("version = %d after only bad pushes", v)
	}
	if _, err := s.Model(ctx, "short"); !errors.Is(err, ps.ErrNoModel) {
		t.Fatalf("a failed create left a model: %v", err)
	}

	// A block of the wrong length: a clear error, the block untouched.
	rc := redis.NewClient(&redis.Options{Addr: servers[0].Addr})
	defer rc.Close()
	rc.Set(ctx, "wps:{bad/1}:w", "short", 0)
	err = m.Push(ctx, 6, []float32{1, 1, 1, 1}, 1) // blocks 0 and 1
	if !errors.Is(err, ps.ErrCorrupt) || !strings.Contains(err.Error(), "{bad/1}") || !strings.Contains(err.Error(), servers[0].Addr) {
		t.Fatalf("push into a corrupt block: %v", err)
	}
	// Block 0 was in the same script call: untouched too.
	if w, _ := m.Pull(ctx, 0, 8); slices.ContainsFunc(w, func(x float32) bool { return x != 0 }) {
		t.Fatalf("a push that failed on block 1 wrote block 0: %v", w)
	}
	if v, _ := rc.Get(ctx, "wps:{bad/1}:w").Result(); v != "short" {
		t.Fatalf("corrupt block was written: %q", v)
	}
	if _, err := m.Pull(ctx, 0, 20); !errors.Is(err, ps.ErrCorrupt) {
		t.Fatalf("pull of a corrupt block: %v", err)
	}
}

func pullErr(_ []float32, err error) error   { return err }
func createErr(_ *ps.Model, err error) error { return err }

// TestKillDuringPush kills the Redis server while pushes run: they fail with
// an error naming the shard, and after a restart from the append-only file
// every block is either fully updated or untouched.
func TestKillDuringPush(t *testing.T) {
	servers := testenv.StartRedis(t, 1, redisserver.Options{AppendOnly: true})
	ctx := context.Background()
	const n, bs = 4096, 256
	s, err := ps.Open(ctx, ps.Options{Addrs: testenv.Addrs(servers), BlockSize: bs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.Create(ctx, "kill", n, ps.Zeros)
	if err != nil {
		t.Fatal(err)
	}
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	var wg sync.WaitGroup
	failed := make(chan error, 4)
	started := make(chan struct{}, 4)
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				if i == 10 {
					started <- struct{}{}
				}
				if err := m.Push(ctx, 0, ones, 1); err != nil {
					failed <- err
					return
				}
			}
		})
	}
	for range 4 {
		<-started
	}
	servers[0].Kill()
	wg.Wait()
	close(failed)
	for err := range failed {
		if !strings.Contains(err.Error(), servers[0].Addr) || !errors.Is(err, ps.ErrUnknownOutcome) {
			t.Errorf("error does not name the shard or say the outcome is unknown: %v", err)
		}
	}
	if err := servers[0].Restart(ctx); err != nil {
		t.Fatal(err)
	}
	s2, err := ps.Open(ctx, ps.Options{Addrs: testenv.Addrs(servers)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	m2, err := s2.Model(ctx, "kill")
	if err != nil {
		t.Fatal(err)
	}
	w, err := m2.Pull(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	if w[0] < 10 {
		t.Fatalf("w[0] = %v: the acknowledged pushes were lost", w[0])
	}
	for b := 0; b < n/bs; b++ {
		blk := w[b*bs : (b+1)*bs]
		for _, x := range blk {
			if x != blk[0] {
				t.Fatalf("block %d half-updated: %v ... %v", b, blk[0], x)
			}
		}
	}
}

func TestCheckpointRestore(t *testing.T) {
	s, _ := open(t, 2, 100)
	ctx := context.Background()
	m, err := s.Create(ctx, "ck", 1234, ps.Normal(1, 2, 5))
	if err != nil {
		t.Fatal(err)
	}
	m.Push(ctx, 3, []float32{1, 2, 3}, 0.5)
	store := memblob.New()
	if err := m.Checkpoint(ctx, store, "ckpt/one"); err != nil {
		t.Fatal(err)
	}
	c, err := s.Restore(ctx, store, "ckpt/one", "copy")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Pull(ctx, 0, 1234)
	b, _ := c.Pull(ctx, 0, 1234)
	if !slices.Equal(a, b) {
		t.Fatal("restored model differs")
	}
	if v, _ := c.Version(ctx); v != 1 {
		t.Fatalf("restored version %d, want 1", v)
	}
	if _, err := s.Restore(ctx, store, "ckpt/one", "copy"); !errors.Is(err, ps.ErrModelExists) {
		t.Fatalf("restore over an existing model: %v", err)
	}
	if _, err := s.Restore(ctx, store, "ckpt/none", "x"); err == nil {
		t.Fatal("restore of a missing checkpoint succeeded")
	}
	store.Put(ctx, "ckpt/one/weights.npy", strings.NewReader("garbage"), blobOpts())
	if _, err := s.Restore(ctx, store, "ckpt/one", "y"); err == nil || !strings.Contains(err.Error(), "weights.npy") {
		t.Fatalf("restore of a corrupt checkpoint: %v", err)
	}
}

func TestReplicaStaleness(t *testing.T) {
	s, _ := open(t, 1, 16)
	ctx := context.Background()
	m, _ := s.Create(ctx, "rep", 50, ps.Zeros)
	r := m.NewReplica(2)
	if _, err := r.Get(ctx); err != nil || r.Pulls() != 1 {
		t.Fatalf("first Get: pulls %d, %v", r.Pulls(), err)
	}
	m.Push(ctx, 0, []float32{1}, 1)
	m.Push(ctx, 0, []float32{1}, 1)
	w, _ := r.Get(ctx)
	if r.Pulls() != 1 || w[0] != 0 {
		t.Fatalf("2 versions behind with K=2: pulls %d, w[0] %v; want no re-pull", r.Pulls(), w[0])
	}
	m.Push(ctx, 0, []float32{1}, 1)
	w, _ = r.Get(ctx)
	if r.Pulls() != 2 || w[0] != 3 || r.Version() != 3 {
		t.Fatalf("3 behind: pulls %d, w[0] %v, version %d; want a re-pull", r.Pulls(), w[0], r.Version())
	}
}

func TestScriptsReloaded(t *testing.T) {
	s, servers := open(t, 1, 16)
	ctx := context.Background()
	m, _ := s.Create(ctx, "flush", 10, ps.Zeros)
	rc := redis.NewClient(&redis.Options{Addr: servers[0].Addr})
	defer rc.Close()
	rc.ScriptFlush(ctx)
	if err := m.Push(ctx, 0, []float32{1, 2}, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.PushSparse(ctx, []int{0}, []float32{1}, 1); err != nil {
		t.Fatal(err)
	}
	if w, _ := m.Pull(ctx, 0, 2); w[0] != 2 || w[1] != 2 {
		t.Fatalf("after a script flush: %v", w)
	}
}

func TestOpenLocalAndAuth(t *testing.T) {
	ctx := context.Background()
	s, err := ps.Open(ctx, ps.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "local", 3, ps.Zeros); err != nil {
		t.Fatal(err)
	}
	addr := s.Addrs()[0]
	// The local server asks for a password: another local user cannot
	// read or change the models.
	pw := s.Options().Password
	if len(pw) < 32 {
		t.Fatalf("local server password %q", pw)
	}
	anon := redis.NewClient(&redis.Options{Addr: addr})
	if err := anon.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("ping without the password: %v, want NOAUTH", err)
	}
	anon.Close()
	// The password is not on any command line.
	for _, pid := range testenv.Children(t) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(b), pw) {
			t.Fatalf("the password is on the command line of pid %d", pid)
		}
	}
	s3, err := ps.Open(ctx, s.Options())
	if err != nil {
		t.Fatalf("open with the local server's options: %v", err)
	}
	if m, err := s3.Model(ctx, "local"); err != nil || m.Len() != 3 {
		t.Fatalf("model through a second client: %v", err)
	}
	s3.Close()
	s.Close()
	if _, err := ps.Open(ctx, ps.Options{Addrs: []string{addr}}); err == nil {
		t.Fatal("the local server outlived Close")
	}

	servers := testenv.StartRedis(t, 1, redisserver.Options{Password: "s3cret"})
	_, err = ps.Open(ctx, ps.Options{Addrs: testenv.Addrs(servers)})
	if err == nil || !strings.Contains(err.Error(), servers[0].Addr) {
		t.Fatalf("open without the password: %v; want an error naming the shard", err)
	}
	s2, err := ps.Open(ctx, ps.Options{Addrs: testenv.Addrs(servers), Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

// TestCluster runs pushes and pulls against a real three-node Redis Cluster:
// every script touches one slot.
func TestCluster(t *testing.T) {
	addrs := testenv.StartRedisCluster(t, 3)
	ctx := context.Background()
	s, err := ps.Open(ctx, ps.Options{Addrs: addrs, Cluster: true, BlockSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.Create(ctx, "clustered", 100, ps.Zeros)
	if err != nil {
		t.Fatal(err)
	}
	d := make([]float32, 100)
	for i := range d {
		d[i] = float32(i)
	}
	if err := m.Push(ctx, 0, d, 2); err != nil {
		t.Fatal(err)
	}
	if err := m.PushSparse(ctx, []int{99, 0, 50}, []float32{1, 1, 1}, 1); err != nil {
		t.Fatal(err)
	}
	w, err := m.Pull(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range w {
		want := float32(2 * i)
		if i == 99 || i == 0 || i == 50 {
			want++
		}
		if x != want {
			t.Fatalf("w[%d] = %v, want %v", i, x, want)
		}
	}
	// A gather across blocks in different slots (one block a script call).
	pick := []int{99, 0, 50, 51, 0, 7}
	g, err := m.PullIndices(ctx, pick)
	if err != nil {
		t.Fatal(err)
	}
	for j, i := range pick {
		if g[j] != w[i] {
			t.Fatalf("gather of %d on a cluster: %v, want %v", i, g[j], w[i])
		}
	}
	// The blocks really are spread over the cluster's nodes.
	nodes := map[string]bool{}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		n, _ := c.DBSize(ctx).Result()
		c.Close()
		if n > 0 {
			nodes[a] = true
		}
	}
	if len(nodes) < 2 {
		t.Fatalf("blocks on %d node(s), want them spread", len(nodes))
	}
}

// TestTLS pushes and pulls over TLS to a redis-server that listens only with
// TLS, and fails clearly without it.
func TestTLS(t *testing.T) {
	f := testenv.NewTLS(t)
	servers := testenv.StartRedis(t, 1, redisserver.Options{TLSCert: f.Cert, TLSKey: f.Key, TLSCA: f.CA})
	ctx := context.Background()
	s, err := ps.Open(ctx, ps.Options{Addrs: testenv.Addrs(servers), TLSConfig: f.Client, BlockSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.Create(ctx, "secure", 10, ps.Zeros)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Push(ctx, 0, []float32{1, 2}, 3); err != nil {
		t.Fatal(err)
	}
	if w, _ := m.Pull(ctx, 0, 2); w[0] != 3 || w[1] != 6 {
		t.Fatalf("over TLS: %v", w)
	}
	plain, err := ps.Open(ctx, ps.Options{Addrs: testenv.Addrs(servers), DialTimeout: time.Second, ReadTimeout: time.Second})
	if err == nil {
		plain.Close()
		t.Fatal("a plain-text client reached a TLS-only server")
	}
}

// TestPushNeverTwice drops the connection after a push was forwarded to
// Redis and before its answer came back: whether the client re-sends the
// pipeline or its caller retries after an error, the update is applied
// once, and the version counts it once.
func TestPushNeverTwice(t *testing.T) {
	ctx := context.Background()
	servers := testenv.StartRedis(t, 1, redisserver.Options{})
	proxy := testenv.StartProxy(t, servers[0].Addr)
	direct, err := ps.Open(ctx, ps.Options{Addrs: testenv.Addrs(servers), BlockSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	via, err := ps.Open(ctx, ps.Options{Addrs: []string{proxy.Addr}, BlockSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer via.Close()
	m, err := via.Create(ctx, "once", 1000, ps.Zeros)
	if err != nil {
		t.Fatal(err)
	}
	ones := make([]float32, 1000)
	for i := range ones {
		ones[i] = 1
	}
	pushes := []struct {
		name string
		push func() error
		idx  []int
	}{
		{"dense", func() error { return m.Push(ctx, 0, ones, 1) }, nil},
		{"sparse", func() error { return m.PushSparse(ctx, []int{3, 700}, []float32{1, 1}, 1) }, []int{3, 700}},
	}
	want := make([]float32, 1000)
	for k, p := range pushes {
		proxy.DropAfter("EVALSHA")
		var err error
		for try := 0; try < 3; try++ { // a caller that retries after an error
			if err = p.push(); err == nil {
				break
			}
			t.Logf("%s push: %v (retrying)", p.name, err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if proxy.Drops() != k+1 {
			t.Fatalf("%s: the proxy dropped %d connections, want %d", p.name, proxy.Drops(), k+1)
		}
		if p.idx == nil {
			for i := range want {
				want[i]++
			}
		} else {
			for _, i := range p.idx {
				want[i]++
			}
		}
		dm, _ := direct.Model(ctx, "once")
		got, err := dm.Pull(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("after the %s push, value %d = %v, want %v: applied twice", p.name, i, got[i], want[i])
			}
		}
		if v, err := dm.Version(ctx); err != nil || v != int64(k+1) {
			t.Fatalf("version %d, %v; want %d", v, err, k+1)
		}
	}
}
