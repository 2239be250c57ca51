package toxics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// wire is the JSON form of every fault: the kind plus the fields that kind
// has. Pointers tell a missing field from a zero one.
type wire struct {
	Kind          Kind     `json:"kind"`
	Delay         *string  `json:"delay,omitempty"`
	Jitter        *string  `json:"jitter,omitempty"`
	Rate          *int64   `json:"rate,omitempty"`
	AverageSize   *int     `json:"average_size,omitempty"`
	SizeVariation *int     `json:"size_variation,omitempty"`
	Probability   *float64 `json:"probability,omitempty"`
	Bytes         *int64   `json:"bytes,omitempty"`
	After         *string  `json:"after,omitempty"`
	Grace         *string  `json:"grace,omitempty"`
	Direction     *string  `json:"direction,omitempty"`
	Reply         *string  `json:"reply,omitempty"`
	Code          *string  `json:"code,omitempty"`
	Message       *string  `json:"message,omitempty"`
	Share         *float64 `json:"share,omitempty"`
	Nth           *int     `json:"nth,omitempty"`
	Commands      *string  `json:"commands,omitempty"`

	// Groups are a partition's groups (nil when absent).
	Groups [][]string `json:"groups,omitempty"`

	BadProbability *float64        `json:"bad_probability,omitempty"`
	EnterBad       *float64        `json:"enter_bad,omitempty"`
	LeaveBad       *float64        `json:"leave_bad,omitempty"`
	Accepted       *bool           `json:"accepted,omitempty"`
	Max            *int            `json:"max,omitempty"`
	Hold           *bool           `json:"hold,omitempty"`
	Fault          json.RawMessage `json:"fault,omitempty"`
	Opened         *string         `json:"opened,omitempty"`
}

// fields lists, per kind, the JSON fields it accepts; those in required must
// be present.
var fields = map[Kind]struct{ allowed, required []string }{
	KindLatency:     {[]string{"delay", "jitter", "direction"}, []string{"delay"}},
	KindBandwidth:   {[]string{"rate", "direction"}, []string{"rate"}},
	KindSlicer:      {[]string{"average_size", "size_variation", "delay", "direction"}, []string{"average_size"}},
	KindSlowClose:   {[]string{"delay", "direction"}, []string{"delay"}},
	KindCorrupt:     {[]string{"probability", "direction"}, []string{"probability"}},
	KindDataLimit:   {[]string{"bytes", "direction"}, []string{"bytes"}},
	KindTimeout:     {[]string{"after", "direction"}, []string{"after"}},
	KindBlackhole:   {[]string{"direction"}, nil},
	KindReset:       {nil, nil},
	KindDown:        {nil, nil},
	KindPause:       {nil, nil},
	KindRestart:     {nil, nil},
	KindStop:        {[]string{"grace"}, nil},
	KindCrash:       {nil, nil},
	KindRedisDelay:  {[]string{"delay", "share", "nth", "commands"}, []string{"delay"}},
	KindRedisError:  {[]string{"reply", "share", "nth", "commands"}, []string{"reply"}},
	KindPgError:     {[]string{"code", "message", "share", "nth", "commands"}, []string{"code"}},
	KindPgRefuse:    {[]string{"code", "message", "share", "nth"}, []string{"code"}},
	KindData:        {nil, nil},
	KindPartition:   {[]string{"groups"}, []string{"groups"}},
	KindLoss:        {[]string{"probability", "bad_probability", "enter_bad", "leave_bad", "direction"}, []string{"probability"}},
	KindConnectHang: {[]string{"accepted"}, nil},
	KindConnLimit:   {[]string{"max", "hold"}, []string{"max"}},
	KindTargeted:    {[]string{"fault", "share", "nth", "opened"}, []string{"fault"}},
}

func (w *wire) present() []string {
	var out []string
	add := func(name string, set bool) {
		if set {
			out = append(out, name)
		}
	}
	add("delay", w.Delay != nil)
	add("jitter", w.Jitter != nil)
	add("rate", w.Rate != nil)
	add("average_size", w.AverageSize != nil)
	add("size_variation", w.SizeVariation != nil)
	add("probability", w.Probability != nil)
	add("bytes", w.Bytes != nil)
	add("after", w.After != nil)
	add("grace", w.Grace != nil)
	add("direction", w.Direction != nil)
	add("groups", w.Groups != nil)
	add("reply", w.Reply != nil)
	add("code", w.Code != nil)
	add("message", w.Message != nil)
	add("share", w.Share != nil)
	add("nth", w.Nth != nil)
	add("commands", w.Commands != nil)
	add("bad_probability", w.BadProbability != nil)
	add("enter_bad", w.EnterBad != nil)
	add("leave_bad", w.LeaveBad != nil)
	add("accepted", w.Accepted != nil)
	add("max", w.Max != nil)
	add("hold", w.Hold != nil)
	add("fault", w.Fault != nil)
	add("opened", w.Opened != nil)
	return out
}

