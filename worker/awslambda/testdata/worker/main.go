// Command worker is the job binary of the Lambda end-to-end tests: built
// with CGO_ENABLED=0, uploaded by the driver (the test), run by the
// runtime under the emulators.
package main

import (
	"fmt"
	"os"

	"github.com/wrenml/wren"
	_ "github.com/wrenml/wren/blob/s3blob" // the jobs' store, as in the driver
	_ "github.com/wrenml/wren/featurize"   // the workloads' tasks, end to end
	_ "github.com/wrenml/wren/mapreduce"
	_ "github.com/wrenml/wren/sgd"
	_ "github.com/wrenml/wren/worker/awslambda/internal/e2e"
	_ "github.com/wrenml/wren/worker/workertest" // the backend conformance suite's tasks
)

func main() {
	wren.Init()
	fmt.Fprintln(os.Stderr, "this program only runs as a wren worker")
	os.Exit(2)
}
