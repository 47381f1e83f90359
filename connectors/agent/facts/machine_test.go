package facts

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// These tests gather on the machine that runs them: real tools, real files.

func TestPackageVersionOnThisMachine(t *testing.T) {
	r := NewRegistry(Config{})
	var want string
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "bash").Output(); err == nil {
		want = string(out)
	} else if out, err := exec.Command("rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", "bash").Output(); err == nil {
		want = string(out)
	} else {
		t.Skip("neither dpkg-query nor rpm knows bash here")
	}
	if v := gather(t, r, "package_version@v1", "bash"); v != want {
		t.Errorf("bash %#v, want %q", v, want)
	}
	if v := gather(t, r, "package_version@v1", "no-such-package-fleetstream"); v != nil {
		t.Errorf("a package that is not installed: %#v, want nil", v)
	}
}

func TestSysctlOnThisMachine(t *testing.T) {
	if v := gather(t, NewRegistry(Config{}), "sysctl@v1", "kernel.ostype"); v != "Linux" {
		t.Errorf("kernel.ostype = %#v", v)
	}
}

func TestFilesOnThisMachine(t *testing.T) {
	r := NewRegistry(Config{})
	osr := gather(t, r, "os-release@v1", "").(map[string]any)
	if id, _ := osr["ID"].(string); id == "" || strings.ContainsAny(id, `"'`) {
		t.Errorf("os-release ID %q", id)
	}
	var root map[string]any
	for _, u := range gather(t, r, "passwd@v1", "").([]any) {
		if u.(map[string]any)["user"] == "root" {
			root = u.(map[string]any)
		}
	}
	if root == nil || root["uid"] != int64(0) || root["home"] != "/root" {
		t.Errorf("root in /etc/passwd: %v", root)
	}
	hosts := gather(t, r, "hosts@v1", "").(map[string]any)
	if ips, _ := hosts["localhost"].([]any); len(ips) == 0 {
		t.Errorf("localhost in /etc/hosts: %v", hosts)
	}
	m := gather(t, r, "mount_info@v1", "/").(map[string]any)
	if m["size_bytes"].(int64) <= 0 || m["fstype"] == "" {
		t.Errorf("mount_info /: %v", m)
	}
}

func TestSystemdOnThisMachine(t *testing.T) {
	r := NewRegistry(Config{})
	v, err := r.Gather(context.Background(), "systemd@v1", "ssh.service")
	comm, _ := os.ReadFile("/proc/1/comm")
	if strings.TrimSpace(string(comm)) == "systemd" {
		if err != nil || v.(map[string]any)["load_state"] == "" {
			t.Errorf("systemd is PID 1 here: %v, %v", v, err)
		}
		return
	}
	// Without systemd as init (a container), the error says so.
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "is systemd running as this host's init?") {
		t.Errorf("systemd not running: %v, %v", v, err)
	}
}
