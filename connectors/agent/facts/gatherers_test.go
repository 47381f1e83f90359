package facts

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// testRoot is a SAP HANA cluster node's files (testdata/root).
func testRegistry(t *testing.T, path ...string) *Registry {
	t.Helper()
	if path == nil {
		path = []string{t.TempDir()} // no tools at all
	}
	return NewRegistry(Config{Root: "testdata/root", Path: path})
}

func gather(t *testing.T, r *Registry, name, arg string) any {
	t.Helper()
	v, err := r.Gather(context.Background(), name, arg)
	if err != nil {
		t.Fatalf("%s(%q): %v", name, arg, err)
	}
	return v
}

// asJSON compares values as the checks see them.
func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEveryContractGathererIsRegistered(t *testing.T) {
	want := []string{"cibadmin@v1", "corosync.conf@v1", "file@v1", "fstab@v1", "groups@v1", "hosts@v1", "ini@v1", "mount_info@v1",
		"os-release@v1", "package_version@v1", "passwd@v1", "saptune@v1", "sbd_config@v1", "sysctl@v1", "systemd@v1"}
	if got := NewRegistry(Config{}).Names(); !reflect.DeepEqual(got, want) {
		t.Errorf("gatherers %v, want %v", got, want)
	}
}

func TestCorosyncConf(t *testing.T) {
	conf := gather(t, testRegistry(t), "corosync.conf@v1", "").(map[string]any)
	totem := conf["totem"].(map[string]any)
	if totem["token"] != "30000" || totem["consensus"] != "36000" || totem["transport"] != "udpu" {
		t.Errorf("totem: %v", totem)
	}
	if got := asJSON(t, totem["interface"]); got != `[{"mcastport":"5405","ringnumber":"0","ttl":"1"},{"mcastport":"5407","ringnumber":"1","ttl":"1"}]` {
		t.Errorf("interfaces: %s", got)
	}
	nodes := conf["nodelist"].(map[string]any)["node"].([]any)
	if len(nodes) != 2 || nodes[1].(map[string]any)["ring1_addr"] != "fe80::5054:ff:fe12:3456" {
		t.Errorf("nodes: %v", nodes)
	}
	if got := asJSON(t, conf["quorum"]); got != `{"expected_votes":"2","provider":"corosync_votequorum","two_node":"1"}` {
		t.Errorf("quorum (comments inside a section): %s", got)
	}
	if got := asJSON(t, conf["logging"].(map[string]any)["logger_subsys"]); got != `[{"debug":"off","subsys":"QUORUM"}]` {
		t.Errorf("logger_subsys: %s", got)
	}
}

func TestParseCorosyncConf(t *testing.T) {
	one, err := ParseCorosyncConf("totem {\n interface {\n  ringnumber: 0\n }\n}\nnodelist {\n node {\n  nodeid: 1\n }\n}\nquorum {\n provider: a\n}\nquorum {\n provider: b\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	// A single interface or node is still a list; any section given twice becomes one.
	if got := asJSON(t, one); got != `{"nodelist":{"node":[{"nodeid":"1"}]},"quorum":[{"provider":"a"},{"provider":"b"}],"totem":{"interface":[{"ringnumber":"0"}]}}` {
		t.Errorf("parsed %s", got)
	}
	for text, want := range map[string]string{
		"totem {\n token: 1\n":      "section totem opened on line 1 is not closed",
		"totem {\n}\n}\n":           "line 3: '}' closes no section",
		"totem {\n token 3000\n}\n": `line 2: "token 3000" is neither`,
		"totem {\n : 3000\n}\n":     `line 2: "" is not a key`,
		"to tem {\n}\n":             `line 1: "to tem" is not a section name`,
	} {
		if _, err := ParseCorosyncConf(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", text, err, want)
		}
	}
}

func TestSBDConfig(t *testing.T) {
	got := gather(t, testRegistry(t), "sbd_config@v1", "").(map[string]any)
	want := map[string]any{
		"SBD_DEVICE":           "/dev/disk/by-id/scsi-36001405714d7f9602b045e7a2d0b8ac1;/dev/disk/by-id/scsi-36001405f2b6ad9b6bc543b0a0ac9a1d3",
		"SBD_PACEMAKER":        "yes",
		"SBD_STARTMODE":        "always",
		"SBD_DELAY_START":      "no",
		"SBD_WATCHDOG_DEV":     "/dev/watchdog",
		"SBD_WATCHDOG_TIMEOUT": "5",
		"SBD_TIMEOUT_ACTION":   "flush,reboot",
		"SBD_OPTS":             "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sbd config %v, want %v", got, want)
	}
}