func dur(d time.Duration) *string { s := d.String(); return &s }

func optDur(d time.Duration) *string {
	if d == 0 {
		return nil
	}
	return dur(d)
}

func optDir(d Direction) *string {
	if d == Both {
		return nil
	}
	s := d.String()
	return &s
}

func ptr[T any](v T) *T { return &v }

// Marshal returns the JSON form of f after validating it. Optional fields
// at their zero value (no jitter, both directions) are left out.
func Marshal(f Fault) ([]byte, error) {
	if err := Validate(f); err != nil {
		return nil, err
	}
	w := wire{Kind: f.Kind()}
	switch f := f.(type) {
	case Latency:
		w.Delay, w.Jitter, w.Direction = dur(f.Delay), optDur(f.Jitter), optDir(f.Direction)
	case Bandwidth:
		w.Rate, w.Direction = ptr(f.Rate), optDir(f.Direction)
	case Slicer:
		w.AverageSize, w.Delay, w.Direction = ptr(f.AverageSize), optDur(f.Delay), optDir(f.Direction)
		if f.SizeVariation != 0 {
			w.SizeVariation = ptr(f.SizeVariation)
		}
	case SlowClose:
		w.Delay, w.Direction = dur(f.Delay), optDir(f.Direction)
	case Corrupt:
		w.Probability, w.Direction = ptr(f.Probability), optDir(f.Direction)
	case DataLimit:
		w.Bytes, w.Direction = ptr(f.Bytes), optDir(f.Direction)
	case Timeout:
		w.After, w.Direction = dur(f.After), optDir(f.Direction)
	case Blackhole:
		w.Direction = optDir(f.Direction)
	case Stop:
		w.Grace = optDur(f.Grace)
	case Partition:
		w.Groups = f.clone().Groups
	case RedisDelay:
		w.Delay = dur(f.Delay)
		w.Share, w.Nth, w.Commands = f.Requests.wire()
	case RedisError:
		w.Reply = ptr(f.Reply)
		w.Share, w.Nth, w.Commands = f.Requests.wire()
	case PgError:
		w.Code, w.Message = ptr(f.Code), optStr(f.Message)
		w.Share, w.Nth, w.Commands = f.Requests.wire()
	case PgRefuse:
		w.Code, w.Message = ptr(f.Code), optStr(f.Message)
		w.Share, w.Nth, w.Commands = f.Requests.wire()
	case HTTPStatus, HTTPDelay, HTTPCut, HTTPTrickle, HTTPJSON:
		return marshalHTTP(f)
	case DNSDelay, DNSServfail, DNSNXDomain, DNSDrop:
		return marshalDNS(f)
	case ClockSkew, ClockJump:
		return marshalClock(f)
	case Reset, Down, Pause, Restart, Crash, Data:
	case Loss, ConnectHang, ConnLimit, Targeted:
		if err := marshalNet(&w, f); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("toxics: cannot marshal fault of type %T", f)
	}
	return json.Marshal(w)
}

