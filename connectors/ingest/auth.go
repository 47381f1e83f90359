package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// AgentKeys authenticates agents. Per-agent keys are derived, not stored:
// key = "<agent_id>.<base64url(HMAC-SHA256(Secret, agent_id))>", so a fleet
// of any size needs no key database, and a genuine key presented for
// another agent id is recognised as such (403) rather than as garbage (401). The
// optional Enrollment key is shared by all agents of an installation (the
// Trento agent's --api-key) and may publish for any agent id; leave it
// empty to turn that off.
type AgentKeys struct {
	Secret     []byte
	Enrollment string
}

// KeyFor returns the per-agent key of agentID.
func (k AgentKeys) KeyFor(agentID string) string {
	return agentID + "." + k.mac(agentID)
}

func (k AgentKeys) mac(agentID string) string {
	m := hmac.New(sha256.New, k.Secret)
	m.Write([]byte(agentID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// authResult says what a presented key may do.
type authResult int

const (
	authMissing authResult = iota
	authInvalid
	authForbidden
	authOK
)

// authorize checks the key presented in r for agentID.
func (k AgentKeys) authorize(r *http.Request, agentID string) authResult {
	key := presentedKey(r)
	if key == "" {
		return authMissing
	}
	if k.Enrollment != "" && equal(key, k.Enrollment) {
		return authOK
	}
	if len(k.Secret) == 0 {
		return authInvalid
	}
	owner, mac, ok := strings.Cut(key, ".")
	if !ok || !equal(mac, k.mac(owner)) {
		return authInvalid
	}
	if owner != agentID {
		return authForbidden
	}
	return authOK
}

// presentedKey takes the key from "Authorization: Bearer" or, for the
// Trento agent, "X-Trento-Apikey".
func presentedKey(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if token, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(token)
		}
		return ""
	}
	return strings.TrimSpace(r.Header.Get("X-Trento-Apikey"))
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
