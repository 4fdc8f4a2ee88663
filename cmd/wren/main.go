// Command wren runs benchmarks and inspects and cleans jobs in a store.
//
//	wren bench map   [-tasks N] [-task-ms MS] [-parallel P] [-chunk C] [-store URL]
//	wren bench store [-store URL] [-size 64MiB] [-reps R]
//	wren bench ps    [-shards 1,2] [-seconds S] [-clients C]
//	wren bench gist  [-seconds S] [-size 128]
//	wren bench linear [-train N] [-skip ridge,logistic,svm,xtx]
//	wren bench lambda [-emulators 1,4] [-calls N] [-task-ms MS]
//	wren bench sgd   [-epochs 5] [-workers 1,2,4] [-local-steps 8] [-batch 100]
//	wren bench tune  [-trials 200] [-trial-ms 50] [-parallel P]
//	wren bench mapreduce [-text-size 256MB] [-sort-size 1GB] [-shuffle URL]
//	wren bench flops|storage|redis [-workers 1,2] [-seconds S]
//	wren sort        -gen -out DIR [-size 1GB] [-ascii] [-seed S]
//	wren sort        -in DIR -out DIR [-partitions N] [-shuffle URL|redis://h:p,...] [-timeline FILE]
//	wren sort        -validate -out DIR [-in DIR]
//	wren gist        [-gray] [-raw] [-size N] [-orientations 8,8,4] [-blocks 4] FILE...
//	wren jobs ls     [-store URL]
//	wren jobs show   [-store URL] [-timeline FILE] JOB
//	wren jobs clean  [-store URL] [-all] [JOB...]
//	wren jobs logs   [-store URL] JOB [CALL]
//	wren config      (the effective configuration and where each value came from)
//	wren deploy      [-backend NAME] [the backend's flags: lambda: -store URL -function F -role ARN -memory MB -timeout D -arch A -print-policy -delete]
//
// Benchmarks print one JSON object on stdout. The store defaults to
// $WREN_STORE, else ./.wren.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/config"
)

func main() {
	wren.Init() // this binary is also the worker of its benchmarks
	level, err := logLevel(os.Getenv("WREN_LOG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "wren:", err)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wren:", err)
		os.Exit(1)
	}
}

// logLevel reads WREN_LOG: "" is warn; a value slog does not know is warn
// too, and an error saying so (a typo does not silently hide debug logs).
func logLevel(v string) (slog.Level, error) {
	if v == "" {
		return slog.LevelWarn, nil
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return slog.LevelWarn, fmt.Errorf("WREN_LOG=%q: want debug, info, warn or error (using warn)", v)
	}
	return l, nil
}

const usage = `usage:
  wren bench map   [-tasks N] [-task-ms MS] [-parallel P] [-chunk C] [-store URL]
  wren bench store [-store URL] [-size 64MiB] [-reps R]
  wren bench ps    [-shards 1,2] [-seconds S] [-clients C]
  wren bench gist  [-seconds S] [-size 128]
  wren bench linear [-train N] [-skip ridge,logistic,svm,xtx]
  wren bench lambda [-emulators 1,4] [-calls N] [-task-ms MS]
  wren bench sgd   [-epochs 5] [-workers 1,2,4] [-local-steps 8] [-batch 100]
  wren bench tune  [-trials 200] [-trial-ms 50] [-parallel P]
  wren bench mapreduce [-text-size 256MB] [-sort-size 1GB] [-shuffle URL]
  wren bench flops|storage|redis [-workers 1,2] [-seconds S]
  wren sort        -gen -out DIR [-size 1GB] [-ascii] [-seed S]
  wren sort        -in DIR -out DIR [-partitions N] [-shuffle URL|redis://h:p,...] [-timeline FILE]
  wren sort        -validate -out DIR [-in DIR]
  wren gist        [-gray] [-raw] [-size N] [-orientations 8,8,4] [-blocks 4] FILE...
  wren featurize   -in DIR|URL -out DIR|URL [-layout tree|auto|ilsvrc-train|ilsvrc-val|webdataset] [-archives A.tar,...]
                   [-labels KEY] [-synsets KEY] [-index URL] [-size 256] [-per-call 200] [-gray] [-plan [-sample 200] [-seed S] [-check]]
  wren ui          [-store URL] [-addr 127.0.0.1:8470] [-token T]   (a live dashboard of the store's jobs)
  wren jobs ls     [-store URL]
  wren jobs show   [-store URL] [-timeline FILE] JOB
  wren jobs clean  [-store URL] [-all] [JOB...]
  wren jobs logs   [-store URL] JOB [CALL]
  wren config
  wren deploy      [-backend NAME] (lambda: -store s3://b/p [-function F] [-role ARN] [-memory MB] [-timeout D] [-arch x86_64|arm64] [-print-policy] [-delete])
environment: WREN_STORE (default store), WREN_BACKEND, WREN_LAMBDA_* (see wren config),
WREN_CONFIG (config file, default ~/.config/wren/config.yaml), WREN_LOG (debug, info, warn, error)`

var errUsage = errors.New(usage)

func run(ctx context.Context, args []string) error {
	if len(args) >= 1 && args[0] == "gist" {
		return gistCmd(ctx, args[1:])
	}
	if len(args) >= 1 && args[0] == "ui" {
		return uiCmd(ctx, args[1:])
	}
	if len(args) >= 1 && args[0] == "featurize" {
		return featurizeCmd(ctx, args[1:])
	}
	if len(args) >= 1 && args[0] == "sort" {
		return sortCmd(ctx, args[1:])
	}
	if len(args) >= 1 && args[0] == "deploy" {
		return deployCmd(ctx, args[1:])
	}
	if len(args) == 1 && args[0] == "config" {
		cfg, err := config.Load()
		if err != nil {
			return err
		}
		fmt.Println("config file:", config.Path())
		cfg.Print(os.Stdout)
		return nil
	}
	if len(args) < 2 {
		return errUsage
	}
	switch args[0] + " " + args[1] {
	case "bench map":
		return benchMap(ctx, args[2:])
	case "bench store":
		return benchStore(ctx, args[2:])
	case "bench ps":
		return benchPS(ctx, args[2:])
	case "bench gist":
		return benchGist(ctx, args[2:])
	case "bench tune":
		return benchTune(ctx, args[2:])
	case "bench sgd":
		return benchSGD(ctx, args[2:])
	case "bench lambda":
		return benchLambda(ctx, args[2:])
	case "bench mapreduce":
		return benchMapReduce(ctx, args[2:])
	case "bench flops":
		return benchFlops(ctx, args[2:])
	case "bench storage":
		return benchStorage(ctx, args[2:])
	case "bench redis":
		return benchRedis(ctx, args[2:])
	case "bench linear":
		return benchLinear(ctx, args[2:])
	case "jobs ls":
		return jobsList(ctx, args[2:])
	case "jobs show":
		return jobsShow(ctx, args[2:])
	case "jobs logs":
		return jobsLogs(ctx, args[2:])
	case "jobs clean":
		return jobsClean(ctx, args[2:])
	}
	return fmt.Errorf("unknown command %q\n%s", strings.Join(args[:2], " "), usage)
}

// defaultStore is the configured store: $WREN_STORE, the config file, or
// ./.wren.
func defaultStore() string {
	if cfg, err := config.Load(); err == nil {
		return cfg.Store
	}
	if s := os.Getenv("WREN_STORE"); s != "" {
		return s
	}
	return wren.DefaultStore
}
