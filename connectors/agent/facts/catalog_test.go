package facts

import (
	"slices"
	"strings"
	"testing"

	"github.com/fleetstream/fleetstream/processors/checks/catalog"
)

func TestHostFactsOfTheCatalog(t *testing.T) {
	cat, err := catalog.Load("testdata/checks")
	if err != nil {
		t.Fatal(err)
	}
	var checks []*catalog.Check
	for _, id := range []string{"H7-TEST-SWAPPINESS", "H7-TEST-SBD"} {
		c, ok := cat.Check(id)
		if !ok {
			t.Fatalf("no check %s in the catalog", id)
		}
		checks = append(checks, c)
	}
	r := NewRegistry(Config{Root: "testdata/root"})
	describe := func(clusterNode bool) (got []string, skipped []string) {
		facts, skipped := HostFacts(checks, r, clusterNode)
		for _, f := range facts {
			got = append(got, f.CheckId+" "+f.Name+" "+f.Gatherer+" "+f.Argument)
		}
		return got, skipped
	}
	got, skipped := describe(false)
	// The derived fact is the control plane's; the argument needing the SID is skipped, saying why.
	if want := []string{"H7-TEST-SWAPPINESS swappiness sysctl@v1 vm.swappiness"}; !slices.Equal(got, want) {
		t.Errorf("facts of a host that is not a cluster node %v, want %v", got, want)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "check H7-TEST-SWAPPINESS: fact global_ini") || !strings.Contains(skipped[0], "needs env sid") {
		t.Errorf("skipped %v", skipped)
	}
	got, _ = describe(true)
	if want := []string{"H7-TEST-SWAPPINESS swappiness sysctl@v1 vm.swappiness", "H7-TEST-SBD sbd sbd_config@v1 "}; !slices.Equal(got, want) {
		t.Errorf("facts of a cluster node %v, want %v", got, want)
	}
	if !IsClusterNode("testdata/root") || IsClusterNode(t.TempDir()) {
		t.Error("a cluster node is one with /etc/corosync/corosync.conf")
	}
	// The embedded catalog loads and yields only facts this agent gathers.
	def, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	facts, _ := HostFacts(def.Checks(), r, true)
	for _, f := range facts {
		if !slices.Contains(r.Names(), f.Gatherer) {
			t.Errorf("%s asks %s, which the agent does not gather", f.CheckId, f.Gatherer)
		}
	}
}
