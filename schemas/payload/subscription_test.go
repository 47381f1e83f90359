package payload

import (
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func TestDecodeSubscriptionsFixture(t *testing.T) {
	got, err := DecodeSubscriptions(fixture(t, "discovery/subscriptions_discovery.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 {
		t.Fatalf("%d subscriptions, want 7", len(got))
	}
	want0 := &fleetv1.SlesSubscription{
		Identifier: "SLES_SAP", Version: "15.3", Arch: "x86_64", Status: "Registered", SubscriptionStatus: "ACTIVE", Type: "internal",
		StartsAt:  timestamppb.New(time.Date(2021, 10, 18, 6, 23, 46, 0, time.UTC)),
		ExpiresAt: timestamppb.New(time.Date(2026, 10, 18, 6, 23, 46, 0, time.UTC)),
	}
	if !proto.Equal(got[0], want0) {
		t.Errorf("first\n got %v\nwant %v", got[0], want0)
	}
	want1 := &fleetv1.SlesSubscription{Identifier: "sle-module-basesystem", Version: "15.3", Arch: "x86_64", Status: "Registered"}
	if !proto.Equal(got[1], want1) {
		t.Errorf("second\n got %v\nwant %v", got[1], want1)
	}
}

func TestDecodeSubscriptionsScenarios(t *testing.T) {
	files, err := filepath.Glob("../../testdata/fixtures/trento/scenarios/*/*_subscription_discovery*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario subscriptions (%v)", err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel("../../testdata/fixtures/trento", f)
		got, err := DecodeSubscriptions(fixture(t, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if len(got) == 0 || got[0].Identifier != "SLES_SAP" {
			t.Errorf("%s: %v", rel, got)
		}
	}
}

func TestDecodeSubscriptionsErrors(t *testing.T) {
	tests := []struct {
		name, raw, field, message string
	}{
		{"object instead of array", `{"identifier": "SLES_SAP"}`, "", "must be a JSON array of subscriptions, got object"},
		{"no identifier", `[{"identifier": "SLES_SAP"}, {"version": "15.3"}]`, "[1].identifier", "[1].identifier is required"},
		{"bad expiry", `[{"identifier": "SLES_SAP", "expires_at": "tomorrow"}]`, "[0].expires_at", `[0].expires_at "tomorrow" is not a time`},
		{"version not a string", `[{"identifier": "SLES_SAP", "version": 15.3}]`, "[].version", "[].version must be a JSON string, got number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSubscriptions([]byte(tt.raw))
			checkError(t, err, tt.field, tt.message)
		})
	}
	if got, err := DecodeSubscriptions([]byte("null")); err != nil || len(got) != 0 {
		t.Errorf("null payload: %v, %v; want no subscriptions", got, err)
	}
}
