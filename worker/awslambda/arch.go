package awslambda

import "fmt"

// Architectures a function may run on, as Lambda names them.
const (
	ArchX86 = "x86_64"
	ArchARM = "arm64"
)

// goArch maps a Lambda architecture to GOARCH.
func goArch(arch string) (string, error) {
	switch arch {
	case ArchX86:
		return "amd64", nil
	case ArchARM:
		return "arm64", nil
	}
	return "", fmt.Errorf("awslambda: unknown architecture %q (want %s or %s)", arch, ArchX86, ArchARM)
}
