package shakedown_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const module = "github.com/shakedown/shakedown"

// heavy are the dependencies that only harness (and examples and tests) may
// bring in: a user who only simulates must not compile Docker clients.
var heavy = []string{
	"github.com/testcontainers/testcontainers-go",
	"github.com/Shopify/toxiproxy",
	"github.com/docker",
	"github.com/moby",
}

// clients are the client and breaker libraries that the core leaves to
// adapters, and the Prometheus parser and OpenTelemetry SDK that only the
// observability adapters use: a user who checks an HTTP client must not
// compile them.
var clients = []string{
	"github.com/jackc/pgx",
	"github.com/redis/go-redis",
	"github.com/failsafe-go/failsafe-go",
	"github.com/sony/gobreaker",
	"github.com/prometheus",
	"go.opentelemetry.io/otel",
}

// adapters are the directories whose packages adapt a client or breaker
// library to the core; they may import it.
var adapters = []string{
	"properties/pgxcheck",
	"properties/redischeck",
	"properties/sqlcheck",
	"properties/breaker/failsafecheck",
	"properties/breaker/gobreakercheck",
	"sim/promscrape",
	"sim/otelexport",
}

// clientFree are the core's directories (adapters below them excepted):
// their non-test code brings in no client or breaker library, by itself
// or through a library outside the module. A package of the module that
// they import answers for its own imports, in its own entry here; with
// every core directory listed, the core's whole dependency graph is
// clean.
var clientFree = []string{
	"toxics",
	"internal",
	"sim",
	"properties",
}

// rule says what the non-test code of the packages under Dir (the package
// and its subpackages) may depend on, directly or not.
type rule struct {
	Dir string
	// Ours are the module's directories Dir may depend on besides itself.
	Ours []string
	// NoHeavy forbids every path in heavy.
	NoHeavy bool
}

// rules are DESIGN.md's import rules, and one for internal, which holds
// what harness and sim share to behave alike (the HTTP faults' selection,
// answers and JSON changes): it may use toxics only.
var rules = []rule{
	{Dir: "toxics", NoHeavy: true},
	{Dir: "internal", Ours: []string{"toxics"}, NoHeavy: true},
	{Dir: "sim", Ours: []string{"toxics", "internal"}, NoHeavy: true},
	{Dir: "properties", Ours: []string{"sim", "toxics", "internal"}, NoHeavy: true},
	{Dir: "properties/internal", Ours: []string{"sim", "toxics", "internal"}, NoHeavy: true},
	{Dir: "properties/breaker", Ours: []string{"properties", "sim", "toxics", "internal"}, NoHeavy: true},
	{Dir: "harness", Ours: []string{"toxics", "internal"}},
}

// heavyImporters are the directories whose non-test code may import a heavy
// dependency directly.
var heavyImporters = []string{"harness", "examples"}

// TestImportRules checks the module's non-test imports against DESIGN.md
// with go list -deps. A rule whose directory has no Go files yet is logged
// and not checked.
func TestImportRules(t *testing.T) {
	g, err := loadGraph(".", "./...")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range g.broken {
		t.Errorf("go list could not load %s, so its imports are unchecked: %s", p.path, p.err)
	}
	for _, r := range rules {
		t.Run(r.Dir, func(t *testing.T) {
			ok, err := hasGoFiles(r.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				t.Logf("rule for %s not checked: %s has no non-test Go files yet", r.Dir, r.Dir)
				return
			}
			if len(g.under(r.Dir)) == 0 {
				t.Fatalf("%s has Go files but go list reported no package under %s/%s", r.Dir, module, r.Dir)
			}
			for _, v := range g.check(r) {
				t.Error(v)
			}
		})
	}
	for _, dir := range clientFree {
		t.Run("clients/"+dir, func(t *testing.T) {
			if len(g.under(dir)) == 0 {
				t.Fatalf("go list reported no package under %s/%s", module, dir)
			}
			for _, v := range g.checkClients(dir, adapters) {
				t.Error(v)
			}
		})
	}
	t.Run("heavy importers", func(t *testing.T) {
		for _, v := range g.checkHeavyImporters(heavyImporters) {
			t.Error(v)
		}
	})
}

