// Package toxics is shakedown's vocabulary of faults: what can go wrong
// with a network link or with a node, as plain typed values.
//
// It does no I/O. A fault is a value such as
//
//	toxics.Latency{Delay: 200 * time.Millisecond, Jitter: 20 * time.Millisecond, Direction: toxics.Downstream}
//	toxics.Blackhole{}
//	toxics.Crash{}
//
// Link faults ([LinkFault]) act on the bytes and connections between a
// client and one dependency; package harness applies them through an
// embedded Toxiproxy, and package sim applies them to its in-memory network
// with the same client-visible behaviour. Node faults ([NodeFault]) act on
// the dependency itself: crash, stop, pause and restart. The network
// fault [Partition] ([NetworkFault]) acts on the network the dependencies
// share: it cuts it between groups of them, as in
//
//	toxics.Partition{Groups: [][]string{{"db"}, {"cache", "queue"}}}
//
// and is taken by a target that stands for that network (harness's
// Env.Network, sim's Network.Partitions), never by one dependency.
//
// Protocol faults ([RedisError], [RedisDelay], [PgError], [PgRefuse]) are
// link faults that speak a dependency's protocol: they answer or hold the
// requests that [Requests] selects. A target takes them only if it speaks
// that protocol ([Kind.Protocol]), so generators draw them only there. A
// data step ([Data]) runs a test's own statements on a dependency; only
// targets made for it take it.
//
// Every fault validates itself ([Fault.Validate]) with an error that names
// the field and the value, and has a JSON form a person can write by hand:
//
//	{"kind":"latency","delay":"200ms","jitter":"20ms","direction":"downstream"}
//
// [Marshal] and [Unmarshal] convert between the two; decoding rejects
// unknown kinds, unknown fields and invalid values, and a decoded fault
// encodes back to the same bytes.
//
// HTTP faults ([HTTPKinds]: [HTTPStatus], [HTTPDelay], [HTTPCut],
// [HTTPTrickle], [HTTPJSON]) act on the requests and responses of an
// HTTP/1.1 link, for a seeded share of the requests or every Nth, matched
// by method and path prefix ([HTTPMatch]):
//
//	{"kind":"http_status","status":503,"retry_after":"2s","rate":0.25,"path_prefix":"/api"}
//	{"kind":"http_json","op":"null","path":"items.0.price","nth":3}
//
// They are link faults, but only a target that speaks HTTP takes them
// ([Kind.IsHTTP]; harness.Protocol, sim.FakeHTTP).
//
// DNS faults ([DNSKinds]: [DNSDelay], [DNSServfail], [DNSNXDomain],
// [DNSDrop], mildest first) act on the answers of a name server, for
// every query or only those about some dependencies ([DNSHosts]):
//
//	{"kind":"dns_delay","delay":"2s"}
//	{"kind":"dns_nxdomain","hosts":"db cache"}
//
// They are a family of their own ([DNSFault], [Kind.IsDNS]), taken by a
// target that stands for the name server (harness's Env.DNS, sim's
// Network.DNS, both named "dns").
//
// Clock faults ([ClockKinds]: [ClockSkew], [ClockJump]) move a simulated
// endpoint's clock relative to the client's, for TTL, lease and
// token-expiry bugs:
//
//	{"kind":"clock_skew","offset":"-3s"}
//	{"kind":"clock_jump","by":"1h","back":true}
//
// They are simulation-only ([Kind.IsClock]; sim.Endpoint.Now): a real
// dependency's clock is not the test's to set, so harness targets refuse
// them, and a schedule aiming one at a real target fails validation.
//
// Durations are [time.Duration], rates are bytes per second (but an
// [HTTPMatch]'s Rate is a share of requests), and nothing here
// draws random numbers: faults with randomness (jitter, corruption) are
// seeded by whoever applies them, from the run's seed.
package toxics
