package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// ReadLogs reads what the node's container wrote to stdout and stderr at
// or after since (everything for the zero time), through the Docker API,
// and calls line for each line in time order, with the time Docker read
// it and without its newline (Docker reads stdout and stderr apart, so
// the order across the two is the order it read them). The logs of a container
// survive its restarts, so one reader follows it across crashes and
// restarts. It returns an error for a node that is not a container (a
// local process of the Process backend).
//
// Its signature is sim/logs' ReadFunc, so a capture can poll it at every
// sample tick of a run:
//
//	api := env.Container("api", spec)
//	world.Samplers = append(world.Samplers, capture.Poll("api", api.ReadLogs))
func (n *Node) ReadLogs(ctx context.Context, since time.Time, line func(at time.Time, text string)) error {
	dn, ok := n.rt.(*dockerNode)
	if !ok {
		return fmt.Errorf("harness: %s: read logs: the node is %s, not a container", n.name, n.rt.describe())
	}
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	rc, err := dn.d.cli.ContainerLogs(ctx, dn.id, opts)
	if err != nil {
		return fmt.Errorf("harness: %s: read logs: %w", n.name, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("harness: %s: read logs: %w", n.name, err)
	}
	lines, err := logLines(raw)
	if err != nil {
		return fmt.Errorf("harness: %s: read logs: %w", n.name, err)
	}
	for _, l := range lines {
		line(l.at, l.text)
	}
	return nil
}

type logLine struct {
	at   time.Time
	text string
}

// logLines splits Docker's log stream (stdout and stderr multiplexed as
// stdcopy frames, or one raw stream for a container with a TTY), each
// line prefixed with an RFC 3339 timestamp, into lines in time order.
func logLines(raw []byte) ([]logLine, error) {
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, bytes.NewReader(raw)); err != nil {
		if len(raw) > 0 && raw[0] <= 2 {
			return nil, fmt.Errorf("demultiplex: %w", err)
		}
		// A TTY container's stream is not multiplexed.
		stdout.Reset()
		stderr.Reset()
		stdout.Write(raw)
	}
	var out []logLine
	for _, b := range [][]byte{stdout.Bytes(), stderr.Bytes()} {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			ts, text, _ := strings.Cut(sc.Text(), " ")
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				return nil, fmt.Errorf("line %q: no timestamp: %w", sc.Text(), err)
			}
			out = append(out, logLine{at, strings.TrimSuffix(text, "\r")})
		}
		if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b logLine) int { return a.at.Compare(b.at) })
	return out, nil
}
