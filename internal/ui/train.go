package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/sgd"
	"github.com/wrenml/wren/tune"
)

// name is a run ID or a sweep's name: no slashes, no dot-dot.
var name = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$`)

// staleAfter: a run recorded as running but not updated for this long has
// lost its driver.
const staleAfter = 2 * time.Minute

// RunRow is a training run in the runs list.
type RunRow struct {
	Run      string    `json:"run"`
	Model    string    `json:"model"`
	Kind     string    `json:"kind"`
	Loss     string    `json:"loss,omitempty"`
	State    string    `json:"state"`
	Workers  int       `json:"workers"`
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	Rate     float64   `json:"examples_per_s"`
	Points   int       `json:"points"`
	Last     sgd.Point `json:"last"`
	Examples int64     `json:"examples"`
}

func runState(r sgd.RunRecord) string {
	if r.State == "running" && time.Since(r.Updated) > staleAfter {
		return "orphaned"
	}
	return r.State
}

func (s *Server) readRun(ctx context.Context, key string) (sgd.RunRecord, error) {
	var r sgd.RunRecord
	b, err := blob.ReadAll(ctx, s.st, key)
	if err != nil {
		return r, err
	}
	err = json.Unmarshal(b, &r)
	return r, err
}

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rows := []RunRow{}
	for a, err := range s.st.List(ctx, sgd.RunsPrefix) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		rec, err := s.readRun(ctx, a.Key)
		if err != nil {
			continue // being replaced, or not a record
		}
		row := RunRow{Run: rec.Run, Model: rec.Model, Kind: rec.Kind, Loss: rec.Loss, State: runState(rec), Workers: rec.Workers,
			Started: rec.Started, Updated: rec.Updated, Rate: rec.ExamplesPerSecond, Points: len(rec.Curve), Examples: rec.Examples}
		if n := len(rec.Curve); n > 0 {
			row.Last = rec.Curve[n-1]
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].Started.After(rows[b].Started) })
	writeJSON(w, r, map[string]any{"runs": rows})
}

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !name.MatchString(id) {
		http.Error(w, "bad run ID", http.StatusBadRequest)
		return
	}
	rec, err := s.readRun(r.Context(), sgd.RunsPrefix+id+".json")
	if errors.Is(err, blob.ErrNotFound) {
		http.Error(w, "no run "+id, http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	rec.State = runState(rec)
	writeJSON(w, r, rec)
}

// sweepsPrefix is where tune.Sweep keeps sweeps by default.
const sweepsPrefix = "tune/"

// SweepRow is a sweep in the sweeps list.
type SweepRow struct {
	Name    string  `json:"name"` // its prefix without "tune/"
	Metric  string  `json:"metric"`
	Mode    string  `json:"mode"`
	Trials  int     `json:"runs"` // trial runs recorded (a promoted trial once per budget)
	Failed  int     `json:"failed"`
	Best    float64 `json:"best"`
	HasBest bool    `json:"has_best"`
}

// sweepCache keeps the trial records read (each is written once).
type sweepCache struct {
	mu     sync.Mutex
	head   *tune.Results
	trials map[string]tune.Trial // by key
}

func (s *Server) sweep(name string) *sweepCache {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sweeps == nil {
		s.sweeps = map[string]*sweepCache{}
	}
	c := s.sweeps[name]
	if c == nil {
		c = &sweepCache{trials: map[string]tune.Trial{}}
		s.sweeps[name] = c
	}
	return c
}

// load reads the sweep's head and the trials not read yet.
func (s *Server) loadSweep(ctx context.Context, name string) (*tune.Results, []tune.Trial, error) {
	c := s.sweep(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	prefix := sweepsPrefix + name + "/"
	if c.head == nil {
		b, err := blob.ReadAll(ctx, s.st, prefix+"sweep.json")
		if err != nil {
			return nil, nil, err
		}
		var h tune.Results
		if err := json.Unmarshal(b, &h); err != nil {
			return nil, nil, err
		}
		c.head = &h
	}
	for a, err := range s.st.List(ctx, prefix+"trials/") {
		if err != nil {
			return nil, nil, err
		}
		if _, ok := c.trials[a.Key]; ok {
			continue
		}
		b, err := blob.ReadAll(ctx, s.st, a.Key)
		if err != nil {
			continue
		}
		var t tune.Trial
		if json.Unmarshal(b, &t) == nil {
			c.trials[a.Key] = t
		}
	}
	trials := make([]tune.Trial, 0, len(c.trials))
	for _, t := range c.trials {
		trials = append(trials, t)
	}
	sort.Slice(trials, func(a, b int) bool {
		if trials[a].ID != trials[b].ID {
			return trials[a].ID < trials[b].ID
		}
		return trials[a].Budget < trials[b].Budget
	})
	return c.head, trials, nil
}

func modeName(m tune.Mode) string {
	if m == tune.Min {
		return "min"
	}
	return "max"
}

func best(h *tune.Results, trials []tune.Trial) (float64, bool) {
	var v float64
	ok := false
	for _, t := range trials {
		x, has := t.Metrics[h.Metric]
		if t.Err != "" || !has {
			continue
		}
		if !ok || (h.Mode == tune.Min && x < v) || (h.Mode != tune.Min && x > v) {
			v, ok = x, true
		}
	}
	return v, ok
}

func (s *Server) apiSweeps(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var names []string
	for a, err := range s.st.List(ctx, sweepsPrefix) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if n, ok := strings.CutSuffix(strings.TrimPrefix(a.Key, sweepsPrefix), "/sweep.json"); ok && name.MatchString(n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	rows := []SweepRow{}
	for _, n := range slices.Backward(names) {
		h, trials, err := s.loadSweep(ctx, n)
		if err != nil {
			continue
		}
		row := SweepRow{Name: n, Metric: h.Metric, Mode: modeName(h.Mode), Trials: len(trials)}
		for _, t := range trials {
			if t.Err != "" {
				row.Failed++
			}
		}
		row.Best, row.HasBest = best(h, trials)
		rows = append(rows, row)
	}
	writeJSON(w, r, map[string]any{"sweeps": rows})
}

// SweepView is a sweep's page data.
type SweepView struct {
	SweepRow
	Trials []tune.Trial `json:"trials"`
	Jobs   []StageRow   `json:"jobs"` // the wren jobs it ran
}

// sweepOf names the sweep whose jobs have the prefix group, or "".
func (s *Server) sweepOf(ctx context.Context, group string) string {
	for a, err := range s.st.List(ctx, sweepsPrefix) {
		if err != nil {
			return ""
		}
		n, ok := strings.CutSuffix(strings.TrimPrefix(a.Key, sweepsPrefix), "/sweep.json")
		if !ok || !name.MatchString(n) {
			continue
		}
		c := s.sweep(n)
		c.mu.Lock()
		h := c.head
		c.mu.Unlock()
		if h == nil {
			if h, _, err = s.loadSweep(ctx, n); err != nil {
				continue
			}
		}
		if h.Jobs == group {
			return n
		}
	}
	return ""
}

func (s *Server) apiSweep(w http.ResponseWriter, r *http.Request) {
	n := r.PathValue("name")
	if !name.MatchString(n) {
		http.Error(w, "bad sweep name", http.StatusBadRequest)
		return
	}
	h, trials, err := s.loadSweep(r.Context(), n)
	if errors.Is(err, blob.ErrNotFound) {
		http.Error(w, "no sweep "+n, http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	v := SweepView{SweepRow: SweepRow{Name: n, Metric: h.Metric, Mode: modeName(h.Mode), Trials: len(trials)}, Trials: trials, Jobs: s.stages(r.Context(), h.Jobs)}
	for _, t := range trials {
		if t.Err != "" {
			v.Failed++
		}
	}
	v.Best, v.HasBest = best(h, trials)
	writeJSON(w, r, v)
}
