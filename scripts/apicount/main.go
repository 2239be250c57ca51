// Command apicount counts what packages export: top-level identifiers and
// the methods of exported types (the "identifiers" of the API), and the
// exported fields of their structs, tests excluded. The redesign of issue 10
// measured the API with it:
//
//	go run ./scripts/apicount properties properties/breaker sim harness toxics
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	for _, dir := range os.Args[1:] {
		fset := token.NewFileSet()
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(names) == 0 {
			fmt.Fprintf(os.Stderr, "apicount: %s: no Go files\n", dir)
			os.Exit(1)
		}
		var files []*ast.File
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				fmt.Fprintf(os.Stderr, "apicount: %v\n", err)
				os.Exit(1)
			}
			files = append(files, f)
		}
		pkgs := map[string][]*ast.File{"": files}
		top, methods, fields, maxFields := 0, 0, 0, 0
		maxName := ""
		for _, p := range pkgs {
			for _, f := range p {
				for _, d := range f.Decls {
					switch d := d.(type) {
					case *ast.FuncDecl:
						if !d.Name.IsExported() {
							continue
						}
						if d.Recv == nil {
							top++
						} else {
							t := d.Recv.List[0].Type
							if s, ok := t.(*ast.StarExpr); ok {
								t = s.X
							}
							if ix, ok := t.(*ast.IndexExpr); ok {
								t = ix.X
							}
							if id, ok := t.(*ast.Ident); ok && id.IsExported() {
								methods++
							}
						}
					case *ast.GenDecl:
						for _, s := range d.Specs {
							switch s := s.(type) {
							case *ast.TypeSpec:
								if !s.Name.IsExported() {
									continue
								}
								top++
								if st, ok := s.Type.(*ast.StructType); ok {
									n := 0
									for _, fl := range st.Fields.List {
										if len(fl.Names) == 0 {
											n++
											continue
										}
										for _, nm := range fl.Names {
											if nm.IsExported() {
												n++
											}
										}
									}
									fields += n
									if n > maxFields {
										maxFields, maxName = n, s.Name.Name
									}
								}
							case *ast.ValueSpec:
								for _, nm := range s.Names {
									if nm.IsExported() {
										top++
									}
								}
							}
						}
					}
				}
			}
		}
		fmt.Printf("%-40s top-level %3d  methods %3d  total %3d  struct fields %3d  widest %s (%d)\n", dir, top, methods, top+methods, fields, maxName, maxFields)
	}
}
