package main

// `vward users …`: the clinicians who sign in to the board.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
)

func newUsersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Add, change, remove and list the clinicians who sign in to the board",
		Long: `Add and list the clinicians who sign in to the board. Roles: admin (every
ward; manages the registry), clinician (their wards; acts on alerts, sets the
SpO2 scale), viewer (their wards; reads only).

Passwords are read from standard input (the first line), so that they never
appear on a command line: type one at the prompt, or pipe it in.

A change of a user's password, role or wards, and their removal, ends every
session they have, open board streams included (within 20 seconds), and is
recorded in the registry's audit trail.`,
	}
	cmd.AddCommand(newUsersAddCmd(), newUsersListCmd(), newUsersPasswdCmd(), newUsersUpdateCmd(), newUsersRemoveCmd())
	return cmd
}

// readPassword reads one line from in; at a terminal it prompts on errOut
// and turns echo off while the password is typed.
func readPassword(in io.Reader, errOut io.Writer, prompt string) (string, error) {
	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(errOut, prompt)
			if echoOff(f) == nil {
				defer func() {
					echoOn(f)
					fmt.Fprintln(errOut)
				}()
			}
		}
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func echoOff(f *os.File) error {
	c := exec.Command("stty", "-echo")
	c.Stdin = f
	return c.Run()
}

func echoOn(f *os.File) {
	c := exec.Command("stty", "echo")
	c.Stdin = f
	_ = c.Run()
}

func newUsersAddCmd() *cobra.Command {
	var (
		o     registryOpts
		role  string
		wards []string
	)
	cmd := &cobra.Command{
		Use:   "add USERNAME --role ROLE [--ward WARD]...",
		Short: "Add a clinician; the password is read from standard input",
		Example: `  vward users add sam.jones --role clinician --ward resp-east --ward frailty-west
  printf '%s\n' "$PASSWORD" | vward users add ops --role admin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, true, func(ctx context.Context, reg *devices.Registry) error {
				username := args[0]
				if _, err := reg.Clinician(ctx, username); err == nil {
					return fmt.Errorf("user %s exists; use vward users passwd to change the password", username)
				} else if !errors.Is(err, vward.ErrNotFound) {
					return err
				}
				c := devices.Clinician{Username: username, Role: role}
				known, err := reg.Wards(ctx)
				if err != nil {
					return err
				}
				for _, w := range wards {
					found := false
					for _, k := range known {
						found = found || string(k.ID) == w
					}
					if !found {
						fmt.Fprintf(cmd.ErrOrStderr(), "warning: ward %s does not exist (yet)\n", w)
					}
					c.Wards = append(c.Wards, vward.WardID(w))
				}
				pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), "Password for "+username+": ")
				if err != nil {
					return err
				}
				if err := reg.AddClinician(ctx, c, pw); err != nil {
					return err
				}
				return printOut(cmd, "added %s (%s)\n", username, role)
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	cmd.Flags().StringVar(&role, "role", "", "admin, clinician or viewer (required)")
	cmd.Flags().StringArrayVar(&wards, "ward", nil, "a ward they work on (repeatable; an admin sees every ward)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newUsersListCmd() *cobra.Command {
	return listing[devices.Clinician]{
		use: "list", short: "List the clinicians, their roles and wards",
		empty:  "no users; add one with vward users add",
		header: "USERNAME\tROLE\tWARDS",
		fetch: func(ctx context.Context, reg *devices.Registry) ([]devices.Clinician, error) {
			return reg.Clinicians(ctx)
		},
		row: func(c devices.Clinician) []string {
			ws := make([]string, len(c.Wards))
			for i, w := range c.Wards {
				ws[i] = string(w)
			}
			wards := strings.Join(ws, ", ")
			if c.Role == "admin" {
				wards = "(every ward)"
			}
			return []string{cell(c.Username), c.Role, cell(wards)}
		},
	}.command(&registryOpts{})
}

func newUsersPasswdCmd() *cobra.Command {
	var o registryOpts
	cmd := &cobra.Command{
		Use:     "passwd USERNAME",
		Short:   "Set a clinician's password, read from standard input",
		Example: `  vward users passwd sam.jones`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				if _, err := reg.Clinician(ctx, args[0]); err != nil {
					return err
				}
				pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), "New password for "+args[0]+": ")
				if err != nil {
					return err
				}
				if err := reg.SetPassword(ctx, args[0], pw); err != nil {
					return err
				}
				return printOut(cmd, "password of %s changed; their sessions are signed out\n", args[0])
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	return cmd
}

func newUsersUpdateCmd() *cobra.Command {
	var (
		o      registryOpts
		role   string
		wards  []string
		reason string
	)
	cmd := &cobra.Command{
		Use:   "update USERNAME --role ROLE [--ward WARD]... --reason TEXT",
		Short: "Change a clinician's role and wards; their sessions are signed out",
		Long: `Change a clinician's role and wards. The wards given replace the ones they
had; give none to leave them with none. Their sessions end, so they sign in
again with the new rights.`,
		Example: `  vward users update sam.jones --role clinician --ward resp-east --reason "moved from frailty-west"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				c, err := reg.Clinician(ctx, args[0])
				if err != nil {
					return err
				}
				if role == "" {
					role = c.Role
				}
				ws := make([]vward.WardID, len(wards))
				for i, w := range wards {
					ws[i] = vward.WardID(w)
				}
				if err := reg.UpdateClinician(ctx, args[0], role, ws, reason); err != nil {
					return err
				}
				return printOut(cmd, "%s is now %s of %s; their sessions are signed out\n", args[0], role, strings.Join(wards, ", "))
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	cmd.Flags().StringVar(&role, "role", "", "admin, clinician or viewer (default: unchanged)")
	cmd.Flags().StringArrayVar(&wards, "ward", nil, "a ward they work on (repeat for several); replaces their wards")
	addReasonFlag(cmd, &reason, true)
	return cmd
}

func newUsersRemoveCmd() *cobra.Command {
	var (
		o      registryOpts
		reason string
	)
	cmd := &cobra.Command{
		Use:     "remove USERNAME --reason TEXT",
		Short:   "Remove a clinician's account; their sessions are signed out",
		Example: `  vward users remove sam.jones --reason "left the trust"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				if err := reg.RemoveClinician(ctx, args[0], reason); err != nil {
					return err
				}
				return printOut(cmd, "removed %s; their sessions are signed out\n", args[0])
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	addReasonFlag(cmd, &reason, true)
	return cmd
}
