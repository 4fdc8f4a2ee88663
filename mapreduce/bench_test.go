package mapreduce

import (
	"context"
	"testing"

	"github.com/wrenml/wren/blob"
	_ "github.com/wrenml/wren/blob/memblob"
)

// The map stage's cost per byte, in process: go test -bench Map
// -cpuprofile cpu.out ./mapreduce.

func BenchmarkSortMap(b *testing.B) {
	ctx := context.Background()
	st, _ := blob.Open(ctx, "mem://bench-sort")
	if _, err := GenerateRecords(ctx, st, "", GenOptions{Records: 320000, Files: 1, ASCII: true, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	sp, err := Splitters(ctx, st.URL(), 16)
	if err != nil {
		b.Fatal(err)
	}
	t := mapTask{Input: st.URL(), Record: RecordSize, Split: Split{Ranges: []Range{{Key: "part-00000", Len: 320000 * RecordSize}}},
		Partitions: 16, Splitters: sp, Shuffle: "mem://bench-shuffle", Prefix: "s"}
	b.SetBytes(320000 * RecordSize)
	for b.Loop() {
		if _, err := sortMap.run(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWordCountMap(b *testing.B) {
	ctx := context.Background()
	st, _ := blob.Open(ctx, "mem://bench-words")
	if err := GenerateText(ctx, st, "", TextOptions{Bytes: 16 << 20, Files: 1, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	t := mapTask{Input: st.URL(), Split: Split{Ranges: []Range{{Key: "text-00000", Len: 16 << 20}}},
		Partitions: 2, Shuffle: "mem://bench-shuffle", Prefix: "w", Combiner: "sum", MaxLine: 1 << 20}
	b.SetBytes(16 << 20)
	for b.Loop() {
		if _, err := wordsMap.run(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
}
