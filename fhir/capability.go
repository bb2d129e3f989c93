package fhir

// SearchParam is a search parameter a resource's search takes.
type SearchParam struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	Documentation string `json:"documentation,omitempty"`
}

// Interaction is a RESTful interaction a resource supports.
type Interaction struct {
	Code string `json:"code"`
}

// CapabilityResource is what the server does with one resource type.
type CapabilityResource struct {
	Type string `json:"type"`
	// SupportedProfile, not profile: only some of the Observations are
	// vital signs (a NEWS2 is not), and profile would claim them all.
	SupportedProfile []string      `json:"supportedProfile,omitempty"`
	Interaction      []Interaction `json:"interaction"`
	SearchParam      []SearchParam `json:"searchParam,omitempty"`
}

// CapabilityOperation is an operation the server serves.
type CapabilityOperation struct {
	Name          string `json:"name"`
	Definition    string `json:"definition"`
	Documentation string `json:"documentation,omitempty"`
}

// CapabilityRest is the server's REST side.
type CapabilityRest struct {
	Mode          string                `json:"mode"`
	Documentation string                `json:"documentation,omitempty"`
	Resource      []CapabilityResource  `json:"resource"`
	Operation     []CapabilityOperation `json:"operation,omitempty"`
}

// Software names the server.
type Software struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// CapabilityStatement says what /fhir/R4 serves.
type CapabilityStatement struct {
	ResourceType string           `json:"resourceType"`
	Status       string           `json:"status"`
	Date         string           `json:"date"`
	Kind         string           `json:"kind"`
	Software     Software         `json:"software"`
	FHIRVersion  string           `json:"fhirVersion"`
	Format       []string         `json:"format"`
	Rest         []CapabilityRest `json:"rest"`
}

var (
	count  = SearchParam{Name: "_count", Type: "number", Documentation: "entries per page, 0 to 500 (more is taken as 500); 0 gives the total alone"}
	offset = SearchParam{Name: "_offset", Type: "number", Documentation: "entries to skip: the next and previous links carry it"}
	lastUp = SearchParam{Name: "_lastUpdated", Type: "date", Documentation: "meta.lastUpdated, as date: eq, ge, gt, le or lt; may be given twice"}
	byPat  = SearchParam{Name: "patient", Type: "reference", Documentation: "required: Patient/<id> or <id>"}
)

// Served is what the web layer serves under /fhir/R4, read by
// Capability and by the web test that asks for each.
var Served = []CapabilityResource{
	{Type: "Patient", Interaction: []Interaction{{"read"}, {"search-type"}}, SearchParam: []SearchParam{
		{Name: "identifier", Type: "token", Documentation: NHSNumber + "|<NHS number>, or the number alone"}, count, offset}},
	{Type: "EpisodeOfCare", Interaction: []Interaction{{"read"}}},
	{Type: "Device", Interaction: []Interaction{{"read"}}},
	{Type: "Observation", SupportedProfile: []string{VitalSignsProfile, BPProfile}, Interaction: []Interaction{{"read"}, {"search-type"}}, SearchParam: []SearchParam{
		byPat,
		{Name: "code", Type: "token", Documentation: "[system|]code, comma-separated for any of them"},
		{Name: "date", Type: "date", Documentation: "eq (the default), ge, gt, le or lt, then YYYY-MM-DD (a UTC day) or a dateTime with its zone; may be given twice"},
		lastUp, count, offset}},
	{Type: "Flag", Interaction: []Interaction{{"read"}, {"search-type"}}, SearchParam: []SearchParam{byPat, lastUp, count, offset}},
}

// ServedOperations are the system operations the web layer serves, each
// GET /fhir/R4/$<name>. The export is not FHIR Bulk Data's asynchronous
// one, so it names vward's own definition rather than claim that one.
var ServedOperations = []CapabilityOperation{
	{Name: "export", Definition: Namespace + "/OperationDefinition/ward-export",
		Documentation: "GET $export?ward=<ward id>[&_since=<instant>][&_type=...]: the ward's Patients, EpisodeOfCares, Devices, Observations and Flags as application/fhir+ndjson, answered at once (not Bulk Data's asynchronous kick-off)"},
}

// Capability writes the server's CapabilityStatement; date is when the
// running server started, version vward's.
func Capability(date, version string) CapabilityStatement {
	return CapabilityStatement{ResourceType: "CapabilityStatement", Status: "active", Date: date, Kind: "instance",
		Software: Software{Name: "vward", Version: version}, FHIRVersion: "4.0.1",
		Format: []string{"application/fhir+json"},
		Rest: []CapabilityRest{{Mode: "server", Resource: Served, Operation: ServedOperations,
			Documentation: "Read-only. A signed-in clinician's board session, or a machine client's API token (Authorization: Bearer), reads its own wards' patients; any other patient is not found."}}}
}