func TestMissingFilesAreErrorsOfTheFact(t *testing.T) {
	r := NewRegistry(Config{Root: t.TempDir(), Path: []string{t.TempDir()}})
	for name, want := range map[string]string{
		"corosync.conf@v1":   "/etc/corosync/corosync.conf does not exist on this host (this host is not a corosync cluster node)",
		"sbd_config@v1":      "/etc/sysconfig/sbd does not exist on this host (SBD is not configured",
		"os-release@v1":      "neither /etc/os-release nor /usr/lib/os-release exists",
		"fstab@v1":           "/etc/fstab does not exist",
		"hosts@v1":           "/etc/hosts does not exist",
		"passwd@v1":          "/etc/passwd does not exist",
		"groups@v1":          "/etc/group does not exist",
		"cibadmin@v1":        "cibadmin is not installed on this host: it is not a pacemaker cluster node",
		"saptune@v1":         "saptune is not installed on this host",
		"package_version@v1": "neither rpm nor dpkg-query is installed",
		"systemd@v1":         "systemctl is not installed on this host",
	} {
		arg := ""
		if name == "package_version@v1" {
			arg = "bash"
		}
		if name == "systemd@v1" {
			arg = "sshd.service"
		}
		_, err := r.Gather(context.Background(), name, arg)
		if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want ErrMissing saying %q", name, err, want)
		}
	}
	if _, err := r.Gather(context.Background(), "sysctl@v1", "vm.no_such_knob"); !errors.Is(err, ErrMissing) ||
		!strings.Contains(err.Error(), "no kernel parameter vm.no_such_knob on this host (/proc/sys/vm/no_such_knob does not exist)") {
		t.Errorf("sysctl of a missing key: %v", err)
	}
}

func TestBadArguments(t *testing.T) {
	r := testRegistry(t)
	for _, c := range []struct{ gatherer, arg, want string }{
		{"package_version@v1", "--all", `"--all" is not a package name`},
		{"package_version@v1", "pace*", `is not a package name`},
		{"systemd@v1", "-H evil", `is not a systemd unit name`},
		{"sysctl@v1", "../../etc/passwd", `is not a kernel parameter name`},
		{"sysctl@v1", "", `is not a kernel parameter name`},
		{"file@v1", "etc/hosts", `"etc/hosts" is not an absolute path`},
		{"file@v1", "/etc", `/etc is a directory`},
		{"ini@v1", "/etc/hosts", `is not path:section.key`},
		{"ini@v1", "relative.ini:a.b", `with an absolute path`},
		{"mount_info@v1", "hana/data", `is not an absolute mount point`},
	} {
		_, err := r.Gather(context.Background(), c.gatherer, c.arg)
		if !errors.Is(err, ErrArgument) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s(%q): error %v, want ErrArgument saying %q", c.gatherer, c.arg, err, c.want)
		}
	}
	if _, err := r.Gather(context.Background(), "nope@v1", ""); !errors.Is(err, ErrUnknownGatherer) || !strings.Contains(err.Error(), "corosync.conf@v1") {
		t.Errorf("unknown gatherer: %v", err)
	}
}

func TestSysctlOnTestdata(t *testing.T) {
	r := testRegistry(t)
	if v := gather(t, r, "sysctl@v1", "vm.swappiness"); v != "10" {
		t.Errorf("vm.swappiness = %q", v)
	}
	// Tabs and the newline collapse as sysctl -n shows them; '/' works as a separator too.
	for _, key := range []string{"net.ipv4.tcp_rmem", "net/ipv4/tcp_rmem"} {
		if v := gather(t, r, "sysctl@v1", key); v != "4096 131072 6291456" {
			t.Errorf("%s = %q", key, v)
		}
	}
}

func TestFstab(t *testing.T) {
	entries := gather(t, testRegistry(t), "fstab@v1", "").([]any)
	if len(entries) != 8 {
		t.Fatalf("%d entries, want 8: %v", len(entries), entries)
	}
	if got := asJSON(t, entries[3]); got != `{"device":"/dev/mapper/vg_hana-lv_data","dump":1,"fstype":"xfs","mount_point":"/hana/data","options":"defaults,inode64,largeio,swalloc","pass":2}` {
		t.Errorf("/hana/data: %s", got)
	}
	// Missing dump and pass are 0; a missing options field is "defaults"; \040 is a space.
	if got := asJSON(t, entries[5]); got != `{"device":"nfs01:/export/hana_shared","dump":0,"fstype":"nfs4","mount_point":"/hana/shared","options":"rw,hard,timeo=600,vers=4.1","pass":0}` {
		t.Errorf("/hana/shared: %s", got)
	}
	if got := asJSON(t, entries[6]); got != `{"device":"/dev/mapper/vg_sap-lv usr sap","dump":0,"fstype":"xfs","mount_point":"/usr/sap","options":"defaults","pass":0}` {
		t.Errorf("/usr/sap: %s", got)
	}
	if _, err := ParseFstab("/dev/sda1 /\n"); err == nil || !strings.Contains(err.Error(), "line 1: 2 fields") {
		t.Errorf("short line: %v", err)
	}
	if _, err := ParseFstab("/dev/sda1 / xfs defaults x 0\n"); err == nil || !strings.Contains(err.Error(), `dump "x" is not a number`) {
		t.Errorf("bad dump: %v", err)
	}
}

