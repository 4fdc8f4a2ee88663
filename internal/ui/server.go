// Package ui serves wren ui: a live dashboard of the jobs in a store, read
// from the store alone (no database, no metrics server). It only reads.
package ui

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/job"
)

//go:embed assets
var assets embed.FS

// Options configure a Server.
type Options struct {
	// Store is the store whose jobs are shown.
	Store blob.Store
	// Token, when set, is required: as ?token= on a first visit (which sets
	// a cookie) or as the cookie. Serve a non-loopback address only with one.
	Token string
	// Refresh is how often a running job's statuses are read again at most;
	// 0 means 500 ms.
	Refresh time.Duration
}

// Server serves the dashboard. Create it with New.
type Server struct {
	opts   Options
	st     *countingStore
	mu     sync.Mutex
	jobs   map[string]*jobEntry // by ID
	list   listCache
	sweeps map[string]*sweepCache
	start  time.Time
}

// jobEntry is what the server keeps of one job.
type jobEntry struct {
	mu      sync.Mutex
	m       job.Manifest
	w       *wren.JobWatcher
	state   string
	done    int
	checked time.Time // state last read
	final   bool      // done or failed: nothing changes any more
	summary *wren.JobStats
	drivers []job.Driver
}

type listCache struct {
	ids  []string
	read time.Time
}

// New returns a server of o.Store's jobs.
func New(o Options) *Server {
	if o.Refresh <= 0 {
		o.Refresh = 500 * time.Millisecond
	}
	return &Server{opts: o, st: &countingStore{Store: o.Store}, jobs: map[string]*jobEntry{}, start: time.Now()}
}

// Handler returns the dashboard's HTTP handler: the pages (one embedded
// single-page app) and its JSON API under /api/.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /job/{id}", s.page)
	mux.HandleFunc("GET /runs", s.page)
	mux.HandleFunc("GET /run/{id}", s.page)
	mux.HandleFunc("GET /sweeps", s.page)
	mux.HandleFunc("GET /sweep/{name}", s.page)
	mux.HandleFunc("GET /api/runs", s.apiRuns)
	mux.HandleFunc("GET /api/run/{id}", s.apiRun)
	mux.HandleFunc("GET /api/sweeps", s.apiSweeps)
	mux.HandleFunc("GET /api/sweep/{name}", s.apiSweep)
	mux.HandleFunc("GET /api/jobs", s.apiJobs)
	mux.HandleFunc("GET /api/job/{id}", s.apiJob)
	mux.HandleFunc("GET /api/job/{id}/logs/{call}", s.apiLogs)
	mux.HandleFunc("GET /api/requests", s.apiRequests)
	return s.guard(mux)
}

