package chlocal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"time"
)

// installHint is what to do when clickhouse-server is missing.
const installHint = "install it with 'sudo apt-get install -y clickhouse-server clickhouse-client' " +
	"(Debian/Ubuntu), or give the address of a running ClickHouse server instead"

// binaryCandidates are looked at after $PATH: Debian installs the server in
// /usr/sbin, which is not on a normal user's PATH.
var binaryCandidates = []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server", "/usr/local/bin/clickhouse-server"}

// FindBinary returns the path of clickhouse-server, or an error that says
// how to install it.
func FindBinary() (string, error) {
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil
	}
	for _, p := range binaryCandidates {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("clickhouse-server not found: " + installHint)
}

// EnsureInstalled returns the path of clickhouse-server, installing
// Debian's packages with apt-get when it is missing and this process runs
// as root (apt-get's output goes to logger). As any other user it returns
// an error that says what to install.
func EnsureInstalled(ctx context.Context, logger *slog.Logger) (string, error) {
	if p, err := FindBinary(); err == nil {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("clickhouse-server not found and not running as root, so it cannot be installed automatically: " + installHint)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger.Info("clickhouse-server not found: installing Debian's clickhouse-server and clickhouse-client with apt-get")
	began := time.Now()
	if err := apt(ctx, logger, "update"); err != nil {
		return "", err
	}
	if err := apt(ctx, logger, "install", "-y", "--no-install-recommends", "clickhouse-server", "clickhouse-client"); err != nil {
		return "", err
	}
	p, err := FindBinary()
	if err != nil {
		return "", fmt.Errorf("apt-get installed clickhouse-server but it is still not found: %w", err)
	}
	logger.Info("clickhouse-server installed", "binary", p, "took", time.Since(began).Round(time.Second))
	return p, nil
}

// apt runs apt-get with args, logging its output line by line so a slow
// download shows progress.
func apt(ctx context.Context, logger *slog.Logger, args ...string) error {
	// Wait for a concurrent apt/dpkg run instead of failing on its lock.
	args = append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("apt-get %v: %w", args, err)
	}
	cmd.Stderr = cmd.Stdout // one stream, in order
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("apt-get %v: %w (%s)", args, err, installHint)
	}
	var last []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		logger.Info("apt-get", "line", line)
		if last = append(last, line); len(last) > 10 {
			last = last[1:]
		}
	}
	_, _ = io.Copy(io.Discard, out) // a line longer than the scanner's buffer
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("apt-get %v failed: %w; last output: %q; %s", args, err, last, installHint)
	}
	return nil
}
