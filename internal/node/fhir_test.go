package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/fhir"
)

// A reading a device publishes over MQTT comes out of /fhir/R4 as a
// vital-signs Observation with its LOINC code and UCUM unit; a clinician
// reads only their own wards' patients; without a session only the
// CapabilityStatement is served.
func TestFHIRReadingOverMQTTAndWards(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	if err := s.node.Registry.AddWard(ctx, devices.Ward{ID: "w2", Name: "Frailty"}); err != nil {
		t.Fatal(err)
	}
	if err := s.node.Registry.Admit(ctx, devices.Patient{ID: "p2", Ward: "w2", Name: "Other Patient"}); err != nil {
		t.Fatal(err)
	}
	base := s.node.URL()
	measured := time.Now().Add(-5 * time.Minute).UTC().Truncate(time.Second)
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device), partialMessage("ox-1-fhir", measured))

	nurseSession := signIn(t, base, nurse)
	hr := "/fhir/R4/Observation?patient=p1&code=" + url.QueryEscape(fhir.LOINC+"|8867-4")
	var b fhir.Bundle
	eventually(t, "the heart rate served as FHIR", func() bool {
		b = fhir.Bundle{}
		return nurseSession.do("GET", hr, nil, &b) == http.StatusOK && b.Total == 1
	})
	raw, _ := json.Marshal(b.Entry[0].Resource)
	var o fhir.Observation
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatal(err)
	}
	if o.Code.Coding[0].Code != "8867-4" || o.ValueQuantity == nil || o.ValueQuantity.Value != "72" || o.ValueQuantity.Code != "/min" ||
		o.EffectiveDateTime != fhir.DateTime(measured) || o.Device == nil || o.Device.Reference != "Device/ox-1" {
		t.Errorf("the heart rate as FHIR: %s", raw)
	}
	if !strings.Contains(string(raw), fhir.VitalSignsProfile) {
		t.Errorf("the heart rate does not claim the vital-signs profile: %s", raw)
	}

	// Ward w1's nurse cannot read w2's patient, nor w2's nurse p1.
	other := signIn(t, base, otherNurse)
	for _, c := range []struct {
		who  *session
		path string
	}{
		{nurseSession, "/fhir/R4/Patient/p2"}, {nurseSession, "/fhir/R4/Observation?patient=p2"},
		{other, "/fhir/R4/Patient/p1"}, {other, hr}, {other, "/fhir/R4/Flag?patient=p1"},
	} {
		var oo fhir.OperationOutcome
		if code := c.who.do("GET", c.path, nil, &oo); code != http.StatusNotFound || oo.ResourceType != "OperationOutcome" {
			t.Errorf("GET %s of another ward: %d %+v, want a 404 OperationOutcome", c.path, code, oo)
		}
	}
	var p fhir.Patient
	if code := other.do("GET", "/fhir/R4/Patient/p2", nil, &p); code != http.StatusOK || p.ID != "p2" {
		t.Errorf("w2's nurse reads p2: %d %+v", code, p)
	}

	// No session: 401, but for the CapabilityStatement.
	for path, want := range map[string]int{"/fhir/R4/metadata": http.StatusOK, "/fhir/R4/Patient/p1": http.StatusUnauthorized, hr: http.StatusUnauthorized} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("Content-Type") != "application/fhir+json" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s without a session: %d %s %q, want %d application/fhir+json no-store", path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), want)
		}
	}
}

// A machine client's token, created by an admin over REST, reads its
// ward's patient and not another ward's, and nothing once revoked.
func TestFHIRTokenForAWard(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	if err := s.node.Registry.AddWard(ctx, devices.Ward{ID: "w2", Name: "Frailty"}); err != nil {
		t.Fatal(err)
	}
	if err := s.node.Registry.Admit(ctx, devices.Patient{ID: "p2", Ward: "w2", Name: "Other Patient"}); err != nil {
		t.Fatal(err)
	}
	if err := s.node.Registry.AddClinician(ctx, devices.Clinician{Username: "root", Role: "admin"}, password); err != nil {
		t.Fatal(err)
	}
	admin := signIn(t, s.node.URL(), "root")
	var created struct {
		Secret string `json:"secret"`
	}
	if code := admin.do("POST", "/api/v1/tokens", map[string]any{"name": "gp-system", "wards": []string{"w1"}}, &created); code != http.StatusCreated || created.Secret == "" {
		t.Fatalf("create a token: %d", code)
	}
	get := func(path string) int {
		req, _ := http.NewRequest("GET", s.node.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+created.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for path, want := range map[string]int{
		"/fhir/R4/Patient/p1": http.StatusOK, "/fhir/R4/Observation?patient=p1": http.StatusOK,
		"/fhir/R4/Patient/p2": http.StatusNotFound, "/fhir/R4/Observation?patient=p2": http.StatusNotFound,
		// A FHIR token is no session for the rest of the API.
		"/api/v1/patients": http.StatusUnauthorized,
	} {
		if code := get(path); code != want {
			t.Errorf("the w1 token GET %s: %d, want %d", path, code, want)
		}
	}
	if code := admin.do("POST", "/api/v1/tokens/gp-system/revoke", map[string]string{"reason": "contract ended"}, nil); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	if code := get("/fhir/R4/Patient/p1"); code != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d, want 401", code)
	}
}
