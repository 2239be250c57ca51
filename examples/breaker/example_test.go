package breaker_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/shakedown/shakedown/examples/breaker"
)

// A Guard with one failure to open: the first failed call opens it, and
// the next call is turned away without reaching the bank.
func ExampleNewGuard() {
	g := breaker.NewGuard(breaker.Settings{Failures: 1, OpenFor: breaker.Defaults.OpenFor, CallTimeout: breaker.Defaults.CallTimeout})
	bank := func(context.Context) error { return errors.New("bank: 503") }
	fmt.Println(g.Call(context.Background(), bank), g.State())
	fmt.Println(g.Call(context.Background(), bank), g.State())
	// Output:
	// bank: 503 open
	// bank unavailable: circuit breaker open open
}
