package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// duplicateKeyByTokens is duplicateKey written plainly over encoding/json's
// tokens: the reference the fuzz test holds the scanner to.
func duplicateKeyByTokens(payload []byte) (string, bool) {
	type level struct {
		obj     bool
		keys    []string
		wantKey bool
		key     string
		index   int
		path    string
	}
	var stack []*level
	here := func() string {
		if len(stack) == 0 {
			return ""
		}
		l := stack[len(stack)-1]
		switch {
		case !l.obj:
			return fmt.Sprintf("%s[%d]", l.path, l.index)
		case l.path == "":
			return l.key
		}
		return l.path + "." + l.key
	}
	read := func() {
		if len(stack) > 0 {
			if l := stack[len(stack)-1]; !l.obj {
				l.index++
			} else {
				l.wantKey = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			if k, ok := tok.(string); ok {
				l := stack[n-1]
				l.wantKey, l.key = false, k
				for _, seen := range l.keys {
					if strings.EqualFold(seen, k) { // as encoding/json matches a key to a field
						return here(), true
					}
				}
				l.keys = append(l.keys, k)
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{obj: true, wantKey: true, path: here()})
		case json.Delim('['):
			stack = append(stack, &level{path: here()})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			read()
		default:
			read()
		}
	}
}

func TestDuplicateKey(t *testing.T) {
	for _, tc := range []struct{ doc, path string }{
		{`{"a":1,"b":2}`, ""},
		{`{"a":1,"a":2}`, "a"},
		{`{"a":1,"A":2}`, "A"},
		{`{"a":{"b":1},"c":{"b":2}}`, ""},
		{`{"a":{"b":1,"b":2}}`, "a.b"},
		{`[{"v":1},{"v":1,"v":2}]`, "[1].v"},
		{`{"r":[[],[{"x":1}],{"y":[1,2,{"z":1,"z":2}]}]}`, "r[2].y[2].z"},
		{`{"r":[[],[{"x":1}],[{"y":[1,2,{"z":1,"z":2}]}]]}`, "r[2][0].y[2].z"},
		{`{"\u0061":1,"a":2}`, "a"},
		{`{"":1,"":2}`, ""},
		{` { "s" : "a,}]\"" , "s" : 1 } `, "s"},
		{`[]`, ""},
		{`{}`, ""},
		{`"x"`, ""},
	} {
		path, found := duplicateKey([]byte(tc.doc))
		if found != (tc.path != "" || tc.doc == `{"":1,"":2}`) || path != tc.path {
			t.Errorf("duplicateKey(%s) = %q, %v; want %q", tc.doc, path, found, tc.path)
		}
	}
}

// The scanner agrees with the plain reference on every document Decode
// would ask it about, and never panics on anything else.
func FuzzDuplicateKey(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `[{"v":1},{"v":1,"v":2}]`, `{"msg_id":"m","ts":"t","readings":[{"type":"spo2","value":95}]}`, `{"\u00e9":1,"É":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		path, found := duplicateKey(doc)
		if !json.Valid(doc) || !utf8.Valid(doc) { // Decode refuses both before asking
			return
		}
		wantPath, want := duplicateKeyByTokens(doc)
		if found != want || path != wantPath {
			t.Fatalf("duplicateKey(%q) = %q, %v; the reference says %q, %v", doc, path, found, wantPath, want)
		}
	})
}
