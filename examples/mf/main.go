// Command mf factorizes a ratings matrix with HOGWILD! SGD: wren workers
// stream their shards of ratings from the store and pull and push the rows
// of the users and items they rate against a Redis parameter server, while
// the driver reports the held-out RMSE; the sequential baseline trains the
// same model in one Go loop for comparison.
//
//	go run ./examples/mf [-ratings u.data|ratings.csv|ratings.dat|file.csv] [-workers 2] [-epochs 10] [-rank 10] [-ps redis://...]
//
// Without -ratings, ratings are generated from a hidden low-rank model (the
// RMSE to reach is then the noise, 0.5). 10 % of the ratings are held out.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/ps"
	"github.com/wrenml/wren/sgd"
)

func main() {
	wren.Init()
	ratings := flag.String("ratings", "", "a ratings file (MovieLens u.data, ratings.dat or ratings.csv; user,item,rating CSV); empty: generate")
	workers := flag.Int("workers", 2, "HOGWILD! workers")
	epochs := flag.Int("epochs", 5, "epochs over each worker's shards")
	rank := flag.Int("rank", 10, "factors per user and item")
	lr := flag.Float64("lr", 1, "learning rate (a minibatch's gradient is its mean)")
	redis := flag.String("ps", os.Getenv("WREN_PS"), "the parameter server, redis://[user:password@]host:port[,...] (default: $WREN_PS, else a local redis-server)")
	store := flag.String("store", "", "wren's store (default: $WREN_STORE, the config file, else ./.wren)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, _, err := run(ctx, *ratings, *workers, *epochs, *rank, *lr, *redis, *store); err != nil {
		fmt.Fprintln(os.Stderr, "mf:", err)
		os.Exit(1)
	}
}

// run factorizes the ratings with HOGWILD! and sequentially and returns
// both runs.
func run(ctx context.Context, file string, workers, epochs, rank int, lr float64, redis, store string) (hogwild, sequential *sgd.Result, err error) {
	if workers < 1 || epochs < 1 || rank < 1 || !(lr > 0) || math.IsInf(lr, 0) {
		return nil, nil, fmt.Errorf("-workers %d, -epochs %d, -rank %d, -lr %v: want 1 or more workers, epochs and factors, and a positive learning rate", workers, epochs, rank, lr)
	}
	var all *sgd.Ratings
	if file == "" {
		all, err = sgd.GenerateRatings(sgd.RatingsSpec{Users: 2000, Items: 1000, Rank: rank, Count: 100_000, Mean: 3.5, Noise: 0.5, Seed: 1})
	} else {
		var f *os.File
		if f, err = os.Open(file); err != nil {
			return nil, nil, err
		}
		all, err = sgd.ReadRatings(f, filepath.Base(file))
		f.Close()
	}
	if err != nil {
		return nil, nil, err
	}
	train, test := all.Split(0.1, 1)
	cfg, err := config.Load()
	if err != nil {
		return nil, nil, err
	}
	ex, err := cfg.Executor(ctx, wren.Options{Store: store, Parallelism: workers})
	if err != nil {
		return nil, nil, err
	}
	defer ex.Close()
	data := fmt.Sprintf("mf-ratings/%d", time.Now().UnixNano())
	if err := sgd.WriteRatings(ctx, ex.Store(), data, train, 4*workers); err != nil {
		return nil, nil, err
	}
	defer clean(context.WithoutCancel(ctx), ex, data)
	opts := ps.Options{}
	if redis != "" {
		if opts, err = ps.ParseURL(redis); err != nil {
			return nil, nil, err
		}
	}
	client, err := ps.Open(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	defer client.Close()
	model := "mf"
	client.Delete(ctx, model) // start from the seeded initial factors
	fo := sgd.FactorOptions{Model: model, Data: data, Rank: rank, Workers: workers, Epochs: epochs, BatchSize: 50, LocalSteps: 8,
		LR: sgd.Constant(lr), L2: 1e-5, Seed: 2, Eval: test, EvalEvery: 500 * time.Millisecond}
	fmt.Printf("matrix factorization: %d ratings (%d held out) of %d users and %d items, rank %d, %d HOGWILD! workers, parameter server %s\n",
		train.Len(), test.Len(), len(all.UserIDs), len(all.ItemIDs), rank, workers, strings.Join(client.Addrs(), ","))
	r, err := sgd.TrainFactors(ctx, ex, client, fo)
	if err != nil {
		return nil, nil, err
	}
	fmt.Println("  seconds  pushes  held-out RMSE")
	for _, p := range r.Curve {
		fmt.Printf("  %7.2f  %6d  %13.4f\n", p.Time.Seconds(), p.Version, p.RMSE)
	}
	fmt.Println("HOGWILD!:  ", r)
	seq, err := sgd.TrainFactorsLocal(ctx, ex.Store(), fo)
	if err != nil {
		return nil, nil, err
	}
	fmt.Println("sequential:", seq)
	fmt.Printf("RMSE HOGWILD!/sequential: %.4f\n", r.Final.RMSE/seq.Final.RMSE)
	return r, seq, nil
}

// clean deletes the example's shards from the store.
func clean(ctx context.Context, ex *wren.Executor, prefix string) {
	for a, err := range ex.Store().List(ctx, prefix+"/") {
		if err != nil {
			return
		}
		ex.Store().Delete(ctx, a.Key)
	}
}
