// Command gen writes ps/lua/dense_add.lua (into the
// folder given) from package luagen; go generate ./ps runs it.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/wrenml/wren/ps/internal/luagen"
)

func main() {
	for name, text := range map[string]string{"dense_add.lua": luagen.DenseAdd()} {
		if err := os.WriteFile(filepath.Join(os.Args[1], name), []byte(text), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
