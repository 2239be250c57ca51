package properties

import (
	"strings"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// The DNS kinds (toxics.DNSKinds) are drawn for a target that takes them,
// the name server of a world (harness's Env.DNS, sim's Network.DNS),
// mildest first as toxics lists them: a late answer, then SERVFAIL (the
// client may retry and get through), then NXDOMAIN (a wrong answer the
// client should not retry), then no answer at all (the client waits its
// whole timeout, the most time lost). A dns_delay's delay is drawn from
// Values.Delay and shrinks toward the shorter end. Drawn faults act on
// every name; Hosts (only some names) is for schedules written by hand,
// which the minimizer keeps.
//
// The family sits after the HTTP kinds and before the partition and the
// node kinds: a DNS fault leaves open connections alone and only stops
// new ones, which is milder than cutting or stopping a dependency.

// dnsFields are the fields of the DNS kinds beyond the delay, which they
// share with latency.
type dnsFields struct {
	hosts toxics.DNSHosts
}

// dnsFault is the fault of DNS kind k with f's fields.
func (f faultFields) dnsFault(k toxics.Kind) toxics.Fault {
	h := f.dns.hosts
	switch k {
	case toxics.KindDNSDelay:
		return toxics.DNSDelay{Delay: max(f.delay, time.Millisecond), Hosts: h}
	case toxics.KindDNSServfail:
		return toxics.DNSServfail{Hosts: h}
	case toxics.KindDNSNXDomain:
		return toxics.DNSNXDomain{Hosts: h}
	}
	return toxics.DNSDrop{Hosts: h}
}

// dnsFieldsOf is the inverse of faultFields.dnsFault.
func dnsFieldsOf(f toxics.Fault) (faultFields, bool) {
	switch f := f.(type) {
	case toxics.DNSDelay:
		return faultFields{delay: f.Delay, dns: dnsFields{hosts: f.Hosts}}, true
	case toxics.DNSFault:
		return faultFields{dns: dnsFields{hosts: toxics.DNSHosts(strings.Join(f.HostList(), " "))}}, true
	}
	return faultFields{}, false
}
