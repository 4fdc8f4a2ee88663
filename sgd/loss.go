package sgd

import (
	"fmt"
	"math"
	"sync"
)

// Loss is a training loss of a linear model with K outputs (scores).
// Implementations: Logistic, Softmax, Hinge, Squared; a loss of your own
// trains once registered (RegisterLoss).
type Loss interface {
	// Outputs is the number of scores per example (1, or the classes).
	Outputs() int
	// ClassCount is the number of classes (2 for the binary losses, 0 for
	// regression).
	ClassCount() int
	// Grad writes d loss / d score into g (len Outputs) for the scores s
	// and the label y, and returns the loss.
	Grad(g, s []float64, y float64) float64
	// Predict returns the predicted class (or value, for Squared) of s.
	Predict(s []float64) float64
	// Name names the loss ("logistic", "softmax", ...).
	Name() string
}

// Logistic is the binary logistic loss; labels are 0 or 1 (values > 0
// count as 1).
type Logistic struct{}

func (Logistic) Outputs() int    { return 1 }
func (Logistic) ClassCount() int { return 2 }
func (Logistic) Name() string    { return "logistic" }
func (Logistic) Predict(s []float64) float64 {
	if s[0] > 0 {
		return 1
	}
	return 0
}
func (Logistic) Grad(g, s []float64, y float64) float64 {
	t := 0.0
	if y > 0 {
		t = 1
	}
	z := s[0]
	p := 1 / (1 + math.Exp(-z))
	g[0] = p - t
	// log(1+exp(-z)) for t=1, log(1+exp(z)) for t=0, stably.
	if t == 1 {
		return softplus(-z)
	}
	return softplus(z)
}

