// Command wordcount counts the words of a text corpus with a MapReduce job
// on wren workers, the shuffle going through the store (or Redis), and
// checks the counts against a single-process count of the same text.
//
//	go run ./examples/wordcount [-in DIR|URL] [-zipf 64MB] [-partitions N] [-shuffle URL] [-csv counts.csv] [-timeline FILE]
//
// Without -in it counts the Go distribution's own sources, $(go env
// GOROOT)/src; -zipf SIZE counts generated Zipf-distributed text instead.
package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/mapreduce"
	"github.com/wrenml/wren/timeline"
)

// Tokenize emits (word, 1) for every word of a line.
var Tokenize = mapreduce.RegisterMap("wordcount.tokenize", func(ctx context.Context, line string, emit func(string, int)) error {
	mapreduce.EachWord(line, func(w string) { emit(w, 1) })
	return nil
})

// Sum adds counts; it is both the combiner and the reducer.
var Sum = mapreduce.RegisterReduce("wordcount.sum", func(ctx context.Context, word string, counts []int) (int, error) {
	s := 0
	for _, c := range counts {
		s += c
	}
	return s, nil
})

type options struct {
	in, zipf, store, shuffle, csv, timeline string
	partitions, top, maxLine                int
	check                                   bool
}

func main() {
	wren.Init()
	var o options
	flag.StringVar(&o.in, "in", "", "text to count: a directory or store URL (default: $(go env GOROOT)/src)")
	flag.StringVar(&o.zipf, "zipf", "", "count this much generated Zipf text instead (e.g. 64MB or 64MiB), written to ./.wren-wordcount")
	flag.StringVar(&o.store, "store", "", "wren's store (default: $WREN_STORE, the config file, else ./.wren)")
	flag.StringVar(&o.shuffle, "shuffle", "", "shuffle store: a store URL or redis://host:port,... (default: wren's store)")
	flag.IntVar(&o.partitions, "partitions", 0, "reduce partitions (default: the workers)")
	flag.StringVar(&o.csv, "csv", "counts.csv", "where to write word,count (most frequent first); empty: nowhere")
	flag.StringVar(&o.timeline, "timeline", "timeline-wordcount.png", "where to plot both stages' timeline; empty: nowhere")
	flag.IntVar(&o.top, "top", 10, "words to print")
	// The Go sources hold a 1.3 MB line (time/tzdata's zip as a string).
	flag.IntVar(&o.maxLine, "maxline", 4<<20, "the longest line allowed, in bytes")
	flag.BoolVar(&o.check, "check", true, "check the counts against a single-process count")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

// goSources is $(go env GOROOT)/src.
func goSources() (string, error) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("no -in, and no go command to find the Go sources: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "src"), nil
}

func run(ctx context.Context, o options) error {
	if o.partitions < 0 || o.top < 0 || o.maxLine < 1 {
		return fmt.Errorf("-partitions %d, -top %d, -maxline %d: want no negative partitions or words, and a line of 1 byte or more", o.partitions, o.top, o.maxLine)
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ex, err := cfg.Executor(ctx, wren.Options{Store: o.store})
	if err != nil {
		return err
	}
	defer ex.Close()
	switch {
	case o.zipf != "":
		size, err := config.ParseSize(o.zipf)
		if err != nil {
			return err
		}
		dir, err := filepath.Abs(".wren-wordcount")
		if err != nil {
			return err
		}
		if o.in != "" {
			dir = o.in
		}
		os.RemoveAll(dir)
		st, err := wren.OpenStore(ctx, dir)
		if err != nil {
			return err
		}
		err = mapreduce.GenerateText(ctx, st, "", mapreduce.TextOptions{Bytes: size, Seed: 1})
		st.Close()
		if err != nil {
			return err
		}
		o.in = dir
	case o.in == "":
		if o.in, err = goSources(); err != nil {
			return err
		}
	}
	res, err := mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
		Input:      mapreduce.Lines(o.in),
		Map:        Tokenize,
		Combine:    Sum,
		Reduce:     Sum,
		Partitions: o.partitions,
		Shuffle:    o.shuffle,
		MaxLine:    o.maxLine,
	})
	if err != nil {
		return err
	}
	counts, err := res.Collect(ctx)
	if err != nil {
		return err
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	mb := float64(res.InBytes) / 1e6
	fmt.Printf("%s: %.1f MB, %d words, %d distinct, in %v (%.1f MB/s; map %v, reduce %v; %d map and %d reduce calls)\n",
		o.in, mb, total, len(counts), res.Wall.Round(time.Millisecond), mb/res.Wall.Seconds(),
		res.MapWall.Round(time.Millisecond), res.ReduceWall.Round(time.Millisecond), res.MapStats.Calls, res.ReduceStats.Calls)
	words := slices.Collect(func(yield func(string) bool) {
		for w := range counts {
			if !yield(w) {
				return
			}
		}
	})
	slices.SortFunc(words, func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), strings.Compare(a, b))
	})
	for _, w := range words[:min(o.top, len(words))] {
		fmt.Printf("%10d %s\n", counts[w], w)
	}
	if o.csv != "" {
		if err := writeCSV(o.csv, words, counts); err != nil {
			return err
		}
		fmt.Println("counts:", o.csv)
	}
	if o.timeline != "" {
		if err := timeline.Plot(res.Stats(), o.timeline); err != nil {
			return err
		}
		fmt.Println("timeline:", o.timeline)
	}
	if o.check {
		if err := check(ctx, o.in, counts); err != nil {
			return err
		}
	}
	return nil
}

// check counts the input again in this process and compares.
func check(ctx context.Context, in string, counts map[string]int) error {
	st, err := wren.OpenStore(ctx, in)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	want, n, err := mapreduce.CountWords(ctx, st)
	if err != nil {
		return err
	}
	d := time.Since(start)
	for w, k := range want {
		if counts[w] != k {
			return fmt.Errorf("check: %q counted %d times, a single process counts %d", w, counts[w], k)
		}
	}
	if len(want) != len(counts) {
		return fmt.Errorf("check: %d distinct words, a single process counts %d", len(counts), len(want))
	}
	fmt.Printf("check: a single process counts the same in %v (%.1f MB/s)\n", d.Round(time.Millisecond), float64(n)/1e6/d.Seconds())
	return nil
}

func writeCSV(path string, words []string, counts map[string]int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"word", "count"})
	for _, word := range words {
		w.Write([]string{word, strconv.Itoa(counts[word])})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
