package api

import (
	"context"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

const secret16 = "0123456789abcdef"

func TestParseKey(t *testing.T) {
	k, err := ParseKey("ci:" + secret16 + ":read, write")
	if err != nil {
		t.Fatal(err)
	}
	if k.Name != "ci" || k.Secret != secret16 || !slices.Equal(k.Scopes, []Scope{ScopeRead, ScopeWrite}) {
		t.Errorf("parsed %+v", k)
	}
	for _, tc := range []struct{ spec, want string }{
		{"ci:" + secret16, "want name:secret:scopes"},
		{":" + secret16 + ":read", "name"},
		{"ci:short:read", "at least 16"},
		{"ci:" + secret16 + ":", "unknown scope"},
		{"ci:" + secret16 + ":admin", `unknown scope "admin"`},
		{"ci:" + secret16 + ":read:extra", "want name:secret:scopes"},
	} {
		_, err := ParseKey(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want it to contain %q", tc.spec, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret16) {
			t.Errorf("%q: error shows the secret: %v", tc.spec, err)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey("dev", ScopeRead, ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey("dev2", ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	if a.Secret == b.Secret || len(a.Secret) < 40 {
		t.Errorf("secrets %q %q: want distinct and long", a.Secret, b.Secret)
	}
	// The configuration form round-trips; the printable form hides the secret.
	back, err := ParseKey(a.Spec())
	if err != nil || back.Secret != a.Secret || back.Name != "dev" || len(back.Scopes) != 2 {
		t.Errorf("Spec round trip: %+v %v", back, err)
	}
	if s := a.String(); strings.Contains(s, a.Secret) || s != "dev (read,write)" {
		t.Errorf("String() = %q", s)
	}
	if _, err := GenerateKey("dev", "root"); err == nil {
		t.Error("GenerateKey accepted scope root")
	}
}

func TestNewKeysRejectsDuplicates(t *testing.T) {
	if _, err := ParseKeys([]string{"a:" + secret16 + ":read", "a:" + secret16 + "x:read"}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := ParseKeys([]string{"a:" + secret16 + ":read", "b:" + secret16 + ":write"}); err == nil || !strings.Contains(err.Error(), "same secret") {
		t.Errorf("duplicate secret: %v", err)
	}
}

func TestAuthorize(t *testing.T) {
	keys, err := ParseKeys([]string{"r:" + secret16 + ":read", "w:" + secret16 + "w:write", "rw:" + secret16 + "rw:read,write"})
	if err != nil {
		t.Fatal(err)
	}
	list := fleetv1.FleetService_ListHosts_FullMethodName
	for _, tc := range []struct {
		auth   []string
		method string
		want   codes.Code
	}{
		{nil, list, codes.Unauthenticated},
		{[]string{""}, list, codes.Unauthenticated},
		{[]string{"Bearer"}, list, codes.Unauthenticated},
		{[]string{"Bearer "}, list, codes.Unauthenticated},
		{[]string{"Token " + secret16}, list, codes.Unauthenticated},
		{[]string{"Bearer " + secret16 + "x"}, list, codes.Unauthenticated},
		{[]string{"Bearer " + secret16[:15]}, list, codes.Unauthenticated},
		{[]string{"Bearer " + secret16}, list, codes.OK},
		{[]string{"BEARER " + secret16}, list, codes.OK},
		{[]string{"Bearer " + secret16 + "w"}, list, codes.PermissionDenied},
		{[]string{"Bearer " + secret16 + "rw"}, list, codes.OK},
		{[]string{"Bearer " + secret16 + "rw"}, "/fleetstream.v1.FleetService/Unlisted", codes.PermissionDenied},
	} {
		md := metadata.MD{}
		if tc.auth != nil {
			md["authorization"] = tc.auth
		}
		err := keys.authorize(metadata.NewIncomingContext(context.Background(), md), fleetScopes, tc.method)
		if got := status.Code(err); got != tc.want {
			t.Errorf("%q on %s: %v, want %s", tc.auth, tc.method, err, tc.want)
		}
	}
}
