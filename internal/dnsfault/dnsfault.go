// Package dnsfault holds what harness's name server and sim's share to
// answer queries and carry out the DNS faults of package toxics the same
// way: the zone, the records, and which faults act on a query.
//
// The zone is shakedown.test. A dependency called db is db.shakedown.test
// (lower case); its A record is 127.0.0.1, its SRV record (at the same
// name) gives the port clients reach it on, when the server knows one, and
// it has no AAAA record (an empty, authoritative answer). Every record has
// a TTL of 0, so a client that caches honours the faults at once. A name
// in the zone that names no dependency is NXDOMAIN; a name outside the
// zone is REFUSED (the server is no recursive resolver).
package dnsfault

import (
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shakedown/shakedown/toxics"
)

// Zone is the zone the servers answer for, without the final dot.
const Zone = "shakedown.test"

// Name returns the DNS name of the dependency called dep:
// dep.shakedown.test, in lower case.
func Name(dep string) string { return strings.ToLower(dep) + "." + Zone }

// HostOf returns the dependency name a query for qname asks about (in
// lower case), and whether qname lies in the zone at all ("" for the zone
// itself).
func HostOf(qname string) (host string, inZone bool) {
	q := strings.TrimSuffix(strings.ToLower(qname), ".")
	switch {
	case q == Zone:
		return "", true
	case strings.HasSuffix(q, "."+Zone):
		return strings.TrimSuffix(q, "."+Zone), true
	}
	return "", false
}

// Outcome is what the armed faults make of a query, harshest last.
type Outcome int

const (
	Answer   Outcome = iota // the true answer
	Servfail                // SERVFAIL
	NXDomain                // NXDOMAIN
	Drop                    // no answer at all
)

// Decide returns what the armed faults do to a query about host (a
// dependency name in lower case, or "" for a name that is none): the
// harshest outcome of those that act on it, after the longest delay of
// those that act on it. A fault whose host list is not empty acts only on
// queries about those hosts.
func Decide(armed []toxics.DNSFault, host string) (time.Duration, Outcome) {
	var delay time.Duration
	out := Answer
	for _, f := range armed {
		if hosts := f.HostList(); len(hosts) > 0 && !contains(hosts, host) {
			continue
		}
		switch f := f.(type) {
		case toxics.DNSDelay:
			delay = max(delay, f.Delay)
		case toxics.DNSServfail:
			out = max(out, Servfail)
		case toxics.DNSNXDomain:
			out = max(out, NXDomain)
		case toxics.DNSDrop:
			out = max(out, Drop)
		}
	}
	return delay, out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Lookup tells whether host names a dependency, and the port its clients
// reach it on (0 if the server knows none: no SRV record).
type Lookup func(host string) (port int, ok bool)

// Respond returns the reply to req with the faults armed when it arrived,
// and how long to wait before sending it. A nil reply means send nothing.
func Respond(req *dns.Msg, lookup Lookup, armed []toxics.DNSFault) (*dns.Msg, time.Duration) {
	resp := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		return resp.SetRcode(req, dns.RcodeFormatError), 0
	}
	q := req.Question[0]
	host, inZone := HostOf(q.Name)
	delay, out := Decide(armed, host)
	switch out {
	case Drop:
		return nil, delay
	case Servfail:
		return resp.SetRcode(req, dns.RcodeServerFailure), delay
	case NXDomain:
		resp.SetRcode(req, dns.RcodeNameError)
		resp.Authoritative = true
		return resp, delay
	}
	if !inZone {
		return resp.SetRcode(req, dns.RcodeRefused), delay
	}
	var port int
	ok := host == "" // the zone's apex exists, with no records of these types
	if host != "" {
		port, ok = lookup(host)
	}
	if !ok {
		resp.SetRcode(req, dns.RcodeNameError)
		resp.Authoritative = true
		return resp, delay
	}
	resp.SetReply(req)
	resp.Authoritative = true
	if host == "" || q.Qclass != dns.ClassINET {
		return resp, delay
	}
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 0}
	switch q.Qtype {
	case dns.TypeA:
		hdr.Rrtype = dns.TypeA
		resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1).To4()})
	case dns.TypeSRV:
		if port > 0 && port <= 65535 {
			hdr.Rrtype = dns.TypeSRV
			resp.Answer = append(resp.Answer, &dns.SRV{Hdr: hdr, Port: uint16(port), Target: dns.Fqdn(Name(host))})
		}
	}
	return resp, delay
}
