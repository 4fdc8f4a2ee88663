package job

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/retry"
)

// Manifest describes a job; it is stored at ManifestKey, written first.
type Manifest struct {
	Job     string    `json:"job"`
	Task    string    `json:"task"`
	Calls   int       `json:"calls"`
	Codec   string    `json:"codec"`
	Code    string    `json:"code"` // SHA-256 of the binary the calls run (HashFile)
	Backend string    `json:"backend"`
	Created time.Time `json:"created"`
	// Settings are the map's, which a driver that attaches keeps; nil in
	// manifests of earlier versions.
	Settings *Settings `json:"settings,omitempty"`
}

// Settings are a map's settings as they were resolved.
type Settings struct {
	ChunkSize         int           `json:"chunk_size"`
	Timeout           time.Duration `json:"timeout"`
	Retries           int           `json:"retries"`
	RetryErrors       bool          `json:"retry_errors"`
	Speculation       bool          `json:"speculation"`
	SpeculationFactor float64       `json:"speculation_factor"`
	MaxOutputBytes    int64         `json:"max_output_bytes"`
	MaxInlineOutput   int64         `json:"max_inline_output"`
}

// NewID returns a fresh, sortable job ID such as "20261127-103512-3fa9c1".
func NewID() string {
	var b [3]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// ReadManifest reads a job's manifest from a store.
func ReadManifest(ctx context.Context, st blob.Store, id string) (Manifest, error) {
	var m Manifest
	if err := ValidateID(id); err != nil {
		return m, err
	}
	var b []byte
	err := retry.Store(ctx, func(ctx context.Context) (err error) {
		b, err = blob.ReadAll(ctx, st, ManifestKey(id))
		return err
	})
	if err != nil {
		return m, fmt.Errorf("job %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("job %s: manifest: %w", id, err)
	}
	if m.Calls < 0 || m.Job != id {
		return m, fmt.Errorf("job %s: a manifest of job %q with %d calls", id, m.Job, m.Calls)
	}
	return m, nil
}

// HashFile returns the hex SHA-256 of a file: how the protocol names a
// binary (Manifest.Code, Invocation.Code, BinaryKey).
func HashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
