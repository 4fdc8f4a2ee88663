package job

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wrenml/wren/blob"
)

// ReadStatus reads a call's stored status; ok is false when there is none.
// The object may hold the statuses of several calls written together (a
// JSON array); the call's own is returned.
func ReadStatus(ctx context.Context, st blob.Store, job string, call int) (s Status, ok bool, err error) {
	b, err := blob.ReadAll(ctx, st, StatusKey(job, call))
	if errors.Is(err, blob.ErrNotFound) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var batch []Status
		if err := json.Unmarshal(b, &batch); err != nil {
			return s, false, fmt.Errorf("job: status of call %d of job %s: %w", call, job, err)
		}
		for _, x := range batch {
			if x.Call == call {
				return x, true, nil
			}
		}
		return s, false, fmt.Errorf("job: status of call %d of job %s: a batch of %d statuses without it", call, job, len(batch))
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&s); err != nil {
		return s, false, fmt.Errorf("job: status of call %d of job %s: %w", call, job, err)
	}
	return s, true, nil
}
