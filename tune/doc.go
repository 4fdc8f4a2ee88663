// Package tune runs hyperparameter sweeps as wren maps: tune.Sweep expands
// a search space (grids as a Cartesian product, other dimensions sampled
// with a seed), runs one trial per point on the executor, records each
// finished trial in the store at once (so an interrupted sweep resumes),
// and ranks them by a metric. With ASHA it stops unpromising trials early:
// asynchronous successive halving over a budget (epochs, say), a promoted
// trial continuing from its checkpoint. Results print as a table, write as
// CSV and JSON, and plot as the metric against a parameter or a heat map
// of two.
package tune
