package toxics_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/shakedown/shakedown/toxics"
)

func TestPartitionFamily(t *testing.T) {
	k := toxics.Partition{}.Kind()
	if k != toxics.KindPartition || !k.IsNetwork() || k.IsLink() || k.IsNode() {
		t.Fatalf("partition kind %q: network=%v link=%v node=%v, want a network kind only", k, k.IsNetwork(), k.IsLink(), k.IsNode())
	}
	var f toxics.Fault = toxics.Partition{}
	if _, ok := f.(toxics.NetworkFault); !ok {
		t.Error("Partition is not a NetworkFault")
	}
	if _, ok := f.(toxics.LinkFault); ok {
		t.Error("Partition is a LinkFault")
	}
	if _, ok := f.(toxics.NodeFault); ok {
		t.Error("Partition is a NodeFault")
	}
	for _, k := range append(toxics.LinkKinds(), toxics.NodeKinds()...) {
		if k.IsNetwork() {
			t.Errorf("%s is a network kind", k)
		}
	}
	if got := toxics.NetworkKinds(); !reflect.DeepEqual(got, []toxics.Kind{toxics.KindPartition}) {
		t.Errorf("NetworkKinds() = %v", got)
	}
}

func TestPartitionValidate(t *testing.T) {
	tests := []struct {
		name   string
		groups [][]string
		field  string // "" when valid
		reason string
	}{
		{"two groups", [][]string{{"db"}, {"cache", "queue"}}, "", ""},
		{"three groups", [][]string{{"a"}, {"b"}, {"c"}}, "", ""},
		{"no groups", nil, "groups", "at least two"},
		{"one group", [][]string{{"a", "b"}}, "groups", "at least two"},
		{"empty group", [][]string{{"a"}, {}}, "groups[1]", "empty"},
		{"empty name", [][]string{{"a"}, {"b", ""}}, "groups[1][1]", "empty"},
		{"name in two groups", [][]string{{"a", "b"}, {"c", "a"}}, "groups[1][1]", "already in groups[0]"},
		{"name twice in a group", [][]string{{"a", "a"}, {"b"}}, "groups[0][1]", "already in groups[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := toxics.Partition{Groups: tt.groups}
			err := f.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate(%v) = %v, want nil", f, err)
				}
				return
			}
			var fe *toxics.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate(%v) = %v, want a *FieldError on %q", f, err, tt.field)
			}
			if fe.Kind != toxics.KindPartition || fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("Validate(%v) = %v, want field %s and a reason with %q", f, err, tt.field, tt.reason)
			}
			if _, err := toxics.Marshal(f); err == nil {
				t.Fatalf("Marshal(%v) accepted an invalid partition", f)
			}
		})
	}
}

func TestPartitionString(t *testing.T) {
	f := toxics.Partition{Groups: [][]string{{"db"}, {"cache", "queue"}}}
	if got, want := f.String(), "partition(db | cache,queue)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestPartitionJSON(t *testing.T) {
	in := `{"kind":"partition","groups":[["db"],["cache","queue"]]}`
	f, err := toxics.Unmarshal([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := toxics.Partition{Groups: [][]string{{"db"}, {"cache", "queue"}}}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("Unmarshal(%s) = %#v, want %#v", in, f, want)
	}
	out, err := toxics.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Fatalf("Marshal = %s, want %s", out, in)
	}
	// The encoding shares no slice with the fault.
	f.(toxics.Partition).Groups[0][0] = "changed"
	if string(out) != in {
		t.Fatal("changing the fault changed its encoding")
	}

	for _, tt := range []struct{ in, want string }{
		{`{"kind":"partition"}`, `field "groups" is required`},
		{`{"kind":"partition","groups":null}`, `field "groups" is required`},
		{`{"kind":"partition","groups":[["db"]]}`, "partition.groups = 1: needs at least two groups"},
		{`{"kind":"partition","groups":[["db"],[]]}`, "partition.groups[1] = []: is empty"},
		{`{"kind":"partition","groups":[["db"],["db"]]}`, `partition.groups[1][0] = "db": is already in groups[0]`},
		{`{"kind":"partition","groups":[["db"],[""]]}`, `partition.groups[1][0] = "": is empty`},
		{`{"kind":"partition","groups":[["db"],["x"]],"direction":"upstream"}`, `it has no field "direction"`},
		{`{"kind":"partition","groups":"db"}`, "decode fault"},
		{`{"kind":"latency","delay":"1s","groups":[["a"],["b"]]}`, `it has no field "groups"`},
		{`{"kind":"split"}`, "network kinds: partition"},
	} {
		_, err := toxics.Unmarshal([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Unmarshal(%s) = %v, want an error with %q", tt.in, err, tt.want)
		}
	}
}
