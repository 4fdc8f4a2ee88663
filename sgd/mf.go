package sgd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/npy"
)

// Ratings are (user, item, rating) triples: the data of matrix
// factorization. Users and items are dense indices into UserIDs and
// ItemIDs, the identifiers the input used.
type Ratings struct {
	UserIDs, ItemIDs []string
	User, Item       []int32
	Value            []float32
}

// Len returns the number of ratings.
func (r *Ratings) Len() int { return len(r.Value) }

// Mean returns the mean rating (0 for none).
func (r *Ratings) Mean() float64 {
	var s float64
	for _, v := range r.Value {
		s += float64(v)
	}
	return s / float64(max(len(r.Value), 1))
}

// maxRatingsIndex bounds users and items: indices are int32, and a model
// row per user and item must fit the parameter server.
const maxRatingsIndex = 1 << 28

// maxRank bounds FactorOptions.Rank.
const maxRank = 4096

// ReadRatings parses ratings in the layouts people have them: MovieLens
// 100K's u.data (user, item, rating, timestamp separated by tabs), MovieLens
// 1M/10M's ratings.dat ("::"), MovieLens' ratings.csv (a header
// userId,movieId,rating,timestamp) and any user,item,rating CSV (with or
// without a header; more columns are ignored). name names the input in
// errors, which give its line. Identifiers are kept as written and
// numbered in order of first appearance.
func ReadRatings(r io.Reader, name string) (*Ratings, error) {
	out := &Ratings{}
	users, items := map[string]int32{}, map[string]int32{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	var sep string
	first := true // the first non-empty line may be a header
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if sep == "" {
			switch {
			case strings.Contains(text, "::"):
				sep = "::"
			case strings.Contains(text, "\t"):
				sep = "\t"
			case strings.Contains(text, ","):
				sep = ","
			default:
				return nil, fmt.Errorf("%w: %s line %d: %q is not user,item,rating (CSV), tab-separated or ::-separated", ErrBadData, name, line, trimForError(text))
			}
		}
		header := first
		first = false
		f := strings.Split(text, sep)
		if len(f) < 3 {
			return nil, fmt.Errorf("%w: %s line %d: %d fields, want user, item, rating", ErrBadData, name, line, len(f))
		}
		u, it, vs := strings.TrimSpace(f[0]), strings.TrimSpace(f[1]), strings.TrimSpace(f[2])
		v, err := strconv.ParseFloat(vs, 32)
		if err != nil {
			if header {
				continue
			}
			return nil, fmt.Errorf("%w: %s line %d: rating %q: not a number", ErrBadData, name, line, trimForError(vs))
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: %s line %d: rating %v", ErrBadData, name, line, vs)
		}
		if u == "" || it == "" {
			return nil, fmt.Errorf("%w: %s line %d: an empty user or item", ErrBadData, name, line)
		}
		ui, err := intern(users, &out.UserIDs, u)
		if err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %w", ErrBadData, name, line, err)
		}
		ii, err := intern(items, &out.ItemIDs, it)
		if err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %w", ErrBadData, name, line, err)
		}
		out.User = append(out.User, ui)
		out.Item = append(out.Item, ii)
		out.Value = append(out.Value, float32(v))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sgd: read ratings %s (line %d): %w", name, line+1, err)
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("%w: %s holds no ratings", ErrBadData, name)
	}
	return out, nil
}

// intern returns id's index, numbering a new one after the others.
func intern(index map[string]int32, ids *[]string, id string) (int32, error) {
	if i, ok := index[id]; ok {
		return i, nil
	}
	if len(*ids) >= maxRatingsIndex {
		return 0, fmt.Errorf("more than %d users or items", maxRatingsIndex)
	}
	i := int32(len(*ids))
	index[id] = i
	*ids = append(*ids, id)
	return i, nil
}

