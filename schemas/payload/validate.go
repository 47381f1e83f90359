package payload

import (
	"encoding/json"
	"errors"
	"fmt"
)

// FieldError is a payload error about one field (dotted JSON path).
type FieldError struct {
	Name string
	Err  error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Field names the offending field.
func (e *FieldError) Field() string { return e.Name }

// decodeError turns an encoding/json error into one that names the field.
func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return &FieldError{Name: typeErr.Field, Err: fmt.Errorf("%s must be a JSON %s, got %s", typeErr.Field, typeErr.Type.Kind(), typeErr.Value)}
	}
	return fmt.Errorf("not a valid payload: %w", err)
}

// Validate checks a payload of discovery type t as far as fleetstream
// understands the type; the ingest edge refuses what fails here, so a
// policy never sees it.
func Validate(t string, raw []byte) error {
	switch t {
	case HostDiscovery:
		_, err := DecodeHost(raw)
		return err
	case CloudDiscovery:
		_, err := DecodeProvider(raw)
		return err
	case SubscriptionDiscovery:
		_, err := DecodeSubscriptions(raw)
		return err
	case SaptuneDiscovery:
		_, err := DecodeSaptune(raw)
		return err
	case Heartbeat:
		return nil
	case HAClusterDiscovery:
		_, err := DecodeHACluster(raw)
		return err
	case SAPSystemDiscovery:
		_, err := DecodeSAPSystems(raw)
		return err
	case CloudResources:
		_, err := DecodeResourceCollection(raw)
		return err
	}
	if !json.Valid(raw) {
		return errors.New("not valid JSON")
	}
	return nil
}

// prefixField puts prefix in front of the field err names, if it names one.
func prefixField(prefix string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Name: prefix + fe.Name, Err: fmt.Errorf("%s%w", prefix, fe.Err)}
	}
	return err
}
