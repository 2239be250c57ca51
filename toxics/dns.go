package toxics

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DNS fault kinds, mildest first: an answer that comes late, a server
// failure (SERVFAIL: a client may retry), a name that does not exist
// (NXDOMAIN: a client should not retry), and no answer at all (the
// client's own timeout). They act on the name server of a world
// (harness's Env.DNS, sim's Network.DNS), a target of its own named
// "dns", and not on any link: see [Kind.IsDNS].
const (
	KindDNSDelay    Kind = "dns_delay"
	KindDNSServfail Kind = "dns_servfail"
	KindDNSNXDomain Kind = "dns_nxdomain"
	KindDNSDrop     Kind = "dns_drop"
)

var dnsKinds = []Kind{KindDNSDelay, KindDNSServfail, KindDNSNXDomain, KindDNSDrop}

// DNSKinds returns every DNS fault kind, mildest first.
func DNSKinds() []Kind { return append([]Kind(nil), dnsKinds...) }

// IsDNS reports whether k is a DNS fault kind. Such a fault is a
// [DNSFault]: neither a link, node nor network fault; only a name server
// target takes it.
func (k Kind) IsDNS() bool { return contains(dnsKinds, k) }

// DNSFault acts on the answers of a name server.
type DNSFault interface {
	Fault
	// HostList returns the hosts the fault acts on (see [DNSHosts]), or
	// nil for every query.
	HostList() []string
	dnsFault()
}

// DNSHosts selects the queries a DNS fault acts on: Hosts is a list of
// dependency names separated by spaces or commas (those whose names the
// server answers for, "db" for db.shakedown.test), or empty for every
// query the server receives. A query about any other name is answered as
// if the fault did not hold.
type DNSHosts string

func (h DNSHosts) list() []string {
	if h == "" {
		return nil
	}
	return strings.FieldsFunc(strings.ToLower(string(h)), func(c rune) bool {
		return c == ' ' || c == ',' || c == '\t' || c == '\n' || c == '\r'
	})
}

func (h DNSHosts) validate(k Kind) error {
	if h != "" && len(h.list()) == 0 {
		return &FieldError{Kind: k, Field: "hosts", Value: fmt.Sprintf("%q", string(h)), Reason: "names no host (leave it empty for every query)"}
	}
	for _, name := range h.list() {
		if len(name) > 63 {
			return &FieldError{Kind: k, Field: "hosts", Value: fmt.Sprintf("%q", string(h)), Reason: fmt.Sprintf("host %q is longer than 63 characters", name)}
		}
		for i, c := range []byte(name) {
			ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '-' || c == '.')
			if !ok {
				return &FieldError{Kind: k, Field: "hosts", Value: fmt.Sprintf("%q", string(h)), Reason: fmt.Sprintf("host %q: want dependency names (letters, digits, and _ . - after the first)", name)}
			}
		}
	}
	return nil
}

func (h DNSHosts) suffix() string {
	if h == "" {
		return ""
	}
	return " hosts=" + strings.Join(h.list(), ",")
}

// DNSDelay answers each query Delay after it arrives (its answer itself
// unchanged). A query that arrives while the fault holds waits its whole
// Delay even if the fault is reverted meanwhile.
type DNSDelay struct {
	Delay time.Duration
	Hosts DNSHosts
}

// DNSServfail answers each query with SERVFAIL. Go's resolver reports
// it as a *net.DNSError with IsTemporary set, after its retries.
type DNSServfail struct {
	Hosts DNSHosts
}

// DNSNXDomain answers each query with NXDOMAIN, even for names that
// exist. Go's resolver reports it as a *net.DNSError with IsNotFound set.
type DNSNXDomain struct {
	Hosts DNSHosts
}

// DNSDrop reads each query and never answers: the client waits for its
// own timeout (Go's resolver: a *net.DNSError with IsTimeout set).
type DNSDrop struct {
	Hosts DNSHosts
}

func (DNSDelay) Kind() Kind    { return KindDNSDelay }
func (DNSServfail) Kind() Kind { return KindDNSServfail }
func (DNSNXDomain) Kind() Kind { return KindDNSNXDomain }
func (DNSDrop) Kind() Kind     { return KindDNSDrop }