func trimForError(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Split deals the ratings into a training and a held-out set (a fraction
// test of them, drawn by seed); both keep all identifiers, so indices agree.
func (r *Ratings) Split(test float64, seed uint64) (train, held *Ratings) {
	train = &Ratings{UserIDs: r.UserIDs, ItemIDs: r.ItemIDs}
	held = &Ratings{UserIDs: r.UserIDs, ItemIDs: r.ItemIDs}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for i := range r.Value {
		d := train
		if rng.Float64() < test {
			d = held
		}
		d.User = append(d.User, r.User[i])
		d.Item = append(d.Item, r.Item[i])
		d.Value = append(d.Value, r.Value[i])
	}
	return train, held
}

// RatingsSpec describes generated ratings: a hidden rank-Rank model
// (factors drawn from N(0, 1/Rank) per value, plus Mean) rated at Count
// random (user, item) pairs with N(0, Noise²) noise.
type RatingsSpec struct {
	Users, Items, Rank, Count int
	Mean, Noise               float64
	Seed                      uint64
}

// GenerateRatings draws ratings from spec's hidden low-rank model.
func GenerateRatings(spec RatingsSpec) (*Ratings, error) {
	if spec.Users < 1 || spec.Items < 1 || spec.Rank < 1 || spec.Count < 1 || spec.Users > maxRatingsIndex || spec.Items > maxRatingsIndex {
		return nil, fmt.Errorf("%w: ratings spec %+v", ErrBadData, spec)
	}
	if math.IsNaN(spec.Mean) || math.IsInf(spec.Mean, 0) || math.IsNaN(spec.Noise) || math.IsInf(spec.Noise, 0) || spec.Noise < 0 {
		return nil, fmt.Errorf("%w: ratings spec with mean %v and noise %v: want finite numbers, the noise 0 or more", ErrBadData, spec.Mean, spec.Noise)
	}
	rng := rand.New(rand.NewPCG(spec.Seed, 0xfac7))
	sd := 1 / math.Sqrt(float64(spec.Rank))
	p := make([]float64, spec.Users*spec.Rank)
	q := make([]float64, spec.Items*spec.Rank)
	for i := range p {
		p[i] = sd * rng.NormFloat64()
	}
	for i := range q {
		q[i] = sd * rng.NormFloat64()
	}
	r := &Ratings{UserIDs: make([]string, spec.Users), ItemIDs: make([]string, spec.Items)}
	for u := range r.UserIDs {
		r.UserIDs[u] = strconv.Itoa(u + 1)
	}
	for i := range r.ItemIDs {
		r.ItemIDs[i] = strconv.Itoa(i + 1)
	}
	for range spec.Count {
		u, i := rng.IntN(spec.Users), rng.IntN(spec.Items)
		v := spec.Mean + spec.Noise*rng.NormFloat64()
		for f := range spec.Rank {
			v += p[u*spec.Rank+f] * q[i*spec.Rank+f]
		}
		r.User = append(r.User, int32(u))
		r.Item = append(r.Item, int32(i))
		r.Value = append(r.Value, float32(v))
	}
	return r, nil
}

// ratingsMeta is what WriteRatings keeps beside the shards (ratings.json).
type ratingsMeta struct {
	Users   int      `json:"users"`
	Items   int      `json:"items"`
	Count   int      `json:"count"`
	Mean    float64  `json:"mean"`
	Shards  []string `json:"shards"`
	Sizes   []int    `json:"sizes"`
	UserIDs []string `json:"user_ids"`
	ItemIDs []string `json:"item_ids"`
}

const ratingsMetaName = "/ratings.json"

// WriteRatings writes r as n shards under prefix in st, for TrainFactors:
// prefix/ratings-K.pairs.npy (int32 user, item rows), prefix/ratings-K.values.npy
// (float32) and prefix/ratings.json (counts, the mean, the identifiers). The
// ratings are dealt to shards in a seeded random order; shards differ by at
// most one rating.
func WriteRatings(ctx context.Context, st blob.Store, prefix string, r *Ratings, n int) error {
	if n < 1 || n > r.Len() {
		return fmt.Errorf("%w: %d shards of %d ratings: want 1 to %d shards (a shard holds a rating at least)", ErrBadData, n, r.Len(), r.Len())
	}
	if err := r.check(); err != nil {
		return err
	}
	perm := rand.New(rand.NewPCG(uint64(r.Len()), 0x5a4d)).Perm(r.Len())
	meta := ratingsMeta{Users: len(r.UserIDs), Items: len(r.ItemIDs), Count: r.Len(), Mean: r.Mean(), UserIDs: r.UserIDs, ItemIDs: r.ItemIDs}
	for s := range n {
		lo, hi := s*r.Len()/n, (s+1)*r.Len()/n
		pairs := make([]int32, 0, 2*(hi-lo))
		vals := make([]float32, 0, hi-lo)
		for _, i := range perm[lo:hi] {
			pairs = append(pairs, r.User[i], r.Item[i])
			vals = append(vals, r.Value[i])
		}
		base := fmt.Sprintf("%s/ratings-%d", prefix, s)
		var b bytes.Buffer
		if err := npy.Write(&b, pairs, hi-lo, 2); err != nil {
			return err
		}
		if err := blob.PutBytes(ctx, st, base+".pairs.npy", b.Bytes(), blob.PutOptions{}); err != nil {
			return fmt.Errorf("sgd: write ratings: %w", err)
		}
		b.Reset()
		if err := npy.Write(&b, vals); err != nil {
			return err
		}
		if err := blob.PutBytes(ctx, st, base+".values.npy", b.Bytes(), blob.PutOptions{}); err != nil {
			return fmt.Errorf("sgd: write ratings: %w", err)
		}
		meta.Shards = append(meta.Shards, base)
		meta.Sizes = append(meta.Sizes, hi-lo)
	}
	mb, _ := json.Marshal(meta)
	if err := blob.PutBytes(ctx, st, prefix+ratingsMetaName, mb, blob.PutOptions{}); err != nil {
		return fmt.Errorf("sgd: write ratings: %w", err)
	}
	return nil
}

// check validates indices and values.
func (r *Ratings) check() error {
	if len(r.User) != len(r.Value) || len(r.Item) != len(r.Value) {
		return fmt.Errorf("%w: %d users, %d items and %d values", ErrBadData, len(r.User), len(r.Item), len(r.Value))
	}
	for i := range r.Value {
		if u := r.User[i]; u < 0 || int(u) >= len(r.UserIDs) {
			return fmt.Errorf("%w: rating %d: user %d of %d", ErrBadData, i, u, len(r.UserIDs))
		}
		if it := r.Item[i]; it < 0 || int(it) >= len(r.ItemIDs) {
			return fmt.Errorf("%w: rating %d: item %d of %d", ErrBadData, i, it, len(r.ItemIDs))
		}
		if v := float64(r.Value[i]); math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: rating %d is %v", ErrBadData, i, v)
		}
	}
	return nil
}

func readRatingsMeta(ctx context.Context, st blob.Store, prefix string) (*ratingsMeta, error) {
	b, err := blob.ReadAll(ctx, st, prefix+ratingsMetaName)
	if err != nil {
		return nil, fmt.Errorf("sgd: ratings %s (written by WriteRatings?): %w", prefix, err)
	}
	var m ratingsMeta
	if err := json.Unmarshal(b, &m); err != nil || m.Users < 1 || m.Items < 1 || len(m.Shards) != len(m.Sizes) || len(m.Shards) == 0 {
		return nil, fmt.Errorf("%w: %s%s: %v", ErrBadData, prefix, ratingsMetaName, err)
	}
	return &m, nil
}

// mfSpec is what a worker needs to know of a factorization.
type mfSpec struct {
	Users, Items, Rank int
	Mean               float64
}

// rowLen is the values per user or item: its factors and its bias.
func (s mfSpec) rowLen() int { return s.Rank + 1 }

func (s mfSpec) size() int { return (s.Users + s.Items) * s.rowLen() }

// ratingsShard is one shard of ratings in memory.
type ratingsShard struct {
	user, item []int32
	value      []float32
}

func readRatingsShard(ctx context.Context, st blob.Store, base string, spec mfSpec) (*ratingsShard, error) {
	pb, err := blob.ReadAll(ctx, st, base+".pairs.npy")
	if err != nil {
		return nil, fmt.Errorf("sgd: %w", err)
	}
	pairs, shape, err := npy.Read[int32](bytes.NewReader(pb))
	if err != nil || len(shape) != 2 || shape[1] != 2 {
		return nil, fmt.Errorf("%w: %s.pairs.npy: shape %v: %v", ErrBadData, base, shape, err)
	}
	vb, err := blob.ReadAll(ctx, st, base+".values.npy")
	if err != nil {
		return nil, fmt.Errorf("sgd: %w", err)
	}
	vals, _, err := npy.Read[float32](bytes.NewReader(vb))
	if err != nil || len(vals) != shape[0] {
		return nil, fmt.Errorf("%w: %s.values.npy: %d values for %d pairs: %v", ErrBadData, base, len(vals), shape[0], err)
	}
	sh := &ratingsShard{user: make([]int32, len(vals)), item: make([]int32, len(vals)), value: vals}
	for i := range vals {
		sh.user[i], sh.item[i] = pairs[2*i], pairs[2*i+1]
		if err := checkShardIndex("user", int(sh.user[i]), spec.Users); err != nil {
			return nil, fmt.Errorf("%s rating %d: %w", base, i, err)
		}
		if err := checkShardIndex("item", int(sh.item[i]), spec.Items); err != nil {
			return nil, fmt.Errorf("%s rating %d: %w", base, i, err)
		}
		if v := float64(vals[i]); math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: %s rating %d is %v", ErrBadData, base, i, v)
		}
	}
	return sh, nil
}

