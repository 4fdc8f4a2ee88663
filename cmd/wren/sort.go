package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/mapreduce"
	"github.com/wrenml/wren/timeline"
)

// sortCmd generates, sorts or validates sort-benchmark records.
//
//	wren sort -gen -out DIR [-size 1GB] [-ascii] [-seed S] [-files N]
//	wren sort -in DIR -out DIR [-partitions N] [-shuffle URL] [-timeline FILE]
//	wren sort -validate -out DIR [-in DIR]
func sortCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sort", flag.ContinueOnError)
	gen := fs.Bool("gen", false, "generate records into -out")
	validate := fs.Bool("validate", false, "validate the sorted records in -out (against -in's, if given)")
	in := fs.String("in", "", "the records to sort: a directory or store URL")
	out := fs.String("out", "", "where the records go: a directory or store URL (empty before a sort)")
	size := fs.String("size", "1GB", "with -gen: how much to generate (100-byte records)")
	ascii := fs.Bool("ascii", false, "with -gen: printable keys, one record a line (GNU sort can sort them)")
	seed := fs.Uint64("seed", 1, "with -gen: the generator's seed")
	files := fs.Int("files", 0, "with -gen: objects to write (default one per 64 MiB)")
	parts := fs.Int("partitions", 0, "output partitions (0: one per 64 MiB, at least one per worker)")
	shuffle := fs.String("shuffle", "", "shuffle store: a store URL or redis://host:port,... (default: wren's store)")
	store := fs.String("store", "", "wren's store (default: $WREN_STORE, the config file, else ./.wren)")
	timelinePath := fs.String("timeline", "", "plot the sort's timeline to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("sort: -out is required")
	}
	if *parts < 0 || *files < 0 {
		return fmt.Errorf("sort: -partitions %d, -files %d: want 0 (the default) or more", *parts, *files)
	}
	if *gen {
		n, err := config.ParseSize(*size)
		if err != nil {
			return err
		}
		if n < mapreduce.RecordSize {
			return fmt.Errorf("sort -gen: -size %s: want at least one %d-byte record", *size, mapreduce.RecordSize)
		}
		st, err := wren.OpenStore(ctx, *out)
		if err != nil {
			return err
		}
		defer st.Close()
		start := time.Now()
		sum, err := mapreduce.GenerateRecords(ctx, st, "", mapreduce.GenOptions{Records: n / mapreduce.RecordSize, Files: *files, ASCII: *ascii, Seed: *seed})
		if err != nil {
			return err
		}
		fmt.Printf("generated %d records (%.1f MB) in %v, checksum %016x\n", sum.Records, float64(sum.Records*mapreduce.RecordSize)/1e6, time.Since(start).Round(time.Millisecond), sum.Sum)
		return nil
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ex, err := cfg.Executor(ctx, wren.Options{Store: *store})
	if err != nil {
		return err
	}
	defer ex.Close()
	if *validate {
		rep, err := mapreduce.Validate(ctx, ex, *out, *in)
		if err != nil {
			return err
		}
		fmt.Printf("%d records in %d partitions, checksum %016x, %d duplicate keys\n", rep.Sum.Records, rep.Partitions, rep.Sum.Sum, rep.Duplicates)
		if *in != "" {
			fmt.Printf("input: %d records, checksum %016x\n", rep.Input.Records, rep.Input.Sum)
		}
		for _, p := range rep.Problems {
			fmt.Fprintln(os.Stderr, "problem:", p)
		}
		if !rep.OK() {
			what := "a problem"
			if len(rep.Problems) > 1 {
				what = fmt.Sprintf("%d problems", len(rep.Problems))
			}
			return fmt.Errorf("sort: %s is not a whole sort of the input (%s, above)", *out, what)
		}
		fmt.Println("OK")
		return nil
	}
	if *in == "" {
		return errors.New("sort: -in is required (or -gen, or -validate)")
	}
	res, err := mapreduce.Sort(ctx, ex, mapreduce.SortJob{Input: *in, Output: *out, Partitions: *parts, Shuffle: *shuffle})
	if err != nil {
		return err
	}
	mb := float64(res.InBytes) / 1e6
	fmt.Printf("sorted %d records (%.1f MB) into %d partitions in %v (%.1f MB/s; map %v, reduce %v)\n",
		res.Records, mb, len(res.Partitions), res.Wall.Round(time.Millisecond), mb/res.Wall.Seconds(),
		res.MapWall.Round(time.Millisecond), res.ReduceWall.Round(time.Millisecond))
	if *timelinePath != "" {
		if err := timeline.Plot(res.Stats(), *timelinePath); err != nil {
			return err
		}
		fmt.Println("timeline:", *timelinePath)
	}
	return nil
}
