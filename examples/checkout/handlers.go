package checkout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// DegradedHeader marks an answer given without one of the dependencies:
// "X-Degraded: 1".
const DegradedHeader = "X-Degraded"

// Order is a row of the orders table and the body of GET /orders/{id}.
type Order struct {
	ID   string `json:"id"`
	Item string `json:"item"`
	Qty  int    `json:"qty"`
}

// Stock is the body of GET /stock/{item}. Stock is null when the answer is
// degraded (the cache could not be read).
type Stock struct {
	Item     string `json:"item"`
	Stock    *int64 `json:"stock"`
	Degraded bool   `json:"degraded,omitempty"`
}

// Created is the body of a 201 answer to POST /orders.
type Created struct {
	ID       string `json:"id"`
	Degraded bool   `json:"degraded,omitempty"`
}

var (
	itemRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	idRE   = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// maxQty bounds the quantity of one order.
const maxQty = 1000

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", s.postOrder)
	mux.HandleFunc("GET /orders/{id}", s.getOrder)
	mux.HandleFunc("GET /stock/{item}", s.getStock)
	return s.middleware(mux)
}

// middleware gives each request its trace ID (from traceparent, or a new
// one), the resilient variant's deadline, and one log line when done.
func (s *Service) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id, ok := ParseTraceParent(r.Header.Get(TraceParent))
		if !ok {
			id = newID()
		}
		ctx, cancel := context.WithCancel(withTraceID(r.Context(), id))
		defer cancel()
		defer context.AfterFunc(s.closing, cancel)() // Close aborts the request
		if s.variant == Resilient {
			// The whole request, retries included, fits in this budget.
			var stop context.CancelFunc
			ctx, stop = context.WithTimeout(ctx, s.limits.RequestTimeout)
			defer stop()
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(ctx))
		s.log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Duration("took", time.Since(start)),
			slog.Bool("degraded", rec.Header().Get(DegradedHeader) != ""))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// postOrder reserves stock in Redis, then records the order in Postgres.
func (s *Service) postOrder(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var in struct {
		Item string `json:"item"`
		Qty  int    `json:"qty"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("body: want {\"item\":\"...\",\"qty\":n}: %w", err))
		return
	}
	if !itemRE.MatchString(in.Item) {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("item %q: want 1 to 64 letters, digits, '_' or '-'", in.Item))
		return
	}
	if in.Qty < 1 || in.Qty > maxQty {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("qty %d: want 1 to %d", in.Qty, maxQty))
		return
	}
	order := Order{ID: newID(), Item: in.Item, Qty: in.Qty}

	// 1. Reserve stock. Not idempotent (running it twice takes the stock
	// twice), so it is retried only when Redis refused it without running
	// it (LOADING, BUSY: see safeToRetry).
	var left int64
	err := s.cacheGuard.run(ctx, false, func(ctx context.Context) (err error) {
		left, err = reserve.Run(ctx, s.cache, []string{stockKey(order.Item)}, order.Qty).Int64()
		return err
	})
	degraded := false
	switch {
	case err != nil && s.variant == Resilient:
		// The cache is a cache: take the order anyway and say so. So
		// too when Redis refused the write (READONLY, OOM).
		degraded = true
		s.log.LogAttrs(ctx, slog.LevelWarn, "stock not reserved, order taken degraded", slog.String("err", err.Error()))
	case err != nil:
		s.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("redis: %w", err))
		return
	case left == unknownItem:
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("item %q: unknown", order.Item))
		return
	case left == outOfStock:
		s.fail(w, r, http.StatusConflict, fmt.Errorf("item %q: fewer than %d in stock", order.Item, order.Qty))
		return
	}

	// 2. Record the order. Idempotent (the ID is chosen here, and a second
	// insert of the same ID does nothing), so it may be retried.
	err = s.dbGuard.run(ctx, true, func(ctx context.Context) error {
		_, err := s.db.Exec(ctx, `INSERT INTO orders (id, item, qty) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
			order.ID, order.Item, order.Qty)
		return err
	})
	if err != nil {
		if !degraded {
			s.release(ctx, order)
		}
		s.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("postgres: %w", err))
		return
	}
	if degraded {
		w.Header().Set(DegradedHeader, "1")
	}
	s.reply(w, r, http.StatusCreated, Created{ID: order.ID, Degraded: degraded})
}