// A worker process keeps the ratings of its last assignment.
var (
	mfCacheMu  sync.Mutex
	mfCacheKey string
	mfCached   []*ratingsShard
)

func newMFLearner(ctx context.Context, st blob.Store, in workerIn) (learner, error) {
	spec := *in.MF
	if spec.Rank < 1 || spec.Rank > maxRank || spec.Users < 1 || spec.Items < 1 || spec.Users > maxRatingsIndex || spec.Items > maxRatingsIndex ||
		math.IsNaN(spec.Mean) || math.IsInf(spec.Mean, 0) {
		return nil, fmt.Errorf("%w: factorization %+v", ErrBadData, spec)
	}
	key := fmt.Sprint(in.Store, spec, in.Shards)
	mfCacheMu.Lock()
	defer mfCacheMu.Unlock()
	if key != mfCacheKey {
		mfCacheKey, mfCached = "", nil
		shards := make([]*ratingsShard, len(in.Shards))
		for i, base := range in.Shards {
			sh, err := readRatingsShard(ctx, st, base, spec)
			if err != nil {
				return nil, err
			}
			if i < len(in.Sizes) && in.Sizes[i] > 0 && len(sh.value) != in.Sizes[i] {
				return nil, fmt.Errorf("%w: %s has %d ratings, %d when training started", ErrBadData, base, len(sh.value), in.Sizes[i])
			}
			shards[i] = sh
		}
		mfCacheKey, mfCached = key, shards
	}
	return &mfLearner{spec: spec, shards: mfCached}, nil
}

