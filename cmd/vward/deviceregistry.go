package main

// The registry's subcommands of `vward devices …`: add, assign, unassign,
// rotate-secret, list and export-mosquitto. The parent command and
// `devices rejected` live in devices.go.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
)

// addDeviceRegistryCmds adds the registry's subcommands to `vward devices`
// (whose parent lives in devices.go).
func addDeviceRegistryCmds(cmd *cobra.Command) {
	cmd.AddCommand(newDevicesAddCmd(), newDevicesAssignCmd(), newDevicesUnassignCmd(),
		newDevicesRotateSecretCmd(), newDevicesListCmd(), newDevicesExportMosquittoCmd())
}

// writeSecret shows a device's new secret once, with what to do with it;
// with --json, the device as the registry now has it too.
func writeSecret(ctx context.Context, w io.Writer, reg *devices.Registry, id vward.DeviceID, secret string, asJSON bool) error {
	d, err := reg.Device(ctx, id)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, map[string]any{"device": d, "secret": secret})
	}
	_, err = fmt.Fprintf(w, `device %s
secret %s

The secret is shown this once and vward keeps only hashes of it. Configure the
device now: MQTT username %q, password the secret, publishing to
%s. With Mosquitto, run vward devices export-mosquitto
again and reload the broker.
`, id, secret, id, vward.ReadingsTopic(id))
	return err
}

func newDevicesAddCmd() *cobra.Command {
	var (
		o            registryOpts
		kind, serial string
	)
	cmd := &cobra.Command{
		Use:     "add ID [--kind K] [--serial S]",
		Short:   "Register a device and show its new secret, once",
		Example: `  vward devices add ox-0042 --kind "pulse oximeter" --serial NONIN-3230-118273`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, true, func(ctx context.Context, reg *devices.Registry) error {
				id := vward.DeviceID(args[0])
				secret, err := reg.RegisterDevice(ctx, devices.Device{ID: id, Kind: kind, Serial: serial})
				if err != nil {
					return err
				}
				return writeSecret(ctx, cmd.OutOrStdout(), reg, id, secret, o.asJSON)
			})
		},
	}
	o.register(cmd.Flags(), true, true)
	cmd.Flags().StringVar(&kind, "kind", "", "what it is: pulse oximeter, BP cuff, hub, …")
	cmd.Flags().StringVar(&serial, "serial", "", "the maker's serial number")
	return cmd
}

