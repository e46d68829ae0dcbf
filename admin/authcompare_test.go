package admin_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"os"
	"strings"
	"testing"
)

// TestTokenComparedInConstantTime reads the source of (*API).authorized, the
// one place the bearer token is checked, and holds it to constant time: the
// token is compared with crypto/subtle.ConstantTimeCompare over fixed-length
// SHA-256 digests (so neither the content nor the length of a wrong token
// changes the time taken), and no other comparison — ==, !=, bytes.Equal,
// strings.Compare, strings.HasPrefix, strings.EqualFold — touches the token or
// its digest, apart from checking that the token sent is not empty. A timing
// measurement could not prove this on a shared machine; TestUnauthorized
// covers the answers. The checker itself is tested on variable-time versions.
func TestTokenComparedInConstantTime(t *testing.T) {
	real, err := os.ReadFile("admin.go")
	if err != nil {
		t.Fatal(err)
	}
	const head = "package admin\n\n"
	tests := []struct {
		name    string
		src     string
		wantBad bool
	}{
		{name: "admin.go", src: string(real)},
		{name: "plain string equality", wantBad: true, src: head + `func (a *API) authorized(r *http.Request) bool {
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return token != "" && token == a.cfg.Token
}`},
		{name: "digest with bytes.Equal", wantBad: true, src: head + `func (a *API) authorized(r *http.Request) bool {
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	sum := sha256.Sum256([]byte(token))
	return bytes.Equal(sum[:], a.tokenSum[:])
}`},
		{name: "raw token in constant time (length leaks)", wantBad: true, src: head + `func (a *API) authorized(r *http.Request) bool {
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return subtle.ConstantTimeCompare([]byte(token), []byte(a.cfg.Token)) == 1
}`},
		{name: "stops at the first matching token", wantBad: true, src: head + `func (a *API) authorized(r *http.Request) (string, bool) {
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	sum := sha256.Sum256([]byte(token))
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			return t.name, true
		}
	}
	return "", false
}`},
		{name: "prefix check first", wantBad: true, src: head + `func (a *API) authorized(r *http.Request) bool {
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.HasPrefix(a.cfg.Token, token[:1]) {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			problems, err := variableTimeComparisons([]byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if bad := len(problems) > 0; bad != tc.wantBad {
				t.Errorf("problems %q, want bad=%v", problems, tc.wantBad)
			}
		})
	}
}

// variableTimeComparisons returns what in the authorized method of src is
// not a constant-time token comparison.
func variableTimeComparisons(data []byte) ([]string, error) {
	fset := gotoken.NewFileSet()
	f, err := parser.ParseFile(fset, "admin.go", data, 0)
	if err != nil {
		return nil, err
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "authorized" && fd.Recv != nil {
			fn = fd
		}
	}
	if fn == nil {
		return nil, fmt.Errorf("(*API).authorized not found: update this test with the token check")
	}
	src := func(n ast.Node) string {
		return string(data[fset.Position(n.Pos()).Offset:fset.Position(n.End()).Offset])
	}
	secretish := func(s string) bool {
		return strings.Contains(s, "token") || strings.Contains(s, "Token") || strings.Contains(s, "sum")
	}
	var problems []string
	constantTime := 0
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			switch call := src(n.Fun); call {
			case "subtle.ConstantTimeCompare":
				constantTime++
				if a1 := src(n.Args[1]); len(n.Args) != 2 || !strings.HasSuffix(src(n.Args[0]), "[:]") || a1 != "a.tokenSum[:]" && a1 != "t.sum[:]" {
					problems = append(problems, src(n)+": want ConstantTimeCompare(sum[:], t.sum[:]) over digests")
				}
			case "bytes.Equal", "strings.Compare", "strings.HasPrefix", "strings.HasSuffix", "strings.Contains", "reflect.DeepEqual", "strings.EqualFold":
				for _, a := range n.Args {
					if secretish(src(a)) {
						problems = append(problems, src(n)+" compares the token in variable time")
						break
					}
				}
			}
		case *ast.RangeStmt:
			// Every token is compared: leaving the loop at the first match
			// would tell by its time which token (and how many) there are.
			ast.Inspect(n.Body, func(m ast.Node) bool {
				switch m.(type) {
				case *ast.ReturnStmt, *ast.BranchStmt:
					problems = append(problems, src(m)+" leaves the comparison of the tokens early")
				}
				return true
			})
		case *ast.BinaryExpr:
			if n.Op != gotoken.EQL && n.Op != gotoken.NEQ {
				return true
			}
			x, y := src(n.X), src(n.Y)
			if secretish(x+y) && x != `""` && y != `""` && !strings.HasPrefix(x, "subtle.ConstantTimeCompare(") {
				problems = append(problems, src(n)+" compares the token in variable time")
			}
		}
		return true
	})
	if constantTime != 1 {
		problems = append(problems, fmt.Sprintf("subtle.ConstantTimeCompare called %d times, want once", constantTime))
	}
	return problems, nil
}
