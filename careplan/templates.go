package careplan

import (
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/vward/vward"
)

// The pathway templates, one JSON plan each, named by file: a template is
// read through Parse like any plan, so a shipped template can never hold
// what a clinician's plan could not. docs/careplans.md gives each default's
// clinical basis and source.
//
//go:embed templates/*.json
var templateFS embed.FS

// templateFiles maps each template's name to its file.
var templateFiles = func() map[string]string {
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		panic(fmt.Sprintf("careplan: read embedded templates: %v", err))
	}
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		m[strings.TrimSuffix(e.Name(), ".json")] = "templates/" + e.Name()
	}
	return m
}()

// TemplateNames lists the pathway templates vward ships, sorted.
func TemplateNames() []string {
	names := make([]string, 0, len(templateFiles))
	for n := range templateFiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Template returns a fresh copy of the named pathway template, validated
// as Parse validates any plan. A template names itself in its Template
// field, so a plan made from one says where it came from.
func Template(name string) (*Plan, error) {
	file, ok := templateFiles[name]
	if !ok {
		return nil, vward.Errorf(vward.ErrNotFound, "no care plan template %q (one of %s)", name, strings.Join(TemplateNames(), ", "))
	}
	data, err := templateFS.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read care plan template %s: %w", name, err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("care plan template %s: %w", name, err)
	}
	if p.Template != name {
		return nil, fmt.Errorf("care plan template %s names itself %q", name, p.Template)
	}
	return p, nil
}
