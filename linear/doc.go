// Package linear is wren's single-node reducer: it gathers feature shards
// from the blob store and fits linear classifiers with gonum, fast enough
// that the reduce is never the bottleneck of a map + reduce job.
//
//   - Ridge: one-hot least squares, X'X and X'Y accumulated shard by shard
//     (the data never has to fit in memory), then one Cholesky solve per
//     lambda of a path: a path of 14 lambdas costs one pass over the data.
//   - Logistic: multinomial logistic regression with L2, by L-BFGS
//     (gonum/optimize), with a convergence report.
//   - SVM: linear SVM (hinge loss, L2), one-vs-rest, by dual coordinate
//     descent as liblinear does.
//
// Data comes from shards written by package featurize (Load), from memory
// (FromDense) or from libsvm/svmlight text (ReadLibSVM, zero- or one-based,
// read straight into compressed rows). Sparse data (most entries zero, such
// as raw MNIST pixels) is kept in compressed rows and every product skips
// its zeros; the heavy products use every core. No function allocates a
// dense matrix over MaxDenseBytes: it fails with ErrTooLarge instead.
//
// Dense products run on wren's packed, register-tiled kernels (AVX2 with
// FMA where the CPU has it, portable Go elsewhere; the environment
// variable WREN_KERNEL=go forces the portable ones). Importing linear
// installs them as gonum's blas64 and blas32 implementation, so gonum's
// mat (the solves here, and a program's own products) uses them too.
package linear