// guard answers only GET and HEAD, and checks the token when one is set.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "wren ui only reads", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
		if t := s.opts.Token; t != "" {
			if q := r.URL.Query().Get("token"); q != "" && subtle.ConstantTimeCompare([]byte(q), []byte(t)) == 1 {
				http.SetCookie(w, &http.Cookie{Name: "wren_ui", Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
				u := *r.URL
				q := u.Query()
				q.Del("token")
				u.RawQuery = q.Encode()
				http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
				return
			}
			c, err := r.Cookie("wren_ui")
			if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(t)) != 1 {
				http.Error(w, "wren ui: open the URL with ?token=... that wren ui printed", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); id != "" && strings.HasPrefix(r.URL.Path, "/job/") {
		if err := job.ValidateID(id); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	} else if id := r.PathValue("id") + r.PathValue("name"); id != "" && !name.MatchString(id) {
		http.Error(w, "bad name", http.StatusBadRequest)
		return
	}
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

// writeJSON answers v with an ETag, or 304 when the client has it.
func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// JobRow is a job in the jobs list.
type JobRow struct {
	ID      string    `json:"id"`
	Task    string    `json:"task"`
	State   string    `json:"state"`
	Calls   int       `json:"calls"`
	Done    int       `json:"done"`
	Failed  int       `json:"failed"`
	Created time.Time `json:"created"`
	WallMS  int64     `json:"wall_ms"`
	USD     float64   `json:"usd,omitempty"`
}

// entry returns the job's entry, its state at most Refresh old.
func (s *Server) entry(ctx context.Context, id string) (*jobEntry, error) {
	s.mu.Lock()
	e := s.jobs[id]
	if e == nil {
		e = &jobEntry{}
		s.jobs[id] = e
	}
	s.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m.Job == "" {
		m, err := job.ReadManifest(ctx, s.st, id)
		if err != nil {
			s.mu.Lock()
			delete(s.jobs, id)
			s.mu.Unlock()
			return nil, err
		}
		e.m = m
	}
	if e.final || time.Since(e.checked) < s.opts.Refresh {
		return e, nil
	}
	// The drivers' records, and the calls done: the job's watcher knows
	// them when its page is open (no second listing of its statuses).
	drivers, err := job.ReadDrivers(ctx, s.st, id)
	if err != nil {
		return nil, err
	}
	known := -1
	if e.w != nil {
		known = e.w.Done()
	}
	state, done, ok := wren.StateOf(e.m, drivers, known, time.Now())
	if !ok {
		keys, err := blob.Keys(ctx, s.st, job.StatusPrefix(id))
		if err != nil {
			return nil, err
		}
		state, done, _ = wren.StateOf(e.m, drivers, len(keys), time.Now())
	}
	e.state, e.done, e.drivers, e.checked = state, done, drivers, time.Now()
	e.final = state == "done" || state == "failed" || state == "cancelled"
	if e.final && e.summary == nil {
		// The driver's summary of a finished job: failed calls, wall time,
		// billing (what the jobs list shows), read once.
		if b, err := blob.ReadAll(ctx, s.st, job.SummaryKey(id)); err == nil {
			var js wren.JobStats
			if json.Unmarshal(b, &js) == nil {
				e.summary = &js
			}
		}
	}
	return e, nil
}

func (s *Server) ids(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.list.read) < 2*s.opts.Refresh && s.list.ids != nil {
		return s.list.ids, nil
	}
	ids, err := wren.JobIDs(ctx, s.st)
	if err != nil {
		return nil, err
	}
	s.list = listCache{ids: ids, read: time.Now()}
	return ids, nil
}

func (s *Server) apiJobs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ids, err := s.ids(ctx)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	stateF, taskF := r.URL.Query().Get("state"), r.URL.Query().Get("task")
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	rows := []JobRow{}
	total := 0
	for _, id := range slices.Backward(ids) { // newest first
		e, err := s.entry(ctx, id)
		if err != nil {
			slog.Warn("wren ui: a job's records", "job", id, "err", err)
			continue
		}
		e.mu.Lock()
		row := JobRow{ID: id, Task: e.m.Task, State: e.state, Calls: e.m.Calls, Done: e.done, Created: e.m.Created}
		if e.summary != nil {
			// Calls the job's end cancelled before they ran are pending, not failed.
			row.Failed, row.WallMS = e.summary.Failed-e.summary.Cancelled, e.summary.Wall.Milliseconds()
			if e.summary.Billing != nil {
				row.USD = e.summary.Billing.USD
			}
		}
		e.mu.Unlock()
		if stateF != "" && row.State != stateF || taskF != "" && !strings.Contains(row.Task, taskF) {
			continue
		}
		total++
		if len(rows) < limit {
			rows = append(rows, row)
		}
	}
	writeJSON(w, r, map[string]any{"jobs": rows, "total": total})
}

// StageRow is one of the wren jobs of a larger piece of work (the map and
// reduce stages of a MapReduce job, the waves of a sweep).
type StageRow struct {
	ID    string `json:"id"`
	Task  string `json:"task"`
	State string `json:"state"`
	Calls int    `json:"calls"`
	Done  int    `json:"done"`
}

// jobGroup is the prefix a job shares with the other jobs of its piece of
// work: "mr-<id>" for mapreduce's stages ("mr-<id>-map", "mr-<id>-reduce"),
// the sweep's "tune-<id>" for its waves ("tune-<id>-b<budget>-<n>"), or "".
func jobGroup(id string) string {
	if rest, ok := strings.CutPrefix(id, "mr-"); ok {
		for _, st := range []string{"-map", "-reduce"} {
			if g, ok := strings.CutSuffix(rest, st); ok {
				return "mr-" + g
			}
		}
	}
	if strings.HasPrefix(id, "tune-") {
		f := strings.Split(id, "-")
		if n := len(f); n >= 3 && len(f[n-2]) > 1 && f[n-2][0] == 'b' {
			if _, err := strconv.Atoi(f[n-2][1:]); err == nil {
				if _, err := strconv.Atoi(f[n-1]); err == nil {
					return strings.Join(f[:n-2], "-")
				}
			}
		}
	}
	return ""
}

// stages lists the jobs whose IDs begin with group + "-".
func (s *Server) stages(ctx context.Context, group string) []StageRow {
	rows := []StageRow{}
	if group == "" {
		return rows
	}
	ids, err := s.ids(ctx)
	if err != nil {
		return rows
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, group+"-") {
			continue
		}
		e, err := s.entry(ctx, id)
		if err != nil {
			continue
		}
		e.mu.Lock()
		rows = append(rows, StageRow{ID: id, Task: e.m.Task, State: e.state, Calls: e.m.Calls, Done: e.done})
		e.mu.Unlock()
	}
	return rows
}

