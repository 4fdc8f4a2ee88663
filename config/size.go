package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a positive byte count: a number with an optional unit,
// KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), in any
// case and with optional spaces ("64MiB", "1.5 GB", "4096").
func ParseSize(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), 1.0
	lower := strings.ToLower(num)
	for _, u := range []struct {
		suf  string
		mult float64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"b", 1}} {
		if strings.HasSuffix(lower, u.suf) {
			num, mult = strings.TrimSpace(num[:len(num)-len(u.suf)]), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || !(n > 0) || math.IsInf(n, 0) || n*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, KB, MB, GB, KiB, MiB or GiB", s)
	}
	return int64(n * mult), nil
}
