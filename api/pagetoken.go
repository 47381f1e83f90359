package api

import (
	"encoding/base64"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A page token is the base64url form of "<listing>\n<last key>". The listing
// part ("hosts", "events/host/<id>") makes a token from one listing fail
// loudly when passed to another instead of silently skipping rows. Tokens
// are opaque to clients; only this file knows their shape.

func encodePageToken(listing, lastKey string) string {
	if lastKey == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(listing + "\n" + lastKey))
}

// decodePageToken returns the last key of the previous page, "" for the first.
func decodePageToken(listing, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", invalidPageToken()
	}
	got, key, ok := strings.Cut(string(raw), "\n")
	if !ok || got != listing || key == "" {
		return "", invalidPageToken()
	}
	return key, nil
}

func invalidPageToken() error {
	return status.Error(codes.InvalidArgument, "page_token is not valid here: pass the next_page_token of the previous response of this same listing unchanged, or omit it for the first page")
}
