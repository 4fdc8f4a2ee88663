package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/wrenml/wren"
)

func TestMain(m *testing.M) {
	wren.Init()
	os.Exit(m.Run())
}

// TestMovieLensLayout runs the example on a small file in MovieLens' u.data
// layout (tab-separated, with timestamps) with a local parameter server.
func TestMovieLensLayout(t *testing.T) {
	dir := t.TempDir()
	var text []byte
	for u := 1; u <= 60; u++ {
		for i := 1; i <= 40; i++ {
			if (u*7+i*3)%4 == 0 {
				continue
			}
			r := 1 + (u+i)%5
			text = append(text, []byte(itoa(u)+"\t"+itoa(i)+"\t"+itoa(r)+"\t881250949\n")...)
		}
	}
	file := filepath.Join(dir, "u.data")
	if err := os.WriteFile(file, text, 0o644); err != nil {
		t.Fatal(err)
	}
	hw, seq, err := run(context.Background(), file, 2, 8, 3, 0.5, "", filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	// The example's two runs trained the same ratings as often and agree.
	if hw.Examples != seq.Examples || hw.Examples == 0 {
		t.Fatalf("examples: HOGWILD! %d, sequential %d", hw.Examples, seq.Examples)
	}
	if hw.Final.RMSE <= 0 || hw.Final.RMSE > 1.05*seq.Final.RMSE {
		t.Fatalf("held-out RMSE: HOGWILD! %v, sequential %v", hw.Final.RMSE, seq.Final.RMSE)
	}
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		if i /= 10; i == 0 {
			return string(b)
		}
	}
}