// TestImportRulesCatchViolations runs the checks on a made-up module graph,
// so that a rule that can no longer fail does not go unnoticed.
func TestImportRulesCatchViolations(t *testing.T) {
	m := func(p string) string { return module + "/" + p }
	g := &graph{imports: map[string][]string{
		m("toxics"):                            {"fmt", "time"},
		m("sim"):                               {m("toxics"), m("sim/internal/clock")},
		m("sim/internal/clock"):                {m("harness")},
		m("properties"):                        {m("sim"), "pgregory.net/rapid"},
		m("harness"):                           {m("toxics"), "github.com/testcontainers/testcontainers-go/wait"},
		m("harness/internal/ts"):               {"net/http"},
		m("stray"):                             {"github.com/Shopify/toxiproxy/v2"},
		m("examples/checkout"):                 {m("harness"), "github.com/Shopify/toxiproxy/v2"},
		m("properties/pool"):                   {"github.com/jackc/pgx/v5/pgxpool"},
		m("properties/breaker"):                {m("properties"), m("properties/pool"), m("properties/breaker/failsafecheck")},
		m("properties/breaker/failsafecheck"):  {m("properties/breaker"), "github.com/failsafe-go/failsafe-go"},
		m("properties/breaker/gobreakercheck"): {m("properties/breaker"), "github.com/sony/gobreaker/v2"},
		"github.com/jackc/pgx/v5/pgxpool":      {"github.com/jackc/pgx/v5"},
		"github.com/testcontainers/testcontainers-go/wait": {"github.com/docker/docker/client"},
	}}
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{
			// harness is reported once, with the chain from the top
			// package; the Docker client behind it is not reported again.
			name: "sim reaches harness through an internal package",
			got:  g.check(rule{Dir: "sim", Ours: []string{"toxics"}, NoHeavy: true}),
			want: []string{"sim may not depend on harness: sim -> sim/internal/clock -> harness"},
		},
		{
			name: "properties inherits sim's violation",
			got:  g.check(rule{Dir: "properties", Ours: []string{"sim", "toxics"}, NoHeavy: true}),
			want: []string{"properties may not depend on harness: properties -> sim -> sim/internal/clock -> harness"},
		},
		{
			name: "toxics imports only the standard library",
			got:  g.check(rule{Dir: "toxics", NoHeavy: true}),
		},
		{
			name: "harness may import testcontainers",
			got:  g.check(rule{Dir: "harness", Ours: []string{"toxics"}}),
		},
		{
			name: "a direct heavy import outside harness and examples",
			got:  g.checkHeavyImporters(heavyImporters),
			want: []string{"stray imports github.com/Shopify/toxiproxy/v2: only harness and examples may"},
		},
		{
			// The adapters themselves may import their library; a core
			// package that imports an adapter brings the library in.
			// properties/pool is outside the rule's directory: it answers
			// for its own imports in an entry of its own.
			name: "breaker imports an adapter",
			got:  g.checkClients("properties/breaker", []string{"properties/breaker/failsafecheck", "properties/breaker/gobreakercheck"}),
			want: []string{"properties/breaker may not depend on github.com/failsafe-go/failsafe-go: properties/breaker -> properties/breaker/failsafecheck -> github.com/failsafe-go/failsafe-go"},
		},
		{
			name: "a core directory that imports a client library itself",
			got:  g.checkClients("properties/pool", nil),
			want: []string{"properties/pool may not depend on github.com/jackc/pgx/v5/pgxpool: properties/pool -> github.com/jackc/pgx/v5/pgxpool"},
		},
		{
			name: "a rule with no packages",
			got:  g.check(rule{Dir: "nothing"}),
		},
	}
	for _, tt := range tests {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s: got\n\t%s\nwant\n\t%s", tt.name, strings.Join(tt.got, "\n\t"), strings.Join(tt.want, "\n\t"))
		}
	}
}

// graph is the non-test import graph of the module and its dependencies.
type graph struct {
	imports map[string][]string // import path -> its imports
	broken  []brokenPkg         // module packages go list could not load
}

type brokenPkg struct{ path, err string }