// JobView is a job's page data.
type JobView struct {
	JobRow
	Stages       []StageRow      `json:"stages"`          // its piece of work's jobs, itself included
	Sweep        string          `json:"sweep,omitempty"` // the sweep it ran for
	BytesRead    int64           `json:"bytes_read"`      // by its calls
	BytesWritten int64           `json:"bytes_written"`
	Backend      string          `json:"backend"`
	Drivers      []job.Driver    `json:"drivers"`
	Phases       []Phase         `json:"phases"`
	Errors       []ErrorRow      `json:"errors"`
	Timeline     Timeline        `json:"timeline"`
	Requests     wren.Requests   `json:"requests"`
	Billing      json.RawMessage `json:"billing,omitempty"`
}

// Phase is a phase's median and 95th percentile over the calls, in ms.
type Phase struct {
	Name string  `json:"name"`
	P50  float64 `json:"p50_ms"`
	P95  float64 `json:"p95_ms"`
}

// ErrorRow is a failed call.
type ErrorRow struct {
	Call     int    `json:"call"`
	Kind     string `json:"kind"`
	Message  string `json:"message"`
	Attempts int    `json:"attempts"`
	Worker   string `json:"worker"`
}

// Timeline is the job's calls per worker: every call (up to MaxRows, an
// even sample of them beyond) as offsets in ms from the job's creation.
type Timeline struct {
	Workers []string   `json:"workers"`
	Rows    [][6]int64 `json:"rows"` // worker index, call, started, compute start, compute end, finished
	Sampled bool       `json:"sampled"`
	EndMS   int64      `json:"end_ms"`
}

// MaxRows is the most timeline rows a job's page gets.
const MaxRows = 4000

