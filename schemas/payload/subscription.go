package payload

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Subscription is one entry of a subscription_discovery payload (a JSON
// array): a product registration as `SUSEConnect --status` reports it.
// Only products with a subscription of their own carry type, dates and
// subscription_status.
type Subscription struct {
	Identifier         string `json:"identifier"`
	Version            string `json:"version"`
	Arch               string `json:"arch"`
	Status             string `json:"status"`
	SubscriptionStatus string `json:"subscription_status,omitempty"`
	Type               string `json:"type,omitempty"`
	StartsAt           string `json:"starts_at,omitempty"`
	ExpiresAt          string `json:"expires_at,omitempty"`
}

// subscriptionTimeLayout is how SUSEConnect writes dates: "2021-10-18 06:23:46 UTC".
const subscriptionTimeLayout = "2006-01-02 15:04:05 MST"

// DecodeSubscriptions turns a subscription_discovery payload into the
// host's SLES subscriptions, in the agent's order. A null payload is no
// subscription at all.
func DecodeSubscriptions(raw []byte) ([]*fleetv1.SlesSubscription, error) {
	var list []Subscription
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, subscriptionsError(err)
	}
	out := make([]*fleetv1.SlesSubscription, 0, len(list))
	for i, s := range list {
		field := func(name string) string { return fmt.Sprintf("[%d].%s", i, name) }
		if s.Identifier == "" {
			return nil, &FieldError{Name: field("identifier"), Err: fmt.Errorf("%s is required: the product of the subscription", field("identifier"))}
		}
		sub := &fleetv1.SlesSubscription{
			Identifier: s.Identifier, Version: s.Version, Arch: s.Arch, Status: s.Status,
			SubscriptionStatus: s.SubscriptionStatus, Type: s.Type,
		}
		var err error
		if sub.StartsAt, err = subscriptionTime(field("starts_at"), s.StartsAt); err != nil {
			return nil, err
		}
		if sub.ExpiresAt, err = subscriptionTime(field("expires_at"), s.ExpiresAt); err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, nil
}

// subscriptionsError names the field of a decoding error; an object
// instead of the array is the likeliest mistake and gets its own message.
func subscriptionsError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field == "" {
		return fmt.Errorf("a subscription_discovery payload must be a JSON array of subscriptions, got %s", typeErr.Value)
	}
	return prefixField("[].", decodeError(err))
}

func subscriptionTime(field, s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(subscriptionTimeLayout, s)
	if err != nil {
		return nil, &FieldError{Name: field, Err: fmt.Errorf("%s %q is not a time like \"2021-10-18 06:23:46 UTC\"", field, s)}
	}
	return timestamppb.New(t), nil
}