// loadGraph runs go list -e -deps in dir on the patterns.
func loadGraph(dir string, patterns ...string) (*graph, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("find the go command: %w", err)
	}
	args := append([]string{"list", "-e", "-deps", "-json=ImportPath,Imports,Error"}, patterns...)
	cmd := exec.Command(goTool, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	g := &graph{imports: map[string][]string{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
			Error      *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		g.imports[p.ImportPath] = p.Imports
		if p.Error != nil && ours(p.ImportPath) {
			g.broken = append(g.broken, brokenPkg{p.ImportPath, p.Error.Err})
		}
	}
	return g, nil
}

// check returns r's violations: each forbidden package that the rule's
// packages reach, once, with the shortest import chain from the first
// package (in import path order) that reaches it. The search stops at a
// forbidden package, so what lies behind one (the Docker client behind
// harness, say) is not reported again.
func (g *graph) check(r rule) []string {
	forbidden := func(p string) bool {
		if ours(p) {
			return !under(p, r.Dir) && !slices.ContainsFunc(r.Ours, func(d string) bool { return under(p, d) })
		}
		return r.NoHeavy && isHeavy(p)
	}
	return g.walk(r.Dir, g.under(r.Dir), forbidden, func(string) bool { return false })
}

// walk searches the graph breadth first from each root and returns a
// violation for each package forbidden reports, once, with the shortest
// import chain from the first root that reaches it. It does not go past a
// forbidden package, nor past one that stop reports.
func (g *graph) walk(dir string, roots []string, forbidden, stop func(string) bool) []string {
	var violations []string
	reported := map[string]bool{}
	for _, root := range roots {
		parent := map[string]string{root: ""}
		queue := []string{root}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			if forbidden(p) {
				if !reported[p] {
					reported[p] = true
					violations = append(violations, fmt.Sprintf("%s may not depend on %s: %s",
						dir, short(p), strings.Join(chain(parent, p), " -> ")))
				}
				continue
			}
			if stop(p) {
				continue
			}
			for _, q := range g.imports[p] {
				if _, seen := parent[q]; !seen {
					parent[q] = p
					queue = append(queue, q)
				}
			}
		}
	}
	return violations
}

// checkClients returns the client and breaker libraries that the non-test
// code of the packages under dir (but not under an adapter directory)
// depends on, each once, with the shortest import chain, as check does.
// The search does not go into the module's packages outside dir: they
// answer for their own imports.
func (g *graph) checkClients(dir string, adapters []string) []string {
	var roots []string
	for _, p := range g.under(dir) {
		if !slices.ContainsFunc(adapters, func(a string) bool { return under(p, a) }) {
			roots = append(roots, p)
		}
	}
	return g.walk(dir, roots, isClient, func(p string) bool { return ours(p) && !under(p, dir) })
}

func isClient(p string) bool {
	return slices.ContainsFunc(clients, func(c string) bool { return p == c || strings.HasPrefix(p, c+"/") })
}

// checkHeavyImporters returns the module's packages outside dirs that
// import a heavy dependency directly.
func (g *graph) checkHeavyImporters(dirs []string) []string {
	var violations []string
	for _, p := range g.sorted() {
		if !ours(p) || slices.ContainsFunc(dirs, func(d string) bool { return under(p, d) }) {
			continue
		}
		for _, q := range g.imports[p] {
			if isHeavy(q) {
				violations = append(violations, fmt.Sprintf("%s imports %s: only %s may",
					short(p), q, strings.Join(dirs, " and ")))
			}
		}
	}
	return violations
}

// under returns the module's packages in dir and below it, sorted.
func (g *graph) under(dir string) []string {
	var ps []string
	for _, p := range g.sorted() {
		if under(p, dir) {
			ps = append(ps, p)
		}
	}
	return ps
}

func (g *graph) sorted() []string {
	ps := make([]string, 0, len(g.imports))
	for p := range g.imports {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// chain walks parent links back from p to the root.
func chain(parent map[string]string, p string) []string {
	var c []string
	for ; p != ""; p = parent[p] {
		c = append(c, short(p))
	}
	slices.Reverse(c)
	return c
}

func ours(p string) bool { return p == module || strings.HasPrefix(p, module+"/") }

// under reports whether import path p is the module's directory dir or
// below it.
func under(p, dir string) bool {
	d := module + "/" + dir
	return p == d || strings.HasPrefix(p, d+"/")
}

func isHeavy(p string) bool {
	return slices.ContainsFunc(heavy, func(h string) bool { return p == h || strings.HasPrefix(p, h+"/") })
}

// short strips the module path from p.
func short(p string) string {
	if s, ok := strings.CutPrefix(p, module+"/"); ok {
		return s
	}
	return p
}

// hasGoFiles reports whether dir or a directory below it has a non-test Go
// file. A missing dir has none.
func hasGoFiles(dir string) (bool, error) {
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for Go files in %s: %w", dir, err)
	}
	return found, nil
}
