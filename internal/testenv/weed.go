package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// startWeed runs SeaweedFS's all-in-one server (weed mini) with its S3
// gateway on free loopback ports and a temporary data directory, with the
// test credentials, and stops it when the test ends.
func startWeed(t testing.TB, weed string) *S3 {
	t.Helper()
	// weed serves gRPC on each HTTP port + 10000: both must be free.
	ports := make([]int, 4)
	for i := range ports {
		ports[i] = freePairPort(t)
	}
	dir := t.TempDir()
	cmd := exec.Command(weed, "mini", "-dir="+dir, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-s3.port="+strconv.Itoa(ports[0]), "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-master.port="+strconv.Itoa(ports[1]), "-filer.port="+strconv.Itoa(ports[2]), "-volume.port="+strconv.Itoa(ports[3]),
		"-webdav=false", "-admin.ui=false", "-master.telemetry=false")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=wren-test", "AWS_SECRET_ACCESS_KEY=wren-test-secret")
	logf, _ := os.Create(dir + "/weed.log")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start weed: %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		logf.Close()
	})
	srv := &S3{Endpoint: "http://127.0.0.1:" + strconv.Itoa(ports[0])}
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := srv.Client().ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return srv
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(dir + "/weed.log")
			if len(b) > 2000 {
				b = b[len(b)-2000:]
			}
			t.Fatalf("weed's S3 gateway did not answer within 90 s: %v\n%s", err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freePairPort returns a free port p below 55000 with p+10000 free too.
func freePairPort(t testing.TB) int {
	t.Helper()
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p >= 55000 {
			continue
		}
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+10000))
		if err != nil {
			continue
		}
		l2.Close()
		return p
	}
	t.Fatal("no free port pair")
	return 0
}
