package sim

import (
	"context"

	"github.com/shakedown/shakedown/toxics"
)

// Target is anything a schedule can aim faults at: a harness dependency
// (its Link and its container or process), or a node of the simulated
// network. harness satisfies it structurally, without importing sim.
//
// A target that can express only some values of a kind (a deployed
// Toxiproxy server takes whole milliseconds, say) may also have the method
//
//	ValidateFault(f toxics.Fault) error
//
// which returns nil if Apply can carry f out as the fault's type says, or
// an error saying why not. [Schedule.Validate], and so [Run] before
// anything starts, reports that error with the step; for a kind the target
// does not support, it says why.
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

// validateFault asks t, if it has the optional ValidateFault method (see
// [Target]), whether it can apply f.
func validateFault(t Target, f toxics.Fault) error {
	if v, ok := t.(interface{ ValidateFault(toxics.Fault) error }); ok {
		return v.ValidateFault(f)
	}
	return nil
}
