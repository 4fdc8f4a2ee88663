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
	if err := run(context.Background(), file, 2, 2, 3, 0.5, "", filepath.Join(dir, "store")); err != nil {
		t.Fatal(err)
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
