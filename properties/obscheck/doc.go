// Package obscheck judges a service's observability while faults hold:
// whether every failure it served is visible in its logs with the trace
// ID of the request, whether that trace ID reaches the dependency it
// calls, and whether its metrics move as they should. This test runs as
// it is (it is the package's TestDocExample):
//
//	func TestFailuresAreVisible(t *testing.T) {
//		capture := &logs.Capture{} // every record, by trace ID
//		properties.Check(t, properties.Config{
//			Simulate: true,
//			World: func(t testing.TB) sim.World {
//				capture.Reset() // every bubble's clock starts at the same instant
//				n := sim.NewNetwork(1)
//				t.Cleanup(func() { n.Close() })
//				db, err := n.FakeHTTP("db", capture.Middleware("db", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
//				if err != nil {
//					t.Fatal(err)
//				}
//				client := &http.Client{Timeout: 200 * time.Millisecond, Transport: &http.Transport{DialContext: n.Dial}}
//				t.Cleanup(client.CloseIdleConnections)
//				log := slog.New(capture.Handler("api", nil)) // the code under test logs through it
//				get := func(ctx context.Context, _ string) (string, error) {
//					req, err := http.NewRequestWithContext(ctx, http.MethodGet, db.URL(), nil)
//					if err != nil {
//						return "", err
//					}
//					req.Header.Set("traceparent", sim.Traceparent(ctx)) // the trace goes on to db
//					resp, err := client.Do(req)
//					if err != nil {
//						log.WarnContext(ctx, "db call failed", "err", err, "traceparent", sim.Traceparent(ctx))
//						return "", err
//					}
//					return "", resp.Body.Close()
//				}
//				return sim.World{
//					Targets:  n.Targets(),
//					Workload: sim.Workload{Driver: sim.OpenLoop{Rate: 50}, Kinds: []sim.OpKind{{Name: "get", Do: get}}},
//					Samplers: []sim.Sampler{capture.Sampler("api")}, // the log rate, in the report
//				}
//			},
//			// Corruption too: an op it overlapped is not judged by
//			// TraceReaches, as it may have altered the traceparent itself.
//			Bounds: properties.Bounds{Targets: []properties.TargetKinds{{Name: "db", Kinds: []toxics.Kind{
//				toxics.KindLatency, toxics.KindBandwidth, toxics.KindTimeout, toxics.KindReset,
//				toxics.KindDown, toxics.KindBlackhole, toxics.KindPause, toxics.KindCrash, toxics.KindCorrupt,
//			}}}},
//			Invariants: []properties.Invariant{
//				obscheck.FailuresLogged{Logs: capture, Within: time.Second}, // every failure visible, by its trace ID
//				obscheck.TraceReaches{Logs: capture, Dependency: "db"},     // every success traced into db
//			},
//		})
//	}
//
// Take the log line away and Check fails: every op a fault failed is
// listed with the trace ID nobody logged, on the smallest schedule that
// still shows it.
//
// # The invariants
//
//   - [FailuresLogged]: every failed op left a record at Warn or above
//     carrying its trace ID, within a stated time of its end;
//   - [TraceReaches]: the trace ID of every successful op reached the
//     dependency, as the harness Link in front of it delivered the
//     request (Link.OnTraceparent), or in simulation as a sim/logs
//     Middleware in front of the fake's handler saw it;
//   - [CounterRises]: an error counter scraped by sim/promscrape rises
//     while a fault fails ops;
//   - [BreakerGauge]: a breaker-state gauge reads open whenever an op was
//     turned away by an open breaker, and no op got through while it read
//     open.
//
// They are properties.Invariant values built on package properties'
// public API; the records they read are kept by a
// [github.com/shakedown/shakedown/sim/logs.Capture], which matches them
// with ops by the trace ID each op sent
// ([github.com/shakedown/shakedown/sim.History.Traceparent]).
package obscheck
