package logs

import (
	"log/slog"
	"net/http"
	"time"
)

// Middleware returns next wrapped so that every request it receives is
// kept as a Record of service at Info, with message "request", the
// method and path as attributes and the trace ID of its traceparent
// header (none when the request came without one). Put it in front of a
// dependency's handler (a sim.FakeHTTP, an httptest.Server fronted by a
// harness Link) to see whether the trace ID of each op reaches it:
//
//	payments, err := n.FakeHTTP("payments", capture.Middleware("payments", handler))
func (c *Capture) Middleware(service string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Add(Record{Time: time.Now(), Service: service, Level: slog.LevelInfo, Msg: "request",
			TraceID: ParseTraceparent(r.Header.Get("traceparent")),
			Attrs:   []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path)}})
		next.ServeHTTP(w, r)
	})
}

// Traceparents returns a function that keeps each traceparent it is given
// as a Record of service at Info, with message "request" and the trace ID
// ("" for a request without one), as Middleware does. Give it to a harness
// Link in front of the dependency, so that the requests are seen where
// the Link delivers them rather than in the dependency's handler:
//
//	link.OnTraceparent(capture.Traceparents("payments"))
func (c *Capture) Traceparents(service string) func(traceparent string) {
	return func(tp string) {
		c.Add(Record{Time: time.Now(), Service: service, Level: slog.LevelInfo, Msg: "request", TraceID: ParseTraceparent(tp)})
	}
}
