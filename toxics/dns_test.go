package toxics_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// The DNS faults join the round-trip table, and so the fuzz targets' seeds
// (FuzzUnmarshal, FuzzSpec).
func init() {
	every = append(every,
		toxics.DNSDelay{Delay: 2 * time.Second},
		toxics.DNSDelay{Delay: 150 * time.Millisecond, Hosts: "db cache"},
		toxics.DNSServfail{},
		toxics.DNSServfail{Hosts: "db"},
		toxics.DNSNXDomain{},
		toxics.DNSNXDomain{Hosts: "cache,queue"},
		toxics.DNSDrop{},
		toxics.DNSDrop{Hosts: "db"},
	)
}

func TestDNSKinds(t *testing.T) {
	seen := map[toxics.Kind]bool{}
	for _, f := range every {
		seen[f.Kind()] = true
		_, isDNS := f.(toxics.DNSFault)
		if isDNS != f.Kind().IsDNS() {
			t.Errorf("%v: DNSFault %v, IsDNS %v", f, isDNS, f.Kind().IsDNS())
		}
	}
	want := []toxics.Kind{"dns_delay", "dns_servfail", "dns_nxdomain", "dns_drop"}
	got := toxics.DNSKinds()
	if len(got) != len(want) {
		t.Fatalf("DNSKinds() = %v, want %v (mildest first)", got, want)
	}
	for i, k := range got {
		if k != want[i] {
			t.Errorf("DNSKinds()[%d] = %s, want %s", i, k, want[i])
		}
		if !seen[k] {
			t.Errorf("kind %s has no value in the round-trip table", k)
		}
		if k.IsLink() || k.IsNode() || k.IsNetwork() || k.IsHTTP() {
			t.Errorf("kind %s is in another family too", k)
		}
	}
}

func TestDNSValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		f     toxics.Fault
		field string
	}{
		{"zero delay", toxics.DNSDelay{}, "delay"},
		{"negative delay", toxics.DNSDelay{Delay: -time.Second}, "delay"},
		{"hosts of separators only", toxics.DNSDrop{Hosts: " , "}, "hosts"},
		{"a host with a slash", toxics.DNSServfail{Hosts: "db/1"}, "hosts"},
		{"a host starting with a dot", toxics.DNSNXDomain{Hosts: ".db"}, "hosts"},
		{"a host too long for a label", toxics.DNSNXDomain{Hosts: toxics.DNSHosts(strings.Repeat("a", 64))}, "hosts"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.f.Validate()
			var fe *toxics.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field || fe.Kind != c.f.Kind() {
				t.Fatalf("Validate() = %v, want a *FieldError on %s.%s", err, c.f.Kind(), c.field)
			}
		})
	}
	if err := (toxics.DNSDrop{Hosts: "DB, cache_1 pg.main"}).Validate(); err != nil {
		t.Errorf("valid hosts refused: %v", err)
	}
	if got := (toxics.DNSDrop{Hosts: "DB, cache"}).HostList(); strings.Join(got, " ") != "db cache" {
		t.Errorf("HostList() = %q, want [db cache]", got)
	}
}

func TestDNSJSON(t *testing.T) {
	for _, c := range []struct {
		in   string
		want toxics.Fault
	}{
		{`{"kind":"dns_delay","delay":"1.5s"}`, toxics.DNSDelay{Delay: 1500 * time.Millisecond}},
		{`{"kind":"dns_nxdomain","hosts":"db"}`, toxics.DNSNXDomain{Hosts: "db"}},
		{`{"kind":"dns_drop"}`, toxics.DNSDrop{}},
	} {
		got, err := toxics.Unmarshal([]byte(c.in))
		if err != nil || got != c.want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, wantErr string }{
		{`{"kind":"dns_delay"}`, `field "delay" is required`},
		{`{"kind":"dns_delay","delay":"soon"}`, `dns_delay.delay`},
		{`{"kind":"dns_servfail","delay":"1s"}`, `no field "delay"`},
		{`{"kind":"dns_drop","hosts":""}`, `dns_drop.hosts`},
		{`{"kind":"dns_drop","hosts":"a b/c"}`, `dns_drop.hosts`},
		{`{"kind":"dns_drop","rate":1}`, `unknown field "rate"`},
		{`{"kind":"dns_drop"} {}`, `trailing data`},
	} {
		_, err := toxics.Unmarshal([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("Unmarshal(%s) = %v, want an error with %q", c.in, err, c.wantErr)
		}
	}
}
