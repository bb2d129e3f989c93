// Package registrysync keeps what the alerting monitor knows of patients
// and devices in step with the registry: admissions, SpO2 scales, pauses,
// discharges and device assignments. Every change takes effect at once,
// whether it was made on the board (the web server calls Patient or Device
// after the change) or with the CLI from another process (Run watches the
// registry), and the alert audit says who changed what and why.
package registrysync

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	vward "github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"golang.org/x/sync/errgroup"
)

// Registry is what Sync reads (devices.Registry).
type Registry interface {
	Patient(ctx context.Context, id vward.PatientID) (devices.Patient, error)
	ListPatients(ctx context.Context, q devices.PatientQuery) ([]devices.Patient, error)
	PatientAudit(ctx context.Context, id vward.PatientID, limit int) ([]devices.AuditEntry, error)
	DeviceAudit(ctx context.Context, id vward.DeviceID, limit int) ([]devices.AuditEntry, error)
	PatientAt(device vward.DeviceID, at time.Time) (vward.PatientID, vward.WardID, error)
	Watch(ctx context.Context, every time.Duration, log *slog.Logger, changed func()) error
}

// Monitor is what Sync tells (alerting.Monitor).
type Monitor interface {
	Update(info alerting.PatientInfo, cause string)
	Discharge(id vward.PatientID, cause string)
	HasOpenAlerts(id vward.PatientID) bool
	Unbind(device vward.DeviceID, cause string)
	BoundDevices() map[vward.DeviceID]vward.PatientID
}

// Sync tells the monitor of registry changes. It remembers what it last
// told, so a change is passed on once however often the registry is read.
type Sync struct {
	reg Registry
	mon Monitor
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex // one sync at a time, so the monitor hears changes in order
	known  map[vward.PatientID]alerting.PatientInfo
	synced bool // All has run once
}

// New builds a Sync of reg into mon.
func New(reg Registry, mon Monitor, log *slog.Logger) *Sync {
	return &Sync{reg: reg, mon: mon, log: log.With("component", "registrysync"), now: time.Now,
		known: make(map[vward.PatientID]alerting.PatientInfo)}
}

// All reads every patient and tells the monitor what changed since the
// last sync: every admitted patient on the first, so the board lists them
// before their first reading.
func (s *Sync) All(ctx context.Context) error {
	ps, err := s.reg.ListPatients(ctx, devices.PatientQuery{Discharged: true})
	if err != nil {
		return fmt.Errorf("sync patients from the registry: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		s.patientLocked(ctx, p)
	}
	s.devicesLocked(ctx, func(vward.DeviceID, vward.PatientID) bool { return true })
	s.synced = true
	return nil
}

// Patient tells the monitor what changed of one patient, and of the devices
// the monitor has watched for them: the web server calls it after each
// change it makes, so the board need not wait for the registry watch.
func (s *Sync) Patient(ctx context.Context, id vward.PatientID) error {
	p, err := s.reg.Patient(ctx, id)
	if err != nil {
		return fmt.Errorf("sync patient %s from the registry: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.patientLocked(ctx, p)
	s.devicesLocked(ctx, func(_ vward.DeviceID, patient vward.PatientID) bool { return patient == id })
	return nil
}

// Device tells the monitor whether a device it watches for a patient still
// belongs to them (after an assignment or unassignment).
func (s *Sync) Device(ctx context.Context, id vward.DeviceID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devicesLocked(ctx, func(device vward.DeviceID, _ vward.PatientID) bool { return device == id })
}

// Resync is how often Run syncs even when the registry did not change,
// so that a change dated ahead (a device unassigned from 14:00) takes
// effect within this long of its time.
const Resync = time.Minute

// Run syncs every time the registry changes (another process, the CLI,
// wrote it), checking every interval, and every Resync, until ctx ends.
func (s *Sync) Run(ctx context.Context, every time.Duration) error {
	g, ctx := errgroup.WithContext(ctx)
	all := func() {
		if err := s.All(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("syncing the board with the registry failed; the next change or resync retries", "err", err)
		}
	}
	g.Go(func() error { return s.reg.Watch(ctx, every, s.log, all) })
	g.Go(func() error {
		t := time.NewTicker(Resync)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				all()
			}
		}
	})
	return g.Wait()
}

func (s *Sync) patientLocked(ctx context.Context, p devices.Patient) {
	old, seen := s.known[p.ID]
	if p.Status == devices.StatusDischarged {
		// Discharged since the last sync, or, on the first, while vward was
		// down and with alerts still open.
		if seen || (!s.synced && s.mon.HasOpenAlerts(p.ID)) {
			delete(s.known, p.ID)
			s.mon.Discharge(p.ID, s.patientCause(ctx, p.ID, "patient.discharge"))
		}
		return
	}
	info := alerting.PatientInfo{ID: p.ID, Ward: p.Ward, Name: p.Name, SpO2Scale: p.SpO2Scale,
		Paused: p.Status == devices.StatusPaused}
	if seen && old == info {
		return
	}
	var cause string
	switch {
	case info.Paused != old.Paused && info.Paused:
		cause = s.patientCause(ctx, p.ID, "patient.pause")
	case info.Paused != old.Paused && seen:
		cause = s.patientCause(ctx, p.ID, "patient.resume")
	case info.SpO2Scale != old.SpO2Scale && seen:
		cause = s.patientCause(ctx, p.ID, "patient.spo2_scale")
	}
	s.known[p.ID] = info
	s.mon.Update(info, cause)
}

// devicesLocked unbinds each device the monitor watches for a patient (of
// those which picks) that the registry no longer assigns to that patient.
func (s *Sync) devicesLocked(ctx context.Context, which func(vward.DeviceID, vward.PatientID) bool) {
	now := s.now()
	bound := s.mon.BoundDevices()
	ids := make([]vward.DeviceID, 0, len(bound))
	for d, p := range bound {
		if which(d, p) {
			ids = append(ids, d)
		}
	}
	slices.Sort(ids)
	for _, d := range ids {
		if owner, _, err := s.reg.PatientAt(d, now); err == nil && owner == bound[d] {
			continue
		}
		s.mon.Unbind(d, s.deviceCause(ctx, d))
	}
}

// patientCause says who made the patient's newest change of the kind
// action and why, for the alert audit.
func (s *Sync) patientCause(ctx context.Context, id vward.PatientID, action string) string {
	es, err := s.reg.PatientAudit(ctx, id, 20)
	return s.cause(es, err, action)
}

func (s *Sync) deviceCause(ctx context.Context, id vward.DeviceID) string {
	es, err := s.reg.DeviceAudit(ctx, id, 20)
	return s.cause(es, err, "device.unassign", "device.assign")
}

func (s *Sync) cause(es []devices.AuditEntry, err error, actions ...string) string {
	if err != nil {
		s.log.Warn("read the registry audit for an alert's reason", "err", err)
		return "the registry changed"
	}
	for _, e := range es {
		if slices.Contains(actions, e.Action) {
			return Cause(e)
		}
	}
	return "the registry changed"
}

// Cause renders a registry audit entry as an alert's reason: what changed,
// by whom, when and why.
func Cause(e devices.AuditEntry) string {
	s := e.Action
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	s += " by " + e.Actor + " at " + e.At.UTC().Format(time.RFC3339)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}
