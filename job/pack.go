package job

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
)

// A pack holds the encoded inputs of consecutive calls of a job in one
// object, so that a map of small inputs costs one put per pack instead of
// one per call; each call reads its byte range. Layout:
//
//	input 0 | input 1 | ... | index (JSON) | index length (uint32 LE) | PackMagic
//
// The driver sends each call its InputRef (offset, length, the pack's size
// and the input's CRC-32C), so a worker reads its bytes with one ranged get
// and checks them without reading the index; the index makes the object
// self-describing for other readers.

// PackMagic ends every pack object.
const PackMagic = "WRENPK01"

// InputRef locates a call's input inside a pack.
type InputRef struct {
	// Pack is the pack object's key.
	Pack string `json:"k"`
	// Off and Len are the input's byte range within the pack.
	Off int64 `json:"o"`
	Len int64 `json:"n"`
	// Size is the pack object's whole size: a stored pack of another size
	// is truncated or not the one the driver wrote.
	Size int64 `json:"s,omitempty"`
	// CRC is the CRC-32C (Castagnoli) of the input's bytes.
	CRC uint32 `json:"c"`
}

// PackIndex is a pack's index: the calls it holds and their ranges.
type PackIndex struct {
	Calls []int      `json:"calls"`
	Refs  []InputRef `json:"refs"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C of b, as InputRef.CRC holds it.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// EncodePack lays out the inputs of calls as the pack object key and
// returns its bytes and each call's InputRef.
func EncodePack(key string, calls []int, inputs [][]byte) ([]byte, []InputRef) {
	var b bytes.Buffer
	refs := make([]InputRef, len(inputs))
	for i, in := range inputs {
		refs[i] = InputRef{Pack: key, Off: int64(b.Len()), Len: int64(len(in)), CRC: Checksum(in)}
		b.Write(in)
	}
	// The index leaves Size out: it is the object's own size.
	idx, _ := json.Marshal(PackIndex{Calls: calls, Refs: refs})
	size := int64(b.Len() + len(idx) + 4 + len(PackMagic))
	for i := range refs {
		refs[i].Size = size
	}
	b.Write(idx)
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(idx))))
	b.WriteString(PackMagic)
	return b.Bytes(), refs
}

// ErrBadPack reports a pack object that is truncated, of the wrong size or
// whose bytes do not match their checksum.
var ErrBadPack = errors.New("job: bad input pack")

// ReadPackIndex reads the index at the end of a whole pack object.
func ReadPackIndex(pack []byte) (*PackIndex, error) {
	return DecodePackIndex(pack, int64(len(pack)))
}

// DecodePackIndex reads the index of a pack of size bytes from the pack's
// last bytes (at least the index and its trailer), checking every range
// against the data before the index.
func DecodePackIndex(tail []byte, size int64) (*PackIndex, error) {
	n := len(tail)
	if n < 4+len(PackMagic) || int64(n) > size || string(tail[n-len(PackMagic):]) != PackMagic {
		return nil, fmt.Errorf("%w: no %s trailer", ErrBadPack, PackMagic)
	}
	il := int(binary.LittleEndian.Uint32(tail[n-len(PackMagic)-4:]))
	start := n - len(PackMagic) - 4 - il
	if il < 0 || start < 0 {
		return nil, fmt.Errorf("%w: index of %d bytes in a pack of %d", ErrBadPack, il, size)
	}
	var idx PackIndex
	if err := json.Unmarshal(tail[start:start+il], &idx); err != nil {
		return nil, fmt.Errorf("%w: index: %v", ErrBadPack, err)
	}
	dataEnd := size - int64(n-start) // where the index begins in the pack
	if len(idx.Calls) != len(idx.Refs) {
		return nil, fmt.Errorf("%w: %d calls, %d ranges", ErrBadPack, len(idx.Calls), len(idx.Refs))
	}
	for i := range idx.Refs {
		r := &idx.Refs[i]
		if r.Off < 0 || r.Len < 0 || r.Off+r.Len > dataEnd {
			return nil, fmt.Errorf("%w: range [%d, +%d) past the data of a pack of %d bytes", ErrBadPack, r.Off, r.Len, size)
		}
		r.Size = size
	}
	return &idx, nil
}

// check validates a ref against its job before any read.
func (r *InputRef) check(job string) error {
	if r.Off < 0 || r.Len < 0 || r.Off+r.Len > r.Size || len(r.Pack) <= len(InputPrefix(job)) || r.Pack[:len(InputPrefix(job))] != InputPrefix(job) {
		return fmt.Errorf("job: input ref %+v outside job %s", *r, job)
	}
	return nil
}