func newDevicesAssignCmd() *cobra.Command {
	var (
		o    registryOpts
		from timeFlag
	)
	cmd := &cobra.Command{
		Use:   "assign DEVICE PATIENT [--from TIME]",
		Short: "Bind a device to a patient; readings measured from then on are theirs",
		Long: `Bind a device to a patient from --from (default now), ending its current
binding then. Readings are attributed by when they were measured, so --from
may lie in the past to take in readings the device buffered.`,
		Example: `  vward devices assign ox-0042 p-0042
  vward devices assign ox-0042 p-0042 --from -2h`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			when, err := from.parse()
			if err != nil {
				return err
			}
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				if err := reg.Assign(ctx, vward.DeviceID(args[0]), vward.PatientID(args[1]), when); err != nil {
					return err
				}
				return printOut(cmd, "%s: bound to patient %s\n", args[0], args[1])
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	from.register(cmd.Flags(), "from", "when the binding starts")
	return cmd
}

func newDevicesUnassignCmd() *cobra.Command {
	var (
		o  registryOpts
		at timeFlag
	)
	cmd := &cobra.Command{
		Use:     "unassign DEVICE [--at TIME]",
		Short:   "End a device's binding; its later readings go to the dead letter",
		Example: `  vward devices unassign ox-0042`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			when, err := at.parse()
			if err != nil {
				return err
			}
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				if err := reg.Unassign(ctx, vward.DeviceID(args[0]), when); err != nil {
					return err
				}
				return printOut(cmd, "%s: unbound\n", args[0])
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	at.register(cmd.Flags(), "at", "when the binding ends")
	return cmd
}

func newDevicesRotateSecretCmd() *cobra.Command {
	var (
		o      registryOpts
		reason string
	)
	cmd := &cobra.Command{
		Use:   "rotate-secret DEVICE [--reason R]",
		Short: "Give a device a new secret, shown once; the old one stops working",
		Long: `Give a device a new secret, shown once. The old secret stops working for the
embedded broker of a running vward within seconds; for Mosquitto, run
export-mosquitto again and reload the broker.`,
		Example: `  vward devices rotate-secret ox-0042 --reason "hub replaced"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				id := vward.DeviceID(args[0])
				secret, err := reg.RotateSecret(ctx, id, reason)
				if err != nil {
					return err
				}
				return writeSecret(ctx, cmd.OutOrStdout(), reg, id, secret, o.asJSON)
			})
		},
	}
	o.register(cmd.Flags(), true, true)
	addReasonFlag(cmd, &reason, false)
	return cmd
}

func newDevicesListCmd() *cobra.Command {
	return listing[devices.Device]{
		use: "list", short: "List registered devices and whom each is bound to",
		empty:  "no devices; add one with vward devices add",
		header: "ID\tKIND\tSERIAL\tPATIENT\tWARD\tBOUND FROM\tMOSQUITTO",
		fetch:  func(ctx context.Context, reg *devices.Registry) ([]devices.Device, error) { return reg.Devices(ctx) },
		row: func(d devices.Device) []string {
			from := "-"
			if d.BoundFrom != nil {
				from = localTime(*d.BoundFrom)
			}
			mq := "ready"
			if !d.MosquittoReady {
				mq = "rotate secret"
			}
			return []string{string(d.ID), cell(d.Kind), cell(d.Serial), cell(string(d.Patient)), cell(string(d.Ward)), from, mq}
		},
	}.command(&registryOpts{})
}

func newDevicesExportMosquittoCmd() *cobra.Command {
	var (
		o                        registryOpts
		passwd, servicePasswd    string
		acl                      string
		serviceUser, servicePass string
	)
	cmd := &cobra.Command{
		Use:   "export-mosquitto --passwd FILE --service-passwd FILE --acl FILE",
		Short: "Write Mosquitto 2's password and ACL files for vward and every device",
		Long: `Write Mosquitto 2 password files (PBKDF2-SHA512, "$7$", as mosquitto_passwd
writes) for the two listeners of deploy/mosquitto/mosquitto.conf: --passwd with
every registered device, for the devices' listener, and --service-passwd with
vward's service account alone, for vward's. Write an ACL file letting each
device publish only under its own id and read only its own rejected topic, and
the service account read every device's messages.

The service account is kept out of the devices' file, and devices out of
vward's, so that a device can never connect where client ids are not bound
to accounts (docs/security.md).

vward keeps, for each device secret, a salted Mosquitto hash made when the
secret was issued (devices add, rotate-secret); the secret itself is never
stored. Devices registered before vward kept that hash are left out, with a
warning: rotate their secret to include them.

The files are replaced whole (written aside, then renamed). Tell Mosquitto to
reload them: kill -HUP its process, or docker compose kill -s HUP mosquitto.`,
		Example: `  VWARD_MQTT_PASSWORD=... vward devices export-mosquitto \
    --passwd deploy/mosquitto/passwd --service-passwd deploy/mosquitto/passwd.service \
    --acl deploy/mosquitto/acl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if passwd == "" && servicePasswd == "" && acl == "" {
				return errors.New("give --passwd FILE, --service-passwd FILE, --acl FILE, or any of them")
			}
			var aclText []byte
			var err error
			if aclText, err = devices.MosquittoACL(serviceUser); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if passwd != "" || servicePasswd != "" {
				reg, ctx, done, err := o.open(cmd.Context(), false)
				if err != nil {
					return err
				}
				defer done()
				exp, err := reg.ExportMosquittoPasswd(ctx, serviceUser, servicePass)
				if err != nil {
					return err
				}
				if servicePasswd != "" {
					if err := writeFileAtomic(servicePasswd, exp.ServicePasswd, 0o600); err != nil {
						return err
					}
					fmt.Fprintf(out, "wrote %s: service account %s\n", servicePasswd, exp.ServiceUser)
				}
				if passwd != "" {
					if err := writeFileAtomic(passwd, exp.Passwd, 0o600); err != nil {
						return err
					}
					fmt.Fprintf(out, "wrote %s: %d devices\n", passwd, exp.Devices)
				}
				if len(exp.Skipped) > 0 {
					ids := make([]string, len(exp.Skipped))
					for i, d := range exp.Skipped {
						ids[i] = string(d)
					}
					sort.Strings(ids)
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %d devices left out, registered before vward kept Mosquitto hashes: %s\n  run vward devices rotate-secret for each, then export again\n",
						len(ids), strings.Join(ids, ", "))
				}
			}
			if acl != "" {
				if err := writeFileAtomic(acl, aclText, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(out, "wrote %s\n", acl)
			}
			fmt.Fprintln(out, "reload Mosquitto to apply: kill -HUP <pid>, or docker compose kill -s HUP mosquitto")
			return nil
		},
	}
	fs := cmd.Flags()
	o.register(fs, false, false)
	fs.StringVar(&passwd, "passwd", "", "the devices' password file to write (mode 0600)")
	fs.StringVar(&servicePasswd, "service-passwd", "", "vward's password file to write (mode 0600): the service account alone")
	fs.StringVar(&acl, "acl", "", "ACL file to write")
	fs.StringVar(&serviceUser, "service-user", "vward", "vward's own MQTT account (env VWARD_MQTT_USERNAME)")
	fs.StringVar(&servicePass, "service-password", "", "its password, needed with --passwd or --service-passwd (env VWARD_MQTT_PASSWORD)")
	return cmd
}

// writeFileAtomic replaces path with data so that a reader (Mosquitto on
// HUP) sees the old file or the new one, never half of one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
