package main

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/ingest"
)

// newDevicesCmd is `vward devices …`: operators' view of the fleet.
func newDevicesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "Register devices, bind them to patients, manage their secrets, and inspect refused messages",
	}
	cmd.AddCommand(newDevicesRejectedCmd())
	addDeviceRegistryCmds(cmd) // add, assign, unassign, rotate-secret, list, export-mosquitto (deviceregistry.go)
	return cmd
}

// maxRejectedListed caps one listing; --device narrows it.
const maxRejectedListed = 10000

func newDevicesRejectedCmd() *cobra.Command {
	var (
		dataDir, device string
		limit           int
		asJSON          bool
	)
	cmd := &cobra.Command{
		Use:   "rejected",
		Short: "List messages vward refused (its dead letters), newest first",
		Long: `List the messages vward refused, in whole or in part, newest first: the
device, its msg_id, a rejection code (see docs/device-protocol.md) and the
reason, as the device was also told on vward/v1/devices/{id}/rejected.

It reads the SQL store in --data-dir, and may run while vward serve does.
--json prints every field, the payload included (as text, or as
payload_base64 when it is not UTF-8).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if device != "" {
				if err := devices.ValidID(device); err != nil {
					return fmt.Errorf("--device: %w", err)
				}
			}
			if limit < 1 || limit > maxRejectedListed {
				return fmt.Errorf("--limit must be from 1 to %d", maxRejectedListed)
			}
			db, err := openStore(dataDir, false)
			if err != nil {
				return err
			}
			defer db.Close()
			dead, err := ingest.OpenDeadLetters(cmd.Context(), db)
			if err != nil {
				return err
			}
			rs, err := dead.List(cmd.Context(), ingest.RejectionQuery{Device: vward.DeviceID(device), Limit: limit})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if rs == nil {
					rs = []ingest.Rejection{}
				}
				return printJSON(out, rs)
			}
			return writeRejections(out, rs, device)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&dataDir, "data-dir", "vward-data", "directory of vward's SQL store (env VWARD_DATA_DIR)")
	fs.StringVar(&device, "device", "", "only this device's rejections")
	fs.IntVar(&limit, "limit", 50, "at most this many, newest first")
	fs.BoolVar(&asJSON, "json", false, "print JSON with every field, payload included")
	return cmd
}

// writeRejections prints a table for people. Every field that came from a
// device is made printable: a payload may hold anything, and a terminal
// must not interpret it.
func writeRejections(w io.Writer, rs []ingest.Rejection, device string) error {
	empty := "no rejected messages"
	if device != "" {
		empty += " from " + device
	}
	return writeTable(w, rs, empty, "ID\tRECEIVED (UTC)\tDEVICE\tMSG_ID\tCODE\tREASON", func(r ingest.Rejection) []string {
		return []string{fmt.Sprint(r.ID), r.Received.UTC().Format(time.DateTime),
			printable(string(r.Device), 32), printable(r.MsgID, 32), printable(r.Code, 24), printable(r.Reason, 100)}
	})
}

// printable replaces control characters and tabs with spaces and clips s to
// max runes.
func printable(s string, max int) string {
	if s == "" {
		return "-"
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	if rs := []rune(s); len(rs) > max {
		return string(rs[:max-1]) + "…"
	}
	return s
}
