package tune

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Hyperband runs brackets of successive halving over the same budgets (Li
// et al. 2018): with η the Reduction and sMax = floor(log_η(MaxBudget /
// MinBudget)), bracket s (sMax down to 0) starts ceil((sMax+1)/(s+1) η^s)
// trials at budget max(MinBudget, MaxBudget/η^s) and promotes the best
// 1/η of each rung up to MaxBudget, asynchronously as ASHA does. Brackets
// run one after the other; a bracket of many cheap trials explores, one of
// few full-budget trials is safe where early results mislead.
type Hyperband struct {
	MinBudget, MaxBudget int
	// Reduction is η; 0 means 3.
	Reduction int
	// TPE, when set, suggests each bracket's new trials from the trials
	// finished so far (BOHB, Falkner et al. 2018): the model is fitted on
	// the largest budget with at least TPE.Startup usable trials; before
	// any has, trials are drawn at random. Its Trials and Parallelism are
	// not used.
	TPE *TPE
}

// brackets returns each bracket's trial count and first budget.
func (h Hyperband) brackets() (eta int, n, r []int, err error) {
	eta = h.Reduction
	if eta == 0 {
		eta = 3
	}
	switch {
	case eta < 2:
		return 0, nil, nil, fmt.Errorf("%w: Hyperband reduction %d: want at least 2 (0 means 3)", ErrSpace, h.Reduction)
	case h.MinBudget < 1 || h.MaxBudget < h.MinBudget:
		return 0, nil, nil, fmt.Errorf("%w: Hyperband budgets %d to %d: want 1 <= MinBudget <= MaxBudget", ErrSpace, h.MinBudget, h.MaxBudget)
	}
	sMax := 0
	for p := eta; h.MaxBudget/p >= h.MinBudget; p *= eta {
		sMax++
	}
	for s := sMax; s >= 0; s-- {
		pow := int(math.Pow(float64(eta), float64(s)))
		n = append(n, int(math.Ceil(float64(sMax+1)/float64(s+1)*float64(pow))))
		r = append(r, max(h.MinBudget, h.MaxBudget/pow))
	}
	return eta, n, r, nil
}

// hyperband runs the brackets, drawing (or, with TPE, suggesting) each
// bracket's trials when it starts.
func (s *sweep) hyperband(space Space, h Hyperband) error {
	eta, ns, rs, err := h.brackets()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(s.opts.Seed, 0x4b))
	model := TPE{Startup: 1 << 30}
	if h.TPE != nil {
		model = *h.TPE
		model.Trials = max(model.Trials, 1) // only the sampler's settings matter here
		if err := model.defaults(1); err != nil {
			return err
		}
	}
	id := 0
	for b := range ns {
		below, above, finished := s.observations(model)
		var trials []Params
		for range ns[b] {
			p := model.suggest(space, rng, below, above, finished)
			p.ID = id
			id++
			p.store, p.metric = s.st.URL(), s.opts.Metric
			p.ckpt = fmt.Sprintf("%s/checkpoints/%06d", s.opts.Prefix, p.ID)
			trials = append(trials, p)
			// The bracket's trials so far count as bad: they are not to
			// be suggested twice (the constant liar of a batch).
			above = append(above, observation{p.Num, p.Str})
		}
		s.opts.ASHA = &ASHA{MinBudget: rs[b], MaxBudget: h.MaxBudget, Reduction: eta}
		s.opts.Logger.Info("tune: Hyperband bracket", "bracket", b, "trials", ns[b], "from budget", rs[b], "to", h.MaxBudget)
		if err := s.asha(trials); err != nil {
			return err
		}
	}
	return nil
}

// observations are BOHB's model inputs: the usable trials at the largest
// budget where at least model.Startup of them finished, split good and
// bad; finished is how many there are (below model.Startup: draw at
// random).
func (s *sweep) observations(model TPE) (below, above []observation, finished int) {
	s.mu.Lock()
	byBudget := map[int][]Trial{}
	for _, t := range s.best {
		byBudget[t.Budget] = append(byBudget[t.Budget], t)
	}
	s.mu.Unlock()
	best := -1
	for b, ts := range byBudget {
		ok := 0
		for _, t := range ts {
			if t.OK() {
				ok++
			}
		}
		if ok >= model.Startup && b > best {
			best = b
		}
	}
	if best < 0 {
		return nil, nil, 0
	}
	below, above = s.split(byBudget[best], model.Gamma)
	return below, above, len(byBudget[best])
}
