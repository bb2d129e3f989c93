package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward"
)

// Device is a virtual device bound to a virtual patient.
type Device struct {
	ID      vward.DeviceID
	Secret  string
	Patient Patient
	// Every is the interval between measurements in simulated time.
	Every time.Duration
}

// Fleet publishes a set of devices' readings to a broker.
type Fleet struct {
	BrokerURL string
	Devices   []Device
	Seed      uint64
	// Speed is simulated seconds per real second (1 = real time).
	Speed float64
	// Start is the simulated clock at the start of the run; measurement
	// timestamps are Start plus elapsed simulated time.
	Start time.Time
	Log   *slog.Logger

	Published, Errors atomic.Int64
}

// Payload is one device protocol v1 message.
type Payload struct {
	MsgID    string        `json:"msg_id"`
	TS       string        `json:"ts"`
	Readings []WireReading `json:"readings"`
	Battery  *float64      `json:"battery,omitempty"`
}

// WireReading is one reading in a Payload.
type WireReading struct {
	Type  vward.ReadingKind `json:"type"`
	Value any               `json:"value"`
	TS    string            `json:"ts,omitempty"`
}

// Message encodes the vitals a multi-parameter device measured.
func Message(dev vward.DeviceID, seq int, at time.Time, v Vitals, battery float64) []byte {
	p := Payload{
		MsgID: fmt.Sprintf("%s-%06d", dev, seq),
		TS:    at.UTC().Format(time.RFC3339Nano),
		Readings: []WireReading{
			{Type: vward.RespiratoryRate, Value: v.RespiratoryRate},
			{Type: vward.SpO2, Value: v.SpO2},
			{Type: vward.SupplementalOxygen, Value: v.OnOxygen},
			{Type: vward.SystolicBP, Value: v.SystolicBP},
			{Type: vward.DiastolicBP, Value: v.DiastolicBP},
			{Type: vward.HeartRate, Value: v.HeartRate},
			{Type: vward.Consciousness, Value: v.Consciousness.String()},
			{Type: vward.Temperature, Value: v.Temperature},
		},
		Battery: &battery,
	}
	b, _ := json.Marshal(p) // cannot fail: plain types only
	return b
}

// Run connects every device and publishes until ctx ends.
func (f *Fleet) Run(ctx context.Context) error {
	if f.Speed <= 0 {
		f.Speed = 1
	}
	if f.Start.IsZero() {
		f.Start = time.Now()
	}
	if f.Log == nil {
		f.Log = slog.Default()
	}
	var wg sync.WaitGroup
	for i, d := range f.Devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.runDevice(ctx, i, d)
		}()
	}
	wg.Wait()
	return nil
}

func (f *Fleet) runDevice(ctx context.Context, i int, d Device) {
	log := f.Log.With("component", "simulator", "device", d.ID)
	opts := mqtt.NewClientOptions().
		AddBroker(f.BrokerURL).
		SetClientID("sim-" + string(d.ID)).
		SetUsername(string(d.ID)).
		SetPassword(d.Secret).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second)
	c := mqtt.NewClient(opts)
	c.Connect()
	defer c.Disconnect(250)

	rng := rand.New(rand.NewPCG(f.Seed, uint64(i)+1))
	realEvery := time.Duration(float64(d.Every) / f.Speed)
	// Stagger first readings so a fleet does not publish in lockstep.
	first := time.Duration(rng.Int64N(int64(realEvery) + 1))
	begin := time.Now()
	timer := time.NewTimer(first)
	defer timer.Stop()
	battery := 0.6 + rng.Float64()*0.4
	for seq := 1; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		elapsed := time.Duration(float64(time.Since(begin)) * f.Speed)
		at := f.Start.Add(elapsed)
		v := d.Patient.At(elapsed, at, rng)
		battery = max(0.05, battery-0.0005)
		tok := c.Publish(vward.ReadingsTopic(d.ID), 1, false, Message(d.ID, seq, at, v, battery))
		go func() {
			if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
				f.Published.Add(1)
				return
			}
			f.Errors.Add(1)
			log.Debug("publish not confirmed", "err", tok.Error())
		}()
		timer.Reset(realEvery)
	}
}
