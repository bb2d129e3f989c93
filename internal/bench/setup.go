package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"

	_ "modernc.org/sqlite" // the registry's SQL driver
)

// seed registers the bench's ward, clinician, patients and devices in the
// registry at dbPath (vward's data dir), each device bound to its own
// patient. It writes with synchronous=OFF: the registry of a benchmark is
// disposable, and 10,000 fsynced admissions would take minutes.
func seed(ctx context.Context, dbPath string, cfg Config) ([]device, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "synchronous(OFF)")
	db, err := sql.Open("sqlite", "file:"+dbPath+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open registry %s: %w", dbPath, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	reg, err := devices.Open(ctx, db)
	if err != nil {
		return nil, err
	}
	wards := cfg.wardIDs()
	for _, ward := range wards {
		if _, err := reg.Ward(ctx, ward); err != nil {
			if err := reg.AddWard(ctx, devices.Ward{ID: ward, Name: "vward bench " + string(ward)}); err != nil {
				return nil, err
			}
		}
	}
	if err := reg.AddClinician(ctx, devices.Clinician{Username: cfg.Username, Role: "clinician", Wards: wards[:cfg.BoardWards]}, cfg.Password); err != nil {
		return nil, err
	}
	from := time.Now().Add(-time.Hour)
	out := make([]device, cfg.Devices)
	for i := range out {
		d := device{id: deviceID(cfg.Prefix, i), patient: patientID(cfg.Prefix, i)}
		if _, err := reg.Patient(ctx, d.patient); err != nil {
			if err := reg.Admit(ctx, devices.Patient{ID: d.patient, Ward: wards[i%len(wards)], Name: fmt.Sprintf("Bench Patient %05d", i+1)}); err != nil {
				return nil, err
			}
		}
		if _, err := reg.Device(ctx, d.id); err != nil {
			if d.secret, err = reg.AddDevice(ctx, d.id, "bench wearable"); err != nil {
				return nil, err
			}
		}
		if err := reg.Assign(ctx, d.id, d.patient, from); err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func dataDB(dir string) string { return filepath.Join(dir, "vward.db") }

// wardIDs are the bench's wards: Ward alone, or Ward-001… for several.
func (c Config) wardIDs() []vward.WardID {
	if c.Wards <= 1 {
		return []vward.WardID{vward.WardID(c.Ward)}
	}
	ids := make([]vward.WardID, c.Wards)
	for i := range ids {
		ids[i] = vward.WardID(fmt.Sprintf("%s-%03d", c.Ward, i+1))
	}
	return ids
}

// boardPatients is how many patients are in the board client's wards:
// patient i is in ward i mod Wards, and the clinician holds the first
// BoardWards.
func (c Config) boardPatients() int {
	if c.BoardWards >= c.Wards {
		return c.Devices
	}
	n := 0
	for w := 0; w < c.BoardWards; w++ {
		n += (c.Devices - w + c.Wards - 1) / c.Wards
	}
	return n
}
