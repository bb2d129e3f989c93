package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/vward/vward"
)

// CredentialsFile is the shape of a device credentials file, the same as the
// demo's demo-credentials.json: {"devices":[{"id","kind","secret","patient"}]}.
// Other fields (the demo's clinician) are ignored.
type CredentialsFile struct {
	Devices []DeviceCredential `json:"devices"`
}

// DeviceCredential is one device's id, secret and patient, and what kind
// of device it is when the file says.
type DeviceCredential struct {
	ID      vward.DeviceID  `json:"id"`
	Kind    DeviceKind      `json:"kind,omitempty"`
	Secret  string          `json:"secret"`
	Patient vward.PatientID `json:"patient,omitempty"`
}

// LoadCredentials reads a credentials file.
func LoadCredentials(file string) (*CredentialsFile, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	var c CredentialsFile
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("credentials %s: %w", file, err)
	}
	seen := map[vward.DeviceID]bool{}
	for i, d := range c.Devices {
		if err := ValidID(string(d.ID)); err != nil {
			return nil, fmt.Errorf("credentials %s: devices[%d]: %w", file, i, err)
		}
		if d.Kind != "" && !slices.Contains(DeviceKinds, d.Kind) {
			return nil, fmt.Errorf("credentials %s: device %s: kind %q is not one of %v", file, d.ID, d.Kind, DeviceKinds)
		}
		if seen[d.ID] {
			return nil, fmt.Errorf("credentials %s: device %s appears twice", file, d.ID)
		}
		seen[d.ID] = true
	}
	return &c, nil
}

// Secrets maps device ids to secrets.
func (c *CredentialsFile) Secrets() map[vward.DeviceID]string {
	m := make(map[vward.DeviceID]string, len(c.Devices))
	for _, d := range c.Devices {
		m[d.ID] = d.Secret
	}
	return m
}

// Runner runs a scenario without checking expectations, until it ends or
// ctx does: the demo's living ward.
type Runner struct {
	Scenario *Scenario
	Options  RunOptions
}

// Run runs the scenario. Stopping it by cancelling ctx is not an error.
func (r *Runner) Run(ctx context.Context) error {
	rep, err := RunScenario(ctx, r.Scenario, r.Options)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		return errors.New(rep.Problems[0])
	}
	return nil
}