func TestMountInfoOnTestdata(t *testing.T) {
	r := testRegistry(t)
	m := gather(t, r, "mount_info@v1", "/hana/data/").(map[string]any)
	// The later of two mounts on one point is the visible one.
	if m["source"] != "/dev/mapper/vg_hana-lv_data2" || m["fstype"] != "xfs" || m["options"] != "rw,noatime" {
		t.Errorf("mount: %v", m)
	}
	size, used, pct := m["size_bytes"].(int64), m["used_bytes"].(int64), m["used_percent"].(float64)
	if size <= 0 || used < 0 || used > size || pct < 0 || pct > 100 {
		t.Errorf("sizes of the file system holding testdata: %d %d %v", size, used, pct)
	}
	if v := gather(t, r, "mount_info@v1", "/hana/nothing"); v != nil {
		t.Errorf("nothing mounted: %v, want nil", v)
	}
	if got, err := findMount(`64 22 254:3 / /usr/sap\040old rw,relatime shared:33 - xfs /dev/x rw`+"\n", "/usr/sap old"); err != nil || got["source"] != "/dev/x" {
		t.Errorf("escaped mount point: %v %v", got, err)
	}
	if _, err := findMount("1 2 3\n", "/"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("malformed mountinfo: %v", err)
	}
}

func TestAccountsOnTestdata(t *testing.T) {
	r := testRegistry(t)
	users := gather(t, r, "passwd@v1", "").([]any)
	if len(users) != 5 {
		t.Fatalf("users %v (the NIS '+' line is not a user)", users)
	}
	if got := asJSON(t, users[2]); got != `{"gid":90,"home":"/var/lib/heartbeat/cores/hacluster","shell":"/bin/bash","uid":90,"user":"hacluster"}` {
		t.Errorf("hacluster: %s", got)
	}
	groups := gather(t, r, "groups@v1", "").([]any)
	if got := asJSON(t, groups[1]); got != `{"gid":90,"name":"haclient","users":["hacluster","prdadm"]}` {
		t.Errorf("haclient: %s", got)
	}
	if got := asJSON(t, groups[2]); got != `{"gid":79,"name":"sapsys","users":[]}` {
		t.Errorf("sapsys: %s", got)
	}
	if _, err := colonTable("root:x:0\n", "/etc/passwd", 7, nil); err == nil || !strings.Contains(err.Error(), "/etc/passwd line 1: 3 fields, want 7") {
		t.Errorf("short passwd line: %v", err)
	}
}

func TestHostsOnTestdata(t *testing.T) {
	got := asJSON(t, gather(t, testRegistry(t), "hosts@v1", ""))
	want := `{"hana01":["192.168.1.11","192.168.2.11"],"hana01.example.com":["192.168.1.11"],"hana02":["192.168.1.12"],"hana02.example.com":["192.168.1.12"],` +
		`"ipv6-localhost":["::1"],"ipv6-loopback":["::1"],"localhost":["127.0.0.1","::1"],"prd-vip":["10.0.0.50"]}`
	if got != want {
		t.Errorf("hosts\n got %s\nwant %s", got, want)
	}
}

func TestOSReleaseOnTestdata(t *testing.T) {
	got := gather(t, testRegistry(t), "os-release@v1", "").(map[string]any)
	if got["ID"] != "sles" || got["VERSION_ID"] != "15.5" || got["PRETTY_NAME"] != "SUSE Linux Enterprise Server 15 SP5" {
		t.Errorf("os-release: %v", got)
	}
}

func TestFileAndIni(t *testing.T) {
	r := testRegistry(t)
	if v := gather(t, r, "file@v1", "/proc/sys/vm/swappiness"); v != "10\n" {
		t.Errorf("file: %q", v)
	}
	ini := "/hana/shared/PRD/global/hdb/custom/config/global.ini"
	for arg, want := range map[string]any{
		ini + ":ha_dr_provider_SAPHanaSR.provider":       "SAPHanaSR",
		ini + ":ha_dr_provider_saphanasr.PROVIDER":       "SAPHanaSR", // names match regardless of case
		ini + ":ha_dr_provider_suschksrv.action_on_lost": "fence",
		ini + ":system_replication.commented":            nil,
		ini + ":no_section.provider":                     nil,
		"/etc/sysconfig/sbd:SBD_STARTMODE":               "always", // top-level key
		"/etc/sysconfig/sbd:.SBD_PACEMAKER":              "yes",
	} {
		if v := gather(t, r, "ini@v1", arg); v != want {
			t.Errorf("ini %s = %#v, want %#v", arg, v, want)
		}
	}
	if _, err := r.Gather(context.Background(), "ini@v1", "/no/such.ini:a.b"); !errors.Is(err, ErrMissing) {
		t.Errorf("missing ini file: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(bin, []byte{0xff, 0xfe, 0}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRegistry(Config{}).Gather(context.Background(), "file@v1", bin); !errors.Is(err, ErrArgument) {
		t.Errorf("binary file: %v", err)
	}
}
