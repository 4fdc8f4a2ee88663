package linear

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/npy"
)

// Model is a fitted linear classifier: scores = x W + B, the class the
// argmax. Feature scaling used in the fit is folded into W and B, so a
// Model applies to raw features. It is safe for concurrent use.
type Model struct {
	Kind       string    `json:"kind"`             // "ridge", "logistic" or "svm"
	Lambda     float64   `json:"lambda,omitempty"` // the ridge penalty
	L2         float64   `json:"l2,omitempty"`     // the logistic penalty
	C          float64   `json:"c,omitempty"`      // the SVM's hinge weight
	Dim        int       `json:"dim"`
	Classes    int       `json:"classes"`
	ClassNames []string  `json:"class_names,omitempty"`
	W          []float64 `json:"-"` // Dim x Classes, row-major
	B          []float64 `json:"-"` // Classes
}

// scores computes X W + B for a block of rows.
func (m *Model) scores(x *matrix) []float64 {
	s := make([]float64, x.n*m.Classes)
	x.mulW(s, m.W, m.Classes)
	for i := range x.n {
		row := s[i*m.Classes : (i+1)*m.Classes]
		for c := range row {
			row[c] += m.B[c]
		}
	}
	return s
}

func (m *Model) check(ds *Dataset) error {
	if ds.Dim != m.Dim {
		return fmt.Errorf("%w: model of %d features, data of %d", ErrMismatch, m.Dim, ds.Dim)
	}
	return nil
}

// Predict returns the predicted class of every example.
func (m *Model) Predict(ctx context.Context, ds *Dataset) ([]int, error) {
	if err := m.check(ds); err != nil {
		return nil, err
	}
	out := make([]int, 0, ds.N)
	err := ds.chunks(ctx, func(x *matrix, _ int) error {
		s := m.scores(x)
		for i := range x.n {
			out = append(out, argmax(s[i*m.Classes:(i+1)*m.Classes]))
		}
		return nil
	})
	return out, err
}

// PredictProba returns class probabilities, n x Classes row-major: the
// softmax of the scores (calibrated for logistic models only).
func (m *Model) PredictProba(ctx context.Context, ds *Dataset) ([]float64, error) {
	if err := m.check(ds); err != nil {
		return nil, err
	}
	out := make([]float64, 0, ds.N*m.Classes)
	err := ds.chunks(ctx, func(x *matrix, _ int) error {
		s := m.scores(x)
		for i := range x.n {
			softmax(s[i*m.Classes : (i+1)*m.Classes])
		}
		out = append(out, s...)
		return nil
	})
	return out, err
}

func argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// softmax turns scores into probabilities in place and returns the log of
// the normaliser (log-sum-exp).
func softmax(v []float64) float64 {
	mx := v[0]
	for _, x := range v {
		mx = max(mx, x)
	}
	var sum float64
	for i, x := range v {
		v[i] = math.Exp(x - mx)
		sum += v[i]
	}
	for i := range v {
		v[i] /= sum
	}
	return mx + math.Log(sum)
}

// Evaluation holds a model's metrics on a dataset.
type Evaluation struct {
	N         int
	Accuracy  float64
	LogLoss   float64 // of the softmax of the scores
	Confusion [][]int // [true][predicted]
	// Err is set when the data could not be evaluated (then the metrics are zero).
	Err    error
	probs  []float64
	labels []int32
	k      int
}

// Evaluate computes accuracy, log loss and the confusion matrix on ds
// (Evaluation.Err reports a failure; EvaluateContext returns it instead).
func (m *Model) Evaluate(ds *Dataset) *Evaluation {
	e, err := m.EvaluateContext(context.Background(), ds)
	if err != nil {
		return &Evaluation{Err: err}
	}
	return e
}

