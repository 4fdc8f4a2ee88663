//go:build !unix

package offheap

import "errors"

func mmap(size int) ([]byte, error) { return nil, errors.New("offheap: no mmap here") }

func munmap(mem []byte) {}