// mfLearner is a biased matrix factorization: rating(u, i) ≈ Mean + b_u +
// b_i + p_u·q_i. The model holds a row of Rank factors and a bias per user,
// then one per item; the loss is half the squared error, the L2 penalty
// applies to every value.
type mfLearner struct {
	spec   mfSpec
	shards []*ratingsShard
}

func (l *mfLearner) size() int { return l.spec.size() }

func (l *mfLearner) shardLens() []int {
	n := make([]int, len(l.shards))
	for i, s := range l.shards {
		n[i] = len(s.value)
	}
	return n
}

func (l *mfLearner) denseRows() bool    { return false }
func (l *mfLearner) penalized(int) bool { return true }
func (l *mfLearner) rows(s, r int) (int, int) {
	sh, k := l.shards[s], l.spec.rowLen()
	return int(sh.user[r]) * k, (l.spec.Users + int(sh.item[r])) * k
}

func (l *mfLearner) coords(s, r int, dst []int) []int {
	pu, qi := l.rows(s, r)
	for f := range l.spec.rowLen() {
		dst = append(dst, pu+f, qi+f)
	}
	return dst
}

func (l *mfLearner) grad(s int, rows []int, w, g []float64) float64 {
	rank := l.spec.Rank
	var total float64
	for _, r := range rows {
		pu, qi := l.rows(s, r)
		e := predictMF(w, pu, qi, rank, l.spec.Mean) - float64(l.shards[s].value[r])
		total += e * e / 2
		p, q := w[pu:pu+rank], w[qi:qi+rank]
		gp, gq := g[pu:pu+rank], g[qi:qi+rank]
		for f := range rank {
			gp[f] += e * q[f]
			gq[f] += e * p[f]
		}
		g[pu+rank] += e
		g[qi+rank] += e
	}
	return total
}