// EvaluateContext is Evaluate with a context and an error.
func (m *Model) EvaluateContext(ctx context.Context, ds *Dataset) (*Evaluation, error) {
	if err := m.check(ds); err != nil {
		return nil, err
	}
	e := &Evaluation{k: m.Classes, Confusion: make([][]int, m.Classes)}
	for i := range e.Confusion {
		e.Confusion[i] = make([]int, m.Classes)
	}
	correct := 0
	err := ds.chunks(ctx, func(x *matrix, _ int) error {
		s := m.scores(x)
		for i := range x.n {
			row := s[i*m.Classes : (i+1)*m.Classes]
			p := argmax(row)
			softmax(row)
			y := int(x.y[i])
			e.Confusion[y][p]++
			if p == y {
				correct++
			}
			e.LogLoss -= math.Log(max(row[y], 1e-15))
		}
		e.probs = append(e.probs, s...)
		e.labels = append(e.labels, x.y...)
		e.N += x.n
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.Accuracy = float64(correct) / float64(e.N)
	e.LogLoss /= float64(e.N)
	return e, nil
}

// TopK is the fraction of examples whose class is among the k best scores.
func (e *Evaluation) TopK(k int) float64 {
	if e.N == 0 {
		return 0
	}
	hit := 0
	idx := make([]int, e.k)
	for i := range e.N {
		row := e.probs[i*e.k : (i+1)*e.k]
		for c := range idx {
			idx[c] = c
		}
		sort.Slice(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
		for _, c := range idx[:min(k, e.k)] {
			if c == int(e.labels[i]) {
				hit++
				break
			}
		}
	}
	return float64(hit) / float64(e.N)
}

// Save writes the model under prefix: model.json, weights.npy (Dim x
// Classes, float64) and bias.npy, readable by numpy.
func (m *Model) Save(ctx context.Context, store blob.Store, prefix string) error {
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	var w, b bytes.Buffer
	if err := npy.Write(&w, m.W, m.Dim, m.Classes); err != nil {
		return err
	}
	if err := npy.Write(&b, m.B); err != nil {
		return err
	}
	for k, v := range map[string][]byte{"/weights.npy": w.Bytes(), "/bias.npy": b.Bytes(), "/model.json": mb} {
		if err := blob.PutBytes(ctx, store, prefix+k, v, blob.PutOptions{}); err != nil {
			return fmt.Errorf("linear: save model: %w", err)
		}
	}
	return nil
}

// LoadModel reads a model written by Save.
func LoadModel(ctx context.Context, store blob.Store, prefix string) (*Model, error) {
	mb, err := blob.ReadAll(ctx, store, prefix+"/model.json")
	if err != nil {
		return nil, fmt.Errorf("linear: load model: %w", err)
	}
	m := &Model{}
	if err := json.Unmarshal(mb, m); err != nil {
		return nil, fmt.Errorf("%w: model.json: %v", ErrBadData, err)
	}
	wb, err := blob.ReadAll(ctx, store, prefix+"/weights.npy")
	if err != nil {
		return nil, fmt.Errorf("linear: load model: %w", err)
	}
	var shape []int
	if m.W, shape, err = npy.Read[float64](bytes.NewReader(wb)); err != nil {
		return nil, fmt.Errorf("linear: weights.npy: %w", err)
	}
	if len(shape) != 2 || shape[0] != m.Dim || shape[1] != m.Classes {
		return nil, fmt.Errorf("%w: weights of shape %v for %d x %d", ErrBadData, shape, m.Dim, m.Classes)
	}
	bb, err := blob.ReadAll(ctx, store, prefix+"/bias.npy")
	if err != nil {
		return nil, fmt.Errorf("linear: load model: %w", err)
	}
	if m.B, _, err = npy.Read[float64](bytes.NewReader(bb)); err != nil || len(m.B) != m.Classes {
		return nil, fmt.Errorf("%w: bias.npy: %v", ErrBadData, err)
	}
	return m, nil
}

// LogSpace returns n values from 10^lo to 10^hi, evenly spaced in log scale.
func LogSpace(lo, hi float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		t := lo
		if n > 1 {
			t = lo + (hi-lo)*float64(i)/float64(n-1)
		}
		out[i] = math.Pow(10, t)
	}
	return out
}
