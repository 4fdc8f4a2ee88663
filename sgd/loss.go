package sgd

import (
	"fmt"
	"math"
)

// Loss is a training loss of a linear model with K outputs (scores).
// Implementations: Logistic, Softmax, Hinge, Squared.
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

// lossByName rebuilds a loss on a worker.
func lossByName(name string, k int) (Loss, error) {
	switch name {
	case "logistic":
		return Logistic{}, nil
	case "softmax":
		if k < 2 {
			return nil, fmt.Errorf("sgd: softmax over %d classes", k)
		}
		return Softmax{Classes: k}, nil
	case "hinge":
		return Hinge{}, nil
	case "squared":
		return Squared{}, nil
	}
	return nil, fmt.Errorf("sgd: unknown loss %q", name)
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
