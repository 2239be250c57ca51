package toxics

import "fmt"

// marshalNet fills w with the fields of the faults in net.go.
func marshalNet(w *wire, f Fault) error {
	optProb := func(p float64) *float64 {
		if p == 0 {
			return nil
		}
		return ptr(p)
	}
	optTrue := func(b bool) *bool {
		if !b {
			return nil
		}
		return ptr(true)
	}
	switch f := f.(type) {
	case Loss:
		w.Probability, w.Direction = ptr(f.Probability), optDir(f.Direction)
		w.BadProbability, w.EnterBad, w.LeaveBad = optProb(f.BadProbability), optProb(f.EnterBad), optProb(f.LeaveBad)
	case ConnectHang:
		w.Accepted = optTrue(f.Accepted)
	case ConnLimit:
		w.Max, w.Hold = ptr(f.Max), optTrue(f.Hold)
	case Targeted:
		inner, err := Marshal(f.Fault)
		if err != nil {
			return err
		}
		w.Fault = inner
		w.Share = optProb(f.Conns.Share)
		if f.Conns.Nth != 0 {
			w.Nth = ptr(f.Conns.Nth)
		}
		if f.Conns.Opened != AnyTime {
			w.Opened = ptr(f.Conns.Opened.String())
		}
	}
	return nil
}

// net decodes the faults in net.go; the fields allowed and required are
// checked already.
func (d *decoder) net(w *wire) Fault {
	switch w.Kind {
	case KindLoss:
		return Loss{Probability: *w.Probability, BadProbability: deref(w.BadProbability), EnterBad: deref(w.EnterBad),
			LeaveBad: deref(w.LeaveBad), Direction: d.dir(w.Direction)}
	case KindConnectHang:
		return ConnectHang{Accepted: deref(w.Accepted)}
	case KindConnLimit:
		return ConnLimit{Max: *w.Max, Hold: deref(w.Hold)}
	}
	// KindTargeted
	t := Targeted{Conns: Conns{Share: deref(w.Share), Nth: deref(w.Nth)}}
	if w.Opened != nil && d.err == nil {
		o, err := ParseOpened(*w.Opened)
		if err != nil {
			d.err = &FieldError{Kind: KindTargeted, Field: "opened", Value: fmt.Sprintf("%q", *w.Opened), Reason: "is not one of any, before, after"}
		}
		t.Conns.Opened = o
	}
	if d.err != nil {
		return t
	}
	inner, err := Unmarshal(w.Fault)
	if err != nil {
		d.err = fmt.Errorf("toxics: decode targeted.fault: %w", err)
		return t
	}
	lf, ok := inner.(LinkFault)
	if !ok {
		d.err = &FieldError{Kind: KindTargeted, Field: "fault", Value: inner.Kind(), Reason: "is a node fault; targeted takes a link fault"}
		return t
	}
	t.Fault = lf
	return t
}
