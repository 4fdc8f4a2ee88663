// Package sgd trains linear models with HOGWILD! SGD (Niu et al., 2011) on
// stateless wren workers against the Redis parameter server (package ps), as
// the PyWren paper's parameter-server section does: Workers wren calls each
// stream their own shards from the executor's blob store and loop pull →
// minibatch gradient → push, without locks, while the driver evaluates the
// model from the server, records the curve and checkpoints it.
//
//	srv, _ := ps.Open(ctx, ps.Options{})          // or the addresses of Redis shards
//	run, err := sgd.Train(ctx, ex, srv, sgd.Options{
//		Model: "mnist", Loss: sgd.Softmax{Classes: 10}, Data: "features/train",
//		Workers: 4, Epochs: 5, BatchSize: 100, LR: sgd.InvScaling(1, 0.3), L2: 1e-5,
//		Eval: test, Checkpoint: "checkpoints/mnist",
//	})
//	run.PlotLoss("loss.png")
//	model, _ := run.Model(ctx) // a linear.Model
//
// Data: the shards featurize writes (shard-N.npy float32 features,
// shard-N.labels.npy, shard-N.json) or libsvm/svmlight text objects, dealt
// to workers by call index and reshuffled within each shard every epoch
// with a seed; WriteShards writes any linear.Dataset so. The model is
// (features+1) x outputs values, W row-major by feature, then the
// intercepts. Models up to 1M values are pulled whole and pushed as one
// range update; larger (sparse) ones pull the coordinates a minibatch
// touches (PullIndices) and push sparse updates. A worker takes LocalSteps
// minibatches on its copy before it pushes their sum, and the push overlaps
// the next minibatches. A push of unknown outcome (ps.ErrUnknownOutcome) is
// dropped, which HOGWILD! tolerates; a minibatch loss or an update that is
// not finite stops the run with ErrDiverged. TrainLocal is the sequential
// baseline: the same code on one goroutine with the model in memory.
package sgd
