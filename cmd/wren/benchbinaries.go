package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/internal/emulator"
	"github.com/wrenml/wren/worker/remote"
)

// The programs whose sizes `wren bench lambda` reports: the smallest wren
// program, and the example it runs on a cold container.
const (
	minimalPackage = "github.com/wrenml/wren/cmd/wren/testdata/minimal"
	piPackage      = "github.com/wrenml/wren/examples/montecarlo-pi"
)

// fetchedRE reads the runtime's line about a binary it fetched.
var fetchedRE = regexp.MustCompile(`wren-runtime: fetched code [0-9a-f]+ \((\d+) bytes in ([0-9.]+[a-zµ]+)\)`)

// benchBinaries reports what a Lambda job ships: the sizes of the static
// linux executables of a minimal program, of examples/montecarlo-pi (as
// go build makes it, and stripped as wren rebuilds a binary), of the
// runtime and of this program; and what a cold container costs:
// examples/montecarlo-pi run twice on one fresh emulator through the lambda
// backend's emulators setting (a cold container, which fetches the binary
// from the store and starts it, then a warm one), the runtime's own fetch
// time, and, for the limit, a raw S3 GET and PUT of the same bytes and
// wren's upload of them.
func benchBinaries(ctx context.Context, wd, dir, bootstrap, wrenBinary string, s3c *s3.Client, endpoint string, env []string) (map[string]any, error) {
	out := map[string]any{"measure": "binaries", "goos": "linux", "cgo": false}
	build := func(name, pkg string, flags ...string) (string, int64, error) {
		path := filepath.Join(dir, name)
		if err := emulator.Build(wd, pkg, path, flags...); err != nil {
			return "", 0, fmt.Errorf("bench lambda: build %s: %w", pkg, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return "", 0, err
		}
		return path, fi.Size(), nil
	}
	stripped := []string{"-trimpath", "-ldflags=-s -w"}
	_, minimal, err := build("minimal", minimalPackage)
	if err != nil {
		return nil, err
	}
	pi, piSize, err := build("montecarlo-pi", piPackage)
	if err != nil {
		return nil, err
	}
	_, piStripped, err := build("montecarlo-pi-stripped", piPackage, stripped...)
	if err != nil {
		return nil, err
	}
	out["minimal_bytes"] = minimal
	out["montecarlo_pi_bytes"] = piSize
	out["montecarlo_pi_stripped_bytes"] = piStripped
	for name, path := range map[string]string{"runtime_bytes": bootstrap, "wren_cli_bytes": wrenBinary} {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		out[name] = fi.Size()
	}

	// The limit: the same bytes through the raw S3 client, and wren's
	// upload (hashing, then a conditional put).
	body, err := os.ReadFile(pi)
	if err != nil {
		return nil, err
	}
	t := time.Now()
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String("raw/montecarlo-pi"), Body: bytes.NewReader(body)}); err != nil {
		return nil, err
	}
	out["raw_put_ms"] = ms(time.Since(t))
	t = time.Now()
	g, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String("raw/montecarlo-pi")})
	if err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "raw-get"))
	if err != nil {
		g.Body.Close()
		return nil, err
	}
	_, err = io.Copy(f, g.Body)
	g.Body.Close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	out["raw_get_ms"] = ms(time.Since(t))
	probe, err := wren.OpenStore(ctx, "s3://bench/upload-probe?endpoint="+endpoint)
	if err != nil {
		return nil, err
	}
	t = time.Now()
	_, err = remote.Upload(ctx, probe, pi)
	probe.Close()
	if err != nil {
		return nil, err
	}
	out["upload_ms"] = ms(time.Since(t))

	// montecarlo-pi on a fresh emulator whose container has nothing cached.
	cache := filepath.Join(dir, "cold-container")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return nil, err
	}
	es, err := emulator.Start(1, bootstrap, append(env, "TMPDIR="+cache)...)
	if err != nil {
		return nil, err
	}
	defer es[0].Stop()
	run := func() (time.Duration, error) {
		cmd := exec.CommandContext(ctx, pi, "-tasks", "8", "-darts", "100000", "-timeline", filepath.Join(dir, "pi.png"))
		cmd.Env = append(os.Environ(), "WREN_BACKEND=lambda", "WREN_LAMBDA_EMULATORS="+es[0].URL, "WREN_LAMBDA_TIMEOUT=60s",
			"WREN_STORE="+lambdaBenchStore(endpoint), "WREN_CONFIG=/dev/null")
		t := time.Now()
		if msg, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("bench lambda: montecarlo-pi on the emulator: %w\n%s", err, msg)
		}
		return time.Since(t), nil
	}
	cold, err := run()
	if err != nil {
		return nil, err
	}
	warm, err := run()
	if err != nil {
		return nil, err
	}
	out["montecarlo_pi_cold_s"] = round(cold.Seconds(), 4)
	out["montecarlo_pi_warm_s"] = round(warm.Seconds(), 4)
	m := fetchedRE.FindAllStringSubmatch(es[0].Output(), -1)
	if len(m) != 1 {
		return nil, fmt.Errorf("bench lambda: the cold container fetched %d binaries, want 1:\n%s", len(m), es[0].Output())
	}
	if n, _ := strconv.ParseInt(m[0][1], 10, 64); n != piSize {
		return nil, fmt.Errorf("bench lambda: the container fetched %s bytes, montecarlo-pi has %d", m[0][1], piSize)
	}
	d, err := time.ParseDuration(m[0][2])
	if err != nil {
		return nil, err
	}
	out["fetch_ms"] = ms(d)
	return out, nil
}
