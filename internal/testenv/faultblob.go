package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wrenml/wren/blob"
)

// ErrInjected is the error a FaultStore returns for the faults it injects.
var ErrInjected = errors.New("testenv: injected store fault")

// Faults says which operations of a FaultStore fail or stall. Rates are
// probabilities in [0, 1]; every process that opens the same URL draws its
// own faults.
type Faults struct {
	// Put fails a put before anything is stored; PutAfter stores the object
	// and then fails (the answer of a stored write is lost). PutExists
	// stores the object and then answers blob.ErrExists, as an S3 client
	// does when it retries a conditional put whose first try was stored
	// (conditional puts only).
	Put, PutAfter, PutExists float64
	// Get fails a Get or a Range.
	Get float64
	// Truncate stores only the first half of a put's bytes and reports
	// success, as a broken store would.
	Truncate float64
	// Delay stalls a put or get by MaxDelay/2 to MaxDelay.
	Delay    float64
	MaxDelay time.Duration
	// Only limits the faults to keys containing this string ("" means all).
	Only string
}

// FaultURL returns a "fault://" URL that opens inner (a store URL) wrapped
// in the faults f. Worker processes of a test binary open the same wrapper
// from it, since the test binary registers the scheme.
func FaultURL(inner string, f Faults) string {
	q := url.Values{}
	q.Set("inner", inner)
	put := func(k string, v float64) {
		if v > 0 {
			q.Set(k, strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	put("put", f.Put)
	put("put_after", f.PutAfter)
	put("put_exists", f.PutExists)
	put("get", f.Get)
	put("truncate", f.Truncate)
	put("delay", f.Delay)
	if f.MaxDelay > 0 {
		q.Set("max_delay", f.MaxDelay.String())
	}
	if f.Only != "" {
		q.Set("only", f.Only)
	}
	return "fault://x?" + q.Encode()
}

func init() {
	blob.RegisterScheme("fault", func(ctx context.Context, u *url.URL) (blob.Store, error) {
		q := u.Query()
		inner, err := blob.Open(ctx, q.Get("inner"))
		if err != nil {
			return nil, err
		}
		var f Faults
		num := func(k string) float64 {
			v, _ := strconv.ParseFloat(q.Get(k), 64)
			return v
		}
		f.Put, f.PutAfter, f.PutExists = num("put"), num("put_after"), num("put_exists")
		f.Get, f.Delay, f.Truncate = num("get"), num("delay"), num("truncate")
		f.MaxDelay, _ = time.ParseDuration(q.Get("max_delay"))
		f.Only = q.Get("only")
		return &FaultStore{Store: inner, Faults: f, url: u.String()}, nil
	})
}

// FaultStore wraps a store and injects faults into its puts and gets.
type FaultStore struct {
	blob.Store
	Faults Faults // read and changed under mu (SetFaults)
	url    string

	mu       sync.Mutex
	rng      *rand.Rand
	Injected int // faults injected so far
}

// NewFaultStore wraps inner in process (its URL is inner's, so workers in
// other processes see no faults).
func NewFaultStore(inner blob.Store, f Faults) *FaultStore {
	return &FaultStore{Store: inner, Faults: f, url: inner.URL()}
}

// SetFaults changes the faults from now on; it is safe to call while the
// store is in use.
func (s *FaultStore) SetFaults(f Faults) {
	s.mu.Lock()
	s.Faults = f
	s.mu.Unlock()
}

func (s *FaultStore) faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Faults
}

// URL returns the fault:// URL the store was opened with (or inner's).
func (s *FaultStore) URL() string { return s.url }

func (s *FaultStore) roll(key string, p float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p <= 0 || (s.Faults.Only != "" && !strings.Contains(key, s.Faults.Only)) {
		return false
	}
	if s.rng == nil {
		s.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if s.rng.Float64() < p {
		s.Injected++
		return true
	}
	return false
}

func (s *FaultStore) delay(ctx context.Context, key string) {
	f := s.faults()
	if !s.roll(key, f.Delay) || f.MaxDelay <= 0 {
		return
	}
	s.mu.Lock()
	d := f.MaxDelay/2 + time.Duration(s.rng.Int64N(int64(f.MaxDelay/2)+1))
	s.mu.Unlock()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// Put implements blob.Store.
func (s *FaultStore) Put(ctx context.Context, key string, r io.Reader, o blob.PutOptions) error {
	s.delay(ctx, key)
	f := s.faults()
	if s.roll(key, f.Put) {
		return fmt.Errorf("put %s: %w (before storing)", key, ErrInjected)
	}
	if s.roll(key, f.Truncate) {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		o.Size = int64(len(b) / 2)
		return s.Store.Put(ctx, key, bytes.NewReader(b[:len(b)/2]), o)
	}
	after, exists := s.roll(key, f.PutAfter), o.IfNotExist && s.roll(key, f.PutExists)
	if after || exists {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if err := s.Store.Put(ctx, key, bytes.NewReader(b), o); err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("put %s: %w (injected after storing)", key, blob.ErrExists)
		}
		return fmt.Errorf("put %s: %w (after storing)", key, ErrInjected)
	}
	return s.Store.Put(ctx, key, r, o)
}

// Get implements blob.Store.
func (s *FaultStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s.delay(ctx, key)
	if s.roll(key, s.faults().Get) {
		return nil, fmt.Errorf("get %s: %w", key, ErrInjected)
	}
	return s.Store.Get(ctx, key)
}

// Range implements blob.Store, with the faults of Get.
func (s *FaultStore) Range(ctx context.Context, key string, off, n int64) (blob.RangeReader, error) {
	s.delay(ctx, key)
	if s.roll(key, s.faults().Get) {
		return nil, fmt.Errorf("range %s: %w", key, ErrInjected)
	}
	return s.Store.Range(ctx, key, off, n)
}

// List implements blob.Store (no faults).
func (s *FaultStore) List(ctx context.Context, prefix string) iter.Seq2[blob.Attrs, error] {
	return s.Store.List(ctx, prefix)
}
