package sim

import (
	"context"

	"github.com/shakedown/shakedown/toxics"
)

// Target is anything a schedule can aim faults at: a harness dependency
// (its Link and its container or process), or a node of the simulated
// network. harness satisfies it structurally, without importing sim.
type Target interface {
	// Name is the name schedules use for the target.
	Name() string
	// Supports reports whether the target can take faults of kind k.
	Supports(k toxics.Kind) bool
	// Apply starts f on the target and returns the function that reverts
	// exactly that fault. An unsupported or invalid fault is an error and
	// changes nothing.
	Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error)
}
