package job

import (
	"strconv"
	"strings"
)

// The store layout of a job, spelled here and nowhere else:
//
//	jobs/<job>/manifest.json        the job's description (written by the driver first)
//	jobs/<job>/code                 the SHA-256 of the binary that runs the calls
//	jobs/<job>/in/<call>            a call's encoded input (large inputs)
//	jobs/<job>/in/pack-<call>       the inputs of calls from <call> on, packed
//	jobs/<job>/out/<call>.<attempt> an attempt's encoded output
//	jobs/<job>/status/<call>        the winning attempt's Status, written last and conditionally
//	jobs/<job>/logs/<call>.<attempt> what an attempt's function printed (stdout, stderr, slog), the last 64 KiB
//	jobs/<job>/summary.json         the driver's summary when the job ended (requests, attempts, cost)
//	jobs/<job>/invocations/<first>.<attempt> the calls of an invocation too large for its backend's payload
//	jobs/<job>/drivers/<epoch>      the record (heartbeat) of each driver that ran the job: the first, then each that attached
//
// <call> is the call's index, zero-padded to six digits so that keys sort
// in call order. Binaries that remote workers run are kept once per content,
// outside any job: code/<sha256>.
const (
	// JobsRoot is the prefix of every job's objects.
	JobsRoot = "jobs/"
	// ManifestName is the manifest's name within a job.
	ManifestName = "manifest.json"
	// CodeName is the code hash's name within a job.
	CodeName = "code"
	// InputDir, OutputDir and StatusDir hold the calls' inputs, outputs and
	// statuses within a job.
	InputDir, OutputDir, StatusDir, LogDir, InvocationDir, DriverDir = "in/", "out/", "status/", "logs/", "invocations/", "drivers/"
)

// BinaryKey is where a binary that remote workers fetch is kept, by the
// hex SHA-256 of its content.
func BinaryKey(hash string) string { return "code/" + hash }

// JobPrefix is the prefix of every object of a job.
func JobPrefix(job string) string { return JobsRoot + job + "/" }

// ManifestKey is where the driver writes a job's manifest.
func ManifestKey(job string) string { return JobPrefix(job) + ManifestName }

// CodeKey is where the driver writes the hash of the job's binary.
func CodeKey(job string) string { return JobPrefix(job) + CodeName }

// InputPrefix is the prefix of every input object of a job.
func InputPrefix(job string) string { return JobPrefix(job) + InputDir }

// PackKey is where the driver writes the pack of inputs that starts at
// call first.
func PackKey(job string, first int) string { return InputPrefix(job) + "pack-" + callName(first) }

// InputKey is where the driver writes a call's encoded input.
func InputKey(job string, call int) string { return JobPrefix(job) + InputDir + callName(call) }

// OutputKey is where one attempt of a call writes its encoded output.
func OutputKey(job string, call, attempt int) string {
	return OutputPrefix(job) + callName(call) + "." + strconv.Itoa(attempt)
}

// OutputPrefix is the prefix of every output object of a job.
func OutputPrefix(job string) string { return JobPrefix(job) + OutputDir }

// StatusKey is where the winning attempt of a call writes its Status.
func StatusKey(job string, call int) string { return StatusPrefix(job) + callName(call) }

// SummaryKey is where the driver writes a job's summary when it ends.
func SummaryKey(job string) string { return JobPrefix(job) + "summary.json" }

// LogKey is where an attempt's output (what its function printed) is kept.
func LogKey(job string, call, attempt int) string {
	return LogPrefix(job) + callName(call) + "." + strconv.Itoa(attempt)
}

// LogPrefix is the prefix of every log of a job.
func LogPrefix(job string) string { return JobPrefix(job) + LogDir }

// StatusPrefix is the prefix of every status object of a job.
func StatusPrefix(job string) string { return JobPrefix(job) + StatusDir }

// InvocationPrefix is the prefix of the calls objects of a job's
// invocations too large for their backend's payload.
func InvocationPrefix(job string) string { return JobPrefix(job) + InvocationDir }

// InvocationKey is where the calls of an invocation whose first call is
// first, at that call's attempt, are kept.
func InvocationKey(job string, first, attempt int) string {
	return InvocationPrefix(job) + callName(first) + "." + strconv.Itoa(attempt)
}

// DriverPrefix is the prefix of the records of a job's drivers.
func DriverPrefix(job string) string { return JobPrefix(job) + DriverDir }

// DriverKey is where the driver of a job's epoch (0 for the driver that
// started it, one more for each that attached) keeps its record.
func DriverKey(job string, epoch int) string { return DriverPrefix(job) + callName(epoch) }

// ParseCallName reads the call index (or epoch) at the start of a key's
// last segment ("000042", "000042.3"), as the layout writes it.
func ParseCallName(name string) (int, bool) {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		name = name[:i]
	}
	n, err := strconv.Atoi(name)
	return n, err == nil && n >= 0 && len(name) >= 6
}