// predictMF is the model's rating for the user row at pu and the item row at qi.
func predictMF(w []float64, pu, qi, rank int, mean float64) float64 {
	v := mean + w[pu+rank] + w[qi+rank]
	p, q := w[pu:pu+rank], w[qi:qi+rank]
	for f := range rank {
		v += p[f] * q[f]
	}
	return v
}

// rmse returns the root mean squared error of the model w on r, whose
// identifiers are mapped to the model's by meta.
func rmse(w []float64, spec mfSpec, r *Ratings, users, items []int32) float64 {
	k := spec.rowLen()
	var s float64
	for i := range r.Value {
		e := predictMF(w, int(users[i])*k, (spec.Users+int(items[i]))*k, spec.Rank, spec.Mean) - float64(r.Value[i])
		s += e * e
	}
	return math.Sqrt(s / float64(max(r.Len(), 1)))
}

// ErrUnknownID reports an evaluation rating of a user or item the model
// was not trained on.
var ErrUnknownID = errors.New("sgd: a user or item the model does not know")

// alignRatings maps r's users and items to the model's indices (its
// identifiers in meta): an identifier the model does not know is refused,
// naming it.
func alignRatings(r *Ratings, meta *ratingsMeta) (users, items []int32, err error) {
	if err := r.check(); err != nil {
		return nil, nil, err
	}
	if slices.Equal(r.UserIDs, meta.UserIDs) && slices.Equal(r.ItemIDs, meta.ItemIDs) {
		return r.User, r.Item, nil
	}
	ui, ii := make(map[string]int32, len(meta.UserIDs)), make(map[string]int32, len(meta.ItemIDs))
	for i, id := range meta.UserIDs {
		ui[id] = int32(i)
	}
	for i, id := range meta.ItemIDs {
		ii[id] = int32(i)
	}
	users, items = make([]int32, r.Len()), make([]int32, r.Len())
	for i := range r.Value {
		u, ok := ui[r.UserIDs[r.User[i]]]
		if !ok {
			return nil, nil, fmt.Errorf("%w: rating %d is by user %q, who has no rating in the training data", ErrUnknownID, i, r.UserIDs[r.User[i]])
		}
		it, ok := ii[r.ItemIDs[r.Item[i]]]
		if !ok {
			return nil, nil, fmt.Errorf("%w: rating %d is of item %q, which has no rating in the training data", ErrUnknownID, i, r.ItemIDs[r.Item[i]])
		}
		users[i], items[i] = u, it
	}
	return users, items, nil
}

// checkShardIndex is a guard for learners' data: an index out of the model
// would write outside it.
func checkShardIndex(what string, i, n int) error {
	if i < 0 || i >= n {
		return fmt.Errorf("%w: %s index %d out of [0, %d)", ErrBadData, what, i, n)
	}
	return nil
}
