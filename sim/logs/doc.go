// Package logs captures what a service under test reports during a run,
// its log records and the requests its dependencies receive, each with
// the W3C trace ID it carries, so that the invariants of package
// properties/obscheck can ask whether every failed op was visible in the
// service's logs and whether its trace ID reached the dependency:
//
//	capture := &logs.Capture{}
//	svc, err := checkout.New(checkout.Config{
//		// The service's own handler, wrapped: every record is kept with its
//		// trace ID, then written as before.
//		Logger: slog.New(capture.Handler("checkout", slog.NewJSONHandler(os.Stderr, nil))),
//		...
//	})
//	...
//	properties.Check(t, properties.Config{
//		World: ...,
//		Invariants: []properties.Invariant{
//			obscheck.FailuresLogged{Logs: capture, Within: time.Second},
//		},
//	})
//
// # Where records come from
//
//   - [Capture.Handler]: a slog.Handler for a service in the test's
//     process, wrapping the service's own handler;
//   - [Capture.Poll]: a sampler that reads the lines a service in a
//     container wrote since the last read (harness.Container.ReadLogs),
//     every time the runner reads its samplers; JSON lines are parsed
//     ([ParseLine]), others kept as text;
//   - [Capture.Middleware]: an http.Handler in front of a dependency (a
//     sim.FakeHTTP, an httptest.Server) that keeps each request it
//     receives with the trace ID of its traceparent header.
//
// A record's trace ID comes from an attribute that names a trace
// ("trace_id", "traceId", "trace.id", a "traceparent"), or from
// [Capture].FromContext.
//
// # Matching records with ops
//
// Each op of a run sends a traceparent derived from the run's seed and
// the op's ID ([github.com/shakedown/shakedown/sim.History.Traceparent]),
// so after the run the records of an op are those carrying its trace ID
// ([Capture.ForOp]), written between the op's start and a stated time
// after its end. [Capture.OpLines] gives them as lines for the report
// (sim.ReportOptions.OpLogs): clicking an op shows them. A run whose
// World has the capture's [Capture.Sampler] keeps those lines in its
// history (sim.History.OpLogs), so every report of the run, a check's
// failure report included, shows them without more code.
//
// One Capture serves every run of a check. A simulated run's clock starts
// at the same instant in every bubble, so call [Capture.Reset] when the
// World of a simulated run is built.
package logs
