package simulator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
)

// Backdate is how far back Register binds devices: beyond vward's 7-day
// backfill limit, so that every reading a scenario stamps in simulated
// time is attributed to its patient.
const Backdate = 8 * 24 * time.Hour

// Register makes a scenario's wards, patients (with their SpO2 scale) and
// devices known to vward's registry, so that the scenario can be replayed
// against a running vward, which notices registry changes within seconds.
// It may run again: what is registered already is reused. A device that
// exists gets a new secret, since vward keeps only a hash of the old one,
// and the returned credentials are what the devices must sign in with.
func Register(ctx context.Context, reg *devices.Registry, plan *Plan, now time.Time) (*CredentialsFile, error) {
	from := now.Add(-Backdate)
	for _, w := range plan.Wards() {
		if _, err := reg.Ward(ctx, w); err == nil {
			continue
		} else if !errors.Is(err, vward.ErrNotFound) {
			return nil, err
		}
		if err := reg.AddWard(ctx, devices.Ward{ID: w, Name: string(w)}); err != nil {
			return nil, err
		}
	}
	creds := &CredentialsFile{}
	for _, p := range plan.Patients {
		cur, err := reg.Patient(ctx, p.ID)
		switch {
		case errors.Is(err, vward.ErrNotFound):
			if err := reg.Admit(ctx, devices.Patient{ID: p.ID, Ward: p.Ward, Name: p.Name, SpO2Scale: p.SpO2Scale, Admitted: from}); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		case cur.Status == devices.StatusDischarged:
			return nil, fmt.Errorf("patient %s of the scenario is registered and discharged; use a fresh data dir", p.ID)
		case cur.SpO2Scale != p.SpO2Scale && p.SpO2Scale != 0:
			if err := reg.SetSpO2Scale(ctx, p.ID, p.SpO2Scale, "scenario "+plan.Scenario.Name); err != nil {
				return nil, err
			}
		}
		for _, d := range p.Devices {
			var secret string
			dev, err := reg.Device(ctx, d.ID)
			switch {
			case errors.Is(err, vward.ErrNotFound):
				if secret, err = reg.AddDevice(ctx, d.ID, string(d.Kind)); err != nil {
					return nil, err
				}
			case err != nil:
				return nil, err
			default:
				if secret, err = reg.RotateSecret(ctx, d.ID, "scenario "+plan.Scenario.Name); err != nil {
					return nil, err
				}
			}
			if dev.Patient != p.ID {
				if err := reg.Assign(ctx, d.ID, p.ID, from); err != nil {
					return nil, err
				}
			}
			creds.Devices = append(creds.Devices, DeviceCredential{ID: d.ID, Secret: secret, Patient: p.ID})
		}
	}
	return creds, nil
}
