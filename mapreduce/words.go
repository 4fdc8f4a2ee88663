package mapreduce

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
)

// EachWord calls fn with every word of text: the maximal runs of letters,
// digits and '_'. The words are slices of text (no copies).
func EachWord[T ~string | ~[]byte](text T, fn func(word T)) {
	start := -1
	for i := 0; i < len(text); {
		c := text[i]
		size := 1
		var word bool
		if c < utf8.RuneSelf {
			word = wordByte[c]
		} else {
			var r rune
			r, size = utf8.DecodeRune([]byte(text[i:min(i+utf8.UTFMax, len(text))]))
			word = unicode.IsLetter(r) || unicode.IsDigit(r)
		}
		if word && start < 0 {
			start = i
		} else if !word && start >= 0 {
			fn(text[start:i])
			start = -1
		}
		i += size
	}
	if start >= 0 {
		fn(text[start:])
	}
}

// wordByte says which ASCII bytes are word characters.
var wordByte = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	return t
}()

// CountWords counts the words (see EachWord) of every object in st in
// this process, in one goroutine: the single-process baseline of a word
// count. It returns the counts and the bytes read.
func CountWords(ctx context.Context, st blob.Store) (map[string]int, int64, error) {
	counts := map[string]int{}
	var n int64
	for a, err := range st.List(ctx, "") {
		if err != nil {
			return nil, n, err
		}
		if hidden(a.Key) { // as Lines skips them
			continue
		}
		r, err := st.Get(ctx, a.Key)
		if err != nil {
			return nil, n, err
		}
		m, err := AddWords(r, counts)
		r.Close()
		n += m
		if err != nil {
			return nil, n, fmt.Errorf("mapreduce: count %s: %w", a.Key, err)
		}
	}
	return counts, n, nil
}

// AddWords adds the words of r to counts and returns the bytes read.
func AddWords(r io.Reader, counts map[string]int) (int64, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var n int64
	var carry []byte // a line longer than the buffer, so far
	for {
		line, err := br.ReadSlice('\n')
		n += int64(len(line))
		if errors.Is(err, bufio.ErrBufferFull) {
			carry = append(carry, line...)
			continue
		}
		if carry != nil {
			line = append(carry, line...)
			carry = nil
		}
		EachWord(line, func(w []byte) { counts[string(w)]++ })
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// wordsMap and sumReduce are the built-in word count's functions.
var (
	wordsMap = RegisterMap("words", func(ctx context.Context, line string, emit func(string, int)) error {
		EachWord(line, func(w string) { emit(w, 1) })
		return nil
	})
	sumReduce = RegisterReduce("sum", func(ctx context.Context, key string, counts []int) (int, error) {
		s := 0
		for _, c := range counts {
			s += c
		}
		return s, nil
	})
)

// WordCount counts the words (see EachWord) of the text objects under
// input, with a combiner, into partitions of (word, count) records; its
// Result's Collect reads them into a map.
func WordCount(ctx context.Context, ex *wren.Executor, input string, partitions int, shuffle string, opts ...wren.MapOption) (*Result[string, int], error) {
	return Run(ctx, ex, Job[string, string, int]{
		Input:      Lines(input),
		Map:        wordsMap,
		Combine:    sumReduce,
		Reduce:     sumReduce,
		Partitions: partitions,
		Shuffle:    shuffle,
		MapOptions: opts,
	})
}

// TextOptions say what GenerateText writes.
type TextOptions struct {
	// Bytes is about the total size.
	Bytes int64
	// Files is the number of objects; 0 means one per 16 MiB.
	Files int
	// Vocabulary is the number of distinct words; 0 means 50000.
	Vocabulary int
	// S is the Zipf exponent (> 1); 0 means 1.1.
	S float64
	// Seed makes the text; the same seed gives the same text.
	Seed uint64
}

// GenerateText writes Zipf-distributed text to st as objects
// prefix+"text-NNNNN": lines of 4 to 20 words from a vocabulary of random
// lowercase words, word k drawn with probability proportional to
// (1+k)^-S.
func GenerateText(ctx context.Context, st blob.Store, prefix string, opts TextOptions) error {
	if opts.Bytes <= 0 {
		return errors.New("mapreduce: TextOptions.Bytes must be positive")
	}
	if opts.Vocabulary <= 0 {
		opts.Vocabulary = 50000
	}
	if opts.S == 0 {
		opts.S = 1.1
	}
	if opts.S <= 1 {
		return fmt.Errorf("mapreduce: Zipf exponent %g must be above 1", opts.S)
	}
	files := opts.Files
	if files <= 0 {
		files = int(max(1, opts.Bytes/(16<<20)))
	}
	vrng := rand.New(rand.NewPCG(opts.Seed, 0x7765))
	vocab := make([]string, opts.Vocabulary)
	seen := map[string]bool{}
	for i := range vocab {
		for {
			b := make([]byte, 2+vrng.IntN(10))
			for j := range b {
				b[j] = byte('a' + vrng.IntN(26))
			}
			if !seen[string(b)] {
				seen[string(b)] = true
				vocab[i] = string(b)
				break
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	per := opts.Bytes / int64(files)
	for f := range files {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(opts.Seed, uint64(f)+1))
			z := rand.NewZipf(rng, opts.S, 1, uint64(opts.Vocabulary-1))
			buf := make([]byte, 0, per+256)
			for int64(len(buf)) < per {
				n := 4 + rng.IntN(17)
				for w := range n {
					if w > 0 {
						buf = append(buf, ' ')
					}
					buf = append(buf, vocab[z.Uint64()]...)
				}
				buf = append(buf, '\n')
			}
			return blob.PutBytes(gctx, st, fmt.Sprintf("%stext-%05d", prefix, f), buf, blob.PutOptions{})
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("mapreduce: generate text: %w", err)
	}
	return nil
}
