package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vward/vward/internal/buildinfo"
	"github.com/vward/vward/safety"
)

const module = "github.com/vward/vward"

func newSafetyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "safety",
		Short: "Check the clinical hazard log and render the safety case report",
		Long: `The hazard log (docs/safety/hazards.yaml) lists each clinical hazard of vward,
its cause, effect and risk, and the controls that lower it: design, tests,
scenarios, documentation and configuration. docs/safety/README.md says how to
change it.`,
	}
	cmd.AddCommand(newSafetyCheckCmd(), newSafetyReportCmd())
	return cmd
}

func newSafetyCheckCmd() *cobra.Command {
	var logPath, root string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that every control the hazard log names exists in the source tree",
		Long: `Check reads the hazard log and the source tree at --root and fails, saying
what is wrong, when a named test, scenario or page does not exist, a hazard
has no control or a control no hazard, a fault test is no hazard's control,
or an alerting condition or policy setting is covered by no hazard.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := safety.Load(logPath)
			if err != nil {
				return err
			}
			if err := safety.Trace(l, root, safety.Required()); err != nil {
				return fmt.Errorf("the hazard log does not trace to %s:\n%w", root, err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: %d hazards, %d controls, all traced\n", logPath, len(l.Hazards), len(l.Controls))
			return err
		},
	}
	cmd.Flags().StringVar(&logPath, "log", "docs/safety/hazards.yaml", "the hazard log")
	cmd.Flags().StringVar(&root, "root", ".", "the source tree's root")
	return cmd
}

func newSafetyReportCmd() *cobra.Command {
	var logPath, results, out string
	cmd := &cobra.Command{
		Use:   "report [--results go-test.json] [--out report.md]",
		Short: "Render the hazard log and a build's test evidence as a clinical safety case report",
		Long: `Report renders the hazard log as a clinical safety case report in Markdown.
With --results, the output of "go test -json" for this build (- for standard
input), each test and scenario control shows whether it passed, failed, was
skipped or was not run; scenarios are the subtests of
internal/node:TestScenarioFiles. scripts/safety-report runs the tests and
renders the report in one step.`,
		Example: `  go test -json ./... > results.json
  vward safety report --results results.json --out safety-case.md`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := safety.Load(logPath)
			if err != nil {
				return err
			}
			info := buildinfo.Read()
			b := safety.Build{Version: info.Version, Revision: info.Revision, At: time.Now()}
			var res safety.Results
			if results != "" {
				r := cmd.InOrStdin()
				if results != "-" {
					f, err := os.Open(results)
					if err != nil {
						return fmt.Errorf("test results: %w", err)
					}
					defer f.Close()
					r = f
				}
				if res, err = safety.ReadResults(r, module); err != nil {
					return fmt.Errorf("%s: %w", results, err)
				}
				b.Results = results
				if results == "-" {
					b.Results = "go test -json on standard input"
				}
			}
			var w io.Writer = cmd.OutOrStdout()
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return fmt.Errorf("report: %w", err)
				}
				defer f.Close()
				w = f
			}
			if err := safety.Render(w, l, b, res); err != nil {
				return fmt.Errorf("write the report: %w", err)
			}
			if f, ok := w.(*os.File); ok && out != "" {
				return f.Close()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&logPath, "log", "docs/safety/hazards.yaml", "the hazard log")
	cmd.Flags().StringVar(&results, "results", "", `the output of "go test -json" for this build, or - for standard input`)
	cmd.Flags().StringVar(&out, "out", "", "write the report here instead of standard output")
	return cmd
}
