package fhir

import (
	"net/url"
	"strconv"
)

// Page is one page of a search: the query as the client gave it, with
// _count and _offset as the server applied them.
type Page struct {
	// Self is the search's URL without _count and _offset, such as
	// "https://vward.example/fhir/R4/Observation?patient=p1".
	Base   string     // the server's base, ending "/fhir/R4"
	Type   string     // the resource type searched
	Query  url.Values // the search parameters but _count and _offset
	Count  int        // entries per page
	Offset int        // entries skipped
	Total  int        // matches in all
}

func (p Page) url(offset int) string {
	q := url.Values{}
	for k, v := range p.Query {
		q[k] = v
	}
	q.Set("_count", strconv.Itoa(p.Count))
	if offset > 0 {
		q.Set("_offset", strconv.Itoa(offset))
	}
	return p.Base + "/" + p.Type + "?" + q.Encode()
}

// Searchset writes a page of results, resources being this page's only,
// with links to itself and, where there are any, the pages either side.
// A _count of 0 asks for the total alone.
func Searchset(p Page, resources []Resource) Bundle {
	b := Bundle{ResourceType: "Bundle", Type: "searchset", Total: p.Total,
		Link: []BundleLink{{Relation: "self", URL: p.url(p.Offset)}}}
	if p.Count > 0 {
		if next := p.Offset + p.Count; next < p.Total {
			b.Link = append(b.Link, BundleLink{Relation: "next", URL: p.url(next)})
		}
		if p.Offset > 0 {
			b.Link = append(b.Link, BundleLink{Relation: "previous", URL: p.url(max(0, p.Offset-p.Count))})
		}
	}
	for _, r := range resources {
		b.Entry = append(b.Entry, BundleEntry{FullURL: p.Base + "/" + r.Kind() + "/" + r.Identity(),
			Resource: r, Search: &BundleSearch{Mode: "match"}})
	}
	return b
}

// Resource is any resource a search finds.
type Resource interface {
	Kind() string
	Identity() string
}

func (p Patient) Kind() string           { return p.ResourceType }
func (p Patient) Identity() string       { return p.ID }
func (o Observation) Kind() string       { return o.ResourceType }
func (o Observation) Identity() string   { return o.ID }
func (f Flag) Kind() string              { return f.ResourceType }
func (f Flag) Identity() string          { return f.ID }
func (e EpisodeOfCare) Kind() string     { return e.ResourceType }
func (e EpisodeOfCare) Identity() string { return e.ID }
func (d Device) Kind() string            { return d.ResourceType }
func (d Device) Identity() string        { return d.ID }