// Unmarshal decodes one fault from its JSON form and validates it. The
// error names the kind and the field at fault.
func Unmarshal(data []byte) (Fault, error) {
	if f, ok, err := unmarshalHTTP(data); ok {
		return f, err
	}
	if f, ok, err := unmarshalDNS(data); ok {
		return f, err
	}
	if f, ok, err := unmarshalClock(data); ok {
		return f, err
	}
	var w wire
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("toxics: decode fault: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("toxics: decode fault: trailing data after the JSON object")
	}
	if w.Kind == "" {
		return nil, fmt.Errorf("toxics: decode fault: field \"kind\" is required")
	}
	spec, ok := fields[w.Kind]
	if !ok {
		return nil, fmt.Errorf("toxics: decode fault: unknown kind %q (link kinds: %s; HTTP kinds: %s; node kinds: %s; network kinds: %s; protocol kinds: %s; DNS kinds: %s; clock kinds: %s)",
			w.Kind, joinKinds(linkKinds), joinKinds(httpKinds), joinKinds(nodeKinds), joinKinds(networkKinds), joinKinds(protocolKinds), joinKinds(dnsKinds), joinKinds(clockKinds))
	}
	present := w.present()
	for _, name := range present {
		if !slices.Contains(spec.allowed, name) {
			return nil, fmt.Errorf("toxics: decode %s: it has no field %q (it takes: %s)", w.Kind, name, orNone(spec.allowed))
		}
	}
	for _, name := range spec.required {
		if !slices.Contains(present, name) {
			return nil, fmt.Errorf("toxics: decode %s: field %q is required", w.Kind, name)
		}
	}
	d := decoder{kind: w.Kind}
	var f Fault
	switch w.Kind {
	case KindLatency:
		f = Latency{Delay: d.dur("delay", w.Delay), Jitter: d.dur("jitter", w.Jitter), Direction: d.dir(w.Direction)}
	case KindBandwidth:
		f = Bandwidth{Rate: *w.Rate, Direction: d.dir(w.Direction)}
	case KindSlicer:
		f = Slicer{AverageSize: *w.AverageSize, SizeVariation: deref(w.SizeVariation), Delay: d.dur("delay", w.Delay), Direction: d.dir(w.Direction)}
	case KindSlowClose:
		f = SlowClose{Delay: d.dur("delay", w.Delay), Direction: d.dir(w.Direction)}
	case KindCorrupt:
		f = Corrupt{Probability: *w.Probability, Direction: d.dir(w.Direction)}
	case KindDataLimit:
		f = DataLimit{Bytes: *w.Bytes, Direction: d.dir(w.Direction)}
	case KindTimeout:
		f = Timeout{After: d.dur("after", w.After), Direction: d.dir(w.Direction)}
	case KindBlackhole:
		f = Blackhole{Direction: d.dir(w.Direction)}
	case KindReset:
		f = Reset{}
	case KindDown:
		f = Down{}
	case KindPause:
		f = Pause{}
	case KindRestart:
		f = Restart{}
	case KindStop:
		f = Stop{Grace: d.dur("grace", w.Grace)}
	case KindCrash:
		f = Crash{}
	case KindPartition:
		f = Partition{Groups: w.Groups}
	case KindRedisDelay:
		f = RedisDelay{Delay: d.dur("delay", w.Delay), Requests: w.requests()}
	case KindRedisError:
		f = RedisError{Reply: *w.Reply, Requests: w.requests()}
	case KindPgError:
		f = PgError{Code: *w.Code, Message: deref(w.Message), Requests: w.requests()}
	case KindData:
		f = Data{}
	case KindPgRefuse:
		f = PgRefuse{Code: *w.Code, Message: deref(w.Message), Requests: w.requests()}
	case KindLoss, KindConnectHang, KindConnLimit, KindTargeted:
		f = d.net(&w)
	}
	if d.err != nil {
		return nil, d.err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

type decoder struct {
	kind Kind
	err  error
}

func (d *decoder) dur(field string, s *string) time.Duration {
	if s == nil || d.err != nil {
		return 0
	}
	v, err := time.ParseDuration(*s)
	if err != nil {
		d.err = &FieldError{Kind: d.kind, Field: field, Value: fmt.Sprintf("%q", *s), Reason: "is not a duration such as \"250ms\" or \"1.5s\""}
	}
	return v
}

func (d *decoder) dir(s *string) Direction {
	if s == nil || d.err != nil {
		return Both
	}
	v, err := ParseDirection(*s)
	if err != nil {
		d.err = &FieldError{Kind: d.kind, Field: "direction", Value: fmt.Sprintf("%q", *s), Reason: "is not one of both, upstream, downstream"}
	}
	return v
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func joinKinds(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no fields"
	}
	return strings.Join(s, ", ")
}

// Spec wraps a Fault so it can sit in a struct that is encoded as JSON,
// such as a schedule step. Its zero value holds no fault and encodes as
// null.
type Spec struct {
	Fault Fault
}

// MarshalJSON implements json.Marshaler.
func (s Spec) MarshalJSON() ([]byte, error) {
	if s.Fault == nil {
		return []byte("null"), nil
	}
	return Marshal(s.Fault)
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *Spec) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		s.Fault = nil
		return nil
	}
	f, err := Unmarshal(data)
	if err != nil {
		return err
	}
	s.Fault = f
	return nil
}

// decodeFamily decodes data strictly (no unknown field, nothing after the
// object) into w, the wire form of a family of kinds, when its kind is of
// that family (is): ok says it was, err what was wrong with it. fields,
// when not nil, lists what a kind takes, for the error of a bad field.
func decodeFamily(data []byte, is func(Kind) bool, w any, fields func(Kind) string) (kind Kind, ok bool, err error) {
	var head struct {
		Kind Kind `json:"kind"`
	}
	if json.NewDecoder(bytes.NewReader(data)).Decode(&head) != nil || !is(head.Kind) {
		return "", false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(w); err != nil {
		if fields != nil {
			return head.Kind, true, fmt.Errorf("toxics: decode %s: %w (it takes: %s)", head.Kind, err, fields(head.Kind))
		}
		return head.Kind, true, fmt.Errorf("toxics: decode %s: %w", head.Kind, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return head.Kind, true, fmt.Errorf("toxics: decode fault: trailing data after the JSON object")
	}
	return head.Kind, true, nil
}
