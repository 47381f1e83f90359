package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// Scope is a permission an API key grants. Scopes are independent: a key
// with only write cannot read.
type Scope string

const (
	// ScopeRead allows the read methods (lists, gets, history).
	ScopeRead Scope = "read"
	// ScopeWrite allows the methods that issue commands.
	ScopeWrite Scope = "write"
)

var validScopes = []Scope{ScopeRead, ScopeWrite}

// minSecretLen keeps guessable secrets such as "secret" out of configuration.
const minSecretLen = 16

// Key is a user API key. Its String form never shows the secret, so a Key
// may be logged.
type Key struct {
	Name   string
	Secret string
	Scopes []Scope
}

// ParseKey reads a key from its configuration form "name:secret:scope,scope",
// e.g. "ci:3f9a...:read,write".
func ParseKey(spec string) (Key, error) {
	parts := strings.Split(spec, ":")
	if len(parts) != 3 {
		return Key{}, fmt.Errorf("API key %q: want name:secret:scopes, e.g. ci:<secret>:read,write", redact(spec))
	}
	k := Key{Name: parts[0], Secret: parts[1]}
	for s := range strings.SplitSeq(parts[2], ",") {
		k.Scopes = append(k.Scopes, Scope(strings.TrimSpace(s)))
	}
	if err := k.validate(); err != nil {
		return Key{}, err
	}
	return k, nil
}

// GenerateKey makes a key with a random 256-bit secret, for development and
// for printing a key an operator then puts in configuration (Key.Spec).
func GenerateKey(name string, scopes ...Scope) (Key, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return Key{}, fmt.Errorf("generate API key %q: %w", name, err)
	}
	k := Key{Name: name, Secret: "fsk_" + base64.RawURLEncoding.EncodeToString(b), Scopes: scopes}
	if err := k.validate(); err != nil {
		return Key{}, err
	}
	return k, nil
}

// Spec is the configuration form ParseKey reads; it contains the secret.
func (k Key) Spec() string {
	return k.Name + ":" + k.Secret + ":" + k.scopeList()
}

// String names the key and its scopes without the secret.
func (k Key) String() string {
	return k.Name + " (" + k.scopeList() + ")"
}

func (k Key) scopeList() string {
	s := make([]string, len(k.Scopes))
	for i, sc := range k.Scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ",")
}

func (k Key) validate() error {
	if k.Name == "" || strings.ContainsAny(k.Name, ": ") {
		return fmt.Errorf("API key name %q: must be non-empty, without ':' or spaces", k.Name)
	}
	if len(k.Secret) < minSecretLen || strings.ContainsAny(k.Secret, ": ") {
		return fmt.Errorf("API key %q: secret must be at least %d characters without ':' or spaces; use GenerateKey or `openssl rand -hex 32`", k.Name, minSecretLen)
	}
	if len(k.Scopes) == 0 {
		return fmt.Errorf("API key %q: no scopes; give read, write or read,write", k.Name)
	}
	for _, s := range k.Scopes {
		if !slices.Contains(validScopes, s) {
			return fmt.Errorf("API key %q: unknown scope %q; valid scopes are read and write", k.Name, s)
		}
	}
	return nil
}

// redact hides the secret of a malformed spec in error messages.
func redact(spec string) string {
	name, _, found := strings.Cut(spec, ":")
	if !found {
		return "<redacted>"
	}
	return name + ":<redacted>"
}

// Keys is the set of user API keys the API accepts. It stores only SHA-256
// digests of the secrets.
type Keys struct {
	keys []storedKey
}

type storedKey struct {
	name   string
	digest [sha256.Size]byte
	scopes []Scope
}

// NewKeys builds a key set; names and secrets must be unique.
func NewKeys(keys ...Key) (*Keys, error) {
	ks := &Keys{}
	for _, k := range keys {
		if err := k.validate(); err != nil {
			return nil, err
		}
		d := sha256.Sum256([]byte(k.Secret))
		for _, o := range ks.keys {
			if o.name == k.Name {
				return nil, fmt.Errorf("API key %q is configured twice: give each key its own name", k.Name)
			}
			if o.digest == d {
				return nil, fmt.Errorf("API keys %q and %q have the same secret: give each key its own secret", o.name, k.Name)
			}
		}
		ks.keys = append(ks.keys, storedKey{name: k.Name, digest: d, scopes: slices.Clone(k.Scopes)})
	}
	return ks, nil
}

// ParseKeys builds a key set from configuration strings (see ParseKey).
func ParseKeys(specs []string) (*Keys, error) {
	keys := make([]Key, 0, len(specs))
	for _, s := range specs {
		k, err := ParseKey(s)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return NewKeys(keys...)
}

// lookup finds the key with this secret. It compares digests, so every
// comparison has the same length, and it visits every key, so the time taken
// tells nothing about which key (if any) matched.
func (ks *Keys) lookup(secret string) (storedKey, bool) {
	d := sha256.Sum256([]byte(secret))
	var found storedKey
	ok := false
	for _, k := range ks.keys {
		if subtle.ConstantTimeCompare(d[:], k.digest[:]) == 1 {
			found, ok = k, true
		}
	}
	return found, ok
}