// release gives back the stock an order reserved when the order could not
// be recorded. It runs on a context of its own: the request's may be the
// one that just expired. If the insert's outcome is unknown (a timeout
// after the commit), this can give back stock of an order that exists;
// the stock level is a cache, and the orders table is the truth.
func (s *Service) release(ctx context.Context, o Order) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.limits.RedisTimeout)
	defer cancel()
	err := s.cacheGuard.run(ctx, false, func(ctx context.Context) error {
		return s.cache.IncrBy(ctx, stockKey(o.Item), int64(o.Qty)).Err()
	})
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "stock not released", slog.String("item", o.Item), slog.String("err", err.Error()))
	}
}

// getOrder reads an order from Postgres, the source of truth.
func (s *Service) getOrder(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !idRE.MatchString(id) {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("order id %q: want 32 lowercase hex digits", id))
		return
	}
	var o Order
	found := false
	err := s.dbGuard.run(r.Context(), true, func(ctx context.Context) error {
		err := s.db.QueryRow(ctx, `SELECT id, item, qty FROM orders WHERE id = $1`, id).Scan(&o.ID, &o.Item, &o.Qty)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // an answer, not a failure: the breaker must not count it
		}
		found = err == nil
		return err
	})
	switch {
	case err == nil && !found:
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("order %s: not found", id))
	case err != nil:
		s.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("postgres: %w", err))
	default:
		s.reply(w, r, http.StatusOK, o)
	}
}

// getStock reads the stock level from Redis only: it must stay fast
// whatever Postgres does.
func (s *Service) getStock(w http.ResponseWriter, r *http.Request) {
	item := r.PathValue("item")
	if !itemRE.MatchString(item) {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("item %q: want 1 to 64 letters, digits, '_' or '-'", item))
		return
	}
	var n int64
	found := false
	err := s.cacheGuard.run(r.Context(), true, func(ctx context.Context) (err error) {
		n, err = s.cache.Get(ctx, stockKey(item)).Int64()
		if errors.Is(err, redis.Nil) {
			return nil // an answer, not a failure
		}
		found = err == nil
		return err
	})
	switch {
	case err == nil && !found:
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("item %q: unknown", item))
	case err != nil && s.variant == Resilient:
		// Degraded: "we do not know right now" is a valid answer.
		w.Header().Set(DegradedHeader, "1")
		s.reply(w, r, http.StatusOK, Stock{Item: item, Degraded: true})
	case err != nil:
		s.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("redis: %w", err))
	default:
		s.reply(w, r, http.StatusOK, Stock{Item: item, Stock: &n})
	}
}

func (s *Service) reply(w http.ResponseWriter, _ *http.Request, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Service) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		ctx := r.Context()
		if s.untraced {
			ctx = context.Background() // the mistake: the trace ID stays behind
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "dependency failed", slog.String("err", err.Error()))
		w.Header().Set("Retry-After", "1")
	}
	s.reply(w, r, status, map[string]string{"error": err.Error()})
}

// Redis keys and the reservation script.

func stockKey(item string) string { return "stock:" + item }

const (
	unknownItem = -2
	outOfStock  = -1
)

// reserve takes ARGV[1] units of KEYS[1] if that many are left, in one
// atomic step, and returns what is left (or unknownItem, outOfStock).
var reserve = redis.NewScript(`
local left = tonumber(redis.call('GET', KEYS[1]))
if not left then return ` + strconv.Itoa(unknownItem) + ` end
if left < tonumber(ARGV[1]) then return ` + strconv.Itoa(outOfStock) + ` end
return redis.call('DECRBY', KEYS[1], ARGV[1])
`)
