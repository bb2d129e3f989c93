package careplan

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/vward/vward"
)

func TestTemplatesLoad(t *testing.T) {
	want := []string{"acute_respiratory_infection", "frailty", "heart_failure", "respiratory"}
	names := TemplateNames()
	if len(names) != len(want) {
		t.Fatalf("templates %v, want %v", names, want)
	}
	for i, n := range names {
		if n != want[i] {
			t.Fatalf("templates %v, want %v", names, want)
		}
		t.Run(n, func(t *testing.T) {
			p, err := Template(n)
			if err != nil {
				t.Fatal(err)
			}
			if p.Template != n || p.Name == "" || len(p.Expected) == 0 || len(p.Rules) == 0 {
				t.Errorf("%+v", p)
			}
			if p.Escalation != nil {
				t.Error("a template records an escalation plan: that is each patient's own")
			}
			for _, r := range p.Rules {
				if r.Basis == "" {
					t.Errorf("rule %s gives no clinical basis", r.ID)
				}
			}
			roundTrip(t, p)
			// A fresh copy each time: changing one changes no other.
			p.Rules[0].Value = -1
			q, err := Template(n)
			if err != nil || q.Rules[0].Value == -1 {
				t.Error("Template returned a shared plan")
			}
		})
	}
	if _, err := Template("cardiology"); !errors.Is(err, vward.ErrNotFound) {
		t.Errorf("unknown template: %v, want ErrNotFound", err)
	}
}

// Every embedded file is a template: none can sit there unread.
func TestTemplateFilesAreJSONPlans(t *testing.T) {
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(TemplateNames()) {
		t.Errorf("%d files, %d templates", len(entries), len(TemplateNames()))
	}
	for _, e := range entries {
		data, err := templateFS.ReadFile("templates/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(data); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
	}
}
