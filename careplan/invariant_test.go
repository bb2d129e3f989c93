package careplan_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/vward/vward/careplan"
	"github.com/vward/vward/news2"
)

// A care plan only adds findings: it cannot suppress, lower or delay
// NEWS2. That holds by construction, and this test keeps it so: the
// package imports nothing of vward's but the root vocabulary (so neither
// news2 nor alerting), and no type the evaluator takes or returns comes
// from anywhere else.
func TestCannotTouchNEWS2(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") && path != "github.com/vward/vward" {
				t.Errorf("%s imports %s: careplan may import only the standard library and the root package", name, path)
			}
		}
	}

	seen := map[reflect.Type]bool{}
	var check func(where string, ty reflect.Type)
	check = func(where string, ty reflect.Type) {
		if seen[ty] {
			return
		}
		seen[ty] = true
		if p := ty.PkgPath(); p != "" && strings.HasPrefix(p, "github.com/") &&
			p != "github.com/vward/vward" && p != "github.com/vward/vward/careplan" {
			t.Errorf("%s is of %s, from %s", where, ty, p)
		}
		switch ty.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			check(where, ty.Elem())
		case reflect.Map:
			check(where, ty.Key())
			check(where, ty.Elem())
		case reflect.Struct:
			for i := range ty.NumField() {
				check(where+"."+ty.Field(i).Name, ty.Field(i).Type)
			}
		case reflect.Func:
			for i := range ty.NumIn() {
				check(where+" argument", ty.In(i))
			}
			for i := range ty.NumOut() {
				check(where+" result", ty.Out(i))
			}
		}
	}
	check("Evaluator.Evaluate", reflect.TypeOf((*careplan.Evaluator).Evaluate))
	check("Evaluate", reflect.TypeOf(careplan.Evaluate))
	check("Plan.Due", reflect.TypeOf((*careplan.Plan).Due))
}

// A rule's risk is named as NEWS2 names its bands, so alerting can read it
// as one.
func TestRisksAreNEWS2Bands(t *testing.T) {
	for i, r := range careplan.Risks {
		var band news2.Risk
		if err := band.UnmarshalText([]byte(r)); err != nil {
			t.Errorf("risk %q: %v", r, err)
		}
		if int(band) != i {
			t.Errorf("risk %q is band %v, not in NEWS2's order", r, band)
		}
	}
}
