package ps_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wrenml/wren/internal/redisserver"
	"github.com/wrenml/wren/internal/testenv"
	"github.com/wrenml/wren/ps"
)

// TestGrant: a job's grant reaches its models on every shard (pull, dense
// and sparse pushes, the version) and nothing else: another model, even
// one whose name extends the granted one's, is out of reach; revoked, it
// no longer authenticates. The server's own password is not in the
// grant's options.
func TestGrant(t *testing.T) {
	ctx := context.Background()
	const password = "shard-password-never-given-out"
	for _, cluster := range []bool{false, true} {
		var opts ps.Options
		if cluster {
			opts = ps.Options{Addrs: testenv.StartRedisCluster(t, 3), Cluster: true, BlockSize: 8}
		} else {
			opts = ps.Options{Addrs: testenv.Addrs(testenv.StartRedis(t, 3, redisserver.Options{Password: password})), Password: password, BlockSize: 8}
		}
		admin, err := ps.Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		for _, name := range []string{"job", "job/1", "other"} {
			if _, err := admin.Create(ctx, name, 100, ps.Zeros); err != nil {
				t.Fatal(err)
			}
		}
		g, err := admin.Grant(ctx, "job")
		if err != nil {
			t.Fatal(err)
		}
		if g.Options.Password == "" || g.Options.Password == password || g.Options.Username == "" || strings.Contains(g.Options.Username+g.Options.Password, password) {
			t.Fatalf("cluster %v: grant options %q/%q", cluster, g.Options.Username, g.Options.Password)
		}
		w, err := ps.Open(ctx, g.Options)
		if err != nil {
			t.Fatalf("cluster %v: a worker with the grant: %v", cluster, err)
		}
		m, err := w.Model(ctx, "job")
		if err != nil {
			t.Fatal(err)
		}
		d := make([]float32, 100)
		for i := range d {
			d[i] = 1
		}
		if err := m.Push(ctx, 0, d, 0.5); err != nil {
			t.Fatalf("cluster %v: dense push: %v", cluster, err)
		}
		if err := m.PushSparse(ctx, []int{3, 97}, []float32{1, 2}, 1); err != nil {
			t.Fatalf("cluster %v: sparse push: %v", cluster, err)
		}
		got, err := m.Pull(ctx, 0, 100)
		if err != nil || got[3] != 1.5 || got[97] != 2.5 || got[50] != 0.5 {
			t.Fatalf("cluster %v: pull %v, %v", cluster, got, err)
		}
		if v, err := m.Version(ctx); err != nil || v != 2 {
			t.Fatalf("cluster %v: version %d, %v", cluster, v, err)
		}
		for _, name := range []string{"other", "job/1"} {
			if om, err := w.Model(ctx, name); err == nil {
				if _, err := om.Pull(ctx, 0, 10); err == nil {
					t.Fatalf("cluster %v: the grant for job reads model %s", cluster, name)
				}
				if err := om.Push(ctx, 0, d[:10], 1); err == nil {
					t.Fatalf("cluster %v: the grant for job writes model %s", cluster, name)
				}
			}
		}
		if err := w.Delete(ctx, "job"); err == nil {
			t.Fatalf("cluster %v: the grant deletes its model", cluster)
		}
		w.Close()
		if err := g.Revoke(ctx); err != nil {
			t.Fatal(err)
		}
		if w2, err := ps.Open(ctx, g.Options); err == nil {
			w2.Close()
			t.Fatalf("cluster %v: a revoked grant connects", cluster)
		}
		if _, err := admin.Grant(ctx, "missing"); err == nil {
			t.Fatalf("cluster %v: a grant of a missing model", cluster)
		}
	}
}
