package sgd

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
)

// TestFactorsHogwild: HOGWILD! matrix factorization with 2 workers reaches
// the sequential baseline's held-out RMSE (within 2 %) after the same
// epochs, and both come near the noise level of the generated ratings.
func TestFactorsHogwild(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 2)
	client := psClient(t, 1)
	all, err := GenerateRatings(RatingsSpec{Users: 600, Items: 400, Rank: 4, Count: 80_000, Mean: 3, Noise: 0.1, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	train, test := all.Split(0.1, 1)
	if err := WriteRatings(ctx, ex.Store(), "ratings", train, 4); err != nil {
		t.Fatal(err)
	}
	// The spread of the ratings: what predicting the mean scores.
	var sd float64
	for _, v := range test.Value {
		sd += (float64(v) - train.Mean()) * (float64(v) - train.Mean())
	}
	sd = math.Sqrt(sd / float64(test.Len()))
	cfg := FactorOptions{Model: "mf", Data: "ratings", Rank: 4, Epochs: 12, BatchSize: 50, LocalSteps: 8, LR: Constant(1.25), L2: 1e-5, Seed: 2, Eval: test}
	seq, err := TrainFactorsLocal(ctx, ex.Store(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Workers = 2
	hw, err := TrainFactors(ctx, ex, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sequential: %v", seq)
	t.Logf("hogwild:    %v", hw)
	t.Logf("predicting the mean: RMSE %.4f", sd)
	if seq.Final.RMSE > sd/2 || seq.Final.RMSE > 0.3 {
		t.Fatalf("sequential RMSE %.4f, predicting the mean %.4f", seq.Final.RMSE, sd)
	}
	if hw.Final.RMSE > seq.Final.RMSE*1.02 {
		t.Fatalf("HOGWILD! RMSE %.4f, sequential %.4f: more than 2 %% worse", hw.Final.RMSE, seq.Final.RMSE)
	}
	if hw.Examples != seq.Examples || hw.Examples != int64(12*train.Len()) {
		t.Fatalf("examples trained: HOGWILD! %d, sequential %d, want %d", hw.Examples, seq.Examples, 12*train.Len())
	}
	if _, err := hw.Model(ctx); err == nil {
		t.Fatal("a factorization made a linear model")
	}
}

func TestReadRatings(t *testing.T) {
	cases := []struct{ name, text string }{
		{"u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t4\t1\n"},
		{"ratings.dat", "196::242::3::978300760\n186::302::3::978302109\n196::302::4::1\n"},
		{"ratings.csv", "userId,movieId,rating,timestamp\n196,242,3.0,964982703\n186,302,3.0,1\n196,302,4.0,1\n"},
		{"plain csv", "196,242,3\n\n186,302,3\n# a comment\n196,302,4\n"},
	}
	for _, c := range cases {
		r, err := ReadRatings(strings.NewReader(c.text), c.name)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.Len() != 3 || len(r.UserIDs) != 2 || len(r.ItemIDs) != 2 || r.UserIDs[r.User[2]] != "196" || r.ItemIDs[r.Item[2]] != "302" || r.Value[2] != 4 {
			t.Fatalf("%s: %+v", c.name, r)
		}
	}
	bad := []struct{ text, want string }{
		{"", "no ratings"},
		{"1,2,3\n1,2\n", "line 2: 2 fields"},
		{"1,2,3\n1,2,x\n", `line 2: rating "x"`},
		{"1,2,3\n1,2,NaN\n", "line 2: rating NaN"},
		{"1,2,3\n1,2,inf\n", "line 2"},
		{"1,,3\n", "empty user or item"},
		{"just words\n", "line 1"},
	}
	for _, c := range bad {
		_, err := ReadRatings(strings.NewReader(c.text), "in.csv")
		if !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), c.want) || (c.text != "" && !strings.Contains(err.Error(), "in.csv")) {
			t.Errorf("%q: %v, want ErrBadData with %q", c.text, err, c.want)
		}
	}
}

// TestFactorsBadInput: unknown users in the evaluation set, bad ratings
// objects, a model of another size or kind, settings out of range.
func TestFactorsBadInput(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 2)
	client := psClient(t, 1)
	train, err := ReadRatings(strings.NewReader("a,x,1\nb,y,2\nc,x,3\nd,z,4\n"), "train")
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteRatings(ctx, ex.Store(), "r", train, 2); err != nil {
		t.Fatal(err)
	}
	if err := WriteRatings(ctx, ex.Store(), "r5", train, 5); !errors.Is(err, ErrBadData) {
		t.Errorf("5 shards of 4 ratings: %v", err)
	}
	other, _ := ReadRatings(strings.NewReader("a,x,1\nnobody,y,2\n"), "eval")
	cfg := FactorOptions{Model: "m", Data: "r", Rank: 2, Epochs: 1, Workers: 2, Eval: other}
	if _, err := TrainFactors(ctx, ex, client, cfg); !errors.Is(err, ErrUnknownID) || !strings.Contains(err.Error(), `"nobody"`) {
		t.Errorf("an unknown user: %v", err)
	}
	if _, err := TrainFactorsLocal(ctx, ex.Store(), cfg); !errors.Is(err, ErrUnknownID) {
		t.Errorf("an unknown user, local: %v", err)
	}
	cfg.Eval = nil
	cfg.Workers = 3
	if _, err := TrainFactors(ctx, ex, client, cfg); !errors.Is(err, ErrBadData) {
		t.Errorf("3 workers for 2 shards: %v", err)
	}
	cfg.Workers = 2
	for _, c := range []FactorOptions{{Model: "m", Data: "r", Rank: -1}, {Model: "m", Data: "r", Init: math.NaN()}, {Model: "m", Data: "nothere"}, {Data: "r"}} {
		if _, err := TrainFactorsLocal(ctx, ex.Store(), c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	// A model of another size under the name.
	if _, err := client.Create(ctx, "m", 5, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := TrainFactors(ctx, ex, client, cfg); !errors.Is(err, ErrModelSize) {
		t.Errorf("a model of 5 values: %v", err)
	}
	cfg.Model = "m2"
	if err := ex.Store().Delete(ctx, "r/ratings-1.values.npy"); err != nil {
		t.Fatal(err)
	}
	if _, err := TrainFactors(ctx, ex, client, cfg); err == nil || !strings.Contains(err.Error(), "ratings-1.values.npy") {
		t.Errorf("a missing shard: %v", err)
	}
}
