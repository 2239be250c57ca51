// Package psi reads Linux pressure stall information (PSI) files, for
// sim (the machine's /proc/pressure/cpu) and harness (a container's
// cgroup cpu.pressure, and the cpu.stat beside it) alike.
package psi

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// ReadSome reads the "some" total of a Linux pressure stall information
// file (/proc/pressure/cpu, or a cgroup's cpu.pressure): the time so far
// during which at least one task waited for the resource. It is false
// when the file cannot be read or has no such line.
func ReadSome(path string) (time.Duration, bool) { return read(path, ParseSome) }

// read parses the file at path with parse, which says -1 for a file
// without the figure.
func read(path string, parse func([]byte) time.Duration) (time.Duration, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	d := parse(b)
	return d, d >= 0
}

// ParseSome reads the "some" line's total (microseconds) of a pressure
// file, or -1 when it has none.
func ParseSome(b []byte) time.Duration {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "some" {
			continue
		}
		for _, f := range fields[1:] {
			if v, ok := strings.CutPrefix(f, "total="); ok {
				us, err := strconv.ParseUint(v, 10, 63)
				if err != nil {
					return -1
				}
				return time.Duration(us) * time.Microsecond
			}
		}
	}
	return -1
}

// ReadUsage reads the usage_usec total of a cgroup v2 cpu.stat file: the
// CPU time the cgroup's processes used so far, summed over CPUs. It is
// false when the file cannot be read or has no such line.
func ReadUsage(path string) (time.Duration, bool) { return read(path, ParseUsage) }

// ParseUsage reads the usage_usec line of a cpu.stat file, or -1 when it
// has none.
func ParseUsage(b []byte) time.Duration {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 || fields[0] != "usage_usec" {
			continue
		}
		us, err := strconv.ParseUint(fields[1], 10, 63)
		if err != nil {
			return -1
		}
		return time.Duration(us) * time.Microsecond
	}
	return -1
}
