// Command fleetstream is the one binary of fleetstream; each subcommand is a
// role that runs as its own deployment, and `dev` runs them all in one process.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "fleetstream:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	var level string
	root := &cobra.Command{
		Use:           "fleetstream",
		Short:         "Kafka-native inventory, discovery and configuration checks",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := flagsFromEnv(cmd.Flags()); err != nil {
				return err
			}
			var l slog.Level
			if err := l.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(devCmd(), ingestCmd(), processCmd(), sinkCmd(), apiCmd(), agentCmd(), migrateCmd(), agentKeyCmd(), benchCmd(), collectCmd(), taskCmd(), queueCmd())
	return root
}

// flagsFromEnv gives every flag an environment variable, FLEETSTREAM_ plus
// the flag name in upper case with dashes as underscores; a flag given on
// the command line wins.
func flagsFromEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		env := "FLEETSTREAM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !f.Changed && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	return err
}