func softplus(x float64) float64 {
	if x > 30 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

// Softmax is the multinomial logistic loss over Classes classes; labels
// are class indices 0..Classes-1.
type Softmax struct{ Classes int }

func (l Softmax) Outputs() int    { return l.Classes }
func (l Softmax) ClassCount() int { return l.Classes }
func (Softmax) Name() string      { return "softmax" }
func (l Softmax) Predict(s []float64) float64 {
	best := 0
	for c := range s {
		if s[c] > s[best] {
			best = c
		}
	}
	return float64(best)
}
func (l Softmax) Grad(g, s []float64, y float64) float64 {
	m := s[0]
	for _, v := range s[1:] {
		m = max(m, v)
	}
	var z float64
	for c, v := range s {
		g[c] = math.Exp(v - m)
		z += g[c]
	}
	for c := range g {
		g[c] /= z
	}
	yc := int(y)
	loss := -math.Log(max(g[yc], 1e-300))
	g[yc]--
	return loss
}

// Hinge is the linear SVM's loss; labels are 0 or 1 (values > 0 count as
// the positive class).
type Hinge struct{}

func (Hinge) Outputs() int                { return 1 }
func (Hinge) ClassCount() int             { return 2 }
func (Hinge) Name() string                { return "hinge" }
func (Hinge) Predict(s []float64) float64 { return Logistic{}.Predict(s) }
func (Hinge) Grad(g, s []float64, y float64) float64 {
	t := -1.0
	if y > 0 {
		t = 1
	}
	if m := t * s[0]; m < 1 {
		g[0] = -t
		return 1 - m
	}
	g[0] = 0
	return 0
}

// Squared is the squared error ½(s - y)², for regression (or 0/1 labels).
type Squared struct{}

func (Squared) Outputs() int                { return 1 }
func (Squared) ClassCount() int             { return 0 }
func (Squared) Name() string                { return "squared" }
func (Squared) Predict(s []float64) float64 { return s[0] }
func (Squared) Grad(g, s []float64, y float64) float64 {
	d := s[0] - y
	g[0] = d
	return 0.5 * d * d
}

// NewLoss rebuilds a loss on a worker from its name and its number of
// outputs (the model's columns).
type NewLoss func(outputs int) (Loss, error)

var (
	lossMu sync.RWMutex
	losses = map[string]NewLoss{
		"logistic": func(int) (Loss, error) { return Logistic{}, nil },
		"softmax": func(k int) (Loss, error) {
			if k < 2 {
				return nil, fmt.Errorf("sgd: softmax over %d classes", k)
			}
			return Softmax{Classes: k}, nil
		},
		"hinge":   func(int) (Loss, error) { return Hinge{}, nil },
		"squared": func(int) (Loss, error) { return Squared{}, nil },
	}
)

// RegisterLoss makes a loss of the user's trainable: workers rebuild a
// run's loss from its Name and outputs, so a Loss that Train does not know
// by name must be registered, under its Name, in the package-level code
// of the program (a var or init: the workers run the same binary). It
// panics on an empty name, a nil function or a name registered twice.
func RegisterLoss(name string, fn NewLoss) {
	lossMu.Lock()
	defer lossMu.Unlock()
	switch {
	case name == "":
		panic("sgd: RegisterLoss with an empty name")
	case fn == nil:
		panic("sgd: RegisterLoss " + name + " with a nil function")
	case losses[name] != nil:
		panic("sgd: RegisterLoss called twice for " + name)
	}
	losses[name] = fn
}

// lossByName rebuilds a loss on a worker.
func lossByName(name string, k int) (Loss, error) {
	lossMu.RLock()
	fn := losses[name]
	lossMu.RUnlock()
	if fn == nil {
		return nil, fmt.Errorf("sgd: unknown loss %q: register it with sgd.RegisterLoss at package level", name)
	}
	return fn(k)
}

// checkLoss makes sure workers can rebuild l: registered under its name,
// it comes back as a loss of the same name and outputs.
func checkLoss(l Loss) error {
	got, err := lossByName(l.Name(), l.Outputs())
	if err != nil {
		return err
	}
	if got.Name() != l.Name() || got.Outputs() != l.Outputs() || got.ClassCount() != l.ClassCount() {
		return fmt.Errorf("sgd: loss %q rebuilds as %s with %d outputs and %d classes, not %d and %d: check its RegisterLoss function",
			l.Name(), got.Name(), got.Outputs(), got.ClassCount(), l.Outputs(), l.ClassCount())
	}
	return nil
}

// Schedule is a learning rate as a function of the step (minibatches done
// by a worker, from 0).
type Schedule struct {
	Kind  string  `json:"kind"` // "constant", "invscaling", "step"
	Eta0  float64 `json:"eta0"`
	Power float64 `json:"power,omitempty"` // invscaling: eta0 / (1+t)^power
	Drop  float64 `json:"drop,omitempty"`  // step: eta0 * drop^(t/every)
	Every int     `json:"every,omitempty"`
}

// Constant is a fixed learning rate.
func Constant(eta float64) Schedule { return Schedule{Kind: "constant", Eta0: eta} }

// InvScaling is scikit-learn's eta0 / (1+t)^power, t the step.
func InvScaling(eta0, power float64) Schedule {
	return Schedule{Kind: "invscaling", Eta0: eta0, Power: power}
}

// Step multiplies eta0 by drop every `every` steps.
func Step(eta0, drop float64, every int) Schedule {
	return Schedule{Kind: "step", Eta0: eta0, Drop: drop, Every: every}
}

// At returns the rate at step t.
func (s Schedule) At(t int) float64 {
	switch s.Kind {
	case "invscaling":
		return s.Eta0 / math.Pow(1+float64(t), s.Power)
	case "step":
		return s.Eta0 * math.Pow(s.Drop, float64(t/max(s.Every, 1)))
	}
	return s.Eta0
}

func (s Schedule) validate() error {
	switch {
	case s.Kind != "constant" && s.Kind != "invscaling" && s.Kind != "step":
		return fmt.Errorf("sgd: learning rate schedule %q", s.Kind)
	case !(s.Eta0 > 0) || math.IsInf(s.Eta0, 0):
		return fmt.Errorf("sgd: learning rate %v: want a positive number", s.Eta0)
	case s.Kind == "step" && (s.Every < 1 || !(s.Drop > 0)):
		return fmt.Errorf("sgd: step schedule every %d, drop %v", s.Every, s.Drop)
	}
	return nil
}