func (f DNSDelay) Validate() error {
	return firstErr(positive(KindDNSDelay, "delay", f.Delay), f.Hosts.validate(KindDNSDelay))
}
func (f DNSServfail) Validate() error { return f.Hosts.validate(KindDNSServfail) }
func (f DNSNXDomain) Validate() error { return f.Hosts.validate(KindDNSNXDomain) }
func (f DNSDrop) Validate() error     { return f.Hosts.validate(KindDNSDrop) }

func (f DNSDelay) String() string {
	return call(KindDNSDelay, f.Delay.String()+f.Hosts.suffix())
}
func (f DNSServfail) String() string {
	return call(KindDNSServfail, strings.TrimPrefix(f.Hosts.suffix(), " "))
}
func (f DNSNXDomain) String() string {
	return call(KindDNSNXDomain, strings.TrimPrefix(f.Hosts.suffix(), " "))
}
func (f DNSDrop) String() string { return call(KindDNSDrop, strings.TrimPrefix(f.Hosts.suffix(), " ")) }

func (f DNSDelay) HostList() []string    { return f.Hosts.list() }
func (f DNSServfail) HostList() []string { return f.Hosts.list() }
func (f DNSNXDomain) HostList() []string { return f.Hosts.list() }
func (f DNSDrop) HostList() []string     { return f.Hosts.list() }

func (DNSDelay) fault()    {}
func (DNSServfail) fault() {}
func (DNSNXDomain) fault() {}
func (DNSDrop) fault()     {}

func (DNSDelay) dnsFault()    {}
func (DNSServfail) dnsFault() {}
func (DNSNXDomain) dnsFault() {}
func (DNSDrop) dnsFault()     {}

// dnsWire is the JSON form of the DNS faults, for example
//
//	{"kind":"dns_delay","delay":"2s"}
//	{"kind":"dns_nxdomain","hosts":"db cache"}
type dnsWire struct {
	Kind  Kind    `json:"kind"`
	Delay *string `json:"delay,omitempty"`
	Hosts *string `json:"hosts,omitempty"`
}

func optHosts(h DNSHosts) *string {
	if h == "" {
		return nil
	}
	return ptr(string(h))
}

// marshalDNS is Marshal for the DNS faults; f is valid.
func marshalDNS(f Fault) ([]byte, error) {
	w := dnsWire{Kind: f.Kind()}
	switch f := f.(type) {
	case DNSDelay:
		w.Delay, w.Hosts = dur(f.Delay), optHosts(f.Hosts)
	case DNSServfail:
		w.Hosts = optHosts(f.Hosts)
	case DNSNXDomain:
		w.Hosts = optHosts(f.Hosts)
	case DNSDrop:
		w.Hosts = optHosts(f.Hosts)
	}
	return json.Marshal(w)
}

// unmarshalDNS decodes data if its kind is a DNS kind (ok), and otherwise
// leaves it to Unmarshal.
func unmarshalDNS(data []byte) (f Fault, ok bool, err error) {
	var w dnsWire
	if _, ok, err := decodeFamily(data, Kind.IsDNS, &w, nil); !ok || err != nil {
		return nil, ok, err
	}
	allowed := []string{"hosts"}
	if w.Kind == KindDNSDelay {
		allowed = []string{"delay", "hosts"}
		if w.Delay == nil {
			return nil, true, fmt.Errorf("toxics: decode %s: field %q is required", w.Kind, "delay")
		}
	}
	if w.Delay != nil && !slices.Contains(allowed, "delay") {
		return nil, true, fmt.Errorf("toxics: decode %s: it has no field %q (it takes: %s)", w.Kind, "delay", orNone(allowed))
	}
	d := decoder{kind: w.Kind}
	hosts := DNSHosts(deref(w.Hosts))
	if w.Hosts != nil && hosts == "" {
		// An empty string would not survive a round trip (it is left out).
		return nil, true, &FieldError{Kind: w.Kind, Field: "hosts", Value: `""`, Reason: "names no host (leave the field out for every query)"}
	}
	switch w.Kind {
	case KindDNSDelay:
		f = DNSDelay{Delay: d.dur("delay", w.Delay), Hosts: hosts}
	case KindDNSServfail:
		f = DNSServfail{Hosts: hosts}
	case KindDNSNXDomain:
		f = DNSNXDomain{Hosts: hosts}
	case KindDNSDrop:
		f = DNSDrop{Hosts: hosts}
	}
	if d.err != nil {
		return nil, true, d.err
	}
	if err := f.Validate(); err != nil {
		return nil, true, err
	}
	return f, true, nil
}
