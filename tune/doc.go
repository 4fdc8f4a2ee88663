// Package tune runs hyperparameter searches with wren: tune.Sweep expands
// a search space (grids as a Cartesian product, other dimensions sampled
// with a seed), runs one trial per point on the executor, records each
// finished trial in the store at once (so an interrupted sweep resumes),
// and ranks them by a metric. With ASHA it stops unpromising trials early:
// asynchronous successive halving over a budget (epochs, say), a promoted
// trial continuing from its checkpoint; Hyperband runs brackets of it.
// With TPE each trial is suggested from the finished ones as a worker
// frees (the tree-structured Parzen estimator, univariate or
// multivariate; BOHB with Hyperband), and with PBT a population trains
// interval by interval, the worst copying the best's checkpoints. Results
// print as a table with each parameter's importance, write as CSV and
// JSON, and plot: the metric over the parameters, the optimisation history
// against trials and wall time, importances, a PBT lineage.
package tune
