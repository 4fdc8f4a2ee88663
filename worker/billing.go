package worker

import "time"

// Usage is what a job's invocations used, as the driver measured it.
type Usage struct {
	// Invocations is the number of invocations sent (all attempts).
	Invocations int64 `json:"invocations"`
	// Billed is the sum of the invocations' durations, each rounded up to
	// the millisecond (what Lambda bills).
	Billed time.Duration `json:"billed"`
	// EstimatedBilled is the part of Billed that no runtime reported, over
	// EstimatedInvocations invocations: the function's timeout for one that
	// timed out or was lost, the driver's clock for one that failed, the
	// calls' own times for an asynchronous one.
	EstimatedBilled      time.Duration `json:"estimated_billed,omitempty"`
	EstimatedInvocations int64         `json:"estimated_invocations,omitempty"`
	// Calls is the number of calls the per-call sums below cover.
	Calls int `json:"calls"`
	// Compute, IO and Fixed are per-call sums of the function's computing,
	// the input read and output write, and the rest (start, setup).
	Compute, IO, Fixed time.Duration
	// PeakRSS is the most memory a worker process held, in bytes.
	PeakRSS int64 `json:"peak_rss"`
}

// Billing is what a backend charges for a job.
type Billing struct {
	Invocations int64         `json:"invocations"`
	Billed      time.Duration `json:"billed"`
	// EstimatedBilled and EstimatedInvocations are the part of Billed the
	// driver estimated (see Usage).
	EstimatedBilled      time.Duration `json:"estimated_billed,omitempty"`
	EstimatedInvocations int64         `json:"estimated_invocations,omitempty"`
	MemoryMB             int           `json:"memory_mb"`
	GBSeconds            float64       `json:"gb_seconds"`
	USD                  float64       `json:"usd"`
	// SuggestedMemoryMB is the memory size that would have made the job
	// cheapest, from its measured compute and I/O times and peak memory
	// (the paper's resource balance: memory sets the CPU and network
	// share); SuggestedUSD is the estimated cost at that size, and
	// SuggestedSlowdown its wall-time factor.
	SuggestedMemoryMB int     `json:"suggested_memory_mb"`
	SuggestedUSD      float64 `json:"suggested_usd"`
	SuggestedSlowdown float64 `json:"suggested_slowdown"`
}

// Biller is a Backend that bills by use (AWS Lambda).
type Biller interface {
	Bill(Usage) *Billing
}

// AddBilling adds two bills of one backend (the stages or slices of one
// piece of work): counts, durations and costs add up; the memory size is
// a's; the suggested size, a property of one job's calls, is left out.
// Either may be nil.
func AddBilling(a, b *Billing) *Billing {
	if a == nil || b == nil {
		if a != nil {
			c := *a
			return &c
		}
		if b != nil {
			c := *b
			return &c
		}
		return nil
	}
	return &Billing{
		Invocations: a.Invocations + b.Invocations, Billed: a.Billed + b.Billed,
		EstimatedBilled: a.EstimatedBilled + b.EstimatedBilled, EstimatedInvocations: a.EstimatedInvocations + b.EstimatedInvocations,
		MemoryMB: a.MemoryMB, GBSeconds: a.GBSeconds + b.GBSeconds, USD: a.USD + b.USD,
	}
}