func (s *Server) apiJob(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if err := job.ValidateID(id); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e, err := s.entry(ctx, id)
	if errors.Is(err, blob.ErrNotFound) {
		http.Error(w, "no job "+id, http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.w == nil {
		if e.w, err = wren.WatchJob(ctx, s.st, id); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
	}
	if _, err := e.w.Refresh(ctx); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	js := e.w.Stats()
	if e.final {
		e.w.Summary(ctx, &js)
		e.summary = &js
	}
	v := JobView{JobRow: JobRow{ID: id, Task: e.m.Task, State: e.state, Calls: e.m.Calls, Done: js.Done, Failed: js.Failed, Created: e.m.Created, WallMS: js.Wall.Milliseconds()},
		Backend: e.m.Backend, Requests: js.Requests, Errors: []ErrorRow{}}
	if js.Billing != nil {
		v.USD = js.Billing.USD
		v.Billing, _ = json.Marshal(js.Billing)
	}
	v.Drivers = e.drivers
	for _, c := range js.PerCall {
		v.BytesRead += c.BytesRead
		v.BytesWritten += c.BytesWritten
	}
	e.mu.Unlock() // the stages' entries lock their own
	group := jobGroup(id)
	v.Stages = s.stages(ctx, group)
	if strings.HasPrefix(group, "tune-") {
		v.Sweep = s.sweepOf(ctx, group)
	}
	e.mu.Lock()
	for _, ph := range []struct {
		name string
		f    func(wren.CallStats) time.Duration
	}{
		{"queue", func(c wren.CallStats) time.Duration { return c.Queue }},
		{"start", func(c wren.CallStats) time.Duration { return c.Start }},
		{"setup", func(c wren.CallStats) time.Duration { return c.Setup }},
		{"compute", func(c wren.CallStats) time.Duration { return c.Compute }},
		{"output", func(c wren.CallStats) time.Duration { return c.Output }},
	} {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		v.Phases = append(v.Phases, Phase{ph.name, ms(js.Quantile(0.5, ph.f)), ms(js.Quantile(0.95, ph.f))})
	}
	for i, ce := range js.Errors {
		if i == 100 {
			break
		}
		v.Errors = append(v.Errors, ErrorRow{Call: ce.Call, Kind: string(ce.Kind), Message: ce.Message, Attempts: ce.Attempts, Worker: ce.Worker})
	}
	v.Timeline = timeline(js, e.m.Created)
	writeJSON(w, r, v)
}

// timeline builds the per-worker rows of a job's calls, sampled evenly
// past MaxRows.
func timeline(js wren.JobStats, created time.Time) Timeline {
	t := Timeline{Workers: []string{}, Rows: [][6]int64{}}
	widx := map[string]int{}
	calls := js.PerCall
	step := 1
	if len(calls) > MaxRows {
		step, t.Sampled = (len(calls)+MaxRows-1)/MaxRows, true
	}
	ms := func(x time.Time) int64 { return x.Sub(created).Milliseconds() }
	for _, c := range calls {
		t.EndMS = max(t.EndMS, ms(c.Finished))
	}
	for i := 0; i < len(calls); i += step {
		c := calls[i]
		wi, ok := widx[c.Worker]
		if !ok {
			wi = len(t.Workers)
			widx[c.Worker] = wi
			t.Workers = append(t.Workers, c.Worker)
		}
		t.Rows = append(t.Rows, [6]int64{int64(wi), int64(c.Call), ms(c.Started), ms(c.ComputeStart), ms(c.ComputeEnd), ms(c.Finished)})
	}
	sort.Slice(t.Rows, func(a, b int) bool { return t.Rows[a][2] < t.Rows[b][2] })
	return t
}

func (s *Server) apiLogs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if err := job.ValidateID(id); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	call, err := strconv.Atoi(r.PathValue("call"))
	if err != nil || call < 0 || call > 1<<31 {
		http.Error(w, "bad call index", http.StatusBadRequest)
		return
	}
	prefix := strings.TrimSuffix(job.LogKey(id, call, 0), "0")
	var b strings.Builder
	for a, err := range s.st.List(ctx, prefix) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		data, err := blob.ReadAll(ctx, s.st, a.Key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(&b, "=== attempt %s\n%s\n", strings.TrimPrefix(a.Key, prefix), data)
		if b.Len() > 1<<20 {
			b.WriteString("... (cut at 1 MB)\n")
			break
		}
	}
	if b.Len() == 0 {
		b.WriteString("no output kept for this call (it printed nothing, or the job ran in process)\n")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(b.String()))
}

// Requests is the store requests the server made since it started.
type Requests struct {
	Lists   int64   `json:"lists"`
	Gets    int64   `json:"gets"` // reads and stats
	Seconds float64 `json:"seconds"`
}

// Requests returns the store requests made so far.
func (s *Server) Requests() Requests {
	return Requests{Lists: s.st.lists.Load(), Gets: s.st.gets.Load(), Seconds: time.Since(s.start).Seconds()}
}

func (s *Server) apiRequests(w http.ResponseWriter, r *http.Request) {
	b, _ := json.Marshal(s.Requests())
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// countingStore counts the read requests made through it.
type countingStore struct {
	blob.Store
	lists, gets atomic.Int64
}

// Get counts a read.
func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

// Range counts a read.
func (c *countingStore) Range(ctx context.Context, key string, off, n int64) (blob.RangeReader, error) {
	c.gets.Add(1)
	return c.Store.Range(ctx, key, off, n)
}

// Stat counts a read.
func (c *countingStore) Stat(ctx context.Context, key string) (blob.Attrs, error) {
	c.gets.Add(1)
	return c.Store.Stat(ctx, key)
}

// List counts a listing.
func (c *countingStore) List(ctx context.Context, prefix string) iter.Seq2[blob.Attrs, error] {
	c.lists.Add(1)
	return c.Store.List(ctx, prefix)
}
