package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/timeline"
)

func openFlagStore(ctx context.Context, name string, args []string, extra func(*flag.FlagSet)) (blob.Store, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	store := fs.String("store", defaultStore(), "store URL or directory")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	st, err := wren.OpenStore(ctx, *store)
	return st, fs, err
}

// jobIDs lists the jobs in a store from their manifests.
func jobIDs(ctx context.Context, st blob.Store) ([]string, error) { return wren.JobIDs(ctx, st) }

func readManifest(ctx context.Context, st blob.Store, id string) (job.Manifest, error) {
	return job.ReadManifest(ctx, st, id)
}

func jobState(ctx context.Context, st blob.Store, m job.Manifest) (state string, done int, err error) {
	return wren.JobState(ctx, st, m)
}

func jobsList(ctx context.Context, args []string) error {
	st, _, err := openFlagStore(ctx, "jobs ls", args, nil)
	if err != nil {
		return err
	}
	ids, err := jobIDs(ctx, st)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tTASK\tCALLS\tDONE\tSTATE\tCREATED")
	var bad int
	for _, id := range ids {
		// One unreadable job (a damaged or foreign object) does not hide
		// the others.
		m, err := readManifest(ctx, st, id)
		if err != nil {
			fmt.Fprintf(tw, "%s\t?\t?\t?\tunreadable\t?\n", id)
			fmt.Fprintf(os.Stderr, "wren jobs ls: %v\n", err)
			bad++
			continue
		}
		state, done, err := jobState(ctx, st, m)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", id, m.Task, m.Calls, done, state, m.Created.Format("2006-01-02 15:04:05"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("jobs ls: %d of %d jobs unreadable (listed as such)", bad, len(ids))
	}
	return nil
}

func jobsShow(ctx context.Context, args []string) error {
	var timelinePath string
	st, fs, err := openFlagStore(ctx, "jobs show", args, func(fs *flag.FlagSet) {
		fs.StringVar(&timelinePath, "timeline", "", "plot the job's timeline to this file (.png, .svg, .pdf)")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errUsage
	}
	id := fs.Arg(0)
	m, err := readManifest(ctx, st, id)
	if err != nil {
		return err
	}
	state, _, err := jobState(ctx, st, m)
	if err != nil {
		return err
	}
	fmt.Printf("job %s: task %s, %d calls, codec %s, backend %s, created %s, %s\n", m.Job, m.Task, m.Calls, m.Codec, m.Backend, m.Created.Format("2006-01-02 15:04:05"), state)
	drivers, err := job.ReadDrivers(ctx, st, id)
	if err != nil {
		return err
	}
	for _, d := range drivers {
		fmt.Printf("driver %d: pid %d on %s, started %s, last heartbeat %s, %s\n", d.Epoch, d.PID, d.Host,
			d.Started.Format("2006-01-02 15:04:05"), d.Beat.Format("15:04:05"), d.State)
	}
	switch state {
	case "cancelled":
		fmt.Printf("it was cancelled before every call ran: attach to it from the program that started it (same binary),\n  job, err := task.Attach(ctx, ex, %q)\nand its remaining calls run from their stored inputs; or delete it with wren jobs clean %s.\n", id, id)
	case "orphaned":
		fmt.Printf("its driver is gone: attach to it from the program that started it (same binary),\n  job, err := task.Attach(ctx, ex, %q)\nand its remaining calls run from their stored inputs.\n", id)
	case "running":
		fmt.Printf("its driver is running it; task.Attach(ctx, ex, %q, wren.WithForce()) would take it over.\n", id)
	}
	js, err := wren.ReadJobStats(ctx, st, id)
	if err != nil {
		return err
	}
	for _, e := range js.Errors {
		fmt.Printf("call %d: %s: %s (attempt %d on %s)\n", e.Call, e.Kind, e.Message, e.Attempts-1, e.Worker)
	}
	counts := map[string]int{"pending": m.Calls - js.Done, "ok": js.Done - js.Failed}
	for _, e := range js.Errors {
		counts[string(e.Kind)]++
	}
	fmt.Println("status counts:", counts)
	fmt.Println(js)
	if timelinePath != "" {
		if err := timeline.Plot(js, timelinePath); err != nil {
			return err
		}
		fmt.Println("timeline:", timelinePath)
	}
	return nil
}

func jobsClean(ctx context.Context, args []string) error {
	var all bool
	st, fs, err := openFlagStore(ctx, "jobs clean", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&all, "all", false, "delete every job")
	})
	if err != nil {
		return err
	}
	ids := fs.Args()
	if all {
		if ids, err = jobIDs(ctx, st); err != nil {
			return err
		}
	}
	if len(ids) == 0 {
		return errUsage
	}
	for _, id := range ids {
		if err := job.ValidateID(id); err != nil {
			return err
		}
		n, err := blob.DeletePrefix(ctx, st, job.JobPrefix(id))
		if err != nil {
			return err
		}
		fmt.Printf("deleted job %s (%d objects)\n", id, n)
	}
	// Temporaries of writers that died (killed mid-put), where the store
	// can leave them.
	if ts, ok := st.(blob.TempSweeper); ok {
		n, err := ts.SweepTemp(ctx, blob.StaleTemp)
		if err != nil {
			return err
		}
		if n > 0 {
			fmt.Printf("removed %d stale temporary files of dead writers\n", n)
		}
	}
	return nil
}

// jobsLogs prints what a job's calls printed: every attempt's log, or one
// call's.
func jobsLogs(ctx context.Context, args []string) error {
	st, fs, err := openFlagStore(ctx, "jobs logs", args, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return fmt.Errorf("usage: wren jobs logs [-store URL] JOB [CALL]")
	}
	id := fs.Arg(0)
	if err := job.ValidateID(id); err != nil {
		return err
	}
	// A mistyped ID is not a job whose calls printed nothing.
	m, err := readManifest(ctx, st, id)
	if errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("jobs logs: no job %s in %s (wren jobs ls lists them)", id, st.URL())
	}
	if err != nil {
		return err
	}
	prefix := job.LogPrefix(id)
	if fs.NArg() == 2 {
		call, err := strconv.Atoi(fs.Arg(1))
		if err != nil || call < 0 || call >= m.Calls {
			return fmt.Errorf("jobs logs: call %q: want a call index from 0 to %d", fs.Arg(1), m.Calls-1)
		}
		// Every attempt of the call: logs/<call>.<attempt>.
		prefix = strings.TrimSuffix(job.LogKey(id, call, 0), "0")
	}
	keys, err := blob.Keys(ctx, st, prefix)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		fmt.Printf("no output kept for %s (the calls printed nothing, or the job ran in process)\n", strings.TrimPrefix(prefix, job.JobsRoot))
		return nil
	}
	for _, k := range keys {
		b, err := blob.ReadAll(ctx, st, k)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(k, job.LogPrefix(id))
		call, attempt, _ := strings.Cut(name, ".")
		n, _ := strconv.Atoi(call)
		fmt.Printf("=== call %d, attempt %s\n%s", n, attempt, b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			fmt.Println()
		}
	}
	return nil
}
