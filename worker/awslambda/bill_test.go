package awslambda

import (
	"math"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wrenml/wren/worker"
)

func TestBill(t *testing.T) {
	b, err := New(aws.Config{Region: "us-east-1"}, Options{MemoryMB: 2048})
	if err != nil {
		t.Fatal(err)
	}
	// 1000 invocations of 1 s billed at 2 GB: 2000 GB-s, plus requests.
	u := worker.Usage{Invocations: 1000, Billed: 1000 * time.Second, Calls: 1000,
		Compute: 900 * time.Second, IO: 50 * time.Second, Fixed: 50 * time.Second, PeakRSS: 100 << 20}
	bill := b.Bill(u)
	want := 2000*PriceX86GBSecond + 1000*PricePerMillionInvoke/1e6
	if math.Abs(bill.USD-want) > 1e-9 || math.Abs(bill.GBSeconds-2000) > 1e-9 {
		t.Fatalf("bill %+v, want $%v for 2000 GB-s", bill, want)
	}
	// Compute-bound, single-threaded, small: past one vCPU memory buys
	// nothing, below it time grows as the share shrinks but the fixed part
	// does not: the smallest size is cheapest, and much slower.
	if bill.SuggestedMemoryMB != 128 || bill.SuggestedUSD >= bill.USD || bill.SuggestedSlowdown < 10 {
		t.Fatalf("suggestion %+v", bill)
	}
	// A job that needs 1 GB of memory cannot go below about 1.25 GB.
	u.PeakRSS = 1 << 30
	if bill := b.Bill(u); bill.SuggestedMemoryMB < 1280 || bill.SuggestedMemoryMB > 1344 {
		t.Fatalf("with a 1 GB peak: %d MB suggested", bill.SuggestedMemoryMB)
	}
	arm, _ := New(aws.Config{Region: "us-east-1"}, Options{MemoryMB: 2048, Arch: ArchARM})
	if a := arm.Bill(u); a.USD >= bill.USD {
		t.Fatalf("arm64 ($%v) not cheaper than x86_64 ($%v)", a.USD, bill.USD)
	}
}

// TestPlacement: a backend of emulators on loopback says its workers share
// this machine (a parameter server on loopback reaches them); one of other
// hosts, or of AWS, does not.
func TestPlacement(t *testing.T) {
	for _, c := range []struct {
		emus []string
		want bool
	}{
		{[]string{"http://127.0.0.1:9001", "http://localhost:9002"}, true},
		{[]string{"http://[::1]:9001"}, true},
		{[]string{"http://127.0.0.1:9001", "http://10.0.0.7:9001"}, false},
		{nil, false},
	} {
		b, err := New(aws.Config{Region: "us-east-1"}, Options{Emulators: c.emus})
		if err != nil {
			t.Fatal(err)
		}
		if got := b.OnThisMachine(); got != c.want || worker.WorkersOnThisMachine(b) != c.want {
			t.Errorf("emulators %v: on this machine %v, want %v", c.emus, got, c.want)
		}
	}
}
